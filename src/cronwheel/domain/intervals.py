"""Schedules that repeat at a fixed step: Quartz simple triggers, rates, ISO 8601 intervals.

A fixed step (milliseconds to days, as elapsed time) is an arithmetic progression and needs no
calendar. ISO 8601 durations with years or months do: those are added on the calendar in the
start's own UTC offset (2026-01-31 + P1M is 2026-02-28), counting each occurrence from the start
rather than from the previous one, so the 31st does not drift to the 28th for good.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import aniso8601
from aniso8601.builders import TupleBuilder
from aniso8601.exceptions import ISOFormatError
from dateutil.relativedelta import relativedelta

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.schedules import register
from cronwheel.domain.time import (
    MAX_INSTANT,
    US_PER_MS,
    US_PER_S,
    Micros,
    from_datetime,
    parse_duration,
    parse_instant,
    to_datetime,
    to_iso,
    to_iso_or_none,
)

UNITS_US = {
    "millisecond": US_PER_MS,
    "second": US_PER_S,
    "minute": 60 * US_PER_S,
    "hour": 3_600 * US_PER_S,
    "day": 86_400 * US_PER_S,
}
# Every spelling a rate may use for its unit. Whole words are matched, never a prefix: the
# trailing `s` of `ms` is part of the unit, not a plural (500ms is half a second, not minutes).
_UNIT_WORDS = {
    "millisecond": ("ms", "msec", "msecs", "milli", "millis", "millisecond", "milliseconds"),
    "second": ("s", "sec", "secs", "second", "seconds"),
    "minute": ("m", "min", "mins", "minute", "minutes"),
    "hour": ("h", "hr", "hrs", "hour", "hours"),
    "day": ("d", "day", "days"),
}
_UNIT_OF = {word: unit for unit, words in _UNIT_WORDS.items() for word in words}
_RATE = re.compile(
    r"^(?:rate\(\s*(?P<n1>\d+)\s+(?P<u1>[a-z]+)\s*\)|(?:every\s+)?(?P<n2>\d+)\s*(?P<u2>[a-z]+))$"
)
MIN_STEP_US = 10 * US_PER_MS  # a faster job is a loop, not a schedule
# A longer step than the whole range of instants (1970..9999) could never fire twice; refusing
# it also keeps NaN, infinities and 20-digit amounts out of integer arithmetic.
MAX_STEP_US = MAX_INSTANT
_MAX_CALENDAR_MONTHS = 12 * 9999  # an ISO P...Y or P...M step past this leaves the calendar



@dataclass(frozen=True, slots=True)
class Every:
    """`start`, then every `step_us`, `count` times in all (None: forever), until `end`."""

    start: Micros
    step_us: Micros
    count: int | None = None
    end: Micros | None = None
    kind: ClassVar[str] = "every"

    def _occurrence(self, k: int) -> Micros | None:
        if self.count is not None and k >= self.count:
            return None
        at = self.start + k * self.step_us
        if at > MAX_INSTANT or (self.end is not None and at > self.end):
            return None
        return at

    def next_after(self, instant: Micros) -> Micros | None:
        if instant < self.start:
            return self._occurrence(0)
        return self._occurrence((instant - self.start) // self.step_us + 1)

    def first(self, created_at: Micros) -> Micros | None:
        return self._occurrence(0)

    def bounds(self) -> dict[str, Any]:
        return {"start": to_iso(self.start), "end": to_iso_or_none(self.end)}

    def describe(self) -> str:
        times = "" if self.count is None else f", {self.count} times in all"
        until = "" if self.end is None else f", until {to_iso(self.end)}"
        return f"every {_span(self.step_us)} from {to_iso(self.start)}{times}{until}"


@dataclass(frozen=True, slots=True)
class SimpleTrigger(Every):
    """Quartz's SimpleTrigger: `repeat` counts the fires after the first (None: forever)."""

    kind: ClassVar[str] = "simple"

    def to_dict(self) -> dict[str, Any]:
        repeat = None if self.count is None else self.count - 1
        unit = next(u for u in ("day", "hour", "minute", "second", "millisecond")
                    if self.step_us % UNITS_US[u] == 0)
        return {"kind": self.kind, "interval": self.step_us // UNITS_US[unit], "unit": unit,
                "repeat": repeat, **self.bounds()}


