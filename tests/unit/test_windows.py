"""The window grammar: every unit, X(n), X(n,m), DST days, ISO weeks and month ends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.time import US_PER_S, parse_instant, to_iso
from cronwheel.domain.windows import MAX_UNITS, Window, parse_window

HOUR = 3_600 * US_PER_S


def bounds(expr: str, planned: str, tz: str = "UTC") -> tuple[str, str]:
    start, end = parse_window(expr).bounds(parse_instant(planned), tz)
    return to_iso(start), to_iso(end)


@pytest.mark.parametrize(("expr", "start", "end"), [
    ("cm", "2026-03-18T10:37:00Z", "2026-03-18T10:38:00Z"),
    ("ch", "2026-03-18T10:00:00Z", "2026-03-18T11:00:00Z"),
    ("cd", "2026-03-18T00:00:00Z", "2026-03-19T00:00:00Z"),
    ("", "2026-03-18T00:00:00Z", "2026-03-19T00:00:00Z"),  # empty is cd
    ("cw", "2026-03-16T00:00:00Z", "2026-03-23T00:00:00Z"),  # a Wednesday: from Monday
    ("cM", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
    ("cy", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
    ("m(5)", "2026-03-18T10:32:00Z", "2026-03-18T10:37:00Z"),
    ("h(1)", "2026-03-18T09:00:00Z", "2026-03-18T10:00:00Z"),
    ("h(3)", "2026-03-18T07:00:00Z", "2026-03-18T10:00:00Z"),
    ("d(1)", "2026-03-17T00:00:00Z", "2026-03-18T00:00:00Z"),
    ("d(1,2)", "2026-03-17T00:00:00Z", "2026-03-19T00:00:00Z"),  # yesterday and today
    ("d(7,1)", "2026-03-11T00:00:00Z", "2026-03-12T00:00:00Z"),  # the same day a week ago
    ("w(1)", "2026-03-09T00:00:00Z", "2026-03-16T00:00:00Z"),
    ("M(1)", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"),
    ("M(3,2)", "2025-12-01T00:00:00Z", "2026-02-01T00:00:00Z"),  # across a year end
    ("y(1)", "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
])
def test_each_form_in_utc(expr: str, start: str, end: str) -> None:
    assert bounds(expr, "2026-03-18T10:37:25Z") == (start, end)


def test_a_day_follows_the_local_wall_clock() -> None:
    # 2026-03-18 01:30 in Shanghai (UTC+8) is 17:30 the day before in UTC
    assert bounds("cd", "2026-03-17T17:30:00Z", "Asia/Shanghai") == (
        "2026-03-17T16:00:00Z", "2026-03-18T16:00:00Z")


def test_the_spring_forward_day_is_23_hours_and_the_fall_back_day_25() -> None:
    start, end = parse_window("cd").bounds(parse_instant("2026-03-29T12:00:00Z"),
                                           "Europe/Berlin")
    assert (end - start) == 23 * HOUR
    start, end = parse_window("cd").bounds(parse_instant("2026-10-25T12:00:00Z"),
                                           "Europe/Berlin")
    assert (end - start) == 25 * HOUR
    assert to_iso(start) == "2026-10-24T22:00:00Z"  # local midnight, summer time


def test_a_midnight_inside_a_dst_gap_starts_the_day_at_the_first_wall_time_after_it() -> None:
    # Santiago moves from 00:00 to 01:00 on 2026-09-06: that day starts at 01:00 local (-03)
    start, end = parse_window("cd").bounds(parse_instant("2026-09-06T15:00:00Z"),
                                           "America/Santiago")
    assert to_iso(start) == "2026-09-06T04:00:00Z"
    assert end - start == 23 * HOUR


def test_hours_of_the_repeated_hour_are_told_apart() -> None:
    # Berlin 2026-10-25: 02:00-03:00 happens twice, at 00:00Z (summer) and 01:00Z (winter)
    first = bounds("ch", "2026-10-25T00:30:00Z", "Europe/Berlin")
    second = bounds("ch", "2026-10-25T01:30:00Z", "Europe/Berlin")
    assert first == ("2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z")
    assert second == ("2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z")


def test_a_half_hour_zone_starts_its_hours_on_the_half_hour() -> None:
    assert bounds("ch", "2026-03-18T10:37:00Z", "Asia/Kolkata") == (
        "2026-03-18T10:30:00Z", "2026-03-18T11:30:00Z")


def test_month_ends_and_leap_days() -> None:
    assert bounds("cM", "2028-02-29T23:59:59Z") == ("2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z")
    assert bounds("M(1)", "2026-03-31T12:00:00Z") == (
        "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")
    assert bounds("d(1)", "2028-03-01T05:00:00Z") == (
        "2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z")


def test_iso_weeks_start_on_monday_even_across_a_year() -> None:
    # 2027-01-01 is a Friday: its week began on Monday 2026-12-28
    assert bounds("cw", "2027-01-01T08:00:00Z") == ("2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z")
    assert bounds("cw", "2026-03-16T00:00:00Z") == ("2026-03-16T00:00:00Z", "2026-03-23T00:00:00Z")
    assert bounds("cw", "2026-03-22T23:59:59Z") == ("2026-03-16T00:00:00Z", "2026-03-23T00:00:00Z")


@pytest.mark.parametrize("text", ["xd", "cq", "d()", "d(0)", "d(-1)", "d(1,0)", "D(1)", "d(1,2,3)",
                                  f"d({MAX_UNITS + 1})", "c d"])
def test_malformed_windows_are_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_window(text, "depends_on[0].window")
    assert caught.value.field == "depends_on[0].window"


@pytest.mark.parametrize("text", ["cm", "ch", "cd", "cw", "cM", "cy", "h(3)", "d(1,2)", "M(12)"])
def test_a_window_prints_as_it_was_written(text: str) -> None:
    assert str(parse_window(text)) == text


@given(planned=st.integers(0, 4_000_000_000 * US_PER_S),
       unit=st.sampled_from("mhdwMy"),
       zone=st.sampled_from(["UTC", "Europe/Berlin", "America/Santiago", "Asia/Kolkata",
                             "Australia/Lord_Howe"]))
def test_the_current_unit_holds_its_instant_and_the_previous_one_ends_where_it_starts(
    planned: int, unit: str, zone: str,
) -> None:
    start, end = Window(unit).bounds(planned, zone)
    assert start <= planned < end
    before_start, before_end = Window(unit, 1, 1).bounds(planned, zone)
    assert before_end == start and before_start < before_end
