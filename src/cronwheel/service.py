"""The use cases, shared by the native API, the dialects and the CLI."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from cronwheel import metrics
from cronwheel.contracts import AddOutcome, Clock, JobFilter, RunFilter, Store
from cronwheel.domain import jobs as job_rules
from cronwheel.domain.access import SYSTEM_APP, Principal
from cronwheel.domain.errors import (
    DomainError,
    IllegalTransition,
    InvalidField,
    ItemErrors,
    NotFound,
)
from cronwheel.domain.jobs import Job, JobSpec, JobState, zone_of
from cronwheel.domain.limits import Quota, check_interval
from cronwheel.domain.netpolicy import NetPolicy
from cronwheel.domain.paging import JobPosition
from cronwheel.domain.runs import Attempt, Run
from cronwheel.domain.target_policy import check_spec
from cronwheel.domain.time import Micros
from cronwheel.domain.windows import parse_window
from cronwheel.graph import GraphNode, check_cycles, dependency_graph, downstream_order
from cronwheel.ids import new_id
from cronwheel.quotas import Quotas


class Wakeups(Protocol):
    """What the services tell the engine after a commit."""

    def job_due(self, fire_at: int | None) -> None: ...

    def run_due(self, due_at: int) -> None: ...


class NoWakeups:
    """For a node that runs no engine (an API-only process, tools)."""

    def job_due(self, fire_at: int | None) -> None:
        return None

    def run_due(self, due_at: int) -> None:
        return None


DownstreamOf = Callable[[Job], Awaitable[Sequence[Job]]]


@dataclass(frozen=True, slots=True)
class Submission:
    spec: JobSpec
    fingerprint: str | None = None  # hash of the caller's request; the spec's when None
    target_field: str = "target"  # how the caller names the target, for a refusal's field


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may ask, whichever API it came through: checked here and only here,
    so the native API and every dialect refuse the same things (each in its own envelope)."""

    max_batch: int = 10_000  # jobs per submit, names per change of many jobs
    max_payload_bytes: int = 1_048_576  # a payload (or a trigger's override) as JSON
    max_backfill: int = 1_000  # planned instants one rerun may create or run again


