"""Log lines an operator can read and a collector can parse: the event's name, then its
fields; plain text or one JSON object per line."""

from __future__ import annotations

import json
import logging

from cronwheel.logs import AccessEvents, EventFormatter, target_label


def _record(msg: str, args: tuple[object, ...] = (), /, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("cronwheel.dispatcher", logging.INFO, __file__, 1, msg, args,
                               None)
    for name, value in fields.items():
        setattr(record, name, value)
    return record


FIELDS = {"job_key": "invoice 42", "namespace": "default", "run_id": "r1", "attempt": 2,
          "target": "http http://127.0.0.1:9/x", "error": "connection refused"}


def test_a_text_line_names_the_event_and_every_field() -> None:
    line = EventFormatter().format(_record("delivery.failed", **FIELDS))
    assert "\n" not in line
    _when, level, logger, event, rest = line.split(" ", 4)
    assert (level, logger, event) == ("INFO", "cronwheel.dispatcher", "delivery.failed")
    assert rest == ('job_key="invoice 42" namespace=default run_id=r1 attempt=2 '
                    'target="http http://127.0.0.1:9/x" error="connection refused"')


def test_a_json_line_is_one_object_with_the_fields() -> None:
    line = EventFormatter(as_json=True).format(_record("delivery.failed", **FIELDS))
    parsed = json.loads(line)
    assert parsed["event"] == "delivery.failed" and parsed["level"] == "info"
    assert {k: parsed[k] for k in FIELDS} == FIELDS
    assert parsed["ts"].endswith("Z")


def test_an_exception_stays_inside_the_json_object() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = _record("duty.failed", duty="upkeep")
        record.exc_info = sys.exc_info()
    parsed = json.loads(EventFormatter(as_json=True).format(record))
    assert parsed["duty"] == "upkeep" and "RuntimeError: boom" in parsed["exception"]


def test_access_lines_become_http_request_events() -> None:
    record = _record('%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5000", "GET", "/v1/jobs", "1.1",
                                                  200))
    assert AccessEvents().filter(record)
    parsed = json.loads(EventFormatter(as_json=True).format(record))
    assert parsed["event"] == "http.request"
    assert (parsed["method"], parsed["path"], parsed["status"]) == ("GET", "/v1/jobs", 200)


def test_targets_read_in_a_few_words() -> None:
    assert target_label({"kind": "grpc", "address": "h:1"}) == "grpc h:1"
    assert target_label({"kind": "tcp", "host": "h", "port": 7}) == "tcp h:7"
    assert target_label({"kind": "worker", "type": "shell", "group": "db"}) == "worker shell@db"
