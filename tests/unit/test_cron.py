"""Cron expressions, Quartz and Unix (cronwheel.domain.cron).

Expected fire times were worked out by hand from a printed calendar; the weekday of each date
used is noted beside it. DST cases use the 2026 transitions:
America/New_York 2026-03-08 02:00 EST -> 03:00 EDT and 2026-11-01 02:00 EDT -> 01:00 EST;
Europe/Berlin 2026-03-29 02:00 CET -> 03:00 CEST and 2026-10-25 03:00 CEST -> 02:00 CET.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from time import perf_counter
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronwheel.domain.cron import (
    CronExpr,
    CronSchedule,
    CronSyntax,
    describe,
    parse_cron_schedule,
)
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.schedules import schedule_from_dict
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


# ---------------------------------------------------------------------------------------------
# The examples of the Quartz CronTrigger tutorial


JAN_1 = "2026-01-01T00:00:00Z"  # a Thursday


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 0 12 * * ?", JAN_1, utc("2026-01-01T12:00", "2026-01-02T12:00", "2026-01-03T12:00")),
        ("0 15 10 ? * *", JAN_1, utc("2026-01-01T10:15", "2026-01-02T10:15")),
        ("0 15 10 * * ?", JAN_1, utc("2026-01-01T10:15", "2026-01-02T10:15")),
        ("0 15 10 * * ? *", JAN_1, utc("2026-01-01T10:15", "2026-01-02T10:15")),
        (
            "0 15 10 * * ? 2005",
            "2005-12-30T00:00:00Z",
            [*utc("2005-12-30T10:15", "2005-12-31T10:15"), None],
        ),
        ("0 15 10 * * ? 2005", JAN_1, [None]),
        ("0 * 14 * * ?", JAN_1, utc("2026-01-01T14:00", "2026-01-01T14:01", "2026-01-01T14:02")),
        ("0 * 14 * * ?", "2026-01-01T14:59:00Z", utc("2026-01-02T14:00")),
        ("0 0/5 14 * * ?", JAN_1, utc("2026-01-01T14:00", "2026-01-01T14:05", "2026-01-01T14:10")),
        ("0 0/5 14 * * ?", "2026-01-01T14:55:00Z", utc("2026-01-02T14:00")),
        (
            "0 0/5 14,18 * * ?",
            "2026-01-01T14:55:00Z",
            utc("2026-01-01T18:00", "2026-01-01T18:05"),
        ),
        (
            "0 0-5 14 * * ?",
            "2026-01-01T14:04:30Z",
            utc("2026-01-01T14:05", "2026-01-02T14:00", "2026-01-02T14:01"),
        ),
        # Wednesdays of March 2026: 4, 11, 18, 25; of March 2027: 3, 10, ...
        (
            "0 10,44 14 ? 3 WED",
            JAN_1,
            utc("2026-03-04T14:10", "2026-03-04T14:44", "2026-03-11T14:10"),
        ),
        ("0 10,44 14 ? 3 WED", "2026-03-25T14:44:00Z", utc("2027-03-03T14:10")),
        # Friday 2 January 2026, then Monday the 5th
        (
            "0 15 10 ? * MON-FRI",
            "2026-01-02T10:15:00Z",
            utc("2026-01-05T10:15", "2026-01-06T10:15"),
        ),
        ("0 15 10 15 * ?", JAN_1, utc("2026-01-15T10:15", "2026-02-15T10:15")),
        ("0 15 10 L * ?", JAN_1, utc("2026-01-31T10:15", "2026-02-28T10:15", "2026-03-31T10:15")),
        ("0 15 10 L * ?", "2028-02-01T00:00:00Z", utc("2028-02-29T10:15")),  # leap year
        ("0 15 10 L-2 * ?", JAN_1, utc("2026-01-29T10:15", "2026-02-26T10:15", "2026-03-29T10:15")),
        # last Fridays of 2026: 30 January, 27 February, 27 March
        ("0 15 10 ? * 6L", JAN_1, utc("2026-01-30T10:15", "2026-02-27T10:15", "2026-03-27T10:15")),
        # last Fridays: 25 January 2002, 22 February 2002; 30 December 2005 is the very last
        (
            "0 15 10 ? * 6L 2002-2005",
            "2002-01-01T00:00:00Z",
            utc("2002-01-25T10:15", "2002-02-22T10:15"),
        ),
        ("0 15 10 ? * 6L 2002-2005", "2005-12-01T00:00:00Z", [*utc("2005-12-30T10:15"), None]),
        ("0 15 10 ? * 6L 2002-2005", JAN_1, [None]),
        # third Fridays: 16 January, 20 February, 20 March 2026
        ("0 15 10 ? * 6#3", JAN_1, utc("2026-01-16T10:15", "2026-02-20T10:15", "2026-03-20T10:15")),
        (
            "0 0 12 1/5 * ?",
            "2026-01-26T12:00:00Z",
            utc("2026-01-31T12:00", "2026-02-01T12:00", "2026-02-06T12:00"),
        ),
        ("0 11 11 11 11 ?", JAN_1, utc("2026-11-11T11:11", "2027-11-11T11:11")),
        # first Mondays: 5 January, 2 February, 2 March, 6 April 2026
        (
            "0 0 12 ? * 2#1",
            JAN_1,
            utc("2026-01-05T12:00", "2026-02-02T12:00", "2026-03-02T12:00"),
        ),
        # 31 January 2026 is a Saturday, 28 February a Saturday, 31 March a Tuesday
        ("0 0 0 LW * ?", JAN_1, utc("2026-01-30T00:00", "2026-02-27T00:00", "2026-03-31T00:00")),
        ("0 0 0 LW * ?", "2026-05-01T00:00:00Z", utc("2026-05-29T00:00")),  # 31 May: a Sunday
        # 15 January: Thursday; 15 February: Sunday -> Monday 16th; 15 March: Sunday -> 16th
        ("0 0 0 15W * ?", JAN_1, utc("2026-01-15T00:00", "2026-02-16T00:00", "2026-03-16T00:00")),
        ("0 0 0 15W * ?", "2026-08-01T00:00:00Z", utc("2026-08-14T00:00")),  # 15 Aug: a Saturday
        # 1 August 2026 is a Saturday: Monday the 3rd, not Friday 31 July
        ("0 0 0 1W * ?", "2026-07-02T00:00:00Z", utc("2026-08-03T00:00", "2026-09-01T00:00")),
        ("0 0 0 1W * ?", "2026-10-02T00:00:00Z", utc("2026-11-02T00:00")),  # 1 Nov: a Sunday
        # 31 May 2026 is a Sunday: Friday the 29th; April has no 31st
        ("0 0 0 31W * ?", "2026-04-01T00:00:00Z", utc("2026-05-29T00:00", "2026-07-31T00:00")),
        # L-nW: the weekday nearest the n-th day before the last. L-1 of May 2026 is Saturday
        # the 30th -> Friday 29th; of June Monday 29th; of July Thursday 30th; of August Sunday
        # the 30th -> Monday 31st (not crossing back into a different week's Friday).
        (
            "0 0 0 L-1W * ?",
            "2026-05-01T00:00:00Z",
            utc("2026-05-29T00:00", "2026-06-29T00:00", "2026-07-30T00:00", "2026-08-31T00:00"),
        ),
        # 29 November 2026 (L-1) is a Sunday and not the last day: Monday 30th
        ("0 0 0 L-1W * ?", "2026-11-01T00:00:00Z", utc("2026-11-30T00:00")),
        # L-1 of February 2027 is Saturday the 27th: Friday 26th
        ("0 0 0 L-1W * ?", "2027-02-01T00:00:00Z", utc("2027-02-26T00:00")),
        # L-2 of August 2026 is Saturday the 29th: Friday 28th; L-3 of January Wednesday 28th
        ("0 0 0 L-2W * ?", "2026-08-01T00:00:00Z", utc("2026-08-28T00:00")),
        ("0 0 0 L-3W * ?", JAN_1, utc("2026-01-28T00:00")),
        # L-30 is the 1st of a 31-day month: 1 August 2026 is a Saturday -> Monday the 3rd
        # (never Friday 31 July); 1 May is a Friday; nothing in 30-day months or February
        (
            "0 0 0 L-30W * ?",
            "2026-04-01T00:00:00Z",
            utc("2026-05-01T00:00", "2026-07-01T00:00", "2026-08-03T00:00"),
        ),
        # L-27 of February 2026 is Sunday the 1st -> Monday 2nd
        ("0 0 0 L-27W * ?", "2026-01-31T00:00:00Z", utc("2026-02-02T00:00")),
        # L-0W is LW: 31 May 2026 is a Sunday, the last day -> Friday 29th
        ("0 0 0 L-0W * ?", "2026-05-01T00:00:00Z", utc("2026-05-29T00:00")),
        ("0 0 0 l-1w * ?", "2026-05-01T00:00:00Z", utc("2026-05-29T00:00")),
        # year ranges run forwards; a range of one year is that year
        ("0 0 0 1 1 ? 2026-2028", JAN_1, [*utc("2027-01-01T00:00", "2028-01-01T00:00"), None]),
        ("0 0 0 1 1 ? 2027-2027", JAN_1, [*utc("2027-01-01T00:00"), None]),
    ],
)
def test_quartz_tutorial(expr: str, after: str, expected: list[str | None]) -> None:
    assert fires(expr, after, count=len(expected)) == expected


# ---------------------------------------------------------------------------------------------
# Unix syntax


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        # Friday 2 January 2026, then Monday the 5th
        (
            "*/15 9-17 * * 1-5",
            "2026-01-02T17:30:00Z",
            utc("2026-01-02T17:45", "2026-01-05T09:00", "2026-01-05T09:15"),
        ),
        ("*/15 9-17 * * 1-5", "2026-01-03T12:00:00Z", utc("2026-01-05T09:00")),
        # OR: the 1st, the 15th and every Friday (2, 9, 16, 23, 30 January)
        (
            "0 0 1,15 * 5",
            JAN_1,
            utc(
                "2026-01-02T00:00",
                "2026-01-09T00:00",
                "2026-01-15T00:00",
                "2026-01-16T00:00",
                "2026-01-23T00:00",
                "2026-01-30T00:00",
                "2026-02-01T00:00",
            ),
        ),
        # Vixie: a day field starting with * ANDs: odd days that are Mondays (5, 19 Jan; 9 Feb)
        ("0 0 */2 * 1", JAN_1, utc("2026-01-05T00:00", "2026-01-19T00:00", "2026-02-09T00:00")),
        ("@hourly", "2026-01-01T10:30:00Z", utc("2026-01-01T11:00", "2026-01-01T12:00")),
        ("@daily", "2026-01-01T10:30:00Z", utc("2026-01-02T00:00", "2026-01-03T00:00")),
        ("@midnight", "2026-01-01T10:30:00Z", utc("2026-01-02T00:00")),
        ("@weekly", JAN_1, utc("2026-01-04T00:00", "2026-01-11T00:00")),  # Sundays
        ("@monthly", JAN_1, utc("2026-02-01T00:00", "2026-03-01T00:00")),
        ("@yearly", JAN_1, utc("2027-01-01T00:00", "2028-01-01T00:00")),
        ("@ANNUALLY", JAN_1, utc("2027-01-01T00:00")),
        ("  @daily ", JAN_1, utc("2026-01-02T00:00")),
        ("0 0 * * 0", JAN_1, utc("2026-01-04T00:00")),  # Sunday is 0 ...
        ("0 0 * * 7", JAN_1, utc("2026-01-04T00:00", "2026-01-11T00:00")),  # ... and 7
        ("0 0 * * sun", JAN_1, utc("2026-01-04T00:00")),
        ("0 0 * * 5-7", JAN_1, utc("2026-01-02T00:00", "2026-01-03T00:00", "2026-01-04T00:00")),
        ("0 0 * * SAT-SUN", JAN_1, utc("2026-01-03T00:00", "2026-01-04T00:00", "2026-01-10T00:00")),
        ("0 0 * * 6-1", JAN_1, utc("2026-01-03T00:00", "2026-01-04T00:00", "2026-01-05T00:00")),
        ("0 0 * * */2", JAN_1, utc("2026-01-03T00:00", "2026-01-04T00:00", "2026-01-06T00:00")),
        (
            "10-40/15 * * * *",
            JAN_1,
            utc("2026-01-01T00:10", "2026-01-01T00:25", "2026-01-01T00:40"),
        ),
        ("50/5 * * * *", JAN_1, utc("2026-01-01T00:50", "2026-01-01T00:55", "2026-01-01T01:50")),
        (
            "0 0 1 nov-feb *",
            "2026-02-15T00:00:00Z",
            utc(
                "2026-11-01T00:00",
                "2026-12-01T00:00",
                "2027-01-01T00:00",
                "2027-02-01T00:00",
                "2027-11-01T00:00",
            ),
        ),
        ("59 23 31 12 *", JAN_1, utc("2026-12-31T23:59", "2027-12-31T23:59")),
        ("0 0 29 2 *", JAN_1, utc("2028-02-29T00:00", "2032-02-29T00:00")),
        ("0 0 L * *", "2026-02-01T00:00:00Z", utc("2026-02-28T00:00")),
        ("0 0 * * 5L", JAN_1, utc("2026-01-30T00:00")),
        ("0 0 * * 1#1", JAN_1, utc("2026-01-05T00:00")),
        ("0\t0  1 1\t*", JAN_1, utc("2027-01-01T00:00")),
    ],
)
def test_unix(expr: str, after: str, expected: list[str | None]) -> None:
    assert fires(expr, after, count=len(expected)) == expected


# ---------------------------------------------------------------------------------------------
# More Quartz: names, wrap-around, seconds, bounds of the calendar


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 0 0 ? * 1", JAN_1, utc("2026-01-04T00:00")),  # Quartz 1 = Sunday
        ("0 0 0 ? * 7", JAN_1, utc("2026-01-03T00:00")),  # 7 = Saturday
        ("0 0 0 ? * L", JAN_1, utc("2026-01-03T00:00", "2026-01-10T00:00")),  # L alone: Saturday
        ("0 0 0 ? * fril", JAN_1, utc("2026-01-30T00:00")),
        ("0 0 0 ? * FRI#3", JAN_1, utc("2026-01-16T00:00")),
        (
            "0 0 0 ? * FRI-MON",
            JAN_1,
            utc(
                "2026-01-02T00:00",
                "2026-01-03T00:00",
                "2026-01-04T00:00",
                "2026-01-05T00:00",
                "2026-01-09T00:00",
            ),
        ),
        (
            "0 0 22-2 * * ?",
            JAN_1,
            utc(
                "2026-01-01T01:00",
                "2026-01-01T02:00",
                "2026-01-01T22:00",
                "2026-01-01T23:00",
                "2026-01-02T00:00",
            ),
        ),
        (
            "0 0 0 28-2 * ?",
            "2026-02-01T12:00:00Z",
            utc("2026-02-02T00:00", "2026-02-28T00:00", "2026-03-01T00:00"),
        ),
        ("0 0 0 1 JAN-MAR/2 ?", JAN_1, utc("2026-03-01T00:00", "2027-01-01T00:00")),
        # L-30 is the 1st of a 31-day month, and nothing in a shorter one
        (
            "0 0 0 L-30 * ?",
            "2025-12-31T12:00:00Z",
            utc("2026-01-01T00:00", "2026-03-01T00:00", "2026-05-01T00:00"),
        ),
        ("0 0 0 1,L * ?", JAN_1, utc("2026-01-31T00:00", "2026-02-01T00:00", "2026-02-28T00:00")),
        (
            "0 0 0 ? * 2#1,6L",
            JAN_1,
            utc("2026-01-05T00:00", "2026-01-30T00:00", "2026-02-02T00:00"),
        ),
        ("0 0 0 ? 2 2#5", JAN_1, utc("2044-02-29T00:00")),  # a Monday 29 February
        (
            "*/20 * * * * ?",
            JAN_1,
            utc("2026-01-01T00:00:20", "2026-01-01T00:00:40", "2026-01-01T00:01"),
        ),
        ("30 * * * * ?", JAN_1, utc("2026-01-01T00:00:30", "2026-01-01T00:01:30")),
        ("0 0 0 1 1 ?", "2026-12-31T23:59:59Z", utc("2027-01-01T00:00")),
        ("0 0 0 29 2 ? *", JAN_1, utc("2028-02-29T00:00", "2032-02-29T00:00")),
        ("0 0 0 29 2 ?", "2096-03-01T00:00:00Z", utc("2104-02-29T00:00")),  # 2100: no leap day
        ("0 0 12 ? * 6#5", JAN_1, utc("2026-01-30T12:00", "2026-05-29T12:00", "2026-07-31T12:00")),
        ("0 0 0 1 1 ? 2199", JAN_1, [*utc("2199-01-01T00:00"), None]),
        ("* * * * * ? 2199", JAN_1, utc("2199-01-01T00:00", "2199-01-01T00:00:01")),
        ("0 0 0 1 1 ? 2020", JAN_1, [None]),
        ("0 0 0 30 2 ?", JAN_1, [None]),
        ("0 0 0 31 4,6,9,11 ?", JAN_1, [None]),
        ("0 0 0 ? 2 1#5 2026-2027", JAN_1, [None]),
        ("0 0 0 1 1 ? 2027/2", JAN_1, utc("2027-01-01T00:00", "2029-01-01T00:00")),
    ],
)
def test_quartz(expr: str, after: str, expected: list[str | None]) -> None:
    assert fires(expr, after, count=len(expected)) == expected


class TestNextAfter:
    def test_strictly_after(self) -> None:
        cron = CronExpr.parse("0 0 12 * * ?")
        noon = us("2026-01-01T12:00:00Z")
        assert cron.next_after(noon, ZoneInfo("UTC")) == us("2026-01-02T12:00:00Z")
        assert cron.next_after(noon - 1, ZoneInfo("UTC")) == noon

    def test_results_are_whole_seconds(self) -> None:
        cron = CronExpr.parse("* * * * * ?")
        assert cron.next_after(us("2026-01-01T00:00:00Z") + 250_000, ZoneInfo("UTC")) == us(
            "2026-01-01T00:00:01Z"
        )

    def test_nothing_after_2199(self) -> None:
        cron = CronExpr.parse("* * * * *")
        assert cron.next_after(us("2199-12-31T23:58:30Z"), ZoneInfo("UTC")) == us(
            "2199-12-31T23:59:00Z"
        )
        assert cron.next_after(us("2199-12-31T23:59:00Z"), ZoneInfo("UTC")) is None
        assert cron.next_after(us("9999-12-31T23:59:59Z"), ZoneInfo("UTC")) is None

    def test_never_matching_is_fast(self) -> None:
        began = perf_counter()
        for expr in ("0 0 0 30 2 ?", "0 0 0 31 11 ?", "0 0 0 ? 2 1#5 2026-2027"):
            assert CronExpr.parse(expr).next_after(0, ZoneInfo(NY)) is None
        assert perf_counter() - began < 1.0

    def test_fixed_zones(self) -> None:
        cron = CronExpr.parse("0 9 * * *")
        after = us(JAN_1)
        assert local(cron.next_after(after, ZoneInfo("Etc/GMT+5")) or 0, "UTC") == (
            "2026-01-01T14:00:00+00:00"
        )
        kolkata = cron.next_after(after, ZoneInfo("Asia/Kolkata"))
        assert local(kolkata or 0, "UTC") == "2026-01-01T03:30:00+00:00"
        fixed = timezone(timedelta(hours=-3))
        assert local(cron.next_after(after, fixed) or 0, "UTC") == "2026-01-01T12:00:00+00:00"
        assert local(cron.next_after(after, UTC) or 0, "UTC") == "2026-01-01T09:00:00+00:00"

    def test_matches_wall(self) -> None:
        cron = CronExpr.parse("0 15 10 ? * 6L")
        assert cron.matches_wall(datetime(2026, 1, 30, 10, 15))
        assert not cron.matches_wall(datetime(2026, 1, 23, 10, 15))
        assert not cron.matches_wall(datetime(2026, 1, 30, 10, 15, 1))


# ---------------------------------------------------------------------------------------------
# Daylight saving time


@pytest.mark.parametrize(
    ("expr", "after", "tz", "expected"),
    [
        # spring forward: 02:30 does not exist; it fires once, an hour later, at 03:30 EDT
        (
            "30 2 * * *",
            "2026-03-07T00:00:00-05:00",
            NY,
            ["2026-03-07T02:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"],
        ),
        ("0 2 * * *", "2026-03-08T00:00:00-05:00", NY, ["2026-03-08T03:00:00-04:00"]),
        # 02:30 shifted and the real 03:30 are the same instant: once that day
        (
            "30 2,3 * * *",
            "2026-03-08T00:00:00-05:00",
            NY,
            ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"],
        ),
        (
            "0 * * * *",
            "2026-03-07T23:30:00-05:00",
            NY,
            [
                "2026-03-08T00:00:00-05:00",
                "2026-03-08T01:00:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-08T04:00:00-04:00",
            ],
        ),
        (
            "*/20 * * * *",
            "2026-03-08T01:00:00-05:00",
            NY,
            [
                "2026-03-08T01:20:00-05:00",
                "2026-03-08T01:40:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-08T03:20:00-04:00",
            ],
        ),
        # asked from inside the hour after the gap: the shifted 02:30 is still to come
        ("30 2 * * *", "2026-03-08T03:05:00-04:00", NY, ["2026-03-08T03:30:00-04:00"]),
        ("30 2 * * *", "2026-03-08T03:30:00-04:00", NY, ["2026-03-09T02:30:00-04:00"]),
        (
            "10,30 2,3 * * *",
            "2026-03-08T03:00:00-04:00",
            NY,
            ["2026-03-08T03:10:00-04:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:10:00-04:00"],
        ),
        (
            "0 30 2 * * ?",
            "2026-03-28T00:00:00+01:00",
            BERLIN,
            ["2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"],
        ),
        ("0 0 2 * * ?", "2026-03-29T00:00:00+01:00", BERLIN, ["2026-03-29T03:00:00+02:00"]),
        # fall back: 01:30 happens twice; it fires at the first, summer-time one
        (
            "30 1 * * *",
            "2026-10-31T00:00:00-04:00",
            NY,
            ["2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
        ),
        # each wall-clock time once: the repeated 01:00 EST does not fire again
        (
            "0 * * * *",
            "2026-11-01T00:00:00-04:00",
            NY,
            ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"],
        ),
        (
            "*/30 * * * *",
            "2026-11-01T00:00:00-04:00",
            NY,
            [
                "2026-11-01T00:30:00-04:00",
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T02:00:00-05:00",
            ],
        ),
        # asked during the second pass of the repeated hour
        ("*/30 * * * *", "2026-11-01T01:10:00-05:00", NY, ["2026-11-01T02:00:00-05:00"]),
        ("* * * * * ?", "2026-11-01T01:59:59-04:00", NY, ["2026-11-01T02:00:00-05:00"]),
        ("* * * * * ?", "2026-11-01T01:10:00-05:00", NY, ["2026-11-01T02:00:00-05:00"]),
        (
            "30 2 * * *",
            "2026-10-24T00:00:00+02:00",
            BERLIN,
            ["2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        ),
        ("30 2 * * *", "2026-10-25T02:30:00+01:00", BERLIN, ["2026-10-26T02:30:00+01:00"]),
        (
            "0 * * * *",
            "2026-10-25T01:30:00+02:00",
            BERLIN,
            ["2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00"],
        ),
        # Lord Howe moves 30 minutes (02:00 -> 02:30 on 4 October 2026): the shifted 02:00
        # and 02:15 come at 02:30 and 02:45, around a real 02:40
        (
            "0,15,40 2 * * *",
            "2026-10-04T00:00:00+10:30",
            "Australia/Lord_Howe",
            [
                "2026-10-04T02:30:00+11:00",
                "2026-10-04T02:40:00+11:00",
                "2026-10-04T02:45:00+11:00",
                "2026-10-05T02:00:00+11:00",
            ],
        ),
    ],
)
def test_dst(expr: str, after: str, tz: str, expected: list[str | None]) -> None:
    assert fires(expr, after, tz, count=len(expected)) == expected


# ---------------------------------------------------------------------------------------------
# Rejections


@pytest.mark.parametrize(
    ("expr", "syntax", "message"),
    [
        ("", "auto", "5 fields (unix) or 6-7 fields (quartz), got 0"),
        ("* * * *", "auto", "5 fields (unix) or 6-7 fields (quartz), got 4: '* * * *'"),
        ("* * * * * ? * *", "auto", "got 8"),
        ("0 * * * * ?", "unix", "a unix cron expression has 5 fields, got 6"),
        ("* * * * *", "quartz", "a quartz cron expression has 6 or 7 fields, got 5"),
        ("* * * * *", "cron", "unknown cron syntax 'cron'"),
        ("* * * * * *", "auto", "use '?' in exactly one of day-of-month or day-of-week"),
        ("0 0 0 ? * ?", "auto", "'?' and '?': use '?' in exactly one of day-of-month"),
        ("0 0 0 1 * MON", "auto", "'1' and 'MON': use '?' in exactly one"),
        ("60 * * * * ?", "auto", "second: '60' value 60 is out of range 0..59"),
        ("60 * * * *", "auto", "minute: '60' value 60 is out of range 0..59"),
        ("1-60 * * * *", "auto", "minute: '1-60' value 60 is out of range 0..59"),
        ("* 24 * * *", "auto", "hour: '24' value 24 is out of range 0..23"),
        ("* * 0 * *", "auto", "day-of-month: '0' value 0 is out of range 1..31"),
        ("* * 32 * *", "auto", "day-of-month: '32' value 32 is out of range 1..31"),
        ("* * * 13 *", "auto", "month: '13' value 13 is out of range 1..12"),
        ("* * * 0 *", "auto", "month: '0' value 0 is out of range 1..12"),
        ("* * * FOO *", "auto", "month: 'FOO' has 'FOO' where a number 1..12 or a name JAN-DEC"),
        ("* * * JANUARY *", "auto", "month: 'JANUARY' has 'JANUARY' where a number"),
        ("* * * foo *", "auto", "month: 'foo' has 'FOO' where a number 1..12 or a name JAN-DEC"),
        ("* * * * 8", "auto", "day-of-week: '8' value 8 is out of range 0..7"),
        ("0 0 0 ? * 0", "auto", "day-of-week: '0' value 0 is out of range 1..7"),
        ("0 0 0 ? * 8", "auto", "day-of-week: '8' value 8 is out of range 1..7"),
        (
            "0 0 0 ? * FOO",
            "auto",
            "day-of-week: 'FOO' has 'FOO' where a number 1..7 or a name SUN-SAT",
        ),
        ("0 0 0 1 1 ? 1969", "auto", "year: '1969' value 1969 is out of range 1970..2199"),
        ("0 0 0 1 1 ? 2200", "auto", "year: '2200' value 2200 is out of range 1970..2199"),
        ("0 0 0 1 1 ? ?", "auto", "year: '?' is only allowed in day-of-month or day-of-week"),
        (
            "0 0 0 1 1 ? 2030-2026",
            "auto",
            "year: '2030-2026' runs backwards; year ranges do not wrap, write 2026-2030",
        ),
        ("0 0 0 1 1 ? 2026,2199-1970", "auto", "year: '2026,2199-1970' runs backwards"),
        ("0 0 0 1 1 ? 2030-2026/2", "auto", "year: '2030-2026/2' runs backwards"),
        ("0 0 0 L-31W * ?", "auto", "day-of-month: 'L-31W' offset must be 0..30"),
        ("0 0 0 L-W * ?", "auto", "day-of-month: 'L-W' offset must be 0..30"),
        ("0 0 0 L-1-2W * ?", "auto", "day-of-month: 'L-1-2W' offset must be 0..30"),
        ("? * * * *", "auto", "minute: '?' is only allowed in day-of-month or day-of-week"),
        ("0 0 0 ?,1 * ?", "auto", "day-of-month: '?,1' may use '?' only on its own"),
        ("*/0 * * * *", "auto", "minute: '*/0' step must be 1..60"),
        ("*/61 * * * *", "auto", "minute: '*/61' step must be 1..60"),
        ("0 0 0 1/x * ?", "auto", "day-of-month: '1/x' step must be 1..31"),
        ("*/ * * * *", "auto", "minute: '*/' step must be 1..60"),
        ("1-5/2/3 * * * *", "auto", "minute: '1-5/2/3' step must be 1..60"),
        ("0 0 0 L-40 * ?", "auto", "day-of-month: 'L-40' offset must be 0..30"),
        ("0 0 0 L-31 * ?", "auto", "day-of-month: 'L-31' offset must be 0..30"),
        ("0 0 0 L- * ?", "auto", "day-of-month: 'L-' offset must be 0..30"),
        ("0 0 0 1-5W * ?", "auto", "day-of-month: '1-5W' W needs a single day before it, e.g. 15W"),
        ("0 0 0 W * ?", "auto", "day-of-month: 'W' W needs a single day before it"),
        ("0 0 0 32W * ?", "auto", "day-of-month: '32W' value 32 is out of range 1..31"),
        ("0 0 0 0W * ?", "auto", "day-of-month: '0W' value 0 is out of range 1..31"),
        ("0 0 0 1#2 * ?", "auto", "day-of-month: '1#2' is not a day: expected L, L-n, nW, LW"),
        ("0 0 0 L/2 * ?", "auto", "day-of-month: 'L/2' is not a day"),
        ("0 0 0 ? * 6#6", "auto", "day-of-week: '6#6' occurrence after # must be 1..5"),
        ("0 0 0 ? * 6#0", "auto", "day-of-week: '6#0' occurrence after # must be 1..5"),
        ("0 0 0 ? * 6#", "auto", "day-of-week: '6#' occurrence after # must be 1..5"),
        ("0 0 0 ? * #3", "auto", "day-of-week: '#3' needs a single weekday before L or #"),
        ("0 0 0 ? * 1-5L", "auto", "day-of-week: '1-5L' needs a single weekday before L or #"),
        ("0 0 0 ? * */2#1", "auto", "day-of-week: '*/2#1' needs a single weekday"),
        ("0 0 0 ? * 9L", "auto", "day-of-week: '9L' value 9 is out of range 1..7"),
        ("0 0 0 ? * 1W", "auto", "day-of-week: '1W' W is only allowed in day-of-month"),
        ("L * * * *", "auto", "minute: 'L' L, W and # are only allowed in the day fields"),
        ("0 0 0 1 1#1 ?", "auto", "month: '1#1' L, W and # are only allowed in the day fields"),
        ("1,,2 * * * *", "auto", "minute: '1,,2' has an empty list item"),
        ("1, * * * *", "auto", "minute: '1,' has an empty list item"),
        ("5- * * * *", "auto", "minute: '5-' has an empty value where a number 0..59 belongs"),
        ("-5 * * * *", "auto", "minute: '-5' has an empty value where a number"),
        ("1-2-3 * * * *", "auto", "minute: '1-2-3' has '2-3' where a number"),
        ("\u00b2 * * * *", "auto", "minute: '\u00b2' has '\u00b2' where a number"),
        ("00000000005 * * * *", "auto", "minute: '00000000005' has '00000000005' where"),
        ("@reboot", "auto", "unknown cron macro '@reboot'; expected one of: @yearly"),
        ("@daily", "quartz", "'@daily' is a unix macro; quartz has no macros"),
        ("0 0 *\n* *", "auto", "got 4"),
    ],
)
def test_rejected(expr: str, syntax: Any, message: str) -> None:
    with pytest.raises(InvalidField) as caught:
        CronExpr.parse(expr, syntax)
    assert message in caught.value.message
    assert caught.value.field == "cron"


def test_rejects_a_non_string() -> None:
    with pytest.raises(InvalidField) as caught:
        CronExpr.parse(5, "auto")  # type: ignore[arg-type]
    assert caught.value.field == "cron"


class TestParse:
    def test_auto_picks_by_field_count(self) -> None:
        assert CronExpr.parse("* * * * *").syntax == "unix"
        assert CronExpr.parse("0 * * * * ?").syntax == "quartz"
        assert CronExpr.parse("0 * * * * ? 2030").syntax == "quartz"
        assert CronExpr.parse("@hourly").syntax == "unix"
        assert CronExpr.parse("@hourly", "unix").syntax == "unix"

    def test_parsed_once(self) -> None:
        assert CronExpr.parse("0 0 12 * * ?") is CronExpr.parse("0 0 12 * * ?")

    def test_fields(self) -> None:
        cron = CronExpr.parse("0 0/5 14,18 * * ?")
        assert cron.seconds == (0,)
        assert cron.minutes == tuple(range(0, 60, 5))
        assert cron.hours == (14, 18)
        assert cron.months == tuple(range(1, 13))
        assert cron.years is None
        assert CronExpr.parse("0 0 0 1 1 ? 2030,2028").years == (2028, 2030)

    def test_unix_has_second_zero(self) -> None:
        assert CronExpr.parse("* * * * *").seconds == (0,)

    def test_case_and_spacing(self) -> None:
        assert CronExpr.parse(" 0 15 10 ? * fri#3 ").text == "0 15 10 ? * fri#3"
        lower = CronExpr.parse("0 15 10 ? jan-mar 6l")
        upper = CronExpr.parse("0 15 10 ? JAN-MAR 6L")
        assert (lower.months, lower.dow) == (upper.months, upper.dow)

    def test_unix_question_mark_is_any(self) -> None:
        assert CronExpr.parse("0 0 ? * 1").dow == CronExpr.parse("0 0 * * 1").dow
        assert fires("0 0 ? * 1", JAN_1, count=2) == utc("2026-01-05T00:00", "2026-01-12T00:00")


# ---------------------------------------------------------------------------------------------
# Plain English


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("30 9 * * 1-5", "at 09:30, Monday through Friday"),
        ("*/5 * * * *", "every 5 minutes"),
        ("0 15 10 ? * 6L", "at 10:15 on the last Friday of the month"),
        ("0 0 12 * * ?", "at 12:00"),
        ("@hourly", "every hour"),
        ("15 * * * *", "every hour at minute 15"),
        ("0 */2 * * *", "every 2 hours"),
        ("* * * * *", "every minute"),
        ("* * * * * ?", "every second"),
        ("*/15 * * * * ?", "every 15 seconds"),
        ("0 * 14 * * ?", "every minute, between 14:00 and 14:59"),
        ("*/15 9-17 * * 1-5", "every 15 minutes, between 09:00 and 17:59, Monday through Friday"),
        ("0 10,44 14 ? 3 WED", "at 14:10 and 14:44 on Wednesday in March"),
        ("0 15 10 ? * 6#3", "at 10:15 on the third Friday of the month"),
        ("0 15 10 L-2 * ?", "at 10:15 on the day 2 days before the last day of the month"),
        ("0 15 10 L-1 * ?", "at 10:15 on the day before the last day of the month"),
        (
            "0 0 */2 * 1",
            "at 00:00, every 2 days of the month starting on day 1, only if it is also Monday",
        ),
        ("0 15 10 L * ?", "at 10:15 on the last day of the month"),
        ("0 0 0 LW * ?", "at 00:00 on the last weekday of the month"),
        (
            "0 0 0 L-3W * ?",
            "at 00:00 on the weekday nearest the day 3 days before the last day of the month",
        ),
        (
            "0 0 0 L-1W * ?",
            "at 00:00 on the weekday nearest the day before the last day of the month",
        ),
        ("0 0 0 15W * ?", "at 00:00 on the weekday nearest day 15 of the month"),
        (
            "0 15 10 ? * 6L 2002-2005",
            "at 10:15 on the last Friday of the month in 2002 through 2005",
        ),
        ("0 15 10 * * ? 2005", "at 10:15 in 2005"),
        ("0 11 11 11 11 ?", "at 11:11 on day 11 of the month in November"),
        ("0 0 1,15 * 5", "at 00:00 on days 1 and 15 of the month or on Friday"),
        ("0 0 12 1/5 * ?", "at 12:00, every 5 days of the month starting on day 1"),
        ("0 0 * * 6,0", "at 00:00 on Sunday and Saturday"),
        ("0 0 1 */3 *", "at 00:00 on day 1 of the month, every 3 months from January"),
    ],
)
def test_describe(expr: str, text: str) -> None:
    assert describe(CronExpr.parse(expr)) == text


@pytest.mark.parametrize(
    "expr",
    ["0 22-2 * * *", "1,2,3,5 */7 1-9 FEB-APR 1-5", "0 0 0 ? * 2#1,6L 2030-2040/2", "0 0 */2 * 1"],
)
def test_describe_never_fails(expr: str) -> None:
    assert describe(CronExpr.parse(expr))


# ---------------------------------------------------------------------------------------------
# The schedule kind


class TestCronSchedule:
    def test_next_after_in_its_zone(self) -> None:
        schedule = CronSchedule(expr="0 0 9 * * ?", syntax="quartz", tz=BERLIN)
        assert local(schedule.next_after(us(JAN_1)) or 0, BERLIN) == "2026-01-01T09:00:00+01:00"

    def test_start_is_honoured_and_inclusive(self) -> None:
        start = us("2026-03-01T09:00:00Z")
        schedule = CronSchedule(expr="0 9 * * *", syntax="unix", start=start)
        assert schedule.next_after(us(JAN_1)) == start
        assert schedule.next_after(start) == start + 86_400 * S
        assert schedule.first(us(JAN_1)) == start

    def test_first_after_creation(self) -> None:
        schedule = CronSchedule(expr="0 9 * * *", start=us("2026-01-01T00:00:00Z"))
        assert schedule.first(us("2026-02-01T10:00:00Z")) == us("2026-02-02T09:00:00Z")
        assert CronSchedule(expr="0 9 * * *").first(us(JAN_1)) == us("2026-01-01T09:00:00Z")

    def test_end_is_inclusive(self) -> None:
        end = us("2026-01-03T09:00:00Z")
        schedule = CronSchedule(expr="0 9 * * *", end=end)
        assert schedule.next_after(us("2026-01-02T12:00:00Z")) == end
        assert schedule.next_after(end) is None
        assert schedule.next_after(end + 1) is None

    def test_exhausted_expression(self) -> None:
        assert CronSchedule(expr="0 0 0 1 1 ? 2020").next_after(us(JAN_1)) is None

    def test_kind_and_to_dict(self) -> None:
        schedule = CronSchedule(
            expr="0 15 10 ? * 6L",
            syntax="quartz",
            tz=NY,
            start=us("2026-01-01T00:00:00Z"),
            end=us("2027-01-01T00:00:00.5Z"),
        )
        assert CronSchedule.kind == "cron"
        assert schedule.to_dict() == {
            "kind": "cron",
            "expr": "0 15 10 ? * 6L",
            "tz": NY,
            "syntax": "quartz",
            "start": "2026-01-01T00:00:00Z",
            "end": "2027-01-01T00:00:00.500000Z",
        }
        assert CronSchedule(expr="@daily").to_dict()["start"] is None

    def test_describe(self) -> None:
        assert CronSchedule(expr="30 9 * * 1-5", tz=BERLIN).describe() == (
            "at 09:30, Monday through Friday (Europe/Berlin)"
        )
        bounded = CronSchedule(expr="@daily", start=us(JAN_1), end=us("2026-12-31T00:00:00Z"))
        assert bounded.describe() == (
            "at 00:00 (UTC), from 2026-01-01T00:00:00Z, until 2026-12-31T00:00:00Z"
        )

    def test_round_trip_through_the_registry(self) -> None:
        schedule = CronSchedule(expr="*/5 * * * *", syntax="unix", tz=BERLIN, end=us(JAN_1))
        assert schedule_from_dict(schedule.to_dict(), 0) == schedule


class TestParseCronSchedule:
    def test_defaults(self) -> None:
        schedule = parse_cron_schedule({"kind": "cron", "expr": " 0 0 12 * * ? "}, 0)
        assert schedule == CronSchedule(expr="0 0 12 * * ?", syntax="quartz", tz="UTC")

    def test_full(self) -> None:
        data = {
            "kind": "cron",
            "expr": "0 9 * * 1-5",
            "syntax": "unix",
            "tz": NY,
            "start": "2026-01-01T00:00:00+01:00",
            "end": "2026-12-31T00:00:00Z",
        }
        schedule = parse_cron_schedule(data, 0)
        assert schedule == CronSchedule(
            expr="0 9 * * 1-5",
            syntax="unix",
            tz=NY,
            start=us("2025-12-31T23:00:00Z"),
            end=us("2026-12-31T00:00:00Z"),
        )

    def test_via_the_registry(self) -> None:
        schedule = schedule_from_dict({"kind": "cron", "expr": "@daily", "tz": BERLIN}, 0)
        assert isinstance(schedule, CronSchedule)
        assert schedule.next_after(us(JAN_1)) == us("2026-01-01T23:00:00Z")

    def test_integer_bounds(self) -> None:
        schedule = parse_cron_schedule({"expr": "@daily", "start": 5, "end": 10}, 0)
        assert (schedule.start, schedule.end) == (5, 10)

    @pytest.mark.parametrize(
        ("data", "field", "message"),
        [
            ({}, "expr", "'expr' must be a cron expression"),
            ({"expr": 5}, "expr", "'expr' must be a cron expression"),
            ({"expr": "* * * *"}, "cron", "got 4"),
            ({"expr": "0 0 0 L-40 * ?"}, "cron", "day-of-month: 'L-40' offset must be 0..30"),
            (
                {"expr": "@daily", "syntax": "cron"},
                "syntax",
                "'syntax' must be auto, quartz or unix",
            ),
            ({"expr": "@daily", "syntax": "quartz"}, "cron", "quartz has no macros"),
            ({"expr": "@daily", "tz": "Mars/Olympus"}, "tz", "unknown time zone 'Mars/Olympus'"),
            ({"expr": "@daily", "tz": "America"}, "tz", "unknown time zone 'America'"),
            ({"expr": "@daily", "tz": "../etc/passwd"}, "tz", "unknown time zone"),
            ({"expr": "@daily", "tz": ""}, "tz", "unknown time zone"),
            ({"expr": "@daily", "tz": 5}, "tz", "'tz' must be an IANA time zone name"),
            ({"expr": "@daily", "start": "soon"}, "start", "start is not an ISO 8601 instant"),
            ({"expr": "@daily", "start": "2026-01-01T00:00:00"}, "start", "needs a UTC offset"),
            ({"expr": "@daily", "end": True}, "end", "'end' must be an ISO 8601 instant"),
            ({"expr": "@daily", "end": -1}, "end", "'end' is out of range"),
            (
                {"expr": "@daily", "start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
                "end",
                "'end' must not be before 'start'",
            ),
        ],
    )
    def test_rejected(self, data: dict[str, Any], field: str, message: str) -> None:
        with pytest.raises(InvalidField) as caught:
            parse_cron_schedule(data, 0)
        assert caught.value.field == field
        assert message in caught.value.message


# ---------------------------------------------------------------------------------------------
# Properties against an independent brute force


ZONES = ["UTC", NY, BERLIN, "Australia/Lord_Howe", "Asia/Kolkata"]
# Around the 2026 transitions of the zones above, where the interesting cases live.
TRANSITIONS = [
    (NY, us("2026-03-08T07:00:00Z")),
    (NY, us("2026-11-01T06:00:00Z")),
    (BERLIN, us("2026-03-29T01:00:00Z")),
    (BERLIN, us("2026-10-25T01:00:00Z")),
    ("Australia/Lord_Howe", us("2026-04-04T15:00:00Z")),
    ("Australia/Lord_Howe", us("2026-10-03T15:30:00Z")),
]
HOUR = 3_600 * S


@dataclass(frozen=True)
class Field:
    text: str
    values: frozenset[int]
    star: bool


@st.composite
def fields(draw: st.DrawFn, lo: int, hi: int, names: tuple[str, ...] = (), base: int = 0) -> Field:
    """A field written one of the ways cron allows, with the values it must mean."""

    def show(v: int) -> str:
        if names and lo <= v - base < len(names) and draw(st.booleans()):
            return names[v - base]
        return str(v)

    kind = draw(st.sampled_from(["star", "one", "list", "range", "wrap", "step", "from"]))
    a = draw(st.integers(lo, hi))
    b = draw(st.integers(lo, hi))
    step = draw(st.integers(1, hi - lo + 1))
    if kind == "star":
        return Field("*", frozenset(range(lo, hi + 1)), True)
    if kind == "one":
        return Field(show(a), frozenset([a]), False)
    if kind == "list":
        values = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=4))
        return Field(",".join(show(v) for v in values), frozenset(values), False)
    if kind == "range":
        a, b = min(a, b), max(a, b)
        return Field(f"{show(a)}-{show(b)}", frozenset(range(a, b + 1)), False)
    if kind == "wrap" and a > b:
        values = [*range(a, hi + 1), *range(lo, b + 1)]
        return Field(f"{show(a)}-{show(b)}", frozenset(values), False)
    if kind == "step":
        return Field(f"*/{step}", frozenset(range(lo, hi + 1, step)), True)
    return Field(f"{show(a)}/{step}", frozenset(range(a, hi + 1, step)), False)


@dataclass(frozen=True)
class Unix:
    minute: Field
    hour: Field
    dom: Field
    month: Field
    dow: Field

    @property
    def text(self) -> str:
        return " ".join(f.text for f in (self.minute, self.hour, self.dom, self.month, self.dow))

    def day_matches(self, day: date) -> bool:
        by_date = day.day in self.dom.values
        by_weekday = day.isoweekday() % 7 in {v % 7 for v in self.dow.values}
        if self.dom.star or self.dow.star:
            return by_date and by_weekday and day.month in self.month.values
        return (by_date or by_weekday) and day.month in self.month.values


DOW_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

unix_exprs = st.builds(
    Unix,
    fields(0, 59),
    fields(0, 23),
    fields(1, 31),
    fields(1, 12, MONTH_NAMES, 1),
    fields(0, 6, DOW_NAMES, 0),
)
STAR_DAY = Field("*", frozenset(range(1, 32)), True)
STAR_MONTH = Field("*", frozenset(range(1, 13)), True)
STAR_DOW = Field("*", frozenset(range(7)), True)
# Busy in the small hours, where the transitions are, so that gaps and repeats get hit.
night_exprs = st.builds(
    Unix,
    fields(0, 59),
    st.one_of(
        st.lists(st.integers(0, 4), min_size=1, max_size=3).map(
            lambda hours: Field(",".join(map(str, hours)), frozenset(hours), False)
        ),
        st.sampled_from(
            [
                Field("2", frozenset({2}), False),
                Field("1,2", frozenset({1, 2}), False),
                Field("2,4", frozenset({2, 4}), False),
                Field("1-3", frozenset({1, 2, 3}), False),
                Field("*", frozenset(range(24)), True),
            ]
        ),
    ),
    st.just(STAR_DAY),
    st.just(STAR_MONTH),
    st.just(STAR_DOW),
)
# A zone and an instant within two hours of one of its transitions, often the hour after.
near_transitions = st.sampled_from(TRANSITIONS).flatmap(
    lambda pair: st.tuples(
        st.just(pair[0]),
        st.one_of(
            st.integers(pair[1] - 2 * HOUR, pair[1] + 2 * HOUR),
            st.integers(pair[1], pair[1] + HOUR),  # just after a gap, or in a second pass
        ),
    )
)
instants = st.one_of(
    st.integers(us("2025-06-01T00:00:00Z"), us("2027-06-01T00:00:00Z")),
    near_transitions.map(lambda pair: pair[1]),
)


def brute_next(expr: Unix, after: int, zone: ZoneInfo, days: int = 800) -> int | None:
    """The definition, walked day by day: each matching wall time fires at its fold-0 instant.

    Fold 0 is the first of a repeated time and, in a gap, the time shifted by the gap.
    """
    after_s = after // S
    day = datetime.fromtimestamp(after_s, zone).date() - timedelta(days=1)
    best: int | None = None
    for _ in range(days):
        if best is not None and day > datetime.fromtimestamp(best, zone).date() + timedelta(1):
            break
        if expr.day_matches(day):
            for hour in sorted(expr.hour.values):
                for minute in sorted(expr.minute.values):
                    wall = datetime.combine(day, time(hour, minute), tzinfo=zone)
                    instant = int(wall.timestamp())
                    if instant > after_s and (best is None or instant < best):
                        best = instant
        day += timedelta(days=1)
    return None if best is None else best * S


@settings(max_examples=250, deadline=None)
@given(unix_exprs, instants, st.sampled_from(ZONES))
def test_unix_matches_brute_force(expr: Unix, after: int, tz: str) -> None:
    zone = ZoneInfo(tz)
    expected = brute_next(expr, after, zone)
    got = CronExpr.parse(expr.text).next_after(after, zone)
    if expected is None:  # nothing within the brute force's 800 days
        assert got is None or got > after + 790 * 86_400 * S
    else:
        assert got == expected


@settings(max_examples=250, deadline=None)
@given(night_exprs, near_transitions)
def test_around_transitions_matches_brute_force(expr: Unix, near: tuple[str, int]) -> None:
    tz, after = near
    zone = ZoneInfo(tz)
    assert CronExpr.parse(expr.text).next_after(after, zone) == brute_next(expr, after, zone)


@settings(max_examples=150, deadline=None)
@given(st.one_of(unix_exprs, night_exprs), instants, st.sampled_from(ZONES))
def test_successive_fires_increase_and_match(expr: Unix, after: int, tz: str) -> None:
    zone = ZoneInfo(tz)
    cron = CronExpr.parse(expr.text)
    instant = after
    for _ in range(5):
        upcoming = cron.next_after(instant, zone)
        if upcoming is None:
            return
        assert upcoming > instant
        assert upcoming % S == 0
        # asking again from anywhere before it gives the same answer
        assert cron.next_after(upcoming - 1, zone) == upcoming
        assert cron.next_after((instant + upcoming) // 2, zone) == upcoming
        wall = to_datetime(upcoming).astimezone(zone).replace(tzinfo=None)
        assert wall.second == 0
        assert _matches_or_shifted(expr, wall, zone)
        instant = upcoming


def _matches_or_shifted(expr: Unix, wall: datetime, zone: ZoneInfo) -> bool:
    """The wall time matches, or it is a gap's time moved forward by the gap."""

    def matches(w: datetime) -> bool:
        return (
            expr.day_matches(w.date())
            and w.hour in expr.hour.values
            and w.minute in expr.minute.values
        )

    if matches(wall):
        return True
    for minutes in (30, 60):
        earlier = wall - timedelta(minutes=minutes)
        offsets = [earlier.replace(tzinfo=zone, fold=f).utcoffset() for f in (0, 1)]
        if matches(earlier) and offsets[0] != offsets[1]:
            return True
    return False


