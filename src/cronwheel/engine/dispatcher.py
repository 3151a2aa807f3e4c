"""Delivers runs after their fire is committed, with bounded concurrency per target and
per namespace.

Namespaces share the deliveries held in memory and the attempts under way fairly
(domain/fairshare.py), and a receiver's slots (engine/slots.py): a slow receiver in one
namespace fills only that namespace's share, so the others' deliveries go out on time.

Results are recorded in batches. Leases of runs held in memory are renewed while they wait
or run, so a slow receiver does not make this node's own runs look abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import weakref
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cronwheel import metrics
from cronwheel.contracts import AttemptRecord, Clock, Delivery, DeliveryResult, Store
from cronwheel.delivery import Transports
from cronwheel.domain import fairshare
from cronwheel.domain.jobs import RetryPolicy
from cronwheel.domain.retry import after_attempt
from cronwheel.domain.runs import Attempt, RunState
from cronwheel.domain.time import US_PER_S, Micros, to_iso
from cronwheel.engine.failover import Failover
from cronwheel.engine.slots import FairSlots, Slots
from cronwheel.logs import target_label

log = logging.getLogger("cronwheel.dispatcher")


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    concurrency: int = 512  # attempts under way at once, all targets together
    per_target: int = 128  # attempts under way at once to one receiver
    per_namespace: int = 256  # attempts under way at once for one namespace
    capacity: int = 20_000  # deliveries held in memory; beyond it runs wait in the database
    renew_slice: int = 500  # runs per lease renewal write
    lease_us: Micros = 30 * US_PER_S
    # While other deliveries are under way, results wait this long (real seconds) for more
    # to join their transaction: one write per result cost a commit and its thread hops.
    record_linger_s: float = 0.005


class Dispatcher:
    def __init__(
        self,
        store: Store,
        transports: Transports,
        clock: Clock,
        owner: str,
        node: str,
        config: DispatchConfig = DispatchConfig(),
        on_retry: Callable[[Micros], None] | None = None,
        on_recorded: Callable[[Sequence[AttemptRecord]], Awaitable[None]] | None = None,
    ) -> None:
        """`on_recorded` hears of each batch of results once it is stored (the resolver
        releases the runs waiting for them)."""
        self._store = store
        self._transports = transports
        self._clock = clock
        self._owner = owner
        self._node = node
        self._config = config
        self._on_retry = on_retry
        self.on_recorded = on_recorded
        self._global = Slots(config.concurrency)
        # each receiver's slots, shared between the namespaces delivering to it
        self._per_target: dict[str, FairSlots] = defaultdict(
            lambda: FairSlots(config.per_target)
        )
        self._held: dict[str, asyncio.Task[None]] = {}
        self._held_by_ns: Counter[str] = Counter()
        self._per_namespace: dict[str, Slots] = {}
        self._records: list[AttemptRecord] = []
        self._records_ready = asyncio.Event()
        self._flushing = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._background: list[asyncio.Task[None]] = []
        self.gate: Failover | None = None  # a PostgreSQL node delivers only while it holds its lock

    def start(self) -> None:
        # read when scraped: setting it on every submit and end cost two locks a callback
        me = weakref.ref(self)
        metrics.INFLIGHT.set_function(lambda: len(d._held) if (d := me()) is not None else 0)
        self._background = [
            asyncio.create_task(self._flush_loop(), name="cronwheel-results"),
            asyncio.create_task(self._renew_loop(), name="cronwheel-renew"),
        ]

    def tasks(self) -> list[asyncio.Task[None]]:
        """Its loops and the deliveries it holds, for a test that waits for them to go idle."""
        return [*self._background, *self._held.values()]

    def room(self) -> int:
        """How many runs to take from the database: what is left of the capacity less a
        quarter of it, kept for fires of the namespaces under their share."""
        return max(0, self._config.capacity * 3 // 4 - len(self._held))

    def room_for(self, namespace: str) -> int:
        """How many more deliveries `namespace` may hold now: its fair share of the capacity
        less what it holds (the rest of its fires wait in the database)."""
        return fairshare.room_for(namespace, self._held_by_ns, len(self._held),
                                  self._config.capacity)

    def crowding(self) -> frozenset[str]:
        """The namespaces holding their share of the capacity or more: their further runs
        wait while the others' are taken."""
        held = self._held_by_ns
        fair = fairshare.share(self._config.capacity, len(held))
        return frozenset(ns for ns, count in held.items() if count >= fair)

    @property
    def lease_us(self) -> Micros:
        return self._config.lease_us

    def submit(self, delivery: Delivery, retry: RetryPolicy) -> None:
        task = asyncio.create_task(self._deliver(delivery, retry, self._epoch()))
        self._held[delivery.run_id] = task
        self._held_by_ns[delivery.namespace] += 1
        self._idle.clear()

    def cancel(self, run_ids: list[str]) -> None:
        """Stop deliveries of runs cancelled elsewhere (a `replace` concurrency policy)."""
        for run_id in run_ids:
            task = self._held.get(run_id)
            if task is not None:
                task.cancel()

    def _epoch(self) -> int:
        return 0 if self.gate is None else self.gate.epoch

    def _may_deliver(self, epoch: int) -> bool:
        """Still the holder of the claim it was given: another node takes the runs of a node
        whose lock was lost, so from then on a delivery here could double theirs."""
        return self.gate is None or (self.gate.holding and self.gate.epoch == epoch)

    def _lane(self, namespace: str) -> Slots:
        lane = self._per_namespace.get(namespace)
        if lane is None:
            lane = self._per_namespace[namespace] = Slots(self._config.per_namespace)
        return lane

    async def _deliver(self, delivery: Delivery, retry: RetryPolicy, epoch: int = 0) -> None:
        namespace = delivery.namespace
        lane = self._lane(namespace)
        receiver = self._per_target[delivery.target.slot]
        taken: list[Slots] = []
        try:
            if not receiver.try_take(namespace):
                await receiver.take(namespace)
            try:
                # always in this order (receiver, namespace, all), as nested locks are
                for slots in (lane, self._global):
                    if not slots.try_take():
                        await slots.take()
                    taken.append(slots)
                # Fired a moment early (the fire lead): go out on the instant, never before it.
                if delivery.scheduled_at > self._clock.now():
                    await self._clock.sleep_until(delivery.scheduled_at)
                if not self._may_deliver(epoch):
                    log.info("delivery.dropped", extra={"run_id": delivery.run_id,
                                                        "reason": "node lock lost"})
                    return
                started = self._started(delivery)
                result = await self._transports.deliver(delivery)
                finished = self._clock.now()
            finally:
                for slots in reversed(taken):
                    slots.release()
                receiver.release(namespace)
            if result.handed_off:
                metrics.deliveries(delivery.target.kind, "handed_off").inc()
            else:
                self._record(delivery, retry, result, started, finished)
        finally:
            del self._held[delivery.run_id]
            self._held_by_ns[namespace] -= 1
            if not self._held_by_ns[namespace]:  # none holds or waits for its lane
                del self._held_by_ns[namespace]
                del self._per_namespace[namespace]
            if not self._held:
                self._idle.set()

    def _started(self, delivery: Delivery) -> Micros:
        """Now, a first attempt's start: its lateness goes to the fire-lateness histogram."""
        started = self._clock.now()
        if delivery.attempt == 1:
            metrics.FIRE_LATENESS.observe(max(0, started - delivery.scheduled_at) / 1e6)
        return started

    def _record(
        self,
        delivery: Delivery,
        retry: RetryPolicy,
        result: DeliveryResult,
        started: Micros,
        finished: Micros,
    ) -> None:
        kind = delivery.target.kind
        metrics.deliveries(kind, result.outcome.value).inc()
        metrics.delivery_seconds(kind).observe((finished - started) / 1e6)
        state, due = after_attempt(retry, delivery.attempt, result.outcome, result.retryable,
                                   finished, random.random())
        if state is not RunState.SUCCEEDED:
            log.info(
                "delivery.failed",
                extra={"job_key": delivery.key, "namespace": delivery.namespace,
                       "run_id": delivery.run_id, "attempt": delivery.attempt,
                       "target": target_label(delivery.target.to_dict()),
                       "error": result.error, "retry_at": None if due is None else to_iso(due)},
            )
        attempt = Attempt(
            run_id=delivery.run_id,
            number=delivery.attempt,
            started_at=started,
            finished_at=finished,
            outcome=result.outcome,
            node=self._node,
            status_code=result.status_code,
            response=result.response,
            error=result.error,
        )
        self._records.append(AttemptRecord(attempt, state, due, delivery.job_id,
                                           delivery.alerting))
        self._records_ready.set()
        if due is not None and self._on_retry is not None:
            self._on_retry(due)

    async def _flush_loop(self) -> None:
        while True:
            await self._records_ready.wait()
            if self._held and self._config.record_linger_s > 0:  # more results on the way
                await asyncio.sleep(self._config.record_linger_s)
            await self.flush()

    @property
    def recording(self) -> bool:
        """Results are waiting to be written, or being written (a test's sign of activity)."""
        return self._records_ready.is_set() or self._flushing > 0

    async def flush(self) -> None:
        self._records_ready.clear()
        records, self._records = self._records, []
        if not records:
            return
        self._flushing += 1
        try:
            await self._store.record_attempts(self._owner, records)
            await self._tell(records)
        except Exception:
            # Not recorded: the runs stay running under our lease, which lapses, and the
            # rescuer re-delivers them with the same idempotency key.
            log.exception("attempts.record_failed", extra={"count": len(records)})
        finally:
            self._flushing -= 1

    async def _tell(self, records: Sequence[AttemptRecord]) -> None:
        if self.on_recorded is None:
            return
        try:
            await self.on_recorded(records)
        except Exception:  # stored already; the resolver's sweep catches up
            log.exception("attempts.listener_failed", extra={"count": len(records)})

    async def _renew_loop(self) -> None:
        interval = self._config.lease_us // 3
        while True:
            await self._clock.sleep_until(self._clock.now() + interval)
            await self.renew()

    async def renew(self) -> None:
        """Extend the leases of the runs held, a slice per write, one after another: a
        flood's thousands of held runs in one transaction would hold up every fire queued
        behind it (measured: 70-190 ms for ~10,000 runs on a loaded machine)."""
        held = list(self._held)
        epoch = self._epoch()
        size = self._config.renew_slice
        for start in range(0, len(held), size):
            if not self._may_deliver(epoch):
                return
            part = held[start:start + size]
            try:
                await self._store.renew_runs(
                    self._owner, part, self._clock.now() + self._config.lease_us
                )
            except Exception:
                log.exception("leases.renew_failed", extra={"count": len(part)})

    async def drain(self, grace: float | None = None) -> None:
        """Wait until every held delivery has finished and its result is recorded.

        The grace is real seconds, not engine time: it bounds how long a shutdown takes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        await self.flush()

    async def close(self, grace: float = 5.0) -> None:
        await self.drain(grace)
        for task in list(self._held.values()):
            task.cancel()
        for task in self._background:
            task.cancel()
        for task in [*self._held.values(), *self._background]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._transports.aclose()
