"""Clocks the engine reads time from; tests set a ManualClock instead of sleeping."""

from __future__ import annotations

import time

from cronwheel.domain.time import Micros


class SystemClock:
    def now(self) -> Micros:
        return time.time_ns() // 1_000


class ManualClock:
    def __init__(self, start: Micros) -> None:
        self._now = start

    def now(self) -> Micros:
        return self._now

    def set(self, value: Micros) -> None:
        self._now = value

    def advance(self, delta: Micros) -> None:
        self._now += delta
