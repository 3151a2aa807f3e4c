"""Instants, durations and their text forms (cronwheel.domain.time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.time import (
    MAX_INSTANT,
    US_PER_S,
    from_datetime,
    from_seconds,
    parse_duration,
    parse_instant,
    to_datetime,
    to_iso,
)

# 2026-11-21T18:00:00Z: 2026-01-01 is 1_767_225_600 s, plus 324 days and 18 hours.
NOV_21_18H_UTC_S = 1_767_225_600 + 324 * 86_400 + 18 * 3_600  # 1_795_284_000
EIGHT_HOURS_S = 8 * 3_600


class TestParseInstant:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:00.000001Z", 1),
            ("1970-01-01T08:00:00+08:00", 0),
            ("1969-12-31T19:00:00-05:00", 0),
            ("2000-01-01T00:00:00Z", 946_684_800 * US_PER_S),
            ("2026-11-21T18:00:00Z", NOV_21_18H_UTC_S * US_PER_S),
            ("2026-11-21T18:00:00+00:00", NOV_21_18H_UTC_S * US_PER_S),
            ("2026-11-21T18:00:00+08:00", (NOV_21_18H_UTC_S - EIGHT_HOURS_S) * US_PER_S),
            (
                "2026-11-21T18:00:00.123456+08:00",
                (NOV_21_18H_UTC_S - EIGHT_HOURS_S) * US_PER_S + 123_456,
            ),
            ("2026-11-21T18:00:00.5Z", NOV_21_18H_UTC_S * US_PER_S + 500_000),
            ("2026-11-21T18:30:00+05:30", (NOV_21_18H_UTC_S - 5 * 3_600) * US_PER_S),
        ],
    )
    def test_parses_offsets_to_exact_microseconds(self, text: str, expected: int) -> None:
        assert parse_instant(text) == expected

    def test_same_instant_in_two_offsets_is_equal(self) -> None:
        assert parse_instant("2026-11-21T10:00:00Z") == parse_instant("2026-11-21T18:00:00+08:00")

    @pytest.mark.parametrize("text", ["2026-11-21T18:00:00", "2026-11-21", "2026-11-21T18:00"])
    def test_naive_instant_is_rejected_naming_the_field(self, text: str) -> None:
        with pytest.raises(InvalidField) as info:
            parse_instant(text, "run_at")
        assert info.value.field == "run_at"
        assert "offset" in info.value.message

    @pytest.mark.parametrize("text", ["", "tomorrow", "2026-13-01T00:00:00Z", "18:00Z"])
    def test_garbage_is_rejected_naming_the_field(self, text: str) -> None:
        with pytest.raises(InvalidField) as info:
            parse_instant(text, "at")
        assert info.value.field == "at"

    def test_default_field_is_at(self) -> None:
        with pytest.raises(InvalidField) as info:
            parse_instant("nope")
        assert info.value.field == "at"


class TestDatetimeConversion:
    def test_from_aware_datetime_in_another_zone(self) -> None:
        value = datetime(2026, 11, 21, 18, 0, 0, 7, tzinfo=timezone(timedelta(hours=8)))
        assert from_datetime(value) == (NOV_21_18H_UTC_S - EIGHT_HOURS_S) * US_PER_S + 7

    def test_naive_datetime_is_rejected(self) -> None:
        with pytest.raises(InvalidField):
            from_datetime(datetime(2026, 11, 21, 18, 0, 0))

    def test_to_datetime_is_utc_and_exact(self) -> None:
        assert to_datetime(1) == datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
        assert to_datetime(1).utcoffset() == timedelta(0)

    @given(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)))
    def test_datetime_round_trip(self, value: datetime) -> None:
        assert to_datetime(from_datetime(value)) == value


class TestToIso:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0, "1970-01-01T00:00:00Z"),
            (1, "1970-01-01T00:00:00.000001Z"),
            (NOV_21_18H_UTC_S * US_PER_S, "2026-11-21T18:00:00Z"),
            (NOV_21_18H_UTC_S * US_PER_S + 123_456, "2026-11-21T18:00:00.123456Z"),
            (MAX_INSTANT, "9999-12-31T23:59:59Z"),
        ],
    )
    def test_formats_in_utc_with_z(self, value: int, expected: str) -> None:
        assert to_iso(value) == expected

    @given(st.integers(min_value=-62_135_596_800 * US_PER_S, max_value=MAX_INSTANT))  # from year 1
    def test_formats_as_datetime_isoformat_does(self, value: int) -> None:
        expected = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value))
        assert to_iso(value) == expected.isoformat().replace("+00:00", "Z")

    @given(st.integers(min_value=0, max_value=MAX_INSTANT))
    def test_is_datetimes_own_iso_format(self, value: int) -> None:
        """The kept seconds' text changes nothing: the same text datetime writes."""
        assert to_iso(value) == to_datetime(value).isoformat().replace("+00:00", "Z")

    @given(st.integers(min_value=0, max_value=MAX_INSTANT))
    def test_round_trip_through_parse_instant(self, value: int) -> None:
        text = to_iso(value)
        assert text.endswith("Z")
        assert parse_instant(text) == value


