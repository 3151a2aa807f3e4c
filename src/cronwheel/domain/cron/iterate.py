"""The search for the next occurrence of a parsed expression, on the wall clock then in a zone.

Search skips field by field (year, month, day, hour, minute, second) on the naive wall clock,
then maps the wall time to an instant with the DST rules of docs/cron.md.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from cronwheel.domain.cron.days import DaySpec, month_days
from cronwheel.domain.cron.fields import MAX_YEAR
from cronwheel.domain.cron.zones import (
    end_of_fold,
    instant,
    offset_at,
    transition,
    wall,
    wall_offsets,
    wall_seconds,
)
from cronwheel.domain.time import US_PER_S


class CronExpr(Protocol):
    """What the search reads of a parsed expression (parse.CronExpr); a protocol, so that
    parsing may call the search without the two modules importing each other."""

    @property
    def seconds(self) -> tuple[int, ...]: ...
    @property
    def minutes(self) -> tuple[int, ...]: ...
    @property
    def hours(self) -> tuple[int, ...]: ...
    @property
    def dom(self) -> DaySpec: ...
    @property
    def months(self) -> tuple[int, ...]: ...
    @property
    def dow(self) -> DaySpec: ...
    @property
    def years(self) -> tuple[int, ...] | None: ...

_DAY_S = 86_400
# The first second of 2200-01-02 UTC: no wall time up to 2199-12-31 lies beyond it.
_SEARCH_END_S = wall_seconds(datetime(MAX_YEAR + 1, 1, 2))


def next_after(expr: CronExpr, instant_us: int, tz: tzinfo) -> int | None:
    """The first occurrence strictly after `instant_us`, in whole seconds, or None."""
    after = instant_us // US_PER_S + 1
    if after > _SEARCH_END_S:
        return None
    found = [
        seconds
        for seconds in (_from_wall_of(expr, after, tz), _in_recent_gap(expr, after, tz))
        if seconds is not None
    ]
    return min(found) * US_PER_S if found else None


def next_wall(expr: CronExpr, start: datetime) -> datetime | None:
    """The first wall-clock time at or after `start` (naive, whole seconds) that matches.

    An odometer over year, month, day, hour, minute and second: a field with no allowed
    value left carries into the one above it and resets the ones below, so sparse
    expressions cost a few steps per year and the search ends after MAX_YEAR.
    """
    pos = [start.year, start.month, start.day, start.hour, start.minute, start.second]
    level = 0
    while level < 6:
        found = _first_at_least(_allowed(expr, level, pos), pos[level])
        if found is None:
            if level == 0:
                return None
            level -= 1
            pos[level] += 1
            _reset_below(pos, level)
            continue
        if found != pos[level]:
            pos[level] = found
            _reset_below(pos, level)
        level += 1
    return datetime(pos[0], pos[1], pos[2], pos[3], pos[4], pos[5])


def _first_at_least(values: Sequence[int], value: int) -> int | None:
    index = bisect_left(values, value)
    return values[index] if index < len(values) else None


def _allowed(expr: CronExpr, level: int, pos: list[int]) -> Sequence[int]:
    if level == 0:
        return range(1, MAX_YEAR + 1) if expr.years is None else expr.years
    if level == 2:
        return month_days(expr.dom, expr.dow, pos[0], pos[1])
    fields = (expr.months, (), expr.hours, expr.minutes, expr.seconds)
    return fields[level - 1]


def _reset_below(pos: list[int], level: int) -> None:
    for lower in range(level + 1, 6):
        pos[lower] = 1 if lower <= 2 else 0


def _from_wall_of(expr: CronExpr, after: int, tz: tzinfo) -> int | None:
    """The first occurrence whose wall time is at or after the wall time of `after`."""
    local = datetime.fromtimestamp(after, tz)
    start = local.replace(tzinfo=None, fold=0)
    if local.fold:  # the second pass of a repeated hour: its wall times already fired
        start = end_of_fold(after, start, tz)
    at = next_wall(expr, start)
    if at is None:
        return None
    before, after_gap = wall_offsets(at, tz)
    first = instant(at, before)  # fold 0: the first of two, or shifted past a gap
    if before >= after_gap:
        return first
    # In a gap: a wall time just after the gap may come before the shifted one.
    gap_end = wall(transition(tz, instant(at, after_gap), first), after_gap)
    later = next_wall(expr, gap_end)
    if later is None:
        return first
    return min(first, instant(later, wall_offsets(later, tz)[0]))


def _in_recent_gap(expr: CronExpr, after: int, tz: tzinfo) -> int | None:
    """A wall time skipped by a gap in the last day that fires, shifted, at or after `after`."""
    now_offset = offset_at(tz, after)
    day_ago = after - _DAY_S
    if offset_at(tz, day_ago) >= now_offset:
        return None
    change = transition(tz, day_ago, after)
    gap = now_offset - offset_at(tz, change - 1)
    if gap <= 0:
        return None
    gap_end = wall(change, now_offset)
    at = next_wall(expr, wall(after, now_offset) - timedelta(seconds=gap))
    if at is None or at >= gap_end:
        return None
    shifted = instant(at, wall_offsets(at, tz)[0])
    return shifted if shifted >= after else None
