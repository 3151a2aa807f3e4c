"""The delay-job callback body, `{"outJobNo", "triggerTime", "jobInfo"}`, and its time unit.

The delay-job service's code stores the client's seconds as milliseconds and sends what it
stored, moved by any pause; its document says seconds. So the unit is a choice ("ms", the
code's, by default; "s", the document's), and the time sent is the instant the run was due.
"""

from __future__ import annotations

from typing import Any

from cronwheel.domain.time import US_PER_MS, US_PER_S, Micros

UNIT_MS = "ms"
UNIT_S = "s"
UNITS = (UNIT_MS, UNIT_S)
BODY_FIELDS = frozenset({"outJobNo", "triggerTime", "jobInfo"})


def trigger_time(at: Micros, unit: str) -> int | float:
    """An instant as `triggerTime`: whole milliseconds (rounded half up), or seconds with a
    fraction only when the instant has one."""
    if unit == UNIT_MS:
        return (at + US_PER_MS // 2) // US_PER_MS
    whole, rest = divmod(at, US_PER_S)
    return whole if rest == 0 else at / US_PER_S


def is_body(payload: Any) -> bool:
    """The dialect's callback body, not some native payload that happens to hold the name."""
    if not isinstance(payload, dict) or set(payload) != BODY_FIELDS:
        return False
    value = payload["triggerTime"]
    return isinstance(value, int | float) and not isinstance(value, bool)


def body_due(payload: Any, due: Micros, unit: str) -> Any:
    """The body with `triggerTime` the instant the run was due. A body that already names it,
    in either unit, stays as submitted (its unit was chosen then); a resumed countdown's moved
    time is given in `unit`. Other payloads as they are."""
    if not is_body(payload):
        return payload
    if any(payload["triggerTime"] == trigger_time(due, stored) for stored in UNITS):
        return payload
    return {**payload, "triggerTime": trigger_time(due, unit)}