class TestParseDuration:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("PT30S", 30 * US_PER_S),
            ("PT1.5S", 1_500_000),
            ("PT0.000001S", 1),
            ("PT1.000001S", 1_000_001),
            ("PT0S", 0),
            ("PT1M", 60 * US_PER_S),
            ("PT2H", 7_200 * US_PER_S),
            ("PT1H30M", 5_400 * US_PER_S),
            ("P2D", 172_800 * US_PER_S),
            ("P1DT2H", 93_600 * US_PER_S),
            ("P1DT2H3M4S", (86_400 + 7_200 + 180 + 4) * US_PER_S),
            ("P0.5D", 43_200 * US_PER_S),
            (" PT30S ", 30 * US_PER_S),
        ],
    )
    def test_accepts_days_and_clock_units(self, text: str, expected: int) -> None:
        assert parse_duration(text) == expected

    @pytest.mark.parametrize(
        "text",
        ["P", "PT", "1S", "PT-1S", "P1DT", "", "30", "P1M", "P1Y", "P1W", "PT1S2M", "PT.5S", "T1S"],
    )
    def test_rejects_malformed_or_ambiguous_forms(self, text: str) -> None:
        with pytest.raises(InvalidField) as info:
            parse_duration(text, "interval")
        assert info.value.field == "interval"

    def test_default_field_is_duration(self) -> None:
        with pytest.raises(InvalidField) as info:
            parse_duration("soon")
        assert info.value.field == "duration"


class TestFromSeconds:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0, 0),
            (0.0, 0),
            (1, US_PER_S),
            (1.5, 1_500_000),
            (1.000001, 1_000_001),
            (0.000001, 1),
            (1_700_000_000.123456, 1_700_000_000_123_456),
            (253_402_300_799, MAX_INSTANT),
        ],
    )
    def test_converts_to_the_microsecond(self, value: float, expected: int) -> None:
        assert from_seconds(value) == expected

    @pytest.mark.parametrize(
        "value",
        [
            -1,
            -0.000001,
            -1e308,
            float("nan"),
            float("inf"),
            float("-inf"),
            253_402_300_800,  # 10000-01-01T00:00:00Z
            1e20,
            1e308,  # finite, but overflows to inf once scaled to microseconds
        ],
    )
    def test_rejects_out_of_range_values_naming_the_field(self, value: float) -> None:
        with pytest.raises(InvalidField) as info:
            from_seconds(value, "fire_at")
        assert info.value.field == "fire_at"

    @given(st.integers(min_value=0, max_value=4_000_000_000 * US_PER_S))
    def test_fractional_float_seconds_keep_the_microsecond(self, micros: int) -> None:
        # Up to 2096 a float holds epoch seconds finely enough to recover every microsecond.
        assert from_seconds(micros / US_PER_S) == micros

    @given(st.integers(min_value=0, max_value=MAX_INSTANT // US_PER_S))
    def test_integer_seconds_are_exact(self, seconds: int) -> None:
        assert from_seconds(seconds) == seconds * US_PER_S
