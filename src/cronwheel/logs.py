"""The server's log: one line per event, its name first and then its fields (job key,
namespace, run id, attempt, target, error ...), as `key=value` text for a terminal or as one
JSON object per line for a collector (CRONWHEEL_LOG_FORMAT=json).

Code logs an event as `log.info("delivery.failed", extra={...})`: the message is the event's
name, the extras are its fields. The access log (uvicorn's) is turned into `http.request`
events with the same shape.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
LEVELS = ("critical", "error", "warning", "info", "debug")
ACCESS_LOGGER = "uvicorn.access"
# What every LogRecord has: anything else on a record is a field of its event.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName", "color_message"}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _when(record: logging.LogRecord) -> str:
    at = datetime.fromtimestamp(record.created, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str,
                                                           separators=(",", ":"))
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


class EventFormatter(logging.Formatter):
    """`2026-12-01T23:00:00.123Z WARNING cronwheel.dispatcher delivery.failed run_id=...`, or
    the same as a JSON object."""

    def __init__(self, as_json: bool = False) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        event = record.getMessage()
        fields = fields_of(record)
        error = self.formatException(record.exc_info) if record.exc_info else None
        if self.as_json:
            line: dict[str, Any] = {"ts": _when(record), "level": record.levelname.lower(),
                                    "logger": record.name, "event": event} | fields
            if error:
                line["exception"] = error
            return json.dumps(line, default=str, ensure_ascii=False)
        text = " ".join([_when(record), record.levelname, record.name, event]
                        + [f"{k}={_text_value(v)}" for k, v in fields.items()])
        return f"{text}\n{error}" if error else text


class AccessEvents(logging.Filter):
    """uvicorn's access lines as `http.request` events: client, method, path, status."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            record.msg, record.args = "http.request", ()
            record.client, record.method, record.path = client, method, path
            record.status, record.http = status, version
        return True


def configure(level: str = "info", fmt: str = "text", access_log: bool = True) -> None:
    """Send every logger's events, uvicorn's too, through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EventFormatter(as_json=fmt == "json"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", ACCESS_LOGGER):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # 7 lines a start
    access = logging.getLogger(ACCESS_LOGGER)
    access.disabled = not access_log
    if not any(isinstance(f, AccessEvents) for f in access.filters):
        access.addFilter(AccessEvents())


def uvicorn_log_config() -> dict[str, Any]:
    """A dictConfig for uvicorn that leaves its loggers to `configure` (none of its own)."""
    return {"version": 1, "disable_existing_loggers": False}


def target_label(target: dict[str, Any]) -> str:
    """A target in a few words for a log line: `http https://x/y`, `grpc host:port` ..."""
    kind = str(target.get("kind", "?"))
    if "url" in target:
        return f"{kind} {target['url']}"
    if "address" in target:
        return f"{kind} {target['address']}"
    if "host" in target:
        return f"{kind} {target['host']}:{target.get('port')}"
    if "topic" in target:
        return f"{kind} {target['topic']}"
    if "type" in target:
        return f"{kind} {target['type']}@{target.get('group', 'default')}"
    return kind
