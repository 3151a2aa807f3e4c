"""When cron expressions fire, Quartz and Unix (cronwheel.domain.cron; parsing, English, the
schedule kind and the property tests are in the test_cron_*.py files beside this one).

Expected fire times were worked out by hand from a printed calendar; the weekday of each date
used is noted beside it. DST cases use the 2026 transitions:
America/New_York 2026-03-08 02:00 EST -> 03:00 EDT and 2026-11-01 02:00 EDT -> 01:00 EST;
Europe/Berlin 2026-03-29 02:00 CET -> 03:00 CEST and 2026-10-25 03:00 CEST -> 02:00 CET.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from time import perf_counter
from zoneinfo import ZoneInfo

import pytest

from cronwheel.domain.cron import CronExpr
from tests.unit.cron_support import BERLIN, JAN_1, NY, fires, local, us, utc

# ---------------------------------------------------------------------------------------------
# The examples of the Quartz CronTrigger tutorial


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
