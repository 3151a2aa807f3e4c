"""The next fire times of an expression, for the preview API and `cronwheel schedule next`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cronwheel.domain.schedules import schedule_from_dict
from cronwheel.domain.time import Micros, to_iso

_RATE = re.compile(r"^\s*(every\s+|rate\()", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Preview:
    kind: str
    description: str
    next: list[str]  # ISO 8601 instants


def expression_schedule(expr: str, tz: str | None, kind: str | None) -> dict[str, Any]:
    """The schedule an expression stands for: cron, a rate, or an ISO 8601 interval."""
    if kind is None:
        stripped = expr.strip()
        if stripped[:1] in ("R", "r") and "/" in stripped:
            kind = "iso8601"
        elif _RATE.match(stripped):
            kind = "rate"
        else:
            kind = "cron"
    if kind == "rate":
        return {"kind": "rate", "every": expr}
    data: dict[str, Any] = {"kind": kind, "expr": expr}
    if tz is not None:
        data["tz"] = tz
    return data


def preview(expr: str, tz: str | None, kind: str | None, after: Micros, count: int) -> Preview:
    data = expression_schedule(expr, tz, kind)
    schedule = schedule_from_dict(data, after)
    times: list[str] = []
    at = schedule.next_after(after)
    while at is not None and len(times) < count:
        times.append(to_iso(at))
        at = schedule.next_after(at)
    return Preview(kind=data["kind"], description=schedule.describe(), next=times)