# Quartz day rules, defined the plain way rather than computed.


def nearest_weekday(day: date, target: int) -> bool:
    length = calendar.monthrange(day.year, day.month)[1]
    if target > length:
        return False
    weekdays = [d for d in range(1, length + 1) if date(day.year, day.month, d).weekday() < 5]
    return day.day == min(weekdays, key=lambda d: abs(d - target))


def last_weekday(day: date) -> bool:
    length = calendar.monthrange(day.year, day.month)[1]
    weekdays = [d for d in range(1, length + 1) if date(day.year, day.month, d).weekday() < 5]
    return day.day == weekdays[-1]


DayRule = tuple[str, Callable[[date], bool]]


def _length(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _weekday(day: date) -> int:
    return day.isoweekday() % 7  # 0 = Sunday


@st.composite
def dom_rules(draw: st.DrawFn) -> DayRule:
    kind = draw(st.sampled_from(["L", "L-n", "nW", "LW", "L-nW", "n"]))
    n = draw(st.integers(1, 31))
    offset = draw(st.integers(0, 30))
    if kind == "L":
        return "L", lambda d: d.day == _length(d)
    if kind == "L-n":
        return f"L-{offset}", lambda d: d.day == _length(d) - offset
    if kind == "nW":
        return f"{n}W", lambda d: nearest_weekday(d, n)
    if kind == "LW":
        return "LW", last_weekday
    if kind == "L-nW":
        return f"L-{offset}W", lambda d: (
            _length(d) - offset >= 1 and nearest_weekday(d, _length(d) - offset)
        )
    return str(n), lambda d: d.day == n


@st.composite
def dow_rules(draw: st.DrawFn) -> DayRule:
    kind = draw(st.sampled_from(["nL", "n#k", "L", "n"]))
    weekday = draw(st.integers(0, 6))  # 0 = Sunday; Quartz writes it as weekday + 1
    name = draw(st.sampled_from([str(weekday + 1), DOW_NAMES[weekday]]))
    k = draw(st.integers(1, 5))
    if kind == "nL":
        return f"{name}L", lambda d: _weekday(d) == weekday and d.day + 7 > _length(d)
    if kind == "n#k":
        return f"{name}#{k}", lambda d: _weekday(d) == weekday and (d.day - 1) // 7 + 1 == k
    if kind == "L":
        return "L", lambda d: _weekday(d) == 6
    return name, lambda d: _weekday(d) == weekday


@st.composite
def quartz_days(draw: st.DrawFn) -> tuple[str, Callable[[date], bool]]:
    """A day-of-month or day-of-week field (lists of one or two rules) and the other one '?'."""
    use_dom = draw(st.booleans())
    rules = draw(st.lists(dom_rules() if use_dom else dow_rules(), min_size=1, max_size=2))
    field = ",".join(text for text, _ in rules)
    text = f"0 0 12 {field} * ?" if use_dom else f"0 0 12 ? * {field}"

    def matches(day: date) -> bool:
        return any(rule(day) for _, rule in rules)

    return text, matches


@settings(max_examples=150, deadline=None)
@given(quartz_days(), st.dates(date(2000, 1, 1), date(2150, 12, 31)))
def test_quartz_day_rules_match_their_definitions(
    days: tuple[str, Callable[[date], bool]], start: date
) -> None:
    text, matches = days
    cron = CronExpr.parse(text)
    after = from_datetime(datetime.combine(start, time(12), tzinfo=UTC))
    day = start + timedelta(days=1)
    for _ in range(5 * 366):
        if matches(day):
            expected = from_datetime(datetime.combine(day, time(12), tzinfo=UTC))
            assert cron.next_after(after, UTC) == expected
            return
        day += timedelta(days=1)
    got = cron.next_after(after, UTC)
    assert got is None or got > after + 5 * 365 * 86_400 * S
