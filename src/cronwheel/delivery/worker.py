"""The transport of worker targets: it hands a run to workers instead of calling anyone.

The run's outcome comes later, reported by the workers (see `WorkerService.finish`). When
no worker of the group is online and switched on for the job, the attempt fails retryably.
"""

from __future__ import annotations

import random
from collections import OrderedDict

from cronwheel.contracts import Clock, Delivery, DeliveryResult
from cronwheel.domain.routing import choose
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.worker_target import WorkerTarget
from cronwheel.ids import new_id
from cronwheel.store import SqlStore
from cronwheel.worker_service import DEFAULT_TIMINGS, WorkerHub, WorkerTimings

TURNS_KEPT = 100_000  # jobs remembered for round-robin; the oldest start again from zero


class WorkerTransport:
    def __init__(
        self, store: SqlStore, clock: Clock, hub: WorkerHub, owner: str,
        timings: WorkerTimings = DEFAULT_TIMINGS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._hub = hub
        self._owner = owner
        self._timings = timings
        self._turns: OrderedDict[str, int] = OrderedDict()

    def _turn(self, job_id: str) -> int:
        turn = self._turns.pop(job_id, -1) + 1
        self._turns[job_id] = turn
        if len(self._turns) > TURNS_KEPT:
            self._turns.popitem(last=False)
        return turn

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        target = delivery.target
        assert isinstance(target, WorkerTarget)
        now = self._clock.now()
        lease_us = round(self._timings.lease_s * 1_000_000)
        candidates = await self._store.workers.candidates(
            target.group, delivery.job_id, now - lease_us
        )
        picks = choose(target.route, candidates, delivery.key, self._turn(delivery.job_id),
                       random.random())
        if not picks:
            return DeliveryResult(
                AttemptOutcome.ERROR, retryable=True,
                error=f"no online worker of group {target.group!r} may run this job",
            )
        handed = await self._store.workers.hand_off(
            self._owner, delivery.run_id, delivery.attempt, delivery.job_id,
            [(new_id(), c.id, c.name, c.host) for c in picks],
            now, now + lease_us,
        )
        if handed:
            for pick in picks:
                self._hub.notify(pick.id)
        return DeliveryResult(AttemptOutcome.SUCCESS, handed_off=True)

    async def aclose(self) -> None:
        return None
