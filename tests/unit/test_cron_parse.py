"""Cron parsing: what each field accepts, and refusals that name the field and token."""

from __future__ import annotations

from typing import Any

import pytest

from cronwheel.domain.cron import CronExpr
from cronwheel.domain.errors import InvalidField
from tests.unit.cron_support import JAN_1, fires, utc

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