class Service:
    def __init__(
        self, store: Store, clock: Clock, wake: Wakeups | None = None,
        limits: Limits | None = None, policy: NetPolicy | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        """`quotas` enforces the per-app limits (docs/security.md, "Limits"); without it only
        the server-wide `limits` apply."""
        self.store = store
        self.clock = clock
        self.wake: Wakeups = wake or NoWakeups()
        self.limits = limits or Limits()
        self.quotas = quotas
        self.policy = policy or NetPolicy()  # the target guard's; per app later (issue 10)
        # The jobs depending on a job, in dependency order: a rerun with `downstream` reruns
        # theirs too. The dependency graph's order; a seam so a caller may narrow it.
        self.downstream_of: DownstreamOf = self._downstream_of
        # checks what the configuration knows (a Kubernetes target's cluster); the node sets it
        self.admit: Callable[[JobSpec], None] = lambda _spec: None

    async def quota(self, caller: Principal | None) -> Quota:
        """The limits of the caller's app; a request without a principal (a dialect before
        its admission policy names an app) counts as the system app's."""
        if self.quotas is None:
            return Quota(caller.app if caller else SYSTEM_APP, max_batch=self.limits.max_batch,
                         max_payload_bytes=self.limits.max_payload_bytes)
        if caller is not None:
            return self.quotas.quota(caller.app, caller.limits)
        await self.quotas.fresh(self.clock.now())
        return self.quotas.quota(SYSTEM_APP)

    def check_batch(self, count: int, quota: Quota | None = None) -> None:
        """Raises InvalidField `jobs` unless a request of `count` items is allowed: the app's
        `max_batch`, and never more than its submit bucket holds (such a batch could never
        pass the rate)."""
        most = self.limits.max_batch if quota is None or quota.max_batch is None \
            else quota.max_batch
        why = ""
        if quota is not None and quota.submits_per_second is not None and quota.burst < most:
            most, why = quota.burst, f" (the app's submit_burst is {quota.burst})"
        elif quota is not None and quota.max_batch is not None:
            why = f" (the app's max_batch is {most})"
        if not 1 <= count <= most:
            raise InvalidField(f"jobs must hold 1 to {most} items, got {count}{why}", "jobs")

    def take_submits(self, quota: Quota, count: int = 1) -> None:
        """Count `count` submits against the app's rate, or raise RateLimited (a 429)."""
        if self.quotas is not None:
            self.quotas.take_submits(quota, count, self.clock.now())

    def check_payload(self, payload: Any, quota: Quota | None = None) -> None:
        """Raises InvalidField `payload` for a payload larger than the limit as JSON."""
        most = self.limits.max_payload_bytes if quota is None or \
            quota.max_payload_bytes is None else quota.max_payload_bytes
        try:
            size = len(orjson.dumps(payload))
        except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits
            raise InvalidField(f"payload cannot be stored as JSON: {exc}", "payload") from None
        if size > most:
            raise InvalidField(f"payload is larger than {most} bytes as JSON", "payload")

    async def submit(
        self, items: Sequence[Submission], all_or_nothing: bool = True, replace: bool = False,
        revive: bool = False, caller: Principal | None = None,
    ) -> list[AddOutcome]:
        """Create jobs; an equal re-submit returns the existing job, a different one conflicts
        (or, with `replace`, overwrites it and restarts its schedule). With `revive`, a
        cancelled job is brought back with the new definition (decided inside the store's
        transaction, on the row as it is then).

        With `all_or_nothing`, one conflict leaves every job of the call unwritten. Items
        that break a limit, name a target the policy refuses or can never fire raise
        `ItemErrors` and nothing is written.

        The caller's app's limits apply (`caller`; the system app's without one): batch size,
        submits per second (RateLimited), payload size and shortest repeat per item, and the
        jobs its namespaces may hold (LimitExceeded).
        """
        quota = await self.quota(caller)
        self.check_batch(len(items), quota)
        self.take_submits(quota, len(items))
        now = self.clock.now()
        await self._check_items(items, now, quota)
        if self.quotas is not None:
            await self.quotas.check_held(Counter(i.spec.namespace for i in items), now)
        new = [job_rules.new_job(new_id(), i.spec, now, i.fingerprint) for i in items]
        outcomes = await self.store.add_jobs(new, all_or_nothing, replace, revive)
        if all_or_nothing and any(o.conflict for o in outcomes):
            return outcomes
        created = [o.job for o in outcomes if o.created or o.replaced]
        if self.quotas is not None:
            self.quotas.added(Counter(o.job.spec.namespace for o in outcomes if o.created))
        for namespace, count in Counter(job.spec.namespace for job in created).items():
            metrics.JOBS_SUBMITTED.labels(namespace).inc(count)
        due = [job.next_fire_at for job in created if job.next_fire_at is not None]
        if due:
            self.wake.job_due(min(due))
        return outcomes

    async def _check_items(
        self, items: Sequence[Submission], now: Micros, quota: Quota | None = None
    ) -> None:
        """Every item within the limits and able to fire, or ItemErrors listing each that is
        not. A schedule that can no longer fire is still an idempotent re-submit of a live
        job with the same definition (a retry after its time passed): that one passes, as the
        store answers it with the job it has and writes nothing."""
        problems: list[tuple[int, DomainError]] = []
        gaps = _GapCheck(quota.min_interval_seconds if quota else None, now)
        for index, item in enumerate(items):
            try:
                self.check_payload(item.spec.payload, quota)
                gaps.check(item.spec)
                # a literal refused address in its target or alert webhook
                check_spec(item.spec, self.policy, item.target_field)
                self.admit(item.spec)  # what the configuration knows (a target's cluster)
            except InvalidField as exc:
                problems.append((index, exc))
                continue
            try:
                job_rules.check_fires(item.spec, now)
            except InvalidField as exc:
                if not await self._resubmitted(item):
                    problems.append((index, exc))
        refused = {index for index, _exc in problems}
        cycles = await check_cycles(self.store, [i.spec for i in items])
        problems.extend(p for p in cycles if p[0] not in refused)
        if problems:
            raise ItemErrors(sorted(problems, key=lambda p: p[0]))

    async def _resubmitted(self, item: Submission) -> bool:
        spec = item.spec
        have = await self.store.get_job(spec.namespace, spec.key)
        fingerprint = item.fingerprint or spec.fingerprint()
        return (have is not None and have.fingerprint == fingerprint
                and have.state is not JobState.CANCELLED)

    async def change_jobs(
        self, namespace: str, keys: Sequence[str], rule: Callable[[Job, int], Job],
        caller: Principal | None = None,
    ) -> list[Job]:
        """Apply `rule` to every named job in one transaction: all of them change, or (when
        one is missing or refuses) none does and `ItemErrors` lists each failure by its index
        in the distinct `keys`."""
        unique = list(dict.fromkeys(keys))
        self.check_batch(len(unique), await self.quota(caller))
        now = self.clock.now()
        changed = await self.store.change_jobs(namespace, unique, lambda job: rule(job, now))
        due = [job.next_fire_at for job in changed if job.next_fire_at is not None]
        if due:
            self.wake.job_due(min(due))
        return changed

    async def get(self, namespace: str, key: str) -> Job:
        job = await self.store.get_job(namespace, key)
        if job is None:
            raise NotFound(f"no job {key!r} in namespace {namespace!r}", "key")
        return job

    async def list_jobs(
        self, where: JobFilter, after: JobPosition | None, limit: int
    ) -> list[Job]:
        return await self.store.list_jobs(where, after, limit)

    async def _change(
        self, namespace: str, key: str, rule: Callable[[Job, int], Job], cancel_runs: bool = False
    ) -> Job:
        now = self.clock.now()
        job = await self.store.change_job(
            namespace, key, lambda current: rule(current, now), cancel_runs
        )
        self.wake.job_due(job.next_fire_at)
        return job

    async def pause(self, namespace: str, key: str) -> Job:
        return await self._change(namespace, key, job_rules.pause)

    async def resume(self, namespace: str, key: str) -> Job:
        return await self._change(namespace, key, job_rules.resume)

    async def cancel(self, namespace: str, key: str) -> Job:
        return await self._change(namespace, key, job_rules.cancel, cancel_runs=True)

    async def delete(self, namespace: str, key: str, delete_runs: bool = False) -> Job:
        """Remove the job; its runs stay (unfinished ones cancelled) until retention purges
        them, or go with it when `delete_runs`. Its key is free for a new job at once."""
        return await self.store.delete_job(namespace, key, self.clock.now(), delete_runs)

    async def trigger(
        self, namespace: str, key: str, payload: Any = None, override: bool = False,
        caller: Principal | None = None,
    ) -> Run:
        """An extra run now, outside the schedule; the schedule does not move. It counts as
        one submit against the caller's app's rate."""
        quota = await self.quota(caller)
        self.take_submits(quota)
        if override:
            self.check_payload(payload, quota)
        job = await self.get(namespace, key)
        if job.state is JobState.CANCELLED:
            raise IllegalTransition("a cancelled job cannot be triggered; create it again")
        run = await self.store.add_manual_run(job, new_id(), self.clock.now(), payload, override)
        metrics.RUNS_FIRED.labels("manual").inc()
        self.wake.run_due(run.scheduled_at)
        return run

    async def runs(self, namespace: str, key: str, before_id: str | None, limit: int) -> list[Run]:
        job = await self.get(namespace, key)
        return await self.store.list_runs(job.id, before_id, limit)

    async def remove_run(self, run_id: str) -> Run:
        """A run not started yet ends `cancelled` and stays listed (Sentinel's task remove);
        the jobs waiting on it see it as removed (satisfied) at the resolver's next sweep."""
        return await self.store.remove_run(run_id, self.clock.now())

    async def run(self, run_id: str) -> tuple[Run, list[Attempt]]:
        found = await self.store.get_run(run_id)
        if found is None:
            raise NotFound(f"no run {run_id!r}", "run_id")
        return found

    # -- dependencies ----------------------------------------------------------------------------

    async def dependencies(
        self, namespace: str, key: str, window: str | None = None
    ) -> tuple[Job, tuple[int, int], list[GraphNode], list[GraphNode]]:
        """The job, the window [start, end) around now (in the job's zone; `cd` by default),
        and its upstream and downstream trees with their runs in that window."""
        job = await self.get(namespace, key)
        bounds = parse_window(window, "window").bounds(self.clock.now(), zone_of(job.spec))
        up, down = await dependency_graph(self.store, job, *bounds)
        return job, bounds, up, down

    async def dependents(self, namespace: str, key: str) -> list[Job]:
        """The jobs whose `depends_on` names this one directly (the console's job page)."""
        return await self.store.dependents_of(namespace, key)

    async def _downstream_of(self, job: Job) -> Sequence[Job]:
        return await downstream_order(self.store, job.spec.namespace, job.spec.key)

    async def downstream(self, namespace: str, key: str) -> list[Job]:
        """The jobs depending on this one, directly or not, in dependency order (a rerun
        with `downstream` goes through them in this order)."""
        await self.get(namespace, key)
        return await downstream_order(self.store, namespace, key)
    async def find_runs(self, where: RunFilter, before_id: str | None, limit: int) -> list[Run]:
        """Runs of every job, newest first: an operator's view across jobs."""
        return await self.store.find_runs(where, before_id, limit)

    async def upcoming(self, limit: int) -> list[Job]:
        """The jobs that fire soonest."""
        return await self.store.upcoming_jobs(limit)


class _GapCheck:
    """The app's shortest repeat, checked once per distinct schedule of a request (a batch
    often repeats one cron)."""

    def __init__(self, min_seconds: float | None, now: Micros) -> None:
        self.min_seconds = min_seconds
        self.now = now
        self.passed: set[object] = set()

    def check(self, spec: JobSpec) -> None:
        if self.min_seconds is None:
            return
        try:
            if spec.schedule in self.passed:
                return
        except TypeError:  # an unhashable schedule: checked every time
            check_interval(spec.schedule, self.min_seconds, self.now)
            return
        check_interval(spec.schedule, self.min_seconds, self.now)
        self.passed.add(spec.schedule)
