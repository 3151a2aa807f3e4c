"""GET /v1/schedules/preview, and cron jobs firing through a real node."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.receivers import HttpReceiver
from tests.servers import RunningServer


async def test_preview_lists_fire_times_across_a_dst_change(server: RunningServer) -> None:
    resp = await server.client.get("/v1/schedules/preview", params={
        "expr": "0 30 2 * * ?", "tz": "America/New_York", "after": "2026-03-07T00:00:00Z",
        "n": 3})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["kind"] == "cron" and "02:30" in body["description"]
    # 8 March 2026 springs forward at 02:00: the 02:30 fire moves to 03:30 EDT (07:30Z)
    assert body["next"] == ["2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z",
                            "2026-03-09T06:30:00Z"]


@pytest.mark.parametrize(
    ("expr", "kind", "first"),
    [
        ("*/15 9-17 * * 1-5", "cron", "2026-11-23T09:00:00Z"),
        ("0 15 10 ? * 6L", "cron", "2026-11-27T10:15:00Z"),
        ("every 5m", "rate", "2026-11-21T00:05:00Z"),
        ("R3/2026-12-01T00:00:00Z/P1D", "iso8601", "2026-12-01T00:00:00Z"),
    ],
)
async def test_preview_detects_the_kind(
    server: RunningServer, expr: str, kind: str, first: str
) -> None:
    resp = await server.client.get("/v1/schedules/preview", params={
        "expr": expr, "after": "2026-11-21T00:00:00Z", "n": 2})
    assert resp.status_code == 200, resp.text
    assert resp.json()["kind"] == kind and resp.json()["next"][0] == first


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"expr": "0 0 32 * *"}, "expr", "day-of-month"),
        ({"expr": "* * * * * *"}, "expr", "?"),
        ({"expr": "0 0 * * *", "tz": "Mars/Olympus"}, "tz", "time zone"),
        ({"expr": "0 0 * * *", "after": "yesterday"}, "after", "ISO 8601"),
        ({"expr": "every 3 fortnights"}, "expr", "unit"),
        ({"expr": "0 0 * * *", "n": 0}, "n", ""),
    ],
)
async def test_preview_rejects_with_the_field_named(
    server: RunningServer, params: dict[str, str | int], field: str, words: str
) -> None:
    resp = await server.client.get("/v1/schedules/preview", params=params)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["field"] == field and words in error["message"]


async def test_a_seconds_cron_job_fires_on_each_whole_second(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    body = {"key": "tick", "schedule": {"kind": "cron", "expr": "* * * * * ?"},
            "target": {"kind": "http", "url": receiver.url}}
    assert (await server.client.post("/v1/jobs", json=body)).status_code == 201
    got = await receiver.wait_for(2, timeout=5)
    await server.client.post("/v1/jobs/tick/cancel")
    instants = [datetime.fromisoformat(r.headers["Cronwheel-Scheduled-At"]) for r in got[:2]]
    assert all(i.microsecond == 0 and i.tzinfo == UTC for i in instants)
    assert (instants[1] - instants[0]).total_seconds() == 1
    assert all(r.at >= i.timestamp() for r, i in zip(got, instants, strict=False))


async def test_a_bad_cron_job_is_refused_at_submit(server: RunningServer) -> None:
    body = {"key": "bad", "schedule": {"kind": "cron", "expr": "0 0 L-40 * ?"},
            "target": {"kind": "http", "url": "http://127.0.0.1:9/x"}}
    resp = await server.client.post("/v1/jobs", json=body)
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "schedule.cron"
    assert "L-40" in resp.json()["error"]["message"]


# Issue 10: schedule numbers that overflowed were 500s; each is now a 422 naming the field.


@pytest.mark.parametrize("expr", ["rate(99999999999999999999 days)", "every 99999999999999999999ms",
                                  "R/2026-01-01T00:00:00Z/PT99999999999999999999H"])
async def test_preview_refuses_a_step_that_overflows(server: RunningServer, expr: str) -> None:
    resp = await server.client.get("/v1/schedules/preview", params={"expr": expr})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["field"] == "expr" and "too long" in error["message"]


@pytest.mark.parametrize("interval", ["NaN", "Infinity", "-Infinity", "1e308",
                                      '"P' + "9" * 400 + 'D"'])
async def test_a_simple_interval_that_overflows_is_refused_at_submit(
    server: RunningServer, interval: str
) -> None:
    # Raw JSON: Python's json (and so the API) reads NaN and Infinity as numbers.
    body = ('{"key": "huge", "schedule": {"kind": "simple", "interval": ' + interval + '},'
            ' "target": {"kind": "http", "url": "http://127.0.0.1:9/x"}}')
    resp = await server.client.post("/v1/jobs", content=body,
                                    headers={"content-type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == "schedule.interval"
    assert (await server.client.get("/v1/jobs/huge")).status_code == 404


async def test_an_iso_recurrence_ends_at_year_9999(server: RunningServer) -> None:
    resp = await server.client.get("/v1/schedules/preview", params={
        "expr": "R5/9999-06-01T00:00:00Z/P1Y", "after": "2026-11-21T00:00:00Z", "n": 3})
    assert resp.status_code == 200, resp.text
    assert resp.json()["next"] == ["9999-06-01T00:00:00Z"]
    schedule = {"kind": "iso8601", "expr": "R/9999-12-31T00:00:00Z/P1D"}
    body = {"key": "last-day", "schedule": schedule,
            "target": {"kind": "http", "url": "http://127.0.0.1:9/x"}}
    created = await server.client.post("/v1/jobs", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["next_fire_at"] == "9999-12-31T00:00:00Z"


async def test_an_iso_recurrence_starting_after_year_9999_is_refused(
    server: RunningServer,
) -> None:
    body = {"key": "too-late",
            "schedule": {"kind": "iso8601", "expr": "R/9999-12-31T23:00:00-05:00/PT1H"},
            "target": {"kind": "http", "url": "http://127.0.0.1:9/x"}}
    resp = await server.client.post("/v1/jobs", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == "schedule.expr"
    assert "9999" in resp.json()["error"]["message"]
