"""A Store kept in process memory, for tests: users run cronwheel's engine without a database.

It keeps the promises of `cronwheel.contracts.Store` the way `SqlStore` does, down to the
order of listings and the rows a stale owner may not touch; the shared contract suite runs
against both. No method awaits anything, so on one event loop each is atomic, as a
transaction is. Values are stored as the database would hold them: payloads go through JSON.

Alerts are kept too (`.alerts`, for the `Alerter`). Not here: the worker store
(`SqlStore.workers`), so worker targets do not run on it, and no task output to purge. Key
prefixes match case-sensitively, as on PostgreSQL (SQLite's LIKE ignores ASCII case).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import replace as replace_fields
from typing import Any

import orjson

from cronwheel.clock import SystemClock
from cronwheel.contracts import (
    AddOutcome,
    AttemptRecord,
    Clock,
    Fire,
    FiresRecorded,
    JobFilter,
    NodeInfo,
    NodeStatus,
    Rerun,
    RerunOutcome,
    RunFilter,
)
from cronwheel.domain.access import claim_matches
from cronwheel.domain.errors import IllegalTransition, NotFound
from cronwheel.domain.jobs import ConcurrencyPolicy, Job, JobState
from cronwheel.domain.kubernetes import KUBE_OWNER
from cronwheel.domain.paging import JobPosition, namespace_spans
from cronwheel.domain.runs import Attempt, AttemptOutcome, Run, RunKind, RunState, removed
from cronwheel.domain.schedules import AfterUpstream
from cronwheel.domain.tasks import WORKERS_OWNER
from cronwheel.domain.time import Micros
from cronwheel.store.bulk import apply_change, rewrite_of
from cronwheel.store.dependencies import EXPIRED
from cronwheel.store.duequeue import DueQueue, SortKey
from cronwheel.store.memory_alerts import MemoryAlertStore
from cronwheel.store.memory_audit import MemoryAuditStore
from cronwheel.store.new_runs import fired_run, manual_run
from cronwheel.store.reruns import sort_reruns

REPLACED = "replaced by a newer occurrence (concurrency: replace)"
ABANDONED = "lease expired before the attempt reported an outcome"


@dataclass(slots=True)
class _JobRow:
    job: Job
    lease_owner: str | None = None
    lease_until: Micros | None = None
    failures: int = 0  # consecutive failed runs, for alert policies


@dataclass(slots=True)
class _RunRow:
    run: Run
    lease_owner: str | None = None
    lease_until: Micros | None = None


@dataclass(slots=True)
class _NodeRow:
    info: NodeInfo
    heartbeat_at: Micros
    stopped_at: Micros | None


class MemoryStore:
    """Store in dicts: jobs by id and by name, runs by id and by job, attempts by run."""

    def __init__(self, clock: Clock | None = None, node: str = "node") -> None:
        self.node = node
        self._clock: Clock = clock or SystemClock()
        self._jobs: dict[str, _JobRow] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._job_ids: list[str] = []  # sorted: pages of jobs go by id
        self._sorted_names: list[tuple[str, str]] = []  # listings go by (namespace, key)
        self._due_jobs = DueQueue()
        self._runs: dict[str, _RunRow] = {}
        self._runs_of: dict[str, list[str]] = {}  # job id -> its run ids, sorted
        self._live_of: dict[str, set[str]] = {}  # job id -> its pending or running runs
        self._waiting: set[str] = set()  # runs waiting for their dependencies
        self._dependents: dict[tuple[str, str], set[str]] = {}  # upstream name -> job ids
        self._occurrences: set[tuple[str, Micros]] = set()  # (job, scheduled at), scheduled
        self._due_runs = DueQueue()
        self._attempts: dict[str, dict[int, Attempt]] = {}
        self._nodes: dict[str, _NodeRow] = {}
        self.alerts = MemoryAlertStore(self._name_of, self._failures_of)
        self.audit = MemoryAuditStore()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to open; what a closed store held is still there on the next start."""

    async def close(self) -> None:
        """Nothing to close."""

    async def ping(self) -> None:
        """Always answers."""

    async def db_now(self) -> Micros:
        return self._clock.now()

    # -- jobs --------------------------------------------------------------------------------

    async def add_jobs(
        self, new: Sequence[Job], all_or_nothing: bool, replace: bool = False,
        revive: bool = False,
    ) -> list[AddOutcome]:
        stored = [_as_stored(job) for job in new]  # a payload JSON refuses fails the whole add
        created: set[str] = set()
        for job in stored:
            if job.id not in self._jobs and _name(job) not in self._names:
                self._insert_job(job)
                created.add(job.id)
        outcomes = [self._outcome(job, created) for job in new]
        # A cancelled job is revived, never a conflict; a live one conflicts unless replaced.
        refused = all_or_nothing and any(
            o.conflict and o.job.state is not JobState.CANCELLED for o in outcomes)
        if replace or (revive and not refused):
            outcomes = self._replace(new, outcomes, overwrite=replace)
        if all_or_nothing and any(o.conflict for o in outcomes) and created:
            for job_id in sorted(created):
                self._delete_job(job_id)
        return outcomes

    def _outcome(self, job: Job, created: set[str]) -> AddOutcome:
        if job.id in created:
            return AddOutcome(job, created=True)
        have = self._jobs[self._names[_name(job)]].job
        return AddOutcome(have, created=False, conflict=have.fingerprint != job.fingerprint)

    def _replace(
        self, new: Sequence[Job], outcomes: list[AddOutcome], overwrite: bool
    ) -> list[AddOutcome]:
        """Bring each cancelled job back with its new definition, and (with `overwrite`)
        overwrite each conflicting one in place (same id, same runs)."""
        replaced: list[AddOutcome] = []
        for job, outcome in zip(new, outcomes, strict=True):
            fresh = rewrite_of(job, outcome, overwrite)
            if fresh is None:
                replaced.append(outcome)
                continue
            self._rewrite(fresh)
            replaced.append(AddOutcome(fresh, created=False, replaced=True))
        return replaced

    def _edges(self, job: Job, add: bool) -> None:
        for dep in job.spec.depends_on:
            ids = self._dependents.setdefault(dep.upstream, set())
            if add:
                ids.add(job.id)
            else:
                ids.discard(job.id)

    def _insert_job(self, job: Job) -> None:
        self._edges(job, add=True)
        self._jobs[job.id] = _JobRow(job)
        self._names[_name(job)] = job.id
        bisect.insort(self._job_ids, job.id)
        bisect.insort(self._sorted_names, _name(job))
        self._due_jobs.set(job.id, _job_key(job))

    def _delete_job(self, job_id: str) -> None:
        row = self._jobs.pop(job_id)
        self._edges(row.job, add=False)
        del self._names[_name(row.job)]
        del self._job_ids[bisect.bisect_left(self._job_ids, job_id)]
        del self._sorted_names[bisect.bisect_left(self._sorted_names, _name(row.job))]
        self._due_jobs.set(job_id, None)

    def _rewrite(self, job: Job) -> None:
        """Store a job's new definition and state; its id, name and creation time stay.
        Writing it drops any lease, so a fire claimed before the change is not made."""
        row = self._jobs.get(job.id)
        if row is None:
            return
        kept = row.job
        spec = replace_fields(job.spec, namespace=kept.spec.namespace, key=kept.spec.key)
        self._set_job(row, _as_stored(replace_fields(job, spec=spec, created_at=kept.created_at)))
        row.lease_owner = row.lease_until = None

    def _set_job(self, row: _JobRow, job: Job) -> None:
        self._edges(row.job, add=False)
        self._edges(job, add=True)
        row.job = job
        self._due_jobs.set(job.id, _job_key(job))

    async def change_jobs(
        self, namespace: str, keys: Sequence[str], change: Callable[[Job], Job]
    ) -> list[Job]:
        """All or nothing: every failure is raised (ItemErrors) before anything is written."""
        found: dict[str, Job] = {}
        for key in set(keys):
            job_id = self._names.get((namespace, key))
            if job_id is not None:
                found[key] = self._jobs[job_id].job
        changed = apply_change(namespace, keys, found, change)
        for job in changed:
            if job is not found[job.spec.key]:
                self._rewrite(job)
        return changed

    async def get_job(self, namespace: str, key: str) -> Job | None:
        job_id = self._names.get((namespace, key))
        return None if job_id is None else self._jobs[job_id].job

    async def get_job_by_id(self, job_id: str) -> Job | None:
        row = self._jobs.get(job_id)
        return None if row is None else row.job

    async def list_jobs(
        self, where: JobFilter, after: JobPosition | None, limit: int
    ) -> list[Job]:
        found: list[Job] = []
        for name in self._listed(where, after):
            if len(found) >= limit or (where.until is not None and name > where.until):
                break
            job = self._jobs[self._names[name]].job
            if _matches(job, where):
                found.append(job)
        return found

    async def kind_page(
        self, namespace: str, kind: str, offset: int, limit: int
    ) -> tuple[list[Job], int]:
        names = self._listed(JobFilter(namespace=namespace), None)
        chosen = [job for job in (self._jobs[self._names[name]].job for name in names)
                  if isinstance(job.spec.payload, dict) and job.spec.payload.get("kind") == kind]
        return chosen[offset:offset + limit], len(chosen)

    async def listing_bound(
        self, where: JobFilter, after: JobPosition | None, scan: int
    ) -> JobPosition | None:
        for count, name in enumerate(self._listed(where, after), 1):
            if count == scan:
                return name
        return None

    def _listed(self, where: JobFilter, after: JobPosition | None) -> Iterator[tuple[str, str]]:
        """The names in the namespaces `where` reads, after `after`, in listing order."""
        for span in namespace_spans(where.namespace, where.claims):
            if after is not None and span.before(after):
                continue
            start = max((span.low, ""), after) if after is not None else (span.low, "")
            index = bisect.bisect_right(self._sorted_names, start)
            for name in self._sorted_names[index:]:
                if span.high is not None and name[0] >= span.high:
                    break
                yield name

    async def change_job(
        self, namespace: str, key: str, change: Callable[[Job], Job], cancel_runs: bool = False
    ) -> Job:
        job_id = self._names.get((namespace, key))
        if job_id is None:
            raise NotFound(f"no job {key!r} in namespace {namespace!r}", "key")
        job = change(self._jobs[job_id].job)
        self._rewrite(job)
        if cancel_runs:
            held = self._live_of.get(job.id, set()) | {
                r for r in self._waiting if self._runs[r].run.job_id == job.id}
            for run_id in sorted(held):
                row = self._runs[run_id]
                if row.run.state in (RunState.PENDING, RunState.WAITING):
                    self._set_run(row, replace_fields(
                        row.run, state=RunState.CANCELLED, due_at=None,
                        finished_at=job.updated_at))
        return job

    async def acquire_due_jobs(
        self, owner: str, now: Micros, horizon: Micros, limit: int, lease_until: Micros,
        share: tuple[int, int] | None = None, others_than: Collection[str] = (),
    ) -> list[Job]:
        del share  # one process: every job is its share

        def free(job_id: str) -> bool:
            row = self._jobs[job_id]
            until = row.lease_until
            return (until is None or until < now) and row.job.spec.namespace not in others_than

        claimed: list[Job] = []
        for job_id in self._due_jobs.take(limit, horizon, free):
            row = self._jobs[job_id]
            row.lease_owner, row.lease_until = owner, lease_until
            claimed.append(row.job)
        return claimed

    # -- fires -------------------------------------------------------------------------------

    async def record_fires(
        self, owner: str, now: Micros, fires: Sequence[Fire], lease_until: Micros
    ) -> FiresRecorded:
        held = {f.job.id: row.job.next_fire_at for f in fires
                if (row := self._jobs.get(f.job.id)) is not None and row.lease_owner == owner}
        live = [f for f in fires if held.get(f.job.id) == f.plan.scheduled_at]
        busy, replaced = self._apply_concurrency(live, now)
        new_runs = [self._new_run(f, owner, now, lease_until, f.job.id in busy) for f in live]
        # One run per occurrence: only what was really inserted may be delivered.
        inserted = [row.run for row in new_runs if self._insert_run(row)]
        for fire in live:
            self._advance(fire, now)
        started = [run for run in inserted if run.state is RunState.RUNNING]
        waiting = [run for run in inserted if run.state is RunState.WAITING]
        return FiresRecorded(started, replaced, waiting)

    def _apply_concurrency(
        self, fires: Sequence[Fire], now: Micros
    ) -> tuple[set[str], list[str]]:
        """Jobs whose occurrence must be skipped (forbid), and the runs it replaced (replace)."""
        policed = {f.job.id: f.job.spec.concurrency for f in fires
                   if f.plan.fire and f.job.spec.concurrency is not ConcurrencyPolicy.ALLOW}
        in_flight = [(job_id, run_id) for job_id in sorted(policed)
                     for run_id in sorted(self._live_of.get(job_id, ()))]
        busy = {job for job, _run in in_flight if policed[job] is ConcurrencyPolicy.FORBID}
        replaced = [run for job, run in in_flight if policed[job] is ConcurrencyPolicy.REPLACE]
        for run_id in replaced:
            row = self._runs[run_id]
            row.lease_owner = row.lease_until = None
            self._set_run(row, replace_fields(row.run, state=RunState.CANCELLED, due_at=None,
                                              finished_at=now, last_error=REPLACED))
        return busy, replaced

    def _new_run(
        self, fire: Fire, owner: str, now: Micros, lease_until: Micros, busy: bool
    ) -> _RunRow:
        run, lease = fired_run(fire, self.node, now, lease_until, busy)
        return _RunRow(run, owner if lease is not None else None, lease)

    def _advance(self, fire: Fire, now: Micros) -> None:
        row = self._jobs[fire.job.id]
        upcoming = fire.plan.next_fire_at
        state = JobState.ACTIVE if upcoming is not None else JobState.COMPLETED
        self._set_job(row, replace_fields(row.job, next_fire_at=upcoming, state=state,
                                          last_fire_at=fire.plan.scheduled_at, updated_at=now))
        row.lease_owner = row.lease_until = None

    async def add_manual_run(
        self, job: Job, run_id: str, now: Micros, payload: Any, has_override: bool
    ) -> Run:
        run = manual_run(job, run_id, now, payload, has_override)
        stored = replace_fields(run, payload_override=_json_copy(run.payload_override))
        if not self._insert_run(_RunRow(stored)):
            raise ValueError(f"a run with id {run_id!r} exists already")
        return run

    async def rerun_occurrences(self, reruns: Sequence[Rerun], now: Micros) -> RerunOutcome:
        wanted = {(r.job.id, r.scheduled_at) for r in reruns}
        have = {(run.job_id, run.scheduled_at): run
                for job_id in {job for job, _at in wanted}
                for run in (self._runs[i].run for i in self._runs_of.get(job_id, []))
                if run.kind is RunKind.SCHEDULED and (job_id, run.scheduled_at) in wanted}
        created, again, in_flight = sort_reruns(reruns, have, now)
        for run in created:
            self._insert_run(_RunRow(run))
        for run in again:
            row = self._runs[run.id]
            row.lease_owner = row.lease_until = None
            self._set_run(row, run)
        return RerunOutcome(created, again, in_flight)

    # -- runs and attempts -------------------------------------------------------------------

    def _insert_run(self, row: _RunRow) -> bool:
        """Add a run unless its id, or a scheduled run of its occurrence, is there already."""
        run = row.run
        occurrence = (run.job_id, run.scheduled_at)
        scheduled = run.kind is RunKind.SCHEDULED
        if run.id in self._runs or (scheduled and occurrence in self._occurrences):
            return False
        if scheduled:
            self._occurrences.add(occurrence)
        self._runs[run.id] = row
        bisect.insort(self._runs_of.setdefault(run.job_id, []), run.id)
        self._set_run(row, run)
        return True

    def _set_run(self, row: _RunRow, run: Run) -> None:
        """The one place a stored run changes, keeping its indexes in step."""
        row.run = run
        if run.state is RunState.WAITING:
            self._waiting.add(run.id)
        else:
            self._waiting.discard(run.id)
        live = self._live_of.setdefault(run.job_id, set())
        if run.due_at is None:
            live.discard(run.id)
            self._due_runs.set(run.id, None)
        else:
            live.add(run.id)
            self._due_runs.set(run.id, (run.due_at,))

    def _delete_run(self, run_id: str) -> None:
        row = self._runs.pop(run_id)
        run = row.run
        if run.kind is RunKind.SCHEDULED:
            self._occurrences.discard((run.job_id, run.scheduled_at))
        ids = self._runs_of[run.job_id]
        del ids[bisect.bisect_left(ids, run_id)]
        self._live_of.get(run.job_id, set()).discard(run_id)
        self._waiting.discard(run_id)
        self._due_runs.set(run_id, None)
        self._attempts.pop(run_id, None)

    async def acquire_due_runs(
        self, owner: str, now: Micros, limit: int, lease_until: Micros,
        others_than: Collection[str] = (),
    ) -> list[tuple[Run, Job]]:
        def wanted(run_id: str) -> bool:
            return self._runs[run_id].run.namespace not in others_than

        claimed: list[tuple[Run, Job]] = []
        for run_id in self._due_runs.take(limit, now, wanted):
            row = self._runs[run_id]
            run = row.run
            if run.state is RunState.RUNNING:
                self._abandon(run, now)
            run = replace_fields(
                run, state=RunState.RUNNING, attempts=run.attempts + 1, due_at=lease_until,
                started_at=now if run.started_at is None else run.started_at, node=self.node)
            row.lease_owner, row.lease_until = owner, lease_until
            self._set_run(row, run)
            claimed.append((run, self._jobs[run.job_id].job))
        return claimed

    def _abandon(self, run: Run, now: Micros) -> None:
        """A lease lapsed mid-attempt: the node died or stalled, so the outcome is unknown."""
        self._add_attempt(Attempt(
            run_id=run.id,
            number=run.attempts,
            started_at=run.started_at or now,
            finished_at=now,
            outcome=AttemptOutcome.ABANDONED,
            node=run.node or "unknown",
            error=ABANDONED,
        ))

    def _add_attempt(self, attempt: Attempt) -> None:
        """Keep the first report of an attempt; a later one of the same number is dropped."""
        self._attempts.setdefault(attempt.run_id, {}).setdefault(attempt.number, attempt)

    async def record_attempts(self, owner: str, records: Sequence[AttemptRecord]) -> None:
        for record in records:
            self._add_attempt(record.attempt)
        for record in records:
            self._settle(owner, record)
        ended = [(r.job_id, r.attempt.run_id, r.next_state)
                 for r in records if r.alerting and r.next_state is not RunState.PENDING]
        if ended:
            self._count_outcomes(ended, records[0].attempt.finished_at)

    def _settle(self, owner: str, record: AttemptRecord) -> None:
        """Apply an attempt's outcome, only while its reporter still holds that attempt."""
        attempt = record.attempt
        row = self._runs.get(attempt.run_id)
        if (row is None or row.lease_owner != owner or row.run.attempts != attempt.number
                or row.run.state is not RunState.RUNNING):
            return
        terminal = record.next_state is not RunState.PENDING
        row.lease_owner = row.lease_until = None
        self._set_run(row, replace_fields(
            row.run, state=record.next_state, due_at=record.due_at, last_error=attempt.error,
            finished_at=attempt.finished_at if terminal else None))

    def _count_outcomes(self, ended: Sequence[tuple[str, str, RunState]], now: Micros) -> None:
        """A success ends a job's run of failures; a failure extends it and raises an alert
        when the job's policy says so (successes first, as the database applies them)."""
        for job_id, _run_id, state in ended:
            row = self._jobs.get(job_id)
            if row is not None and state is RunState.SUCCEEDED:
                row.failures = 0
        for job_id, run_id, state in ended:
            row = self._jobs.get(job_id)
            if row is None or state is not RunState.FAILED:
                continue
            row.failures += 1
            policy = row.job.spec.alert
            if policy is not None and policy.due(row.failures):
                self.alerts.raise_alert(job_id, run_id, row.failures, policy.webhook, now)

    def _name_of(self, job_id: str) -> tuple[str, str] | None:
        row = self._jobs.get(job_id)
        return None if row is None else _name(row.job)

    def _failures_of(self, job_id: str) -> int:
        row = self._jobs.get(job_id)
        return 0 if row is None else row.failures

    async def renew_runs(self, owner: str, run_ids: Sequence[str], lease_until: Micros) -> None:
        for run_id in run_ids:
            row = self._runs.get(run_id)
            if row is not None and row.lease_owner == owner and row.run.state is RunState.RUNNING:
                row.lease_until = lease_until
                self._set_run(row, replace_fields(row.run, due_at=lease_until))

    async def release(self, owner: str | None) -> None:
        """Drop job leases; make held runs due now so they are re-delivered at once. Runs
        handed to workers stay theirs."""
        for job_row in self._jobs.values():
            if job_row.lease_owner is not None and owner in (None, job_row.lease_owner):
                job_row.lease_owner = job_row.lease_until = None
        for run_id in sorted(_all(self._live_of.values())):
            row = self._runs[run_id]
            held_away = row.lease_owner in (WORKERS_OWNER, KUBE_OWNER)  # workers, clusters
            if (row.run.state is RunState.RUNNING and not held_away
                    and owner in (None, row.lease_owner)):
                row.lease_until = 0
                self._set_run(row, replace_fields(row.run, due_at=0))

    async def list_runs(self, job_id: str, before_id: str | None, limit: int) -> list[Run]:
        ids = self._runs_of.get(job_id, [])
        end = len(ids) if before_id is None else bisect.bisect_left(ids, before_id)
        return [self._runs[run_id].run for run_id in reversed(ids[max(0, end - limit):end])]

    async def recent_runs(self, job_ids: Sequence[str], limit: int) -> dict[str, list[Run]]:
        return {job_id: await self.list_runs(job_id, None, limit) for job_id in job_ids}

    async def remove_run(self, run_id: str, now: Micros) -> Run:
        row = self._runs.get(run_id)
        if row is None:
            raise NotFound(f"no run {run_id!r}", "run_id")
        if row.lease_owner is not None:
            raise IllegalTransition("the run is being delivered: kill it instead", "run_id")
        ended = removed(row.run, now)
        self._set_run(row, ended)
        return ended

    async def get_run(self, run_id: str) -> tuple[Run, list[Attempt]] | None:
        row = self._runs.get(run_id)
        if row is None:
            return None
        log = self._attempts.get(run_id, {})
        return row.run, [log[number] for number in sorted(log)]

    async def purge(self, finished_before: Micros, limit: int) -> int:
        old = [run_id for run_id, row in self._runs.items()
               if row.run.finished_at is not None and row.run.finished_at < finished_before]
        old = old[:max(0, limit)]
        for run_id in old:
            self._delete_run(run_id)
        for owner in [o for o, n in self._nodes.items() if n.heartbeat_at < finished_before]:
            del self._nodes[owner]
        self.alerts.purge(finished_before)
        return len(old)

    async def purge_output(self, finished_before: Micros, limit: int) -> int:
        """No workers here, so no task output to purge."""
        return 0

    # -- nodes -------------------------------------------------------------------------------

    async def heartbeat(self, node: NodeInfo, now: Micros, stopped: bool = False) -> None:
        stopped_at = now if stopped else None
        row = self._nodes.get(node.owner)
        if row is None:  # a node's name, address and version are those of its first beat
            self._nodes[node.owner] = _NodeRow(node, now, stopped_at)
        else:
            row.heartbeat_at, row.stopped_at = now, stopped_at

    async def list_nodes(self) -> list[NodeStatus]:
        jobs_held = Counter(r.lease_owner for r in self._jobs.values())
        runs_held = Counter(r.lease_owner for r in self._runs.values())
        listed = sorted(self._nodes.values(), key=lambda n: (n.info.started_at, n.info.owner))
        return [NodeStatus(n.info, n.heartbeat_at, n.stopped_at,
                           jobs_held[n.info.owner], runs_held[n.info.owner]) for n in listed]

    # -- dependencies ------------------------------------------------------------------------

    async def dependents_of(self, namespace: str, key: str) -> list[Job]:
        found = [self._jobs[i].job for i in self._dependents.get((namespace, key), ())]
        return sorted(found, key=_name)

    async def upstream_ids(self) -> set[str]:
        return {self._names[name] for name, ids in self._dependents.items()
                if ids and name in self._names}

    async def upstream_history(self, job_id: str, start: Micros, end: Micros) -> list[Run]:
        found = [self._runs[i].run for i in self._runs_of.get(job_id, [])]
        return sorted((r for r in found if r.kind is RunKind.SCHEDULED
                       and start <= r.scheduled_at < end),
                      key=lambda r: (r.scheduled_at, r.id))

    async def waiting_runs(self, job_ids: Sequence[str] | None, limit: int) -> list[Run]:
        wanted = None if job_ids is None else set(job_ids)
        found = [self._runs[i].run for i in self._waiting]
        found = [r for r in found if wanted is None or r.job_id in wanted]
        return sorted(found, key=lambda r: (r.scheduled_at, r.id))[:max(0, limit)]

    async def release_waiting(self, run_ids: Sequence[str], now: Micros) -> list[Run]:
        released: list[Run] = []
        for run_id in run_ids:
            if run_id not in self._waiting:
                continue
            row = self._runs[run_id]
            run = replace_fields(row.run, state=RunState.PENDING,
                                 due_at=max(now, row.run.scheduled_at))
            self._set_run(row, run)
            released.append(run)
        return released

    async def expire_waiting(self, now: Micros, limit: int) -> list[Run]:
        expired: list[Run] = []
        for run in await self.waiting_runs(None, len(self._waiting)):
            if len(expired) >= limit:
                break
            expiry = self._jobs[run.job_id].job.spec.expiry_us
            if max(run.scheduled_at, run.fired_at) + expiry > now:
                continue
            ended = replace_fields(run, state=RunState.EXPIRED, finished_at=now,
                                   last_error=EXPIRED)
            self._set_run(self._runs[run.id], ended)
            expired.append(ended)
        return expired

    async def add_waiting_run(
        self, job: Job, run_id: str, scheduled_at: Micros, now: Micros
    ) -> Run | None:
        run = Run(id=run_id, job_id=job.id, namespace=job.spec.namespace,
                  job_key=job.spec.key, kind=RunKind.SCHEDULED, state=RunState.WAITING,
                  scheduled_at=scheduled_at, fired_at=now)
        return run if self._insert_run(_RunRow(run)) else None

    async def followers(self, after_id: str | None, limit: int) -> list[Job]:
        start = 0 if after_id is None else bisect.bisect_right(self._job_ids, after_id)
        found: list[Job] = []
        for job_id in self._job_ids[start:]:
            job = self._jobs[job_id].job
            if len(found) >= limit:
                break
            if job.state is JobState.ACTIVE and isinstance(job.spec.schedule, AfterUpstream):
                found.append(job)
        return found

    async def delete_job(
        self, namespace: str, key: str, now: Micros, delete_runs: bool = False
    ) -> Job:
        job_id = self._names.get((namespace, key))
        if job_id is None:
            raise NotFound(f"no job {key!r} in namespace {namespace!r}", "key")
        job = self._jobs[job_id].job
        if delete_runs:
            for run_id in list(self._runs_of.get(job_id, ())):
                self._delete_run(run_id)
            self._runs_of.pop(job_id, None)
            self.alerts.forget_job(job_id)
        else:  # kept until retention, but none is delivered again
            waiting = {i for i in self._waiting if self._runs[i].run.job_id == job_id}
            for run_id in sorted(self._live_of.get(job_id, set()) | waiting):
                row = self._runs[run_id]
                self._set_run(row, replace_fields(
                    row.run, state=RunState.CANCELLED, due_at=None, finished_at=now))
                row.lease_owner = row.lease_until = None
        self._delete_job(job_id)
        return job

    # -- overview (the console) --------------------------------------------------------------

    async def find_runs(self, where: RunFilter, before_id: str | None, limit: int) -> list[Run]:
        ids = sorted((i for i in self._runs if before_id is None or i < before_id), reverse=True)
        found: list[Run] = []
        for run_id in ids:
            if len(found) >= limit:
                break
            run = self._runs[run_id].run
            if _run_matches(run, where):
                found.append(run)
        return found

    async def upcoming_jobs(self, limit: int) -> list[Job]:
        due = [row.job for row in self._jobs.values() if row.job.next_fire_at is not None]
        due.sort(key=lambda job: (job.next_fire_at, job.id))
        return due[:limit]

    async def count_held_jobs(self) -> dict[str, int]:
        held = Counter(row.job.spec.namespace for row in self._jobs.values()
                       if row.job.state in (JobState.ACTIVE, JobState.PAUSED))
        return dict(held)


