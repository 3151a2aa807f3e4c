"""The transport of worker targets: it hands a run to workers instead of calling anyone.

The run's outcome comes later, reported by the workers (see `WorkerService.finish`). When
no worker of the group is online and switched on for the job, the attempt fails retryably.

Who is online, how busy, and which switches are off are read from the database at most every
`FRESH_S` per group and job (every hand-off reading them made the server the bottleneck);
a change made through this node (a registration, a stop, a switch) is seen at once, one
made through another node within `FRESH_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import zlib
from collections import OrderedDict
from dataclasses import replace

from cronwheel.contracts import (
    DEFAULT_TIMINGS,
    Clock,
    Delivery,
    DeliveryResult,
    HandOff,
    HandOffSignals,
    WorkerStore,
    WorkerTimings,
)
from cronwheel.domain.routing import Candidate, choose
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.worker_target import WorkerTarget
from cronwheel.ids import new_id

TURNS_KEPT = 100_000  # jobs remembered for round-robin; the oldest start again
SWITCHES_KEPT = 10_000
FRESH_S = 0.25


class WorkerTransport:
    def __init__(
        self, workers: WorkerStore, clock: Clock, hub: HandOffSignals, owner: str,
        timings: WorkerTimings = DEFAULT_TIMINGS,
    ) -> None:
        self._workers = workers
        self._clock = clock
        self._hub = hub
        self._owner = owner
        self._lease_us = timings.lease_us
        self._turns: OrderedDict[str, int] = OrderedDict()
        # (group, job type) -> when read, hub epoch, candidates
        self._groups: dict[tuple[str, str], tuple[float, int, list[Candidate]]] = {}
        self._off: OrderedDict[str, tuple[float, int, frozenset[str]]] = OrderedDict()
        self._batch: list[tuple[HandOff, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    def _turn(self, job_id: str) -> int:
        """Round-robin per job, starting where the job's id says: one-shot jobs (one run
        each) spread over the workers instead of all going to the first."""
        turn = self._turns.pop(job_id, zlib.crc32(job_id.encode()) - 1) + 1
        self._turns[job_id] = turn
        if len(self._turns) > TURNS_KEPT:
            self._turns.popitem(last=False)
        return turn

    def _fresh(self, at: float, epoch: int) -> bool:
        return epoch == self._hub.epoch and time.monotonic() - at < FRESH_S

    async def _group(self, group: tuple[str, str]) -> list[Candidate]:
        """The workers of (group, job type): of the group, accepting the type."""
        cached = self._groups.get(group)
        if cached is not None and cached[2] and self._fresh(cached[0], cached[1]):
            return cached[2]
        epoch = self._hub.epoch
        found = await self._workers.candidates(group[0], self._clock.now() - self._lease_us,
                                               group[1])
        self._groups[group] = (time.monotonic(), epoch, found)
        return found

    async def _switched_off(self, job_id: str) -> frozenset[str]:
        cached = self._off.get(job_id)
        if cached is not None and self._fresh(cached[0], cached[1]):
            return cached[2]
        epoch = self._hub.epoch
        switches = await self._workers.switches(job_id)
        off = frozenset(name for name, on in switches.items() if not on)
        self._off[job_id] = (time.monotonic(), epoch, off)
        self._off.move_to_end(job_id)
        if len(self._off) > SWITCHES_KEPT:
            self._off.popitem(last=False)
        return off

    def _took(self, group: tuple[str, str], picks: list[Candidate]) -> None:
        """Count the hand-off in the cached load, so least-busy spreads between reads."""
        cached = self._groups.get(group)
        if cached is None:
            return
        ids = {p.id for p in picks}
        loaded = [replace(c, busy=c.busy + 1) if c.id in ids else c for c in cached[2]]
        self._groups[group] = (cached[0], cached[1], loaded)

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        target = delivery.target
        assert isinstance(target, WorkerTarget)
        off = await self._switched_off(delivery.job_id)
        group = (target.group, target.job_type)
        candidates = [c for c in await self._group(group) if c.name not in off]
        picks = choose(target.route, candidates, delivery.key, self._turn(delivery.job_id),
                       random.random())
        if not picks:
            return DeliveryResult(
                AttemptOutcome.ERROR, retryable=True,
                error=f"no online worker of group {target.group!r} that accepts "
                      f"{target.job_type!r} jobs may run this job",
            )
        handed = await self._hand_off(HandOff(
            delivery.run_id, delivery.attempt, delivery.job_id,
            tuple((new_id(), c.id, c.name, c.host) for c in picks)))
        if handed:
            self._took(group, picks)
            for pick in picks:
                self._hub.notify(pick.id)
        return DeliveryResult(AttemptOutcome.SUCCESS, handed_off=True)

    async def _hand_off(self, item: HandOff) -> bool:
        """Join the hand-off being gathered: the deliveries of one fire batch arrive in the
        same turn of the loop and go to the database as one write."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._batch.append((item, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="cronwheel-hand-off")
        return await future

    async def _flush(self) -> None:
        while self._batch:
            await asyncio.sleep(0)  # let the rest of this turn's deliveries join
            batch, self._batch = self._batch, []
            now = self._clock.now()
            try:
                moved = await self._workers.hand_off(
                    self._owner, [item for item, _ in batch], now, now + self._lease_us)
            except Exception as exc:  # each delivery reports it; its run is retried
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for item, future in batch:
                    if not future.done():
                        future.set_result(item.run_id in moved)

    async def aclose(self) -> None:
        if self._flushing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing
