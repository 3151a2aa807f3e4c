"""Clocks the engine reads time from; tests set a ManualClock instead of sleeping."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable

from cronwheel.domain.time import Micros


class SystemClock:
    """This machine's clock, shifted by `offset_us` (a test's way to skew a node)."""

    def __init__(self, offset_us: Micros = 0) -> None:
        self._offset = offset_us

    def now(self) -> Micros:
        return time.time_ns() // 1_000 + self._offset


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

    async def sync(self, db_now: Callable[[], Awaitable[Micros]]) -> None:
        before = self._local.now()
        database = await db_now()
        after = self._local.now()
        # The estimate is off by at most half its round trip; a loaded moment's slow round
        # trip would otherwise move deliveries by milliseconds, even early.
        self._samples.append((after - before, database - (before + after) // 2))
        self._offset = min(self._samples)[1]


class ManualClock:
    def __init__(self, start: Micros) -> None:
        self._now = start

    def now(self) -> Micros:
        return self._now

    def set(self, value: Micros) -> None:
        self._now = value

    def advance(self, delta: Micros) -> None:
        self._now += delta
