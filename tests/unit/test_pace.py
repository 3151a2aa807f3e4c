"""A pass's size from its time budget and what the last passes cost."""

from __future__ import annotations

from cronwheel.domain.pace import Pace


def test_a_pass_takes_what_its_budget_buys_at_the_cost_learned() -> None:
    pace = Pace(budget_us=30_000, floor=50, cost_us=100.0, weight=1.0)
    assert pace.size() == 300
    pace.observe(300, 60_000)  # 200 µs each: the machine got slower
    assert pace.size() == 150


def test_a_slow_store_still_takes_the_floor() -> None:
    pace = Pace(budget_us=30_000, floor=50, weight=1.0)
    pace.observe(100, 10_000_000)
    assert pace.size() == 50


def test_a_pass_smaller_than_the_floor_does_not_teach_its_commit_cost_as_per_fire() -> None:
    pace = Pace(budget_us=30_000, floor=50, cost_us=100.0)
    pace.observe(1, 5_000)
    assert pace.size() == 300
