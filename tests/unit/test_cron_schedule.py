"""The `cron` schedule kind: zone, bounds, stored form and its parser."""

from __future__ import annotations

from typing import Any

import pytest

from cronwheel.domain.cron import CronSchedule, parse_cron_schedule
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.schedules import schedule_from_dict
from tests.unit.cron_support import BERLIN, JAN_1, NY, S, local, us

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
