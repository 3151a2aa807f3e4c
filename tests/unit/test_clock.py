"""The manual clock: sleepers wake exactly when time reaches them, in order, never early."""

from __future__ import annotations

import asyncio

import pytest

from cronwheel.clock import ManualClock, SystemClock
from cronwheel.domain.time import US_PER_MS


async def test_advance_wakes_exactly_the_sleepers_whose_instant_has_come() -> None:
    clock = ManualClock(1_000)
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, until: int) -> None:
        await clock.sleep_until(until)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, at)) for n, at in (("b", 3_000), ("a", 2_000),
                                                                ("c", 5_000))]
    await clock.settle()
    clock.advance(999)
    await clock.settle()
    assert woke == []
    await clock.advance_and_settle(2_001)  # to 4_000, stopping at 2_000 and 3_000 on the way
    assert woke == [("a", 2_000), ("b", 3_000)]
    assert clock.next_instant() == 5_000
    clock.set(10_000)
    await asyncio.gather(*tasks)
    assert woke[-1] == ("c", 10_000)


async def test_a_wake_event_ends_the_sleep_early_and_says_so() -> None:
    clock = ManualClock(0)
    wake = asyncio.Event()
    sleeping = asyncio.create_task(clock.sleep_until(1_000_000, wake))
    await clock.settle()
    assert not sleeping.done()
    wake.set()
    assert await sleeping is True
    assert clock.now() == 0 and clock.next_instant() is None
    timer = asyncio.create_task(clock.sleep_until(5, asyncio.Event()))
    await clock.advance_and_settle(5)
    assert await timer is False  # its instant came; the event was never set


async def test_a_past_instant_returns_at_once_without_being_woken() -> None:
    clock = ManualClock(100)
    assert await clock.sleep_until(100) is False
    assert clock.next_instant() is None


async def test_settle_names_the_tasks_that_never_go_quiet() -> None:
    clock = ManualClock(0)
    stuck = asyncio.create_task(asyncio.Event().wait(), name="stuck")
    with pytest.raises(TimeoutError, match="stuck"):
        await clock.settle(timeout=0.05)
    stuck.cancel()


async def test_the_system_clock_never_wakes_before_the_instant() -> None:
    clock = SystemClock()
    for _ in range(20):
        instant = clock.now() + 3 * US_PER_MS + 317
        assert await clock.sleep_until(instant) is False
        assert clock.now() >= instant