def _run_matches(run: Run, where: RunFilter) -> bool:
    return ((where.namespace is None or run.namespace == where.namespace)
            and (where.claims is None
                 or any(claim_matches(c, run.namespace) for c in where.claims))
            and (where.state is None or run.state is where.state)
            and (where.fired_from is None or run.fired_at >= where.fired_from)
            and (where.fired_to is None or run.fired_at < where.fired_to)
            and (where.finished_from is None
                 or (run.finished_at is not None and run.finished_at >= where.finished_from)))


def _all(groups: Iterable[set[str]]) -> set[str]:
    every: set[str] = set()
    return every.union(*groups)


def _name(job: Job) -> tuple[str, str]:
    return job.spec.namespace, job.spec.key


def _job_key(job: Job) -> SortKey | None:
    """Claim order: earliest first, then highest priority (then id, to be deterministic)."""
    if job.next_fire_at is None:
        return None
    return job.next_fire_at, -job.spec.priority, job.id


def _matches(job: Job, where: JobFilter) -> bool:
    spec = job.spec
    return ((where.namespace is None or spec.namespace == where.namespace)
            and (where.state is None or job.state is where.state)
            and spec.key.startswith(where.key_prefix or ""))


def _json_copy(value: Any) -> Any:
    """The value as it comes back from a database column of JSON text."""
    return orjson.loads(orjson.dumps(value))


def _as_stored(job: Job) -> Job:
    return replace_fields(job, spec=replace_fields(job.spec, payload=_json_copy(job.spec.payload)))
