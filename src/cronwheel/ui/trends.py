"""The dashboard's curves, from the very measurements `/metrics` exports.

A sampler reads the Prometheus counters and the fire-lateness histogram of this process every
few seconds and keeps the differences: attempts by outcome and lateness quantiles per
interval, for the last hour. Nothing is asked of the database; a node shows what it fired.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass

from cronwheel import metrics

OUTCOMES = ("success", "failure", "timeout", "error", "handed_off")
KEEP = 360  # intervals kept: an hour of 10 s steps


@dataclass(frozen=True, slots=True)
class Step:
    """What happened in one interval, ending at `at` (epoch seconds)."""

    at: float
    outcomes: dict[str, int]
    fired: int
    p50: float | None  # seconds late, None when nothing fired
    p99: float | None


@dataclass(frozen=True, slots=True)
class _Reading:
    outcomes: dict[str, float]
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count)


def read_metrics() -> _Reading:
    outcomes: dict[str, float] = dict.fromkeys(OUTCOMES, 0.0)
    for family in metrics.DELIVERIES.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                name = sample.labels.get("outcome", "")
                outcomes[name] = outcomes.get(name, 0.0) + sample.value
    buckets: list[tuple[float, float]] = []
    for family in metrics.FIRE_LATENESS.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), sample.value))
    return _Reading(outcomes, tuple(sorted(buckets)))


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated inside its bucket the way
    Prometheus's histogram_quantile does; None for an empty one."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: its bound is all we know
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def step_between(before: _Reading, after: _Reading, at: float) -> Step:
    outcomes = {k: round(after.outcomes.get(k, 0) - before.outcomes.get(k, 0))
                for k in after.outcomes}
    old = dict(before.buckets)
    delta = [(bound, count - old.get(bound, 0.0)) for bound, count in after.buckets]
    fired = round(delta[-1][1]) if delta else 0
    return Step(at, {k: v for k, v in outcomes.items() if v > 0}, fired,
                quantile(0.5, delta), quantile(0.99, delta))


class Trends:
    """The last hour of steps of this process; `run` samples until cancelled."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self.steps: deque[Step] = deque(maxlen=KEEP)
        self._last = read_metrics()

    def sample(self) -> None:
        now = read_metrics()
        self.steps.append(step_between(self._last, now, time.time()))
        self._last = now

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            self.sample()
