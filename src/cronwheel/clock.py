"""Clocks the engine reads time from and waits on; tests set a ManualClock instead of sleeping."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cronwheel.domain.time import US_PER_S, Micros

# The loop's timers round to whole milliseconds and may wake a little early: a sleeper that
# wakes before its instant sleeps again, padded by this much, so it never returns early.
TIMER_SLACK_US = 500


async def _sleep_on(now: Callable[[], Micros], instant: Micros, wake: asyncio.Event | None) -> bool:
    """Wait until `now()` reaches `instant` or `wake` is set; True if woken. Real time."""
    round_ = 0
    while True:
        if wake is not None and wake.is_set():
            return True
        wait = instant - now()
        if wait <= 0:
            return False
        seconds = (wait + (TIMER_SLACK_US if round_ else 0)) / US_PER_S
        round_ += 1
        if wake is None:
            await asyncio.sleep(seconds)
            continue
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await wake.wait()


class SystemClock:
    """This machine's clock, shifted by `offset_us` (a test's way to skew a node)."""

    def __init__(self, offset_us: Micros = 0) -> None:
        self._offset = offset_us

    def now(self) -> Micros:
        return time.time_ns() // 1_000 + self._offset

    async def sleep_until(self, instant: Micros, wake: asyncio.Event | None = None) -> bool:
        return await _sleep_on(self.now, instant, wake)


class DatabaseClock:
    """The database's clock, read through the local one: nodes whose own clocks disagree
    still agree on when a job is due. Re-synced on every heartbeat."""

    SAMPLES = 8  # the offset comes from the fastest of the last few round trips

    def __init__(self, local: SystemClock) -> None:
        self._local = local
        self._offset: Micros = 0
        self._samples: deque[tuple[Micros, Micros]] = deque(maxlen=self.SAMPLES)

    @property
    def offset_us(self) -> Micros:
        return self._offset

    def now(self) -> Micros:
        return self._local.now() + self._offset

    async def sleep_until(self, instant: Micros, wake: asyncio.Event | None = None) -> bool:
        """A re-sync during the sleep moves its end: each round re-reads `now()`."""
        return await _sleep_on(self.now, instant, wake)

    async def sync(self, db_now: Callable[[], Awaitable[Micros]]) -> None:
        before = self._local.now()
        database = await db_now()
        after = self._local.now()
        # The estimate is off by at most half its round trip; a loaded moment's slow round
        # trip would otherwise move deliveries by milliseconds, even early.
        self._samples.append((after - before, database - (before + after) // 2))
        self._offset = min(self._samples)[1]

Watch = Callable[[], Iterable["asyncio.Task[Any]"]]
Quiet = Callable[["asyncio.Task[Any]"], bool]


def _never(_task: asyncio.Task[Any]) -> bool:
    return False


@dataclass(order=True)
class _Sleeper:
    instant: Micros
    seq: int
    done: asyncio.Future[None] = field(compare=False)
    wake: asyncio.Event | None = field(compare=False)
    task: asyncio.Task[Any] | None = field(compare=False)

    @property
    def parked(self) -> bool:
        """Still waiting: neither its instant has come nor its wake-up been set."""
        return not self.done.done() and not (self.wake is not None and self.wake.is_set())


class ManualClock:
    """Time that moves only when a test moves it.

    `advance` and `set` wake exactly the sleepers whose instant has come, in instant order;
    `advance_and_settle` also lets the woken work run to completion before returning, so a
    test steps through hours of engine time in milliseconds, deterministically.
    """

    def __init__(self, start: Micros) -> None:
        self._now = start
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()
        self._helpers: builtins.set[asyncio.Task[Any]] = builtins.set()  # wait on wake events

    def now(self) -> Micros:
        return self._now

    def set(self, value: Micros) -> None:
        self._now = value
        while self._sleepers and self._sleepers[0].instant <= value:
            sleeper = heapq.heappop(self._sleepers)
            if not sleeper.done.done():
                sleeper.done.set_result(None)

    def advance(self, delta: Micros) -> None:
        self.set(self._now + delta)

    def next_instant(self) -> Micros | None:
        """The earliest instant someone sleeps until, if anyone does."""
        parked = [s.instant for s in self._sleepers if s.parked]
        return min(parked) if parked else None

    async def sleep_until(self, instant: Micros, wake: asyncio.Event | None = None) -> bool:
        if wake is not None and wake.is_set():
            return True
        if instant <= self._now:
            return False
        loop = asyncio.get_running_loop()
        sleeper = _Sleeper(instant, next(self._seq), loop.create_future(), wake,
                           asyncio.current_task())
        heapq.heappush(self._sleepers, sleeper)
        try:
            if wake is None:
                await sleeper.done
                return False
            return await self._first_of(sleeper.done, wake)
        finally:
            if not sleeper.done.done():
                sleeper.done.cancel()  # set() drops it when its instant comes

    async def _first_of(self, done: asyncio.Future[None], wake: asyncio.Event) -> bool:
        waiter = asyncio.create_task(wake.wait())
        self._helpers.add(waiter)
        either: list[asyncio.Future[Any]] = [done, waiter]
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            self._helpers.discard(waiter)
        return wake.is_set()

    # -- for tests: step time and let the loop run dry ------------------------------------------

    def parked_tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The tasks asleep on this clock and not yet woken."""
        return frozenset(s.task for s in self._sleepers if s.parked and s.task is not None)

    async def settle(self, watch: Watch = asyncio.all_tasks, quiet: Quiet = _never,
                     timeout: float = 10.0) -> None:
        """Return once every task of `watch()` (every task by default) but the caller is asleep
        on this clock, finished, or `quiet` (waiting for work, with none to do).

        Work in threads (a database driver's) keeps a task busy, so this polls briefly in real
        time rather than trusting an empty ready queue. Raises TimeoutError naming the tasks
        still busy after `timeout` seconds of real time.
        """
        me = asyncio.current_task()
        deadline = time.monotonic() + timeout
        while True:
            for _ in range(3):
                await asyncio.sleep(0)
            resting = self.parked_tasks() | self._helpers | {me}
            busy = [t for t in watch() if t not in resting and not t.done() and not quiet(t)]
            if not busy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"still busy: {[t.get_name() for t in busy]}")
            await asyncio.sleep(0.0005)

    async def advance_and_settle(
        self, delta: Micros, watch: Watch = asyncio.all_tasks, quiet: Quiet = _never
    ) -> None:
        """Move time forward by `delta`, stopping at each sleeper's instant on the way and
        letting the work it wakes finish, as real time would."""
        target = self._now + delta
        await self.settle(watch, quiet)
        while (due := self.next_instant()) is not None and due <= target:
            self.set(max(due, self._now))
            await self.settle(watch, quiet)
        self.set(target)
        await self.settle(watch, quiet)
