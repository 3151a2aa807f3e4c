"""Clocks the engine reads time from; tests set a ManualClock instead of sleeping."""

from __future__ import annotations

import time
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

    def __init__(self, local: SystemClock) -> None:
        self._local = local
        self._offset: Micros = 0

    @property
    def offset_us(self) -> Micros:
        return self._offset

    def now(self) -> Micros:
        return self._local.now() + self._offset

    async def sync(self, db_now: Callable[[], Awaitable[Micros]]) -> None:
        before = self._local.now()
        database = await db_now()
        after = self._local.now()
        self._offset = database - (before + after) // 2  # half the round trip each way


class ManualClock:
    def __init__(self, start: Micros) -> None:
        self._now = start

    def now(self) -> Micros:
        return self._now

    def set(self, value: Micros) -> None:
        self._now = value

    def advance(self, delta: Micros) -> None:
        self._now += delta
