"""One-shot schedules and the schedule registry (cronwheel.domain.schedules)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.schedules import OneShot, schedule_from_dict
from cronwheel.domain.time import MAX_INSTANT, US_PER_S

S = US_PER_S
# 2026-11-21T18:00:00Z
T = 1_795_284_000 * S


class TestOneShot:
    def test_next_after_an_earlier_instant_is_the_instant(self) -> None:
        shot = OneShot(at=T)
        assert shot.next_after(T - 1) == T
        assert shot.next_after(0) == T

    def test_next_after_is_strict(self) -> None:
        assert OneShot(at=T).next_after(T) is None

    def test_nothing_after_it_has_passed(self) -> None:
        assert OneShot(at=T).next_after(T + 1) is None
        assert OneShot(at=T).next_after(T + 3_600 * S) is None

    def test_first_is_the_instant_even_when_created_later(self) -> None:
        shot = OneShot(at=T)
        assert shot.first(T - 10 * S) == T
        assert shot.first(T) == T
        assert shot.first(T + 10 * S) == T  # a past one-shot still fires

    def test_kind(self) -> None:
        assert OneShot.kind == "once"
        assert OneShot(at=T).to_dict()["kind"] == "once"

    def test_to_dict(self) -> None:
        assert OneShot(at=T + 250_000).to_dict() == {
            "kind": "once",
            "at": "2026-11-21T18:00:00.250000Z",
            "countdown": False,
        }
        assert OneShot(at=T, countdown=True).to_dict() == {
            "kind": "once",
            "at": "2026-11-21T18:00:00Z",
            "countdown": True,
        }

    def test_rescheduled_keeps_countdown(self) -> None:
        assert OneShot(at=T, countdown=True).rescheduled(T + 5) == OneShot(T + 5, True)
        assert OneShot(at=T).rescheduled(T + 5) == OneShot(T + 5, False)


class TestParseOnce:
    @pytest.mark.parametrize(
        ("at", "expected"),
        [
            ("2026-11-21T18:00:00Z", T),
            ("2026-11-21T18:00:00+08:00", T - 8 * 3_600 * S),
            ("2026-11-21T18:00:00.000001Z", T + 1),
            (T, T),
            (T + 7, T + 7),
            (0, 0),
            (MAX_INSTANT, MAX_INSTANT),
        ],
    )
    def test_at_as_text_or_integer_micros(self, at: str | int, expected: int) -> None:
        schedule = schedule_from_dict({"kind": "once", "at": at}, now=123)
        assert schedule == OneShot(at=expected, countdown=False)

    @pytest.mark.parametrize(
        ("after", "expected"),
        [
            ("PT5S", 5 * S),
            ("PT1.5S", 1_500_000),
            ("P1DT2H", 93_600 * S),
            (5, 5 * S),
            (1.5, 1_500_000),
            (0.000001, 1),
            (0, 0),
            ("PT0S", 0),
        ],
    )
    def test_after_counts_from_now(self, after: str | float, expected: int) -> None:
        schedule = schedule_from_dict({"kind": "once", "after": after}, now=T)
        assert schedule == OneShot(at=T + expected)

    def test_countdown_flag_is_kept(self) -> None:
        schedule = schedule_from_dict({"kind": "once", "after": "PT100S", "countdown": True}, now=T)
        assert schedule == OneShot(at=T + 100 * S, countdown=True)

    @pytest.mark.parametrize(
        "data",
        [
            {"kind": "once"},
            {"kind": "once", "at": None, "after": None},
            {"kind": "once", "at": "2026-11-21T18:00:00Z", "after": "PT5S"},
            {"kind": "once", "at": T, "after": 0},
        ],
        ids=["neither", "both-none", "both-text", "both-number"],
    )
    def test_exactly_one_of_at_and_after(self, data: dict[str, Any]) -> None:
        with pytest.raises(InvalidField) as info:
            schedule_from_dict(data, now=T)
        assert info.value.field == "at"
        assert "after" in info.value.message

    @pytest.mark.parametrize(
        "at",
        [-1, MAX_INSTANT + 1, "1969-12-31T23:59:59Z", "1970-01-01T00:00:00+00:01"],
    )
    def test_at_out_of_range(self, at: str | int) -> None:
        with pytest.raises(InvalidField) as info:
            schedule_from_dict({"kind": "once", "at": at}, now=T)
        assert info.value.field == "at"

    @pytest.mark.parametrize("at", ["soon", "2026-11-21T18:00:00", ""])
    def test_at_text_must_be_an_instant_with_offset(self, at: str) -> None:
        with pytest.raises(InvalidField) as info:
            schedule_from_dict({"kind": "once", "at": at}, now=T)
        assert info.value.field == "at"

    @pytest.mark.parametrize("after", [-1, -0.5, "PT-1S", "-PT1S", "soon", "P1M", "PT"])
    def test_negative_or_malformed_after_is_rejected(self, after: str | float) -> None:
        with pytest.raises(InvalidField) as info:
            schedule_from_dict({"kind": "once", "after": after}, now=T)
        assert info.value.field == "after"

    def test_after_beyond_the_last_instant_is_rejected(self) -> None:
        seconds_left = (MAX_INSTANT - T) // S
        assert schedule_from_dict({"kind": "once", "after": seconds_left}, now=T) == OneShot(
            MAX_INSTANT
        )
        with pytest.raises(InvalidField) as info:
            schedule_from_dict({"kind": "once", "after": seconds_left + 1}, now=T)
        assert info.value.field == "at"

    @pytest.mark.parametrize("after", ["P" + "9" * 400 + "D", "PT" + "9" * 320 + "S",
                                       "P99999999999D"])
    def test_a_duration_too_long_for_any_instant_is_refused(self, after: str) -> None:
        # hundreds of digits read as an infinite float, which round() cannot take (was a 500)
        with pytest.raises(InvalidField) as info:
            schedule_from_dict({"kind": "once", "after": after}, now=T)
        assert info.value.field == "after"

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"kind": "once", "at": [1]}, "at"),
            ({"kind": "once", "at": {"seconds": 1}}, "at"),
            ({"kind": "once", "at": True}, "at"),
            ({"kind": "once", "at": float(T)}, "at"),
            ({"kind": "once", "at": float("nan")}, "at"),
            ({"kind": "once", "after": [5]}, "after"),
            ({"kind": "once", "after": {"s": 5}}, "after"),
            ({"kind": "once", "after": True}, "after"),
            ({"kind": "once", "after": float("nan")}, "after"),
            ({"kind": "once", "after": float("inf")}, "after"),
            ({"kind": "once", "after": 1e308}, "after"),
        ],
        ids=[
            "at-list",
            "at-object",
            "at-bool",
            "at-float",
            "at-nan",
            "after-list",
            "after-object",
            "after-bool",
            "after-nan",
            "after-inf",
            "after-1e308",
        ],
    )
    def test_values_of_the_wrong_type_are_invalid_fields(
        self, data: dict[str, Any], field: str
    ) -> None:
        # A submitted schedule with an unusable value is the caller's fault: it must come
        # back as InvalidField naming the field, never as a TypeError or OverflowError.
        with pytest.raises(InvalidField) as info:
            schedule_from_dict(data, now=T)
        assert info.value.field == field


class TestRegistry:
    @pytest.mark.parametrize("kind", ["weekly", "", None, 1])
    def test_unknown_kind_lists_known_kinds(self, kind: object) -> None:
        with pytest.raises(InvalidField) as info:
            schedule_from_dict({"kind": kind, "at": T}, now=T)
        assert info.value.field == "kind"
        assert "once" in info.value.message

    def test_missing_kind(self) -> None:
        with pytest.raises(InvalidField) as info:
            schedule_from_dict({"at": T}, now=T)
        assert info.value.field == "kind"

    @given(
        at=st.integers(min_value=0, max_value=MAX_INSTANT),
        countdown=st.booleans(),
        now=st.integers(min_value=0, max_value=MAX_INSTANT),
    )
    def test_to_dict_round_trip(self, at: int, countdown: bool, now: int) -> None:
        shot = OneShot(at=at, countdown=countdown)
        assert schedule_from_dict(shot.to_dict(), now=now) == shot