@dataclass(frozen=True, slots=True)
class Rate(Every):
    """Every N units from the start (by default one step after the job was created)."""

    expr: str = ""
    kind: ClassVar[str] = "rate"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "every": self.expr, **self.bounds()}


@dataclass(frozen=True, slots=True)
class IsoRepeating:
    """An ISO 8601 repeating interval such as R5/2026-01-01T00:00:00Z/PT1H."""

    expr: str
    start: Micros
    step: relativedelta
    offset: timedelta  # the start's UTC offset: calendar steps are taken in it
    count: int | None = None
    end: Micros | None = None
    kind: ClassVar[str] = "iso8601"

    def _occurrence(self, k: int) -> Micros | None:
        if self.count is not None and k >= self.count:
            return None
        at = self.start + k * self._elapsed_us()
        if self.step.years or self.step.months:  # calendar months, on the start's wall clock
            try:
                local = to_datetime(self.start) + self.offset
                months = k * (12 * self.step.years + self.step.months)
                moved = local + relativedelta(months=months)
            except (OverflowError, ValueError):  # past year 9999 the calendar, and this, ends
                return None
            at += from_datetime(moved) - from_datetime(local)
        if at > MAX_INSTANT or (self.end is not None and at > self.end):
            return None
        return at

    def _elapsed_us(self) -> Micros:
        """The part of the step that is elapsed time (days and shorter), in microseconds."""
        step = self.step
        seconds = ((step.days * 24 + step.hours) * 60 + step.minutes) * 60 + step.seconds
        return seconds * US_PER_S + step.microseconds

    def next_after(self, instant: Micros) -> Micros | None:
        if instant < self.start:
            return self._occurrence(0)
        k = self._estimate(instant)
        while (at := self._occurrence(k)) is not None and at <= instant:
            k += 1
        return at

    def _estimate(self, instant: Micros) -> int:
        """A lower bound on the index of the next occurrence (exact for fixed steps)."""
        second = self._occurrence(1)
        if second is None:
            return 0
        approx = second - self.start
        return max(0, (instant - self.start) // max(approx, 1) - 1)

    def first(self, created_at: Micros) -> Micros | None:
        return self._occurrence(0)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "expr": self.expr, "end": to_iso_or_none(self.end)}

    def describe(self) -> str:
        times = "for ever" if self.count is None else f"{self.count} times"
        return f"ISO 8601 interval {self.expr}: {times}"


def _span(step_us: Micros) -> str:
    """5 minutes, 1 hour, 1.5 seconds, 250 milliseconds."""
    for unit in ("day", "hour", "minute", "second"):
        size = UNITS_US[unit]
        if step_us >= size:
            amount = step_us / size
            text = f"{amount:g}"
            return f"{text} {unit}" if text == "1" else f"{text} {unit}s"
    return f"{step_us / US_PER_MS:g} milliseconds"


def _seconds(delta: timedelta) -> Micros:
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


# -- parsers -------------------------------------------------------------------------------------


def _instant(data: Mapping[str, Any], name: str, default: Micros | None) -> Micros | None:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, str):
        instant = parse_instant(value, name)
        if instant > MAX_INSTANT:
            raise InvalidField(f"'{name}' is after 9999-12-31T23:59:59Z", name)
        return instant
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INSTANT:
        return value
    raise InvalidField(f"'{name}' must be an ISO 8601 instant", name)


def _scaled(amount: float, unit_us: int, field: str) -> Micros:
    """`amount` units as microseconds; NaN, infinities and steps past MAX_STEP_US are refused."""
    if isinstance(amount, float) and not math.isfinite(amount):
        raise InvalidField(f"'{field}' must be a finite number, got {amount}", field)
    if amount > MAX_STEP_US / unit_us:
        raise InvalidField(
            f"'{field}' is too long: a step is at most {MAX_STEP_US // UNITS_US['day']} days",
            field,
        )
    return round(amount * unit_us)


def _step(value: Any, field: str) -> Micros:
    """A step as an ISO 8601 duration (PT5M), seconds, or a short form (5m, 90s, 250ms)."""
    if isinstance(value, bool) or value is None:
        raise InvalidField(f"'{field}' is required: a duration such as PT5M or 300", field)
    if isinstance(value, int | float):
        step = _scaled(value, US_PER_S, field)
    elif isinstance(value, str) and value.strip().upper().startswith("P"):
        step = parse_duration(value, field)
    elif isinstance(value, str):
        step = _rate_step(value, field)
    else:
        raise InvalidField(f"'{field}' must be a duration such as PT5M or 300", field)
    if step < MIN_STEP_US:
        raise InvalidField(f"'{field}' must be at least {MIN_STEP_US // US_PER_MS} ms", field)
    return step


def _rate_step(text: str, field: str) -> Micros:
    match = _RATE.match(text.strip().lower())
    if not match:
        raise InvalidField(
            f"'{field}' must look like 'every 5m', '5 minutes' or 'rate(5 minutes)': {text!r}",
            field,
        )
    amount = int(match["n1"] or match["n2"])
    unit = _UNIT_OF.get(match["u1"] or match["u2"])
    if unit is None:
        raise InvalidField(
            f"'{field}': unknown unit in {text!r}; use ms, s, m, h or d, or a word such as "
            "millisecond, second, minute, hour or day (singular or plural)",
            field,
        )
    return _scaled(amount, UNITS_US[unit], field)


def _check_end(start: Micros, end: Micros | None) -> None:
    if end is not None and end < start:
        raise InvalidField("'end' is before 'start'", "end")


def parse_simple(data: Mapping[str, Any], now: Micros) -> SimpleTrigger:
    """{"kind": "simple", "interval": 5, "unit": "minute" | "interval": "PT5M", "repeat": n}."""
    unit = data.get("unit")
    if unit is not None:
        if not isinstance(unit, str) or unit.lower() not in UNITS_US:
            raise InvalidField(f"'unit' must be one of {', '.join(UNITS_US)}", "unit")
        amount = data.get("interval")
        if not isinstance(amount, int | float) or isinstance(amount, bool) or not amount > 0:
            raise InvalidField("'interval' must be a positive number of units", "interval")
        step = _scaled(amount, UNITS_US[unit.lower()], "interval")
        if step < MIN_STEP_US:
            raise InvalidField(f"the interval must be at least {MIN_STEP_US // 1000} ms",
                               "interval")
    else:
        step = _step(data.get("interval"), "interval")
    repeat = data.get("repeat")
    if repeat is not None and (not isinstance(repeat, int) or isinstance(repeat, bool)
                               or repeat < -1):
        raise InvalidField("'repeat' must be a whole number of repeats, or -1 for ever",
                           "repeat")
    start = _instant(data, "start", now)
    assert start is not None
    end = _instant(data, "end", None)
    _check_end(start, end)
    count = None if repeat is None or repeat == -1 else repeat + 1
    return SimpleTrigger(start, step, count, end)


def parse_rate(data: Mapping[str, Any], now: Micros) -> Rate:
    """{"kind": "rate", "every": "5m"}: the first fire is one step after now unless `start`."""
    every = data.get("every")
    step = _step(every, "every")
    start = _instant(data, "start", now + step)
    assert start is not None
    if start > MAX_INSTANT:
        raise InvalidField("'every' is so long that the first fire is after year 9999", "every")
    end = _instant(data, "end", None)
    _check_end(start, end)
    return Rate(start, step, None, end, expr=str(every))


