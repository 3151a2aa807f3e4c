"""Simple triggers, rates and ISO 8601 repeating intervals, against hand-computed instants."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.intervals import IsoRepeating, Rate, SimpleTrigger
from cronwheel.domain.schedules import Schedule, schedule_from_dict
from cronwheel.domain.time import US_PER_S, parse_instant, to_iso

NOW = parse_instant("2026-01-31T00:00:00Z")


def fires(schedule: Schedule, limit: int = 10) -> list[str]:
    out: list[str] = []
    at = schedule.first(NOW)
    while at is not None and len(out) < limit:
        out.append(to_iso(at))
        at = schedule.next_after(at)
    return out


def test_simple_trigger_repeat_counts_fires_after_the_first() -> None:
    schedule = schedule_from_dict({"kind": "simple", "interval": 500, "unit": "millisecond",
                                   "repeat": 2, "start": "2026-01-01T00:00:00Z"}, NOW)
    assert isinstance(schedule, SimpleTrigger)
    assert fires(schedule) == ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.500000Z",
                               "2026-01-01T00:00:01Z"]


def test_simple_trigger_forever_until_end() -> None:
    schedule = schedule_from_dict({"kind": "simple", "interval": "PT1H", "repeat": -1,
                                   "start": "2026-01-31T00:00:00Z",
                                   "end": "2026-01-31T02:30:00Z"}, NOW)
    assert fires(schedule) == ["2026-01-31T00:00:00Z", "2026-01-31T01:00:00Z",
                               "2026-01-31T02:00:00Z"]


def test_simple_trigger_defaults_to_start_now_and_next_after_skips_ahead() -> None:
    schedule = schedule_from_dict({"kind": "simple", "interval": 2, "unit": "day"}, NOW)
    assert schedule.first(NOW) == NOW
    later = parse_instant("2026-02-03T12:00:00Z")
    assert schedule.next_after(later) == parse_instant("2026-02-04T00:00:00Z")
    assert schedule.next_after(NOW) == parse_instant("2026-02-02T00:00:00Z")


@pytest.mark.parametrize("text", ["every 5m", "5m", "5 minutes", "rate(5 minutes)",
                                  "every 5 min", "PT5M", 300])
def test_rate_forms(text: Any) -> None:
    schedule = schedule_from_dict({"kind": "rate", "every": text}, NOW)
    assert isinstance(schedule, Rate) and schedule.step_us == 300 * US_PER_S
    assert fires(schedule, 2) == ["2026-01-31T00:05:00Z", "2026-01-31T00:10:00Z"]


_UNIT_SPELLINGS = [
    ("millisecond", 250 * US_PER_S // 1000, ["ms", "msec", "msecs", "milli", "millis",
                                            "millisecond", "milliseconds"]),
    ("second", 250 * US_PER_S, ["s", "sec", "secs", "second", "seconds"]),
    ("minute", 250 * 60 * US_PER_S, ["m", "min", "mins", "minute", "minutes"]),
    ("hour", 250 * 3_600 * US_PER_S, ["h", "hr", "hrs", "hour", "hours"]),
    ("day", 250 * 86_400 * US_PER_S, ["d", "day", "days"]),
]


@pytest.mark.parametrize(
    ("text", "step"),
    [
        (form.format(word), step)
        for _, step, words in _UNIT_SPELLINGS
        for word in words
        for form in ("250{}", "250 {}", "every 250{}", "every 250 {}", "rate(250 {})")
    ],
)
def test_every_rate_unit_spelling_is_read_as_that_unit(text: str, step: int) -> None:
    schedule = schedule_from_dict({"kind": "rate", "every": text}, NOW)
    assert isinstance(schedule, Rate) and schedule.step_us == step


@pytest.mark.parametrize(
    ("text", "step"),
    [("500ms", 500_000), ("every 20ms", 20_000), ("rate(1 ms)", None), ("1ms", None),
     ("every 1 minute", 60 * US_PER_S), ("1 millisecond", None)],
)
def test_milliseconds_are_not_minutes(text: str, step: int | None) -> None:
    if step is None:  # 1 ms is a real millisecond, refused as below the 10 ms floor
        with pytest.raises(InvalidField, match="at least 10 ms") as caught:
            schedule_from_dict({"kind": "rate", "every": text}, NOW)
        assert caught.value.field == "every"
        return
    schedule = schedule_from_dict({"kind": "rate", "every": text}, NOW)
    assert isinstance(schedule, Rate) and schedule.step_us == step


def test_500ms_is_described_in_milliseconds() -> None:
    schedule = schedule_from_dict({"kind": "rate", "every": "500ms"}, NOW)
    assert schedule.describe().startswith("every 500 milliseconds")


@pytest.mark.parametrize(
    ("text", "step"),
    [("PT0.25S", 250_000), ("PT5S", 5 * US_PER_S), ("PT5M", 300 * US_PER_S),
     ("PT2H", 7_200 * US_PER_S), ("P1D", 86_400 * US_PER_S), ("P1DT1H", 90_000 * US_PER_S),
     ("pt5m", 300 * US_PER_S)],
)
def test_rate_as_an_iso_duration(text: str, step: int) -> None:
    schedule = schedule_from_dict({"kind": "rate", "every": text}, NOW)
    assert isinstance(schedule, Rate) and schedule.step_us == step


@pytest.mark.parametrize(("unit", "step", "_words"), _UNIT_SPELLINGS)
def test_every_simple_trigger_unit_is_that_unit(unit: str, step: int, _words: list[str]) -> None:
    schedule = schedule_from_dict({"kind": "simple", "interval": 250, "unit": unit}, NOW)
    assert isinstance(schedule, SimpleTrigger) and schedule.step_us == step


@pytest.mark.parametrize("text", ["5 mss", "5 fortnights", "5 msecond", "5 mi", "5 dayss"])
def test_unknown_units_are_refused_with_the_units_listed(text: str) -> None:
    with pytest.raises(InvalidField) as caught:
        schedule_from_dict({"kind": "rate", "every": text}, NOW)
    assert caught.value.field == "every" and "ms, s, m, h or d" in caught.value.message


def test_iso_months_are_calendar_months_without_drift() -> None:
    schedule = schedule_from_dict({"kind": "iso8601", "expr": "R4/2026-01-31T00:00:00Z/P1M"}, NOW)
    assert isinstance(schedule, IsoRepeating)
    assert fires(schedule) == ["2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z",
                               "2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z"]


def test_iso_forever_with_an_offset_and_a_start_end_form() -> None:
    daily = schedule_from_dict({"kind": "iso8601", "expr": "R/2026-01-01T08:00:00+08:00/P1D"},
                               NOW)
    assert daily.next_after(NOW) == parse_instant("2026-01-31T00:00:00Z") + 86_400 * US_PER_S
    hourly = schedule_from_dict(
        {"kind": "iso8601", "expr": "R3/2026-01-31T00:00:00Z/2026-01-31T01:30:00Z"}, NOW)
    assert fires(hourly) == ["2026-01-31T00:00:00Z", "2026-01-31T01:30:00Z",
                             "2026-01-31T03:00:00Z"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "simple", "interval": 0, "unit": "second"}, "interval"),
        ({"kind": "simple", "interval": 5, "unit": "fortnight"}, "unit"),
        ({"kind": "simple", "interval": 1, "unit": "millisecond"}, "interval"),
        ({"kind": "simple", "interval": "PT1S", "repeat": -2}, "repeat"),
        ({"kind": "simple", "interval": "PT1S", "repeat": True}, "repeat"),
        ({"kind": "simple"}, "interval"),
        ({"kind": "simple", "interval": "PT1S", "start": "2026-02-01T00:00:00Z",
          "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"kind": "rate", "every": "every 5 fortnights"}, "every"),
        ({"kind": "rate", "every": "soon"}, "every"),
        ({"kind": "rate", "every": 0}, "every"),
        ({"kind": "rate"}, "every"),
        ({"kind": "iso8601", "expr": "R5/PT1H"}, "expr"),
        ({"kind": "iso8601", "expr": "R5/2026-01-01T00:00:00/PT1H"}, "expr"),
        ({"kind": "iso8601", "expr": "every hour"}, "expr"),
        ({"kind": "iso8601", "expr": "R0/2026-01-01T00:00:00Z/PT1H"}, "expr"),
        ({"kind": "iso8601", "expr": "R/2026-01-01T00:00:00Z/PT0S"}, "expr"),
        ({"kind": "iso8601"}, "expr"),
        # issue 10: numbers that overflow the step arithmetic are refused, not a crash
        ({"kind": "simple", "interval": float("nan"), "unit": "second"}, "interval"),
        ({"kind": "simple", "interval": float("inf"), "unit": "second"}, "interval"),
        ({"kind": "simple", "interval": 1e308, "unit": "second"}, "interval"),
        ({"kind": "simple", "interval": 10**400, "unit": "day"}, "interval"),
        ({"kind": "simple", "interval": float("nan")}, "interval"),
        ({"kind": "simple", "interval": float("inf")}, "interval"),
        ({"kind": "simple", "interval": float("-inf")}, "interval"),
        ({"kind": "simple", "interval": 1e308}, "interval"),
        ({"kind": "simple", "interval": "P" + "9" * 400 + "D"}, "interval"),
        ({"kind": "rate", "every": "rate(99999999999999999999 days)"}, "every"),
        ({"kind": "rate", "every": "99999999999999999999ms"}, "every"),
        ({"kind": "rate", "every": 1e308}, "every"),
        ({"kind": "rate", "every": "P99999999999D"}, "every"),
        ({"kind": "rate", "every": "P2932000D"}, "every"),  # first fire after year 9999
        ({"kind": "simple", "interval": "PT1S", "start": "9999-12-31T23:00:00-05:00"}, "start"),
        ({"kind": "iso8601", "expr": "R/9999-12-31T23:00:00-05:00/PT1H"}, "expr"),
        ({"kind": "iso8601", "expr": "R/2026-01-01T00:00:00Z/P" + "9" * 400 + "Y"}, "expr"),
        ({"kind": "iso8601", "expr": "R/2026-01-01T00:00:00Z/PT" + "9" * 400 + "H"}, "expr"),
        ({"kind": "iso8601", "expr": "R/2026-01-01T00:00:00Z/PT99999999999999999999H"}, "expr"),
        ({"kind": "iso8601", "expr": "R/2026-01-01T00:00:00Z/P99999999999Y"}, "expr"),
    ],
)
def test_bad_expressions_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        schedule_from_dict(data, NOW)
    assert caught.value.field == field and caught.value.message


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("R/9999-12-31T00:00:00Z/P1D", ["9999-12-31T00:00:00Z"]),
        ("R5/9999-06-01T00:00:00Z/P1Y", ["9999-06-01T00:00:00Z"]),
        ("R/9999-12-30T00:00:00Z/PT12H", ["9999-12-30T00:00:00Z", "9999-12-30T12:00:00Z",
                                          "9999-12-31T00:00:00Z", "9999-12-31T12:00:00Z"]),
        ("R3/9999-12-31T23:00:00+05:00/PT1H", ["9999-12-31T18:00:00Z", "9999-12-31T19:00:00Z",
                                               "9999-12-31T20:00:00Z"]),
        ("R/2026-01-01T00:00:00Z/P9999Y", ["2026-01-01T00:00:00Z"]),
    ],
)
def test_iso_occurrences_past_year_9999_end_the_schedule(expr: str, expected: list[str]) -> None:
    schedule = schedule_from_dict({"kind": "iso8601", "expr": expr}, NOW)
    assert fires(schedule) == expected
    assert schedule.next_after(parse_instant(expected[-1])) is None
    assert schedule.next_after(parse_instant("9999-12-31T23:59:59Z")) is None
    assert schedule_from_dict(schedule.to_dict(), NOW) == schedule


def test_the_longest_step_is_accepted_and_one_longer_is_not() -> None:
    longest = 2_932_896 * 86_400 * US_PER_S
    schedule = schedule_from_dict({"kind": "simple", "interval": 2_932_896, "unit": "day",
                                   "start": "1970-01-01T00:00:00Z"}, NOW)
    assert isinstance(schedule, SimpleTrigger) and schedule.step_us == longest
    assert fires(schedule) == ["1970-01-01T00:00:00Z", "9999-12-31T00:00:00Z"]
    with pytest.raises(InvalidField, match="at most 2932896 days"):
        schedule_from_dict({"kind": "simple", "interval": 2_932_897, "unit": "day"}, NOW)


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "simple", "interval": 90, "unit": "second", "repeat": 3},
        {"kind": "simple", "interval": "PT0.25S", "end": "2027-01-01T00:00:00Z"},
        {"kind": "rate", "every": "every 5m"},
        {"kind": "iso8601", "expr": "R4/2026-01-31T00:00:00Z/P1M"},
    ],
)
def test_stored_form_reloads_to_the_same_schedule(data: dict[str, Any]) -> None:
    schedule = schedule_from_dict(data, NOW)
    assert schedule_from_dict(schedule.to_dict(), 0) == schedule


@given(start=st.integers(0, 2_000_000_000), step=st.integers(1, 10**6),
       probe=st.integers(0, 3_000_000_000))
def test_every_next_after_is_the_first_occurrence_strictly_after(
    start: int, step: int, probe: int
) -> None:
    schedule = SimpleTrigger(start * US_PER_S, step * US_PER_S)
    got = schedule.next_after(probe * US_PER_S)
    assert got is not None and got > probe * US_PER_S
    assert (got - start * US_PER_S) % (step * US_PER_S) == 0
    assert got - step * US_PER_S <= probe * US_PER_S or got == start * US_PER_S
