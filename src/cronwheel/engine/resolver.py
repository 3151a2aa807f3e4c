"""The resolver: moves runs out of `waiting` when their dependencies hold, or when they expire.

It is told of events, not polling for them: the scheduler hands it the runs it creates
waiting, and the dispatcher the runs whose attempts end, so a downstream run is released in
the same pass that records its upstream's success. A sweep on the clock is the safety net
(runs ended on workers or on another node, windows that close with time) and ends runs past
their job's expiry. Every move is the store's conditional change, so nodes resolving the
same run at once release it once; delivery then goes through the ordinary claim of due runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cronwheel.contracts import AttemptRecord, Clock, Settled, Store
from cronwheel.domain.dependencies import Dependency, holds, planned_in, with_plan
from cronwheel.domain.dependencies import UpstreamRun as Seen
from cronwheel.domain.jobs import Job, JobState, zone_of
from cronwheel.domain.runs import TERMINAL, Run, RunKind, RunState
from cronwheel.domain.schedules import AfterUpstream
from cronwheel.domain.time import US_PER_S, Micros
from cronwheel.engine.dispatcher import Dispatcher
from cronwheel.engine.scheduler import Scheduler
from cronwheel.ids import new_id

log = logging.getLogger("cronwheel.resolver")


@dataclass(frozen=True, slots=True)
class ResolverConfig:
    sweep_us: Micros = 5 * US_PER_S  # the safety net's period
    batch: int = 500  # waiting runs judged per sweep, earliest planned first


@dataclass(slots=True)
class _Pass:
    """Reads shared by the runs judged in one pass: a job, a window's history."""

    jobs: dict[tuple[str, str], Job | None] = field(default_factory=dict)
    by_id: dict[str, Job | None] = field(default_factory=dict)
    windows: dict[tuple[str, Micros, Micros], list[Seen]] = field(default_factory=dict)