def parse_iso(data: Mapping[str, Any], now: Micros) -> IsoRepeating:
    """{"kind": "iso8601", "expr": "R5/2026-01-01T00:00:00Z/PT1H"}; Rn is n occurrences."""
    expr = data.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidField("'expr' is required: an ISO 8601 repeating interval", "expr")
    try:
        parsed = aniso8601.parse_repeating_interval(expr.strip(), builder=TupleBuilder)
    except (ISOFormatError, ValueError, TypeError) as exc:
        raise InvalidField(f"'expr' is not an ISO 8601 repeating interval: {exc}", "expr") from None
    interval = parsed.interval
    if interval.start is None:
        raise InvalidField("'expr' needs a start instant: R[n]/<start>/<duration or end>", "expr")
    start_dt = _datetime(expr, interval.start)
    step = _relative(expr, interval.duration, start_dt, interval.end)
    count = None if parsed.R else int(parsed.Rnn)
    if count is not None and count < 1:
        raise InvalidField("'expr': R0 never fires", "expr")
    end = _instant(data, "end", None)
    offset = start_dt.utcoffset() or timedelta(0)
    start = from_datetime(start_dt)
    if start > MAX_INSTANT:
        raise InvalidField(f"'expr' starts after 9999-12-31T23:59:59Z: {expr!r}", "expr")
    _check_end(start, end)
    return IsoRepeating(expr.strip(), start, step, offset, count, end)


def _datetime(expr: str, parts: Any) -> datetime:
    try:
        value = aniso8601.parse_datetime(_render(parts))
    except (ISOFormatError, ValueError) as exc:
        raise InvalidField(f"'expr' has a bad start: {exc}", "expr") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidField(f"'expr' start needs a UTC offset such as Z: {expr!r}", "expr")
    return value


def _render(parts: Any) -> str:
    """Back from aniso8601's tuple to text for its datetime parser (keeps one parser)."""
    date, time = parts.date, parts.time
    tz = time.tz.name if time.tz is not None else ""
    return f"{date.YYYY}-{date.MM}-{date.DD}T{time.hh}:{time.mm}:{time.ss}{tz}"


def _relative(expr: str, duration: Any, start: datetime, end: Any) -> relativedelta:
    if duration is None:
        stop = _datetime(expr, end)
        step = relativedelta(microseconds=_seconds(stop - start))
    else:
        # Days and shorter are elapsed time in the start's fixed offset: one exact number.
        fixed = (
            _num(duration.PnW) * 604_800 + _num(duration.PnD) * 86_400
            + _num(duration.TnH) * 3_600 + _num(duration.TnM) * 60 + _num(duration.TnS)
        )
        months = 12 * _whole(duration.PnY, expr) + _whole(duration.PnM, expr)
        if months > _MAX_CALENDAR_MONTHS:
            raise InvalidField(f"'expr' step is longer than 9999 years: {expr!r}", "expr")
        step = relativedelta(months=months, microseconds=_scaled(fixed, US_PER_S, "expr"))
    try:
        probe = start + step
    except (OverflowError, ValueError):
        return step  # the second occurrence is past year 9999: the schedule fires once
    if (probe - start).total_seconds() * US_PER_S < MIN_STEP_US:
        raise InvalidField(f"'expr' step must be at least {MIN_STEP_US // 1000} ms", "expr")
    return step


def _num(text: str | None) -> float:
    value = float(text.replace(",", ".")) if text else 0.0
    if not math.isfinite(value):
        raise InvalidField("'expr' has a number too large to use", "expr")
    return value


def _whole(text: str | None, expr: str) -> int:
    value = _num(text)
    if value != int(value):
        raise InvalidField(f"'expr': years and months must be whole numbers: {expr!r}", "expr")
    return int(value)


register("simple", parse_simple)
register("rate", parse_rate)
register("iso8601", parse_iso)
