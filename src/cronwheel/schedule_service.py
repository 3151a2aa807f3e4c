"""Use cases on a job's time expressions and on its past occurrences: edit the expressions
one by one by id, and backfill or rerun a range of planned instants.

Each change is one store transaction; the engine is woken for what became due.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cronwheel.contracts import Rerun, RerunOutcome
from cronwheel.domain import job_schedules as rules
from cronwheel.domain.access import Principal
from cronwheel.domain.errors import IllegalTransition, InvalidField
from cronwheel.domain.jobs import Job, JobState
from cronwheel.domain.limits import Quota, check_interval
from cronwheel.domain.schedules import AfterUpstream
from cronwheel.domain.time import Micros
from cronwheel.domain.union import MAX_ITEMS, Item
from cronwheel.ids import new_id
from cronwheel.service import Service


@dataclass(frozen=True, slots=True)
class RerunRequest:
    start: Micros | None  # the range's ends, both included; None: not given
    end: Micros | None
    downstream: bool = False


class Schedules:
    """Built on the Service: the same store, clock, wake-ups and limits."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def list(self, namespace: str, key: str) -> list[Item]:
        job = await self.service.get(namespace, key)
        return list(rules.schedules_of(job).items)

    async def add(
        self, namespace: str, key: str, data: Mapping[str, Any], caller: Principal | None = None
    ) -> tuple[Job, Item]:
        """The new expression gets the id it names, or the smallest free number."""
        job = await self._change(namespace, key,
                                 lambda job, now: rules.add_schedule(job, data, now), caller)
        return job, rules.schedules_of(job).items[-1]

    async def edit(
        self, namespace: str, key: str, item_id: str, data: Mapping[str, Any],
        caller: Principal | None = None,
    ) -> tuple[Job, Item]:
        job = await self._change(
            namespace, key, lambda job, now: rules.edit_schedule(job, item_id, data, now), caller)
        return job, rules.schedules_of(job).item(item_id)

    async def remove(
        self, namespace: str, key: str, item_id: str, caller: Principal | None = None
    ) -> Job:
        return await self._change(
            namespace, key, lambda job, now: rules.remove_schedule(job, item_id, now), caller)

    async def change(
        self, namespace: str, key: str, changes: Sequence[rules.Change],
        caller: Principal | None = None,
    ) -> Job:
        """Several adds, edits and removals in one transaction, all or none."""
        if not 1 <= len(changes) <= MAX_ITEMS:
            raise InvalidField(f"changes must hold 1 to {MAX_ITEMS} items", "changes")
        return await self._change(
            namespace, key, lambda job, now: rules.change_schedules(job, changes, now), caller)

    async def _change(
        self, namespace: str, key: str, rule: Callable[[Job, Micros], Job],
        caller: Principal | None = None,
    ) -> Job:
        """One submit against the caller's app's rate; the result may repeat no more often
        than the app's `min_interval_seconds` (InvalidField `schedule`, or the union item's
        `schedule.items[i]`, naming the one that does)."""
        quota = await self.service.quota(caller)
        self.service.take_submits(quota)
        now = self.service.clock.now()
        job = await self.service.store.change_job(
            namespace, key, lambda job: _within(rule(job, now), quota, now))
        self.service.wake.job_due(job.next_fire_at)
        return job

    async def rerun(
        self, namespace: str, key: str, request: RerunRequest, caller: Principal | None = None
    ) -> RerunOutcome:
        """Every planned instant of the job in the range gets a run due now: a new scheduled
        run, or, when the occurrence has an ended run, a new attempt of it. With `downstream`,
        the jobs depending on it (in dependency order) over the same range, in the same
        transaction. Refused before anything is written when the range is open, in the
        future, or holds more instants than the limit. One submit against the app's rate."""
        self.service.take_submits(await self.service.quota(caller))
        now = self.service.clock.now()
        start, end = _bounded(request, now)
        job = await self.service.get(namespace, key)
        if job.state is JobState.CANCELLED:
            raise IllegalTransition("a cancelled job cannot be rerun; create it again", "key")
        jobs = [job]
        if request.downstream:
            jobs += [j for j in await self.service.downstream_of(job)
                     if j.state is not JobState.CANCELLED]
        reruns = _plan(jobs, start, end, self.service.limits.max_backfill)
        outcome = await self.service.store.rerun_occurrences(reruns, now)
        if outcome.created or outcome.rerun:
            self.service.wake.run_due(now)
        return outcome


def _within(job: Job, quota: Quota, now: Micros) -> Job:
    check_interval(job.spec.schedule, quota.min_interval_seconds, now)
    return job


def _bounded(request: RerunRequest, now: Micros) -> tuple[Micros, Micros]:
    if request.start is None:
        raise InvalidField("from is required: a rerun covers a bounded range", "from")
    if request.end is None:
        raise InvalidField("to is required: a rerun covers a bounded range", "to")
    if request.start < 0:
        raise InvalidField("from must not be before 1970-01-01T00:00:00Z", "from")
    if request.end < request.start:
        raise InvalidField("to must not be before from", "to")
    if request.end > now:
        raise InvalidField("to must not be in the future: later instants fire on their own",
                           "to")
    return request.start, request.end


def _plan(jobs: Sequence[Job], start: Micros, end: Micros, most: int) -> list[Rerun]:
    """The occurrences of every job, the limit counting them all together."""
    reruns: list[Rerun] = []
    planned: dict[tuple[str, str], list[Micros]] = {}
    for job in jobs:
        try:
            instants = _instants(job, planned, start, end, most - len(reruns))
        except InvalidField:
            whose = "" if len(jobs) == 1 else " (the job's and its downstream jobs' together)"
            raise InvalidField(f"the range holds more than {most} planned instants{whose}: "
                               "narrow it", "to") from None
        planned[(job.spec.namespace, job.spec.key)] = instants
        reruns.extend(Rerun(job, at, new_id()) for at in instants)
    return reruns


def _instants(job: Job, planned: Mapping[tuple[str, str], list[Micros]], start: Micros,
              end: Micros, most: int) -> list[Micros]:
    """The job's planned instants; a `dependencies` job (no time of its own) has one run per
    upstream run, at that run's time: its upstreams' instants in this backfill (they come
    first in dependency order)."""
    if not isinstance(job.spec.schedule, AfterUpstream):
        return rules.planned_between(job.spec.schedule, start, end, most)
    found = sorted({at for dep in job.spec.depends_on for at in planned.get(dep.upstream, ())})
    if len(found) > most:
        raise InvalidField(f"the range holds more than {most} planned instants", "to")
    return found
