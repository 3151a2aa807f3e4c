"""Helpers shared by the cron tests: instants from text, and fire times as local ISO."""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from cronwheel.domain.cron import CronExpr, CronSyntax
from cronwheel.domain.time import US_PER_S, from_datetime, to_datetime

S = US_PER_S
NY = "America/New_York"
BERLIN = "Europe/Berlin"


def us(text: str) -> int:
    """An ISO instant with its offset, as microseconds."""
    return from_datetime(datetime.fromisoformat(text))


def local(instant: int, tz: str | tzinfo) -> str:
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return to_datetime(instant).astimezone(zone).isoformat()


def fires(
    expr: str, after: str, tz: str = "UTC", count: int = 3, syntax: CronSyntax = "auto"
) -> list[str | None]:
    """The next `count` fire times after `after`, in local ISO form; None ends the list."""
    cron = CronExpr.parse(expr, syntax)
    zone = ZoneInfo(tz)
    instant = us(after)
    out: list[str | None] = []
    for _ in range(count):
        upcoming = cron.next_after(instant, zone)
        if upcoming is None:
            out.append(None)
            break
        assert upcoming > instant
        assert upcoming % S == 0
        out.append(local(upcoming, zone))
        instant = upcoming
    return out


def utc(*days: str) -> list[str | None]:
    """Shorthand for expected UTC fire times: '2026-01-30T10:15' -> '2026-01-30T10:15:00+00:00'."""
    return [f"{d}{'' if d.count(':') == 2 else ':00'}+00:00" for d in days]
JAN_1 = "2026-01-01T00:00:00Z"  # a Thursday

