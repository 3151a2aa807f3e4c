"""Late occurrences and the misfire policies (cronwheel.domain.misfire)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.jobs import MisfirePolicy
from cronwheel.domain.misfire import FirePlan, plan
from cronwheel.domain.schedules import OneShot, Schedule
from cronwheel.domain.time import US_PER_S, Micros
from tests.unit.schedules_for_tests import Every

S = US_PER_S
# 2026-11-21T18:00:00Z
T = 1_795_284_000 * S
GRACE = 5 * S




EVERY_10S = Every(start=T, period=10 * S)  # T, T+10s, T+20s, ...


def catch_up(
    schedule: Schedule, due_at: Micros, now: Micros, policy: MisfirePolicy
) -> tuple[list[Micros], list[Micros], Micros | None]:
    """Run plan() pass after pass, as the engine does, until the next occurrence is ahead."""
    fired: list[Micros] = []
    skipped: list[Micros] = []
    due: Micros | None = due_at
    while due is not None and due <= now:
        step = plan(schedule, due, now, policy, GRACE)
        assert step.scheduled_at == due
        (fired if step.fire else skipped).append(step.scheduled_at)
        assert step.next_fire_at is None or step.next_fire_at > due
        due = step.next_fire_at
    return fired, skipped, due


class TestTestSchedule:
    def test_every_is_strictly_after(self) -> None:
        assert EVERY_10S.next_after(T - 1) == T
        assert EVERY_10S.next_after(T) == T + 10 * S
        assert EVERY_10S.next_after(T + 10 * S - 1) == T + 10 * S
        assert EVERY_10S.next_after(T + 35 * S) == T + 40 * S
        assert EVERY_10S.first(T) == T


class TestOnTime:
    @pytest.mark.parametrize("policy", list(MisfirePolicy))
    def test_due_now_fires_and_advances(self, policy: MisfirePolicy) -> None:
        got = plan(EVERY_10S, T + 10 * S, T + 10 * S, policy, GRACE)
        assert got == FirePlan(fire=True, scheduled_at=T + 10 * S, next_fire_at=T + 20 * S)

    @pytest.mark.parametrize("policy", list(MisfirePolicy))
    def test_late_within_grace_is_on_time(self, policy: MisfirePolicy) -> None:
        got = plan(EVERY_10S, T + 10 * S, T + 12 * S, policy, GRACE)
        assert got == FirePlan(True, T + 10 * S, T + 20 * S)

    @pytest.mark.parametrize("policy", list(MisfirePolicy))
    def test_exactly_at_the_grace_limit_is_on_time(self, policy: MisfirePolicy) -> None:
        got = plan(EVERY_10S, T + 10 * S, T + 10 * S + GRACE, policy, GRACE)
        assert got == FirePlan(True, T + 10 * S, T + 20 * S)

    def test_one_microsecond_past_grace_is_late(self) -> None:
        got = plan(EVERY_10S, T + 10 * S, T + 10 * S + GRACE + 1, MisfirePolicy.SKIP, GRACE)
        assert got == FirePlan(False, T + 10 * S, T + 20 * S)

    def test_zero_grace(self) -> None:
        on_time = plan(EVERY_10S, T, T, MisfirePolicy.SKIP, 0)
        late = plan(EVERY_10S, T, T + 1, MisfirePolicy.SKIP, 0)
        assert on_time == FirePlan(True, T, T + 10 * S)
        assert late == FirePlan(False, T, T + 10 * S)


class TestLate:
    # Due at T+10s, noticed at T+35s with 5 s grace: T+10, T+20 and T+30 were all missed.

    def test_fire_once_fires_once_and_skips_ahead_past_now(self) -> None:
        got = plan(EVERY_10S, T + 10 * S, T + 35 * S, MisfirePolicy.FIRE_ONCE, GRACE)
        assert got == FirePlan(fire=True, scheduled_at=T + 10 * S, next_fire_at=T + 40 * S)

    def test_fire_all_fires_the_missed_one_and_advances_by_one(self) -> None:
        got = plan(EVERY_10S, T + 10 * S, T + 35 * S, MisfirePolicy.FIRE_ALL, GRACE)
        assert got == FirePlan(fire=True, scheduled_at=T + 10 * S, next_fire_at=T + 20 * S)

    def test_skip_does_not_fire_and_advances_past_now(self) -> None:
        got = plan(EVERY_10S, T + 10 * S, T + 35 * S, MisfirePolicy.SKIP, GRACE)
        assert got == FirePlan(fire=False, scheduled_at=T + 10 * S, next_fire_at=T + 40 * S)

    def test_skipping_ahead_is_strictly_after_now(self) -> None:
        # `now` lands exactly on an occurrence (T+40s): it is covered by this pass.
        got = plan(EVERY_10S, T + 10 * S, T + 40 * S, MisfirePolicy.FIRE_ONCE, GRACE)
        assert got == FirePlan(True, T + 10 * S, T + 50 * S)


class TestCatchUp:
    def test_fire_all_makes_one_run_per_missed_occurrence(self) -> None:
        fired, skipped, upcoming = catch_up(
            EVERY_10S, T + 10 * S, T + 35 * S, MisfirePolicy.FIRE_ALL
        )
        assert fired == [T + 10 * S, T + 20 * S, T + 30 * S]
        assert skipped == []
        assert upcoming == T + 40 * S

    def test_fire_once_makes_a_single_run(self) -> None:
        fired, skipped, upcoming = catch_up(
            EVERY_10S, T + 10 * S, T + 35 * S, MisfirePolicy.FIRE_ONCE
        )
        assert fired == [T + 10 * S]
        assert skipped == []
        assert upcoming == T + 40 * S

    def test_skip_records_one_miss_and_waits(self) -> None:
        fired, skipped, upcoming = catch_up(EVERY_10S, T + 10 * S, T + 35 * S, MisfirePolicy.SKIP)
        assert fired == []
        assert skipped == [T + 10 * S]
        assert upcoming == T + 40 * S

    @given(
        due_index=st.integers(min_value=0, max_value=50),
        lateness=st.integers(min_value=0, max_value=600 * S),
        policy=st.sampled_from(list(MisfirePolicy)),
    )
    def test_next_occurrence_always_ends_up_ahead_of_now(
        self, due_index: int, lateness: int, policy: MisfirePolicy
    ) -> None:
        due = T + due_index * 10 * S
        now = due + lateness
        fired, skipped, upcoming = catch_up(EVERY_10S, due, now, policy)
        assert upcoming is not None
        assert now < upcoming <= now + 10 * S
        assert len(fired) + len(skipped) >= 1
        assert fired == sorted(set(fired))
        if policy is MisfirePolicy.FIRE_ALL:
            assert skipped == []
            assert fired == list(range(due, now + 1, 10 * S))


class TestOneShot:
    @pytest.mark.parametrize("policy", list(MisfirePolicy))
    def test_on_time_fires_and_is_exhausted(self, policy: MisfirePolicy) -> None:
        assert plan(OneShot(at=T), T, T + 1 * S, policy, GRACE) == FirePlan(True, T, None)

    @pytest.mark.parametrize(
        ("policy", "fire"),
        [
            (MisfirePolicy.FIRE_ONCE, True),
            (MisfirePolicy.FIRE_ALL, True),
            (MisfirePolicy.SKIP, False),
        ],
    )
    def test_late_one_shot(self, policy: MisfirePolicy, fire: bool) -> None:
        got = plan(OneShot(at=T), T, T + 3_600 * S, policy, GRACE)
        assert got == FirePlan(fire, T, None)
