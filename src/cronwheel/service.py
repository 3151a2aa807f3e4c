"""The use cases, shared by the native API, the dialects and the CLI."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cronwheel import metrics
from cronwheel.contracts import AddOutcome, Clock, JobFilter, Store
from cronwheel.domain import jobs as job_rules
from cronwheel.domain.errors import IllegalTransition, NotFound
from cronwheel.domain.jobs import Job, JobSpec, JobState
from cronwheel.domain.runs import Attempt, Run
from cronwheel.ids import new_id


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


@dataclass(frozen=True, slots=True)
class Submission:
    spec: JobSpec
    fingerprint: str | None = None  # hash of the caller's request; the spec's when None


class Service:
    def __init__(self, store: Store, clock: Clock, wake: Wakeups | None = None) -> None:
        self.store = store
        self.clock = clock
        self.wake: Wakeups = wake or NoWakeups()
        # checks what the configuration knows (a Kubernetes target's cluster); the node sets it
        self.admit: Callable[[JobSpec], None] = lambda _spec: None

    async def submit(
        self, items: Sequence[Submission], all_or_nothing: bool = True, replace: bool = False
    ) -> list[AddOutcome]:
        """Create jobs; an equal re-submit returns the existing job, a different one conflicts
        (or, with `replace`, overwrites it and restarts its schedule).

        With `all_or_nothing`, one conflict leaves every job of the call unwritten.
        """
        for item in items:
            self.admit(item.spec)
        now = self.clock.now()
        new = [job_rules.new_job(new_id(), i.spec, now, i.fingerprint) for i in items]
        outcomes = await self.store.add_jobs(new, all_or_nothing, replace)
        if all_or_nothing and any(o.conflict for o in outcomes):
            return outcomes
        created = [o.job for o in outcomes if o.created or o.replaced]
        for namespace, count in Counter(job.spec.namespace for job in created).items():
            metrics.JOBS_SUBMITTED.labels(namespace).inc(count)
        due = [job.next_fire_at for job in created if job.next_fire_at is not None]
        if due:
            self.wake.job_due(min(due))
        return outcomes

    async def get(self, namespace: str, key: str) -> Job:
        job = await self.store.get_job(namespace, key)
        if job is None:
            raise NotFound(f"no job {key!r} in namespace {namespace!r}", "key")
        return job

    async def list_jobs(self, where: JobFilter, after_id: str | None, limit: int) -> list[Job]:
        return await self.store.list_jobs(where, after_id, limit)

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

    async def trigger(
        self, namespace: str, key: str, payload: Any = None, override: bool = False
    ) -> Run:
        """An extra run now, outside the schedule; the schedule does not move."""
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

    async def run(self, run_id: str) -> tuple[Run, list[Attempt]]:
        found = await self.store.get_run(run_id)
        if found is None:
            raise NotFound(f"no run {run_id!r}", "run_id")
        return found