class Resolver:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        run_due: Callable[[Micros], None],
        config: ResolverConfig = ResolverConfig(),
    ) -> None:
        self._store = store
        self._clock = clock
        self._run_due = run_due  # wakes the scheduler to claim a released run
        self._config = config
        self._task: asyncio.Task[None] | None = None
        self._followers_after: str | None = None  # the sweep's place among follower jobs
        # Ids of jobs others depend on, re-read at most once a second: the end of any other
        # run then costs no query (at a thousand ends a second, two reads each were most of
        # the engine's time). A dependency made within that second on another node is caught
        # by the sweep, as a lost event would be.
        self._upstreams: set[str] = set()
        self._upstreams_at: Micros | None = None

    # -- events --------------------------------------------------------------------------------

    async def waiting_created(self, runs: Sequence[Run]) -> None:
        """Runs just created waiting: their dependencies may hold already. Their jobs'
        upstreams are read again at the next end, so no event for them is passed over."""
        self._upstreams_at = None
        await self.judge(runs)

    async def runs_ended(self, ended: Iterable[tuple[str, str, RunState]]) -> None:
        """(job id, run id, state) of runs that just ended: start the runs of jobs that
        follow their upstreams, then judge every waiting run of the jobs depending on them."""
        now = self._clock.now()
        upstreams = await self._upstream_ids(now)
        seen = _Pass()
        dependents: dict[str, Job] = {}
        for job_id, run_id, state in ended:
            if job_id not in upstreams:
                continue
            upstream = await self._job_by_id(seen, job_id)
            if upstream is None or state not in TERMINAL:
                continue
            for job in await self._store.dependents_of(upstream.spec.namespace,
                                                       upstream.spec.key):
                dependents[job.id] = job
            if state is RunState.SUCCEEDED:
                await self._follow(dependents.values(), upstream, run_id, now)
        if dependents:
            waiting = await self._store.waiting_runs(sorted(dependents), self._config.batch)
            await self.judge(waiting, seen)

    async def _upstream_ids(self, now: Micros) -> set[str]:
        if self._upstreams_at is None or now - self._upstreams_at >= US_PER_S:
            self._upstreams = await self._store.upstream_ids()
            self._upstreams_at = now
        return self._upstreams

    async def settled(self, settled: Sequence[Settled]) -> None:
        """Runs whose attempt on workers ended (reported or reaped)."""
        ended: list[tuple[str, str, RunState]] = []
        for run_id, state, _due in settled:
            found = await self._store.get_run(run_id) if state in TERMINAL else None
            if found is not None:
                ended.append((found[0].job_id, run_id, state))
        if ended:
            await self.runs_ended(ended)

    async def _follow(self, jobs: Iterable[Job], upstream: Job, run_id: str,
                      now: Micros) -> None:
        """A job without a time of its own gets a run per completed scheduled upstream run,
        planned at that run's time (once, however many upstreams complete it)."""
        followers = [j for j in jobs if isinstance(j.spec.schedule, AfterUpstream)
                     and j.state is JobState.ACTIVE
                     and any(d.upstream == (upstream.spec.namespace, upstream.spec.key)
                             for d in j.spec.depends_on)]
        if not followers:
            return
        found = await self._store.get_run(run_id)
        if found is None or found[0].kind is not RunKind.SCHEDULED:
            return
        for job in followers:
            await self._store.add_waiting_run(job, new_id(), found[0].scheduled_at, now)

    # -- judging -------------------------------------------------------------------------------

    async def judge(self, runs: Sequence[Run], seen: _Pass | None = None) -> list[Run]:
        """Release each waiting run whose dependencies all hold; returns those released."""
        seen = seen or _Pass()
        ready = [run.id for run in runs
                 if run.state is RunState.WAITING and await self._ready(run, seen)]
        if not ready:
            return []
        released = await self._store.release_waiting(ready, self._clock.now())
        for run in released:
            assert run.due_at is not None
            self._run_due(run.due_at)
        return released

    async def _ready(self, run: Run, seen: _Pass) -> bool:
        job = await self._job_by_id(seen, run.job_id)
        if job is None or job.state is JobState.CANCELLED:
            return False
        for dep in job.spec.depends_on:
            if not await self._holds(dep, run.scheduled_at, zone_of(job.spec), seen):
                return False
        return True

    async def _holds(self, dep: Dependency, planned: Micros, tz: str, seen: _Pass) -> bool:
        """A missing upstream never holds: the run waits, then expires."""
        upstream = await self._job(seen, dep.upstream)
        if upstream is None:
            return False
        start, end = dep.window.bounds(planned, tz)
        history = seen.windows.get((upstream.id, start, end))
        if history is None:
            runs = await self._store.upstream_history(upstream.id, start, end)
            made = [Seen(r.scheduled_at, r.id, r.state) for r in runs]
            plan: list[Micros] = []
            if upstream.state is not JobState.CANCELLED:  # a removed job plans nothing more
                plan = planned_in(upstream.spec.schedule, start, end, upstream.created_at)
            history = seen.windows[(upstream.id, start, end)] = with_plan(made, plan)
        return holds(dep.strategy, history)

    async def _job(self, seen: _Pass, name: tuple[str, str]) -> Job | None:
        if name not in seen.jobs:
            seen.jobs[name] = await self._store.get_job(*name)
        return seen.jobs[name]

    async def _job_by_id(self, seen: _Pass, job_id: str) -> Job | None:
        if job_id not in seen.by_id:
            seen.by_id[job_id] = await self._store.get_job_by_id(job_id)
        return seen.by_id[job_id]

    # -- the sweep -----------------------------------------------------------------------------

    async def sweep(self) -> None:
        """End the runs past their expiry, make follower runs whose event was lost, then
        judge the earliest waiting runs."""
        now = self._clock.now()
        expired = await self._store.expire_waiting(now, self._config.batch)
        if expired:
            log.info("dependencies.expired", extra={"count": len(expired)})
        await self.catch_up(now)
        await self.judge(await self._store.waiting_runs(None, self._config.batch))

    async def catch_up(self, now: Micros) -> None:
        """A page of follower jobs per sweep, each given the runs its upstreams' successes
        within its expiry call for: a node that died between recording an upstream's
        success and making the follower's run left that run to this. Only successes since the
        job's last change count: a job that became a follower (its last expression removed)
        is not given runs for upstream runs its own schedule already answered."""
        page = await self._store.followers(self._followers_after, self._config.batch)
        self._followers_after = page[-1].id if len(page) == self._config.batch else None
        for job in page:
            await self._catch_up_one(job, now)

    async def _catch_up_one(self, job: Job, now: Micros) -> None:
        since = now - job.spec.expiry_us
        made = {r.scheduled_at for r in await self._store.upstream_history(job.id, since, now + 1)}
        for dep in job.spec.depends_on:
            upstream = await self._store.get_job(*dep.upstream)
            if upstream is None:
                continue
            for run in await self._store.upstream_history(upstream.id, since, now + 1):
                if (run.state is RunState.SUCCEEDED and run.scheduled_at not in made
                        and (run.finished_at or 0) >= job.updated_at):
                    await self._store.add_waiting_run(job, new_id(), run.scheduled_at, now)
                    made.add(run.scheduled_at)

    def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_forever(), name="cronwheel-resolver")

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _sweep_forever(self) -> None:
        while True:
            await self._clock.sleep_until(self._clock.now() + self._config.sweep_us)
            try:
                await self.sweep()
            except Exception:
                log.exception("resolver.sweep_failed")


def attach(resolver: Resolver, scheduler: Scheduler, dispatcher: Dispatcher) -> None:
    """Tell the resolver of the runs fires leave waiting and of every run that ends."""
    scheduler.on_waiting = resolver.waiting_created

    async def recorded(records: Sequence[AttemptRecord]) -> None:
        await resolver.runs_ended((r.job_id, r.attempt.run_id, r.next_state) for r in records
                                  if r.next_state is not RunState.PENDING)

    dispatcher.on_recorded = recorded
