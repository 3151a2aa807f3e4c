"""Dependency windows: which span of an upstream job's plan a downstream run looks at.

A window is written `cX` (the calendar unit holding the planned instant T), `X(n)` (the n
whole units before the current one) or `X(n,m)` (start n units back, cover m units); X is
`m` minute, `h` hour, `d` day, `w` ISO week from Monday, `M` month, `y` year, and the empty
window means `cd`. Units are those of the downstream job's wall clock: a day is local
midnight to local midnight, so a DST day is 23 or 25 hours long; minutes and hours start on
the local boundary and are 60 s and 3600 s long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.time import US_PER_S, Micros, from_datetime, to_datetime

UNITS = "mhdwMy"
MAX_UNITS = 10_000  # n and m: far enough back for any real dependency, small enough to compute
_FORM = re.compile(r"^(?:c(?P<cur>[mhdwMy])|(?P<unit>[mhdwMy])\((?P<n>\d{1,5})"
                   r"(?:,(?P<m>\d{1,5}))?\))$")
_CLOCK_US = {"m": 60 * US_PER_S, "h": 3_600 * US_PER_S}


@dataclass(frozen=True, slots=True)
class Window:
    """`back` units before the current one, `span` units long (`cd` is back 0, span 1)."""

    unit: str
    back: int = 0
    span: int = 1

    def __str__(self) -> str:
        if self.back == 0 and self.span == 1:
            return f"c{self.unit}"
        if self.back == self.span:
            return f"{self.unit}({self.back})"
        return f"{self.unit}({self.back},{self.span})"

    def bounds(self, planned: Micros, tz: str) -> tuple[Micros, Micros]:
        """[start, end) around the planned instant, in zone `tz`."""
        zone = ZoneInfo(tz)
        local = to_datetime(planned).astimezone(zone)
        if self.unit in _CLOCK_US:
            size = _CLOCK_US[self.unit]
            head = local.replace(second=0, microsecond=0)
            if self.unit == "h":
                head = head.replace(minute=0)
            start = from_datetime(head) - self.back * size
            return start, start + self.span * size
        first, after = _calendar(self.unit, local.date(), self.back, self.span)
        return _midnight(first, zone), _midnight(after, zone)


def parse_window(text: str | None, field: str = "window") -> Window:
    """`cd`, `h(3)`, `d(1,2)`...; None or empty is `cd`."""
    spec = (text or "").strip()
    if not spec:
        return Window("d")
    match = _FORM.match(spec)
    if match is None:
        raise InvalidField(
            f"{field} must be cX, X(n) or X(n,m) with X one of m h d w M y, got {text!r}", field)
    if match["cur"]:
        return Window(match["cur"])
    back = int(match["n"])
    span = back if match["m"] is None else int(match["m"])
    if not (0 <= back <= MAX_UNITS and 1 <= span <= MAX_UNITS):
        raise InvalidField(f"{field}: n must be 0 to {MAX_UNITS} and m 1 to {MAX_UNITS} "
                           f"(X(n) needs n >= 1), got {text!r}", field)
    return Window(match["unit"], back, span)


def check_zone(tz: str, field: str = "tz") -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField(f"unknown time zone {tz!r}", field) from None
    return tz


def _calendar(unit: str, day: date, back: int, span: int) -> tuple[date, date]:
    """The first day of the window and the first day after it, for d, w, M and y."""
    if unit == "d":
        first = day - timedelta(days=back)
        return first, first + timedelta(days=span)
    if unit == "w":
        monday = day - timedelta(days=day.weekday())
        first = monday - timedelta(weeks=back)
        return first, first + timedelta(weeks=span)
    months = 1 if unit == "M" else 12
    index = day.year * 12 + day.month - 1
    if unit == "y":
        index -= day.month - 1
    start = index - back * months
    return _month(start), _month(start + span * months)


def _month(index: int) -> date:
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise InvalidField("the window reaches outside the years 1 to 9999", "window")
    return date(year, month + 1, 1)


def _midnight(day: date, zone: ZoneInfo) -> Micros:
    """The first instant of a local day. Where midnight falls in a DST gap, fold 0 reads it
    with the offset before the gap, which lands on the first wall time after it."""
    wall = datetime(day.year, day.month, day.day, tzinfo=zone)
    return from_datetime(wall.astimezone(UTC))
