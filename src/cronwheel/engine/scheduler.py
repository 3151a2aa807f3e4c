"""The scheduler loop: claim a short look-ahead window, sleep to the earliest, fire in batches.

Memory holds only the claimed window (bounded by `claim_limit`), never the pending backlog.
Each batch of fires is one transaction; deliveries start after it commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cronwheel import metrics
from cronwheel.contracts import Clock, Delivery, Fire, Store
from cronwheel.domain import fairshare
from cronwheel.domain.jobs import Job
from cronwheel.domain.misfire import plan
from cronwheel.domain.pace import Pace
from cronwheel.domain.runs import Run
from cronwheel.domain.time import US_PER_MS, US_PER_S, Micros
from cronwheel.engine.dispatcher import Dispatcher
from cronwheel.engine.failover import Failover
from cronwheel.ids import new_id
from cronwheel.quotas import Quotas

log = logging.getLogger("cronwheel.scheduler")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    window_us: Micros = 2 * US_PER_S  # how far ahead jobs are claimed
    claim_limit: int = 5_000  # most jobs held in the window
    claim_batch: int = 500  # most jobs per claim query: a big burst would stall the loop
    # most jobs per fire transaction when several namespaces have jobs due, shared between
    # them: a flood's backlog never holds another namespace's due fire behind it for long
    # (one namespace alone in the window fires all it has due at once)
    fire_batch: int = 2_000
    # ... and how long such a pass should take (its size learned from the last passes' cost),
    # with the fewest fires it takes: a fire coming due waits for the pass under way, then
    # for its own; within the fire lead, both end before its instant
    fire_pass_us: Micros = 30 * US_PER_MS
    fire_pass_floor: int = 50
    job_lease_us: Micros = 30 * US_PER_S
    run_poll_us: Micros = 500 * US_PER_MS  # how often pending runs (retries, rescues) are read
    # Commit a fire this early, so a busy writer does not make it late; the delivery still
    # waits for the instant. A pause inside the lead finds the job already fired (409).
    # Measured (bench/README.md): p99 lateness ~3x lower with 100 ms than with 20 ms.
    fire_lead_us: Micros = 100 * US_PER_MS
    # A fire pass also takes what falls due this long after its lead, so a steady stream of
    # fires commits in one transaction per gather, not one per due instant (each costs a
    # commit and a dozen hops to SQLite's thread: at 1,000 fires/s, most of a core).
    fire_gather_us: Micros = 20 * US_PER_MS
    error_backoff_us: Micros = 200 * US_PER_MS


def delivery_for(run: Run, job: Job) -> Delivery:
    return Delivery(
        run_id=run.id,
        attempt=run.attempts,
        job_id=job.id,
        namespace=job.spec.namespace,
        key=job.spec.key,
        scheduled_at=run.scheduled_at,
        fired_at=run.fired_at,
        target=job.spec.target,
        payload=run.payload_override if run.has_override else job.spec.payload,
        priority=job.spec.priority,
        alerting=job.spec.alert is not None,
    )


class Scheduler:
    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        clock: Clock,
        owner: str,
        config: EngineConfig = EngineConfig(),
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._clock = clock
        self._owner = owner
        self._config = config
        # the claimed window, one heap per namespace (a window each): a fire pass takes a
        # fair share of its batch from each, so one namespace's backlog never fills it
        self._heaps: dict[str, list[tuple[Micros, int, int, Job]]] = {}
        self._holding = 0
        self._pace = Pace(config.fire_pass_us, config.fire_pass_floor)
        self._run_pace = Pace(config.fire_pass_us, config.fire_pass_floor)
        self._others_after: Micros = 0  # after a look past found nothing, the next one waits
        self._others_runs_after: Micros = 0  # the same, for runs
        self._seq = itertools.count()
        self._claimed_until: Micros = -1
        self._next_claim: Micros = 0
        self._next_run_poll: Micros = 0
        self._run_dues: list[Micros] = []  # retries announced by run_due, not yet polled for
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # told of the runs a fire leaves waiting for dependencies (the resolver)
        self.on_waiting: Callable[[Sequence[Run]], Awaitable[None]] | None = None
        # per-app fires per second: a fire beyond its app's rate waits in `_delayed` (held
        # outside the claim limit, so other apps' claims go on) until the slot its app's
        # bucket gave it; `_slots` holds each delayed occurrence's (slot, instant it was due)
        self.quotas: Quotas | None = None
        self._delayed: list[tuple[Micros, int, Job]] = []
        self._slots: dict[tuple[str, Micros | None], tuple[Micros, Micros]] = {}
        # in a PostgreSQL cluster: whether this node may act, and its share of the claims
        self.gate: Failover | None = None

    # -- wake-ups from the services (after their commit) ---------------------------------------

    def job_due(self, fire_at: Micros | None) -> None:
        """A job became due at `fire_at`; wake now if it falls inside the claimed window."""
        if fire_at is not None and fire_at <= self._claimed_until:
            self._next_claim = 0
            self._wake.set()

    def drop(self) -> None:
        """Forget the claimed window: this node lost its claims (its lock connection ended)."""
        self._forget_window()
        self._delayed.clear()  # delayed fires are claims too
        self._slots.clear()
        self._claimed_until = -1
        self._next_claim = 0

    def run_due(self, due_at: Micros) -> None:
        """A run comes due at `due_at` (a retry, a manual run): polled for then, looking past
        the namespaces crowding the deliveries even if the last look found nothing."""
        self._others_runs_after = min(self._others_runs_after, due_at)
        self._poll_runs_at(due_at)

    def _poll_runs_at(self, due_at: Micros) -> None:
        # Kept until a poll at or after it: a poll between now and then must not forget it.
        heapq.heappush(self._run_dues, due_at)
        if due_at < self._next_run_poll:
            self._next_run_poll = due_at
            self._wake.set()

    # -- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self.run_forever(), name="cronwheel-scheduler")

    @property
    def holding(self) -> int:
        """Jobs claimed into the look-ahead window, waiting for their instant."""
        return self._holding

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The running loop, for a test that waits for it to go idle."""
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_forever(self) -> None:
        while True:
            try:
                wake_at = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler.step_failed")
                wake_at = self._clock.now() + self._config.error_backoff_us
            await self._clock.sleep_until(wake_at, self._wake)
            self._wake.clear()

    async def step(self) -> Micros:
        """One pass: fire what is due, claim if due for it (and fire what that brought due),
        pick up due runs. Returns wake time. Held fires go before the claim: a claim can take
        tens of milliseconds beside a flood, and a fire already in the window must not wait
        for it (bench/README.md, session 11)."""
        now = self._clock.now()
        await self._fire_due(now)
        if now >= self._next_claim:
            await self._claim(now)
            await self._fire_due(self._clock.now())
        if now >= self._next_run_poll:
            await self._claim_runs(now)
        wake = min(self._next_claim, self._next_run_poll)
        if self._heaps:
            first = min(heap[0][0] for heap in self._heaps.values())
            wake = min(wake, first - self._config.fire_lead_us)
        if self._delayed:
            wake = min(wake, self._delayed[0][0])
        metrics.LOOKAHEAD.set(self._holding)
        return wake

    async def _fire_due(self, now: Micros) -> None:
        due = self._pop_due(now + self._config.fire_lead_us + self._config.fire_gather_us)
        if due:
            await self._fire(due, self._clock.now())

    async def _claim(self, now: Micros) -> None:
        room = self._config.claim_limit - self._holding
        horizon = now + self._config.window_us
        self._next_claim = now + self._config.window_us // 2
        if not self._may_act():
            return
        limit = min(room, self._config.claim_batch)
        topping = len(self._heaps) > 1 and 0 < limit < self._config.claim_batch // 4
        if topping:
            # short passes beside other namespaces free a little room each: a claim per pass
            # would read past the whole window each time; wait for a quarter batch of room
            limit = 0
            self._next_claim = now
        epoch = self._epoch()
        lease_until = now + self._config.job_lease_us
        jobs = await self._claim_earliest(now, horizon, limit, lease_until) if limit > 0 else []
        more = limit <= 0 or len(jobs) >= limit  # the window holds more than we took
        others = await self._claim_others(now, horizon, lease_until, jobs) if more else []
        if epoch != self._epoch():
            return  # claimed under a lock since lost: handed back when it is held again
        for job in [*jobs, *others]:
            assert job.next_fire_at is not None
            if (job.id, job.next_fire_at) in self._slots:  # held, delayed: its lease renewed
                continue
            self._push(job.next_fire_at, job)
        if not more:
            self._claimed_until = horizon
        elif jobs:  # claim again straight after this pass
            self._claimed_until = max(j.next_fire_at or now for j in jobs) - 1
            self._next_claim = now

    async def _claim_others(self, now: Micros, horizon: Micros, lease_until: Micros,
                            taking: list[Job]) -> list[Job]:
        """The other namespaces' due jobs, looking past those crowding the claims: a flood
        waits on its own backlog. Asked when a full batch came back all late already (the
        engine is behind: earliest first would never reach the others while a flood's
        occurrences keep coming due), or when the window is full. Up to one batch beyond the
        limit, so memory stays bounded. After a look that found nothing (one namespace behind
        on its own) the next waits an eighth of the window: it reads past that backlog."""
        if now < self._others_after:
            return []
        if taking:
            behind = max(j.next_fire_at or now for j in taking) <= now
            held = fairshare.count_by(taking, lambda j: j.spec.namespace) if behind else {}
            crowded = fairshare.crowding(held, len(taking))
        else:
            held = {ns: len(heap) for ns, heap in self._heaps.items()}
            crowded = fairshare.crowding(held, self._config.claim_limit)
        if not crowded:
            return []
        extra = (self._config.claim_limit + self._config.claim_batch - self._holding
                 - len(taking))
        extra = min(extra, self._config.claim_batch)
        if extra <= 0:
            return []
        share = self._share()
        found = await self._store.acquire_due_jobs(self._owner, now, horizon, extra, lease_until,
                                                   share, others_than=crowded)
        if share is not None and len(found) < extra:
            # the other nodes' shares left unclaimed this close to their time, as in
            # `_claim_earliest`, but past the crowding namespaces too: a flood's occurrences
            # missed by a gone node would otherwise come first there as well
            found += await self._store.acquire_due_jobs(
                self._owner, now, now + self._config.window_us // 2, extra - len(found),
                lease_until, others_than=crowded)
        if not found:
            self._others_after = now + self._config.window_us // 8
        return found

    def _share(self) -> tuple[int, int] | None:
        return self.gate.share if self.gate is not None else None

    async def _claim_earliest(self, now: Micros, horizon: Micros, limit: int,
                              lease_until: Micros) -> list[Job]:
        share = self._share()
        jobs = await self._store.acquire_due_jobs(self._owner, now, horizon, limit, lease_until,
                                                  share)
        if share is not None and len(jobs) < limit:
            # Another node's share left unclaimed this close to its time (that node is gone,
            # full, or counts the nodes differently): take it. Its owner claims a whole window
            # ahead, so this finds only what it missed.
            jobs += await self._store.acquire_due_jobs(
                self._owner, now, now + self._config.window_us // 2, limit - len(jobs),
                lease_until)
        return jobs

    def _push(self, at: Micros, job: Job) -> None:
        """Hold a claimed job in the window until `at`, counted for its namespace."""
        heap = self._heaps.setdefault(job.spec.namespace, [])
        heapq.heappush(heap, (at, -job.spec.priority, next(self._seq), job))
        self._holding += 1

    def _forget_window(self) -> None:
        self._heaps.clear()
        self._holding = 0

    def _pop_due(self, until: Micros) -> list[Job]:
        """Due jobs, each occurrence once: a fire retried after an error may meet the same job
        claimed again once its lease lapsed."""
        due: dict[tuple[str, Micros | None], Job] = {}
        ready = {ns: len(heap) for ns, heap in self._heaps.items() if heap[0][0] <= until}
        for namespace, count in self._allot(ready).items():
            # the rest of a namespace's due jobs: the next pass, at once
            heap = self._heaps[namespace]
            for _ in range(count):
                if heap[0][0] > until:
                    break
                job = heapq.heappop(heap)[3]
                self._holding -= 1
                due.setdefault((job.id, job.next_fire_at), job)
            if not heap:
                del self._heaps[namespace]
        # a delayed fire is due at its slot itself: its run's time has passed, so the
        # delivery would not wait for a lead
        while self._delayed and self._delayed[0][0] <= until - self._config.fire_lead_us:
            job = heapq.heappop(self._delayed)[2]
            due.setdefault((job.id, job.next_fire_at), job)
        return list(due.values())

    def _allot(self, ready: dict[str, int]) -> dict[str, int]:
        """How many of each ready namespace's held jobs this pass may take (at most, if due).
        Alone in the window, a namespace takes all (a big pass is how a busy engine catches
        up). Beside others, the pass is bounded in time and in `fire_batch`, shared smallest
        first: another namespace's fire coming due never waits behind thousands of a flood's."""
        if len(self._heaps) < 2:
            return ready
        budget = min(self._config.fire_batch, self._pace.size())
        return fairshare.split(budget, ready)

    async def _throttle(self, due: list[Job], now: Micros) -> list[Job]:
        """The fires that may happen now; each other one waits in `_delayed` for the slot its
        app's fires-per-second bucket gave it (taken once per occurrence). O(batch): only the
        jobs of limited apps are sorted (by priority, for their slots)."""
        if self.quotas is None:
            return due
        try:
            await self.quotas.fresh(now)
        except Exception:  # apps unreadable for now: fire on the last known limits
            log.exception("scheduler.quotas_failed")
        quotas = self.quotas
        if not quotas.fire_limits and not self._slots:
            return due
        ready: list[Job] = []
        limited: list[Job] = []
        for job in due:
            key = (job.id, job.next_fire_at)
            if key in self._slots or quotas.fires_limited(job.spec.namespace):
                limited.append(job)
            else:
                ready.append(job)
        if limited:
            self._take_slots(limited, now, ready)
        if len(ready) < len(due):
            metrics.FIRES_DELAYED.inc(len(due) - len(ready))
        return ready

    def _take_slots(self, limited: list[Job], now: Micros, ready: list[Job]) -> None:
        """Give each fire of a limited app its slot, highest priority first: due ones join
        `ready`, the others wait in `_delayed`."""
        assert self.quotas is not None
        limited.sort(key=lambda j: -j.spec.priority)
        for job in limited:
            assert job.next_fire_at is not None
            key = (job.id, job.next_fire_at)
            held = self._slots.get(key)
            if held is None:
                at = max(job.next_fire_at, now)
                held = (self.quotas.fire_at(job.spec.namespace, at), at)
                if held[0] > at:
                    self._slots[key] = held
            if held[0] <= held[1] or held[0] <= now:
                ready.append(job)
            else:
                heapq.heappush(self._delayed, (held[0], next(self._seq), job))

    def _may_act(self) -> bool:
        return self.gate is None or self.gate.holding

    def _epoch(self) -> int:
        return 0 if self.gate is None else self.gate.epoch

    async def _fire(self, due: list[Job], now: Micros) -> None:
        if not self._may_act():
            return
        epoch = self._epoch()
        due = await self._throttle(due, now)
        if not due:
            return
        fires = self._plan_fires(due, now)
        lease_until = now + self._dispatcher.lease_us
        started = time.perf_counter()
        try:
            recorded = await self._store.record_fires(self._owner, now, fires, lease_until)
            self._pace.observe(len(fires), (time.perf_counter() - started) * US_PER_S)
        except Exception:
            log.exception("scheduler.fire_failed", extra={"count": len(fires)})
            for job in due:  # try again shortly; the lease check stops a double fire
                self._push(now + self._config.error_backoff_us, job)
            return
        runs = recorded.started if epoch == self._epoch() else []  # lost meanwhile: not ours
        self._dispatcher.cancel(recorded.replaced)
        await self._tell_waiting(recorded.waiting)
        by_id = {f.job.id: f.job for f in fires}
        for run in runs:
            job = by_id[run.job_id]
            self._dispatcher.submit(delivery_for(run, job), job.spec.retry)
        metrics.RUNS_FIRED.labels("scheduled").inc(len(runs))
        missed = sum(1 for f in fires if not f.plan.fire)
        if missed:
            metrics.RUNS_MISSED.inc(missed)
        if len(runs) < sum(1 for f in fires if f.deliver_now):
            log.info("scheduler.fires_dropped", extra={"count": len(fires) - len(runs)})
        if any(f.plan.fire and not f.deliver_now for f in fires):
            self._poll_runs_at(now)
        if any(f.plan.next_fire_at is not None and f.plan.next_fire_at <= self._claimed_until
               for f in fires):
            self._next_claim = now  # a next occurrence falls inside the window: claim it now

    def _plan_fires(self, due: list[Job], now: Micros) -> list[Fire]:
        """What each due job's fire does. Each namespace delivers now as many as its share of
        the dispatcher's room allows, by priority within it; the rest wait in the database."""
        planned = []
        for job in due:
            assert job.next_fire_at is not None
            spec = job.spec
            # a fire its app's rate delayed is planned as of when it was due: the delay is
            # the limit's, not a misfire (a skip policy must not drop it)
            held = self._slots.pop((job.id, job.next_fire_at), None)
            as_of = now if held is None else min(now, held[1])
            planned.append((job, plan(spec.schedule, job.next_fire_at, as_of, spec.misfire,
                                      spec.misfire_grace_us)))
        now_ones, _later = fairshare.by_priority_within(
            [job for job, decision in planned if decision.fire],
            lambda j: j.spec.namespace, lambda j: j.spec.priority, self._dispatcher.room_for)
        delivering = {job.id for job in now_ones}
        return [Fire(job, decision, new_id(), job.id in delivering) for job, decision in planned]

    async def _tell_waiting(self, waiting: Sequence[Run]) -> None:
        if not waiting or self.on_waiting is None:
            return
        try:
            await self.on_waiting(waiting)
        except Exception:  # the resolver's sweep judges them later
            log.exception("scheduler.resolve_failed")

    async def _claim_runs(self, now: Micros) -> None:
        while self._run_dues and self._run_dues[0] <= now:
            heapq.heappop(self._run_dues)
        self._next_run_poll = now + self._config.run_poll_us
        if self._run_dues:
            self._next_run_poll = min(self._next_run_poll, self._run_dues[0])
        limit = min(self._dispatcher.room(), 1_000)
        if len(self._heaps) > 1:  # other namespaces' fires wait for this claim's commit
            limit = min(limit, self._run_pace.size())
        if limit <= 0 or not self._may_act():
            return
        epoch = self._epoch()
        lease_until = now + self._dispatcher.lease_us
        started = time.perf_counter()
        crowded = self._dispatcher.crowding()
        if crowded:
            claimed = await self._claim_others_runs(now, limit, lease_until, crowded)
        else:
            claimed = await self._store.acquire_due_runs(self._owner, now, limit, lease_until)
        self._run_pace.observe(len(claimed), (time.perf_counter() - started) * US_PER_S)
        if epoch != self._epoch():
            return
        for run, job in claimed:
            self._dispatcher.submit(delivery_for(run, job), job.spec.retry)
        if len(claimed) >= limit:
            self._next_run_poll = now  # more are waiting

    async def _claim_others_runs(self, now: Micros, limit: int, lease_until: Micros,
                                 crowded: frozenset[str]) -> list[tuple[Run, Job]]:
        """The runs of the namespaces not crowding the deliveries: earliest first, a flood's
        backlog of runs (its fires past its share) would come before every other namespace's
        retries and fill the room they need. A crowding namespace's runs wait until its
        deliveries fall below its share. After a look that found none, the next waits a run
        poll (or a run announced due): it reads past that backlog."""
        if now < self._others_runs_after:
            return []
        found = await self._store.acquire_due_runs(self._owner, now, limit, lease_until,
                                                   others_than=crowded)
        if not found:
            self._others_runs_after = now + self._config.run_poll_us
        return found

    async def release(self) -> None:
        """Hand back the claimed window so another node (or the next start) fires it at once."""
        self._forget_window()
        self._delayed.clear()
        self._slots.clear()
        await self._store.release(self._owner)
