"""The `cron` schedule kind: an expression, a zone and optional bounds, as jobs store them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from zoneinfo import ZoneInfoNotFoundError

from cronwheel.domain.cron.english import describe
from cronwheel.domain.cron.parse import CronExpr, CronSyntax
from cronwheel.domain.cron.zones import zone
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.schedules import register
from cronwheel.domain.time import MAX_INSTANT, Micros, parse_instant, to_iso


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """Fires at each wall-clock time the expression names in zone `tz`, from start to end.

    `start` and `end` are inclusive; the expression is parsed once per (text, syntax).
    """

    expr: str
    syntax: CronSyntax = "auto"
    tz: str = "UTC"
    start: Micros | None = None
    end: Micros | None = None
    kind: ClassVar[str] = "cron"

    @property
    def cron(self) -> CronExpr:
        return CronExpr.parse(self.expr, self.syntax)

    def next_after(self, instant: Micros) -> Micros | None:
        if self.start is not None:
            instant = max(instant, self.start - 1)
        upcoming = self.cron.next_after(instant, zone(self.tz))
        if upcoming is None or (self.end is not None and upcoming > self.end):
            return None
        return upcoming

    def first(self, created_at: Micros) -> Micros | None:
        return self.next_after(created_at)  # next_after already starts no earlier than start

    def describe(self) -> str:
        """E.g. "at 09:30, Monday through Friday (Europe/Berlin), until 2026-12-31T00:00:00Z"."""
        text = f"{describe(self.cron)} ({self.tz})"
        text += "" if self.start is None else f", from {to_iso(self.start)}"
        return text + ("" if self.end is None else f", until {to_iso(self.end)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "expr": self.expr,
            "tz": self.tz,
            "syntax": self.syntax,
            "start": None if self.start is None else to_iso(self.start),
            "end": None if self.end is None else to_iso(self.end),
        }


def _syntax(value: Any) -> CronSyntax:
    if value == "auto" or value is None:
        return "auto"
    if value == "quartz":
        return "quartz"
    if value == "unix":
        return "unix"
    raise InvalidField(f"'syntax' must be auto, quartz or unix, got {value!r}", "syntax")


def _zone_name(value: Any) -> str:
    if value is None:
        return "UTC"
    if not isinstance(value, str):
        raise InvalidField("'tz' must be an IANA time zone name such as Europe/Berlin", "tz")
    try:
        zone(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidField(
            f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin", "tz"
        ) from None
    return value


def _bound(value: Any, name: str) -> Micros | None:
    if value is None:
        return None
    if isinstance(value, str):
        instant = parse_instant(value, name)
    elif isinstance(value, int) and not isinstance(value, bool):
        instant = value
    else:
        raise InvalidField(
            f"'{name}' must be an ISO 8601 instant such as 2026-11-21T18:00:00Z", name
        )
    if not 0 <= instant <= MAX_INSTANT:
        raise InvalidField(f"'{name}' is out of range", name)
    return instant


def parse_cron_schedule(data: Mapping[str, Any], now: Micros) -> CronSchedule:
    """Validate a cron schedule from its submitted or stored form.

    `now` is unused: a cron has nothing relative. A schedule that will never fire again is not
    refused here, because stored jobs are rebuilt through this parser too.
    """
    text = data.get("expr")
    if not isinstance(text, str):
        raise InvalidField("'expr' must be a cron expression such as '0 0 12 * * ?'", "expr")
    expr = CronExpr.parse(text, _syntax(data.get("syntax")))
    tz = _zone_name(data.get("tz"))
    start, end = _bound(data.get("start"), "start"), _bound(data.get("end"), "end")
    if start is not None and end is not None and end < start:
        raise InvalidField("'end' must not be before 'start'", "end")
    return CronSchedule(expr=expr.text, syntax=expr.syntax, tz=tz, start=start, end=end)


register("cron", parse_cron_schedule)
