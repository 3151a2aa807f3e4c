"""Wall clock and instants in an IANA zone: offsets, folds, gaps and the transitions between.

All in whole seconds since the epoch; the DST rules of docs/cron.md are built from these.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1)
_ONE_SECOND = timedelta(seconds=1)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """A zone by IANA name, read from tzdata once."""
    return ZoneInfo(name)


def offset_at(tz: tzinfo, seconds: int) -> int:
    offset = datetime.fromtimestamp(seconds, tz).utcoffset()
    return 0 if offset is None else offset // _ONE_SECOND


def wall_offsets(wall: datetime, tz: tzinfo) -> tuple[int, int]:
    """The offsets of both folds: equal normally, fold 0 smaller in a gap, larger when repeated."""
    offsets = (wall.replace(tzinfo=tz, fold=fold).utcoffset() for fold in (0, 1))
    first, second = (0 if o is None else o // _ONE_SECOND for o in offsets)
    return first, second


def instant(wall: datetime, offset: int) -> int:
    """The epoch second of a naive wall time read with `offset`."""
    return (wall - _EPOCH) // _ONE_SECOND - offset


def wall(seconds: int, offset: int) -> datetime:
    """The naive wall time of an epoch second under `offset`."""
    return _EPOCH + timedelta(seconds=seconds + offset)


def wall_seconds(value: datetime) -> int:
    """A naive wall time as seconds since the epoch's wall time (no offset applied)."""
    return (value - _EPOCH) // _ONE_SECOND


def transition(tz: tzinfo, lo: int, hi: int) -> int:
    """The first second in (lo, hi] with the offset of `hi`; the offset at `lo` differs."""
    target = offset_at(tz, hi)
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if offset_at(tz, middle) == target:
            hi = middle
        else:
            lo = middle
    return hi


def end_of_fold(after: int, at: datetime, tz: tzinfo) -> datetime:
    """The first wall time after a repeated hour, given `after` in its second pass."""
    earlier_offset = wall_offsets(at, tz)[0]
    first_pass = after - (earlier_offset - offset_at(tz, after))
    return wall(transition(tz, first_pass, after), earlier_offset)
