"""Cron expressions described in plain English (cronwheel.domain.cron.english)."""

from __future__ import annotations

import pytest

from cronwheel.domain.cron import CronExpr, describe

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
