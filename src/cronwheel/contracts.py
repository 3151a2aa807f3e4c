"""The plug points of cronwheel and the promises each must keep.

Store
    Durable home of jobs, runs and attempts. Every write is atomic. Claims are leases:
    `acquire_due_jobs` hands a job to one owner until `lease_until`; nobody else may fire it
    before that lease lapses. A run is unique on (job, scheduled time) for scheduled runs, and
    it is created in the same transaction that advances its job, so an occurrence fires at most
    once whatever the timing. A run in state running is held by a lease too; once it lapses,
    `acquire_due_runs` hands it to a new owner, recording the lost attempt as abandoned.
    Rescuers re-check state in the same statement that changes it.

    `ping` raises unless the database answers. `change_job` raises NotFound for an unknown job
    and lets the transition's own error (IllegalTransition, InvalidField) through, writing
    nothing. Other methods raise only for a database that cannot be reached.

WorkerStore
    Workers, their tasks and the tasks' output, beside the Store's runs. A run handed to
    workers (`hand_off`) is leased to WORKERS_OWNER: no node rescues it; its tasks carry their
    own leases, renewed by their worker's `heartbeat`. Once an attempt's last task ends
    (`finish`, or `reap` for a worker gone quiet) the attempt is settled in the same
    transaction: the attempt row, the run's next state and its job's run of failures. A
    settled attempt is settled once, whoever reports it. Output is append-only at byte
    offsets, so a worker may resend a piece whose answer it lost.

AlertStore
    Alerts raised by runs of failures, kept until sent. An alert row is written in the
    transaction that records the failing run (by the Store or the WorkerStore), so no alert is
    lost to a crash. `claim` hands each alert to one sender until its retry time.

    Dependencies: a scheduled run of a job with `depends_on` is created `waiting` (never due,
    never delivered) and leaves that state once, by a conditional change: released to
    pending when its dependencies hold, or expired after its job's expiry.

NodeStore
    What one node runs on: a Store with the WorkerStore and AlertStore sharing its database.

Transport
    Sends one delivery and reports what happened. It never raises for a receiver's failure:
    a refused connection, a timeout or an error status is a `DeliveryResult` with
    `retryable` set as the receiver's answer suggests. It must give up by `delivery.timeout`.
    The same run id (the idempotency key) goes out on every attempt of a run.

HandOffSignals
    In-process signals between the worker transport and the worker service of one node.

Clock
    The engine asks the clock for "now" and waits through it, so tests can set time.
    `sleep_until` never returns before its instant unless its wake-up event is set, and
    the engine waits on nothing else for engine time (retries, delivery instants, leases).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from cronwheel.domain.access import App, TokenRecord
from cronwheel.domain.admission import AdmissionRule, QscheduleApp
from cronwheel.domain.audit import AuditCursor, AuditEntry, AuditFilter
from cronwheel.domain.jobs import Job, JobState, RetryPolicy
from cronwheel.domain.misfire import FirePlan
from cronwheel.domain.paging import JobPosition
from cronwheel.domain.routing import Candidate
from cronwheel.domain.runs import Attempt, AttemptOutcome, Run, RunState
from cronwheel.domain.sentinel import SentinelJob
from cronwheel.domain.targets import Target
from cronwheel.domain.tasks import Task, TaskState, TaskWork, WorkerInfo, WorkerStatus
from cronwheel.domain.time import US_PER_S, Micros


class Clock(Protocol):
    def now(self) -> Micros: ...

    async def sleep_until(self, instant: Micros, wake: asyncio.Event | None = None) -> bool:
        """Wait until the clock reads `instant`, or `wake` is set first; True if woken."""
        ...


@dataclass(frozen=True, slots=True)
class AddOutcome:
    """Per submitted job: created, already there with the same definition, or a conflict."""

    job: Job
    created: bool
    conflict: bool = False
    replaced: bool = False  # existed with another definition, overwritten on request


@dataclass(frozen=True, slots=True)
class Fire:
    job: Job
    plan: FirePlan
    run_id: str
    deliver_now: bool  # hand to this node's dispatcher, or leave pending for a later claim


@dataclass(frozen=True, slots=True)
class FiresRecorded:
    started: list[Run]  # created running, leased to the caller: deliver them now
    replaced: list[str]  # run ids cancelled by a `replace` concurrency policy
    waiting: list[Run] = field(default_factory=list)  # created waiting for dependencies


@dataclass(frozen=True, slots=True)
class Rerun:
    """One planned occurrence a backfill asks for: its run is created (with `run_id`) or,
    when it exists and has ended, run again as a new attempt."""

    job: Job
    scheduled_at: Micros
    run_id: str


@dataclass(frozen=True, slots=True)
class RerunOutcome:
    created: list[Run]  # occurrences that had no run: a new scheduled run, due now
    rerun: list[Run]  # ended runs made pending again: their next attempt is due now
    in_flight: list[Run]  # pending or running already: left as they are


@dataclass(frozen=True, slots=True)
class Delivery:
    """Everything a transport needs; built from a run and its job."""

    run_id: str
    attempt: int
    job_id: str
    namespace: str
    key: str
    scheduled_at: Micros
    fired_at: Micros
    target: Target
    payload: Any
    priority: int = 0
    alerting: bool = False  # the job has an alert policy: count its failed runs

    @property
    def idempotency_key(self) -> str:
        return self.run_id


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: AttemptOutcome
    retryable: bool = True
    status_code: int | None = None
    response: str | None = None
    error: str | None = None
    handed_off: bool = False  # given to workers: they report the attempt, not the transport


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """The outcome of one attempt plus what the run becomes next."""

    attempt: Attempt
    next_state: RunState
    due_at: Micros | None  # when the next attempt is due, for a retry
    job_id: str = ""
    alerting: bool = False  # count the run's end in the job's run of failures


@dataclass(frozen=True, slots=True)
class NodeInfo:
    owner: str  # fresh per process start
    name: str
    address: str
    version: str
    started_at: Micros


class Liveness(Protocol):
    """Which nodes are alive, by what the database knows of their sessions (PostgreSQL): each
    node holds a lock for as long as its connection lives."""

    on_lost: Callable[[], None] | None  # told at once when this node's lock connection ends

    async def survey(self, since: Micros) -> list[tuple[str, bool]] | None:
        """Take or confirm this node's lock; then each node not stopped that heartbeat at or
        after `since`, with whether it holds its lock. None while this node does not."""
        ...

    async def release_dead(self, owner: str) -> bool:
        """Give up a node's claims if its lock is free, fenced so it cannot retake the lock
        meanwhile; its runs become due now. False if the lock was held."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class NodeStatus:
    info: NodeInfo
    heartbeat_at: Micros
    stopped_at: Micros | None
    jobs_held: int  # claimed into its look-ahead window
    runs_held: int  # deliveries under way


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Jobs of one namespace (or any), in a state, whose key starts with a prefix. `claims`
    narrows to the namespaces a caller may read (exact names or `prefix*`; None: all);
    `until` ends the listing at a position (inclusive), to bound what a sparse filter reads."""

    namespace: str | None = None
    state: JobState | None = None
    key_prefix: str | None = None
    claims: tuple[str, ...] | None = None
    until: JobPosition | None = None

    @property
    def sparse(self) -> bool:
        """Whether rows are filtered beyond the index range: a page may read many to keep few."""
        return self.state is not None or (self.key_prefix is not None
                                          and self.namespace is None)


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Runs across jobs, for an operator's lists: fired within [fired_from, fired_to), ended
    at `finished_from` or later (an index: cheap to ask of a large table). `claims` narrows
    to the namespaces a caller may read (exact names or `prefix*`; None: all), read as
    ranges of the runs' (namespace, id) index."""

    namespace: str | None = None
    state: RunState | None = None
    fired_from: Micros | None = None
    fired_to: Micros | None = None
    finished_from: Micros | None = None
    claims: tuple[str, ...] | None = None


class Store(Protocol):
    async def start(self) -> None:
        """Open the database (bringing its schema up to date); raises when it cannot be used,
        e.g. another server holds the SQLite file."""
        ...

    async def close(self) -> None: ...

    async def add_jobs(
        self, jobs: Sequence[Job], all_or_nothing: bool, replace: bool = False,
        revive: bool = False,
    ) -> list[AddOutcome]:
        """Insert new jobs; with `replace`, overwrite the definition of existing different ones
        (keeping their id and history, restarting their schedule). With `replace` or `revive`,
        an existing cancelled job is overwritten too, whatever its definition; the decision is
        taken on the row as read inside the operation's own transaction."""
        ...

    async def get_job(self, namespace: str, key: str) -> Job | None:
        """The job by its name, in any state (a cancelled one too); None when unknown."""
        ...

    async def get_job_by_id(self, job_id: str) -> Job | None: ...

    async def list_jobs(
        self, where: JobFilter, after: JobPosition | None, limit: int
    ) -> list[Job]:
        """Up to `limit` matching jobs in (namespace, key) order, compared as code points,
        after the position `after` (a page). A page reads one index range per namespace span
        (see domain/paging.py), never the rows before it."""
        ...

    async def kind_page(
        self, namespace: str, kind: str, offset: int, limit: int
    ) -> tuple[list[Job], int]:
        """Up to `limit` jobs of one namespace whose payload's `kind` is `kind` (a dialect's
        own sorts of job: the Kubernetes dialect's once and cron jobs), in key order from the
        `offset`th, and how many there are: numbered pages for a dialect whose clients ask
        for page N. One count and one page on the (namespace, key) index: the cost grows with
        the namespace's jobs and the offset, never with other namespaces'."""
        ...

    async def listing_bound(
        self, where: JobFilter, after: JobPosition | None, scan: int
    ) -> JobPosition | None:
        """The position `scan` jobs past `after` in the namespaces `where` reads, counting
        every job there whatever its state or key (None: fewer are left). A sparse filter's
        page ends there, so it never reads more than `scan` rows; the reads are of the index
        alone."""
        ...

    async def change_job(
        self, namespace: str, key: str, change: Callable[[Job], Job], cancel_runs: bool = False
    ) -> Job:
        """Apply a domain transition atomically; raises NotFound or the transition's error."""
        ...

    async def change_jobs(
        self, namespace: str, keys: Sequence[str], change: Callable[[Job], Job]
    ) -> list[Job]:
        """Apply one domain transition to every named job (distinct keys) in one transaction,
        all or nothing.

        Returns the jobs in the order of `keys` (a job `change` returns unchanged is not
        written). If any key is missing or its transition raises, raises `ItemErrors` listing
        each failure by its index in `keys`, and changes none.
        """
        ...

    async def acquire_due_jobs(
        self, owner: str, now: Micros, horizon: Micros, limit: int, lease_until: Micros,
        share: tuple[int, int] | None = None, others_than: Collection[str] = (),
    ) -> list[Job]:
        """Lease to `owner` up to `limit` jobs due by `horizon` whose lease is free or lapsed
        at `now`, earliest first (by priority among jobs due at the same instant); no two
        owners hold one job at once.

        `share` (i, n): only the jobs whose id hashes to i modulo n, node i's share of n live
        nodes (PostgreSQL; a store with one node ignores it). `others_than`: none of the jobs
        of these namespaces (the engine looks past a namespace that crowds its window)."""
        ...

    async def record_fires(
        self, owner: str, now: Micros, fires: Sequence[Fire], lease_until: Micros
    ) -> FiresRecorded:
        """Create the runs and advance the jobs in one transaction.

        Applies each job's concurrency policy against its runs still in flight, in the same
        transaction. Returns the runs this owner should deliver now, and the runs replaced.
        """
        ...

    async def add_manual_run(
        self, job: Job, run_id: str, now: Micros, payload: Any, has_override: bool
    ) -> Run:
        """A pending run due now, outside the schedule (no uniqueness on its time)."""
        ...

    async def remove_run(self, run_id: str, now: Micros) -> Run:
        """End a run not started yet `cancelled`, keeping its record (domain.runs.removed);
        NotFound, or IllegalTransition for a run that has started, ended or is being
        delivered. Conditional on the state read, so it never races a claim."""
        ...

    async def rerun_occurrences(self, reruns: Sequence[Rerun], now: Micros) -> RerunOutcome:
        """In one transaction: each occurrence gets a scheduled run due now, its ended run
        made pending again (a new attempt of the same run), or is left alone when in flight."""
        ...

    async def acquire_due_runs(
        self, owner: str, now: Micros, limit: int, lease_until: Micros,
        others_than: Collection[str] = (),
    ) -> list[tuple[Run, Job]]:
        """Lease to `owner` up to `limit` runs due by `now` (pending ones, and running ones
        whose lease lapsed, recorded as abandoned), as the next attempt, with their jobs,
        earliest due first. `others_than`: none of the runs of these namespaces (the engine
        looks past a namespace that crowds its deliveries)."""
        ...

    async def record_attempts(self, owner: str, records: Sequence[AttemptRecord]) -> None:
        """Store each attempt; its run moves on only where `owner` still holds it at that
        attempt, so a late result of a lost lease cannot undo the rescuer's work."""
        ...

    async def renew_runs(self, owner: str, run_ids: Sequence[str], lease_until: Micros) -> None:
        """Extend the leases of runs this owner still holds in memory."""
        ...

    async def release(self, owner: str | None) -> None:
        """Give up leases held by `owner` (every lease when None: a single-node restart)."""
        ...

    async def list_runs(self, job_id: str, before_id: str | None, limit: int) -> list[Run]:
        """Up to `limit` of the job's runs, newest first, before `before_id` (a page)."""
        ...

    async def recent_runs(self, job_ids: Sequence[str], limit: int) -> dict[str, list[Run]]:
        """Each job's newest `limit` runs, newest first, for a page of jobs at once: one read
        for the page instead of one per job."""
        ...

    async def db_now(self) -> Micros:
        """The database's clock: the cluster's one clock for fire decisions."""
        ...

    async def heartbeat(self, node: NodeInfo, now: Micros, stopped: bool = False) -> None:
        """Record that the node is alive at `now` (or stopped)."""
        ...

    async def list_nodes(self) -> list[NodeStatus]:
        """Every node heard from since the last purge, with how much each holds."""
        ...

    async def purge(self, finished_before: Micros, limit: int) -> int:
        """Delete up to `limit` runs finished before the instant, with their attempts."""
        ...

    async def purge_output(self, finished_before: Micros, limit: int) -> int:
        """Delete the output of up to `limit` tasks finished before the instant; their runs,
        attempts and tasks stay (a read of it then finds an empty, ended stream)."""
        ...

    async def get_run(self, run_id: str) -> tuple[Run, list[Attempt]] | None: ...

    async def ping(self) -> None:
        """Raises unless the database answers a query (the health check)."""
        ...

    # -- dependencies (issue 11) -------------------------------------------------------------

    async def dependents_of(self, namespace: str, key: str) -> list[Job]:
        """Every job whose `depends_on` names this one (known or not), by (namespace, key)."""
        ...

    async def upstream_ids(self) -> set[str]:
        """The ids of the existing jobs that some job depends on: one read that lets the
        resolver pass over the ends of all other runs without a query each."""
        ...

    async def upstream_history(self, job_id: str, start: Micros, end: Micros) -> list[Run]:
        """The job's scheduled runs planned in [start, end), by (planned time, id); manual
        runs are not part of a dependency window."""
        ...

    async def waiting_runs(self, job_ids: Sequence[str] | None, limit: int) -> list[Run]:
        """Up to `limit` runs in state waiting (of these jobs; of all when None), earliest
        planned first."""
        ...

    async def release_waiting(self, run_ids: Sequence[str], now: Micros) -> list[Run]:
        """Move each run still waiting to pending, due at max(now, its planned time), and
        return those moved: a run another node released (or that expired) is not returned,
        so a run leaves `waiting` once."""
        ...

    async def expire_waiting(self, now: Micros, limit: int) -> list[Run]:
        """End as expired up to `limit` runs still waiting whose planned time plus their
        job's expiry is at or before `now` (and fired at least that long ago: a backfilled
        run waits from when it was made); returns them."""
        ...

    async def add_waiting_run(
        self, job: Job, run_id: str, scheduled_at: Micros, now: Micros
    ) -> Run | None:
        """A scheduled run of `job` at `scheduled_at`, waiting; None (nothing written) when
        that occurrence has a run already."""
        ...

    async def followers(self, after_id: str | None, limit: int) -> list[Job]:
        """Up to `limit` active jobs whose schedule is `dependencies` (run by their upstreams
        alone), in id order after `after_id` (a page)."""
        ...

    async def delete_job(
        self, namespace: str, key: str, now: Micros, delete_runs: bool = False
    ) -> Job:
        """Remove the job (raises NotFound) and its worker switches. Its runs stay, those not
        finished cancelled at `now`, until retention purges them; with `delete_runs` they go
        now with their attempts, tasks, output and alerts. Returns the job as it was."""
        ...

    async def find_runs(self, where: RunFilter, before_id: str | None, limit: int) -> list[Run]:
        """Up to `limit` matching runs of any job, newest first, before `before_id` (a page).
        With a namespace or claims, a page reads the runs index of those namespaces only."""
        ...

    async def upcoming_jobs(self, limit: int) -> list[Job]:
        """The `limit` jobs that fire soonest (the live index on next_fire_at)."""
        ...

    async def count_held_jobs(self) -> dict[str, int]:
        """Jobs held (active or paused) per namespace, for the per-app `max_jobs` limit: one
        grouped count, which quotas.Quotas reads at most once a second."""
        ...


class JobCounter(Protocol):
    """What the per-app limits read of the jobs (a Store is one)."""

    async def count_held_jobs(self) -> dict[str, int]: ...


class AppDirectory(Protocol):
    """What the engine and the per-app limits read of the apps (an AppStore is one): each
    app with its limits, and which app owns which namespace claim."""

    async def list_apps(self) -> list[App]: ...

    async def claims(self) -> dict[str, str]: ...


class Transport(Protocol):
    async def deliver(self, delivery: Delivery) -> DeliveryResult: ...

    async def aclose(self) -> None: ...


# -- workers ---------------------------------------------------------------------------------

ALL_JOBS = "*"
"""The job id of a worker switch that applies to every job (a job's own switch wins)."""

Settled = tuple[str, RunState, Micros | None]
"""A run whose attempt on workers just ended: its id, its new state, when it is due again."""


@dataclass(frozen=True, slots=True)
class HandOff:
    """One run for workers: one task per pick, at the attempt the handing node holds."""

    run_id: str
    attempt: int
    job_id: str
    picks: tuple[tuple[str, str, str, str], ...]  # (task id, worker id, name, host)


@dataclass(frozen=True, slots=True)
class WorkerTimings:
    heartbeat_s: float = 1.0
    lease_s: float = 5.0  # a worker silent this long is offline and its tasks are lost
    recheck_s: float = 0.5  # a long-poll re-reads the database this often

    @property
    def lease_us(self) -> Micros:
        return round(self.lease_s * US_PER_S)


DEFAULT_TIMINGS = WorkerTimings()


class HandOffSignals(Protocol):
    """What the worker transport needs from the node's worker hub."""

    @property
    def epoch(self) -> int:
        """Bumped whenever workers or switches change through this node: caches start over."""
        ...

    def notify(self, worker_id: str) -> None:
        """Wake the worker's long-poll on this node, if it is waiting here."""
        ...


class WorkerStore(Protocol):
    async def register(self, worker: WorkerInfo, now: Micros) -> None:
        """Record a worker (a fresh id per worker start) as online from `now`."""
        ...

    async def heartbeat(
        self, worker_id: str, running: Sequence[str], now: Micros, lease_until: Micros
    ) -> list[str] | None:
        """Renew the worker and the leases of its assigned tasks and of the running ones it
        lists; returns the tasks it must kill, or None when the worker is unknown or stopped.
        A running task it did not list is not renewed: it lapses and `reap` settles it."""
        ...

    async def grace(self, until: Micros) -> None:
        """Extend every live task's lease to at least `until` (a node starting after an
        outage must not judge tasks lost because nobody could heartbeat)."""
        ...

    async def stop(self, worker_id: str, now: Micros) -> None:
        """A worker leaving: it is offline at once and its live tasks lapse for `reap`."""
        ...

    async def statuses(
        self, online_after: Micros, include_stopped: bool = False
    ) -> list[WorkerStatus]:
        """Workers not stopped (every one with `include_stopped`) by name, each online when
        not stopped and heard from at `online_after` or later, with its live task count."""
        ...

    async def switches(self, job_id: str) -> dict[str, bool]:
        """Worker name -> on/off for the job; the job's own switch overrides an ALL_JOBS one.
        A worker with no switch is on."""
        ...

    async def set_switches(
        self, job_id: str, group: str | None, changes: dict[str, bool], now: Micros,
        online_after: Micros,
    ) -> None:
        """Switch workers on or off for one job (`group` its group) or for ALL_JOBS (group
        None). Raises IllegalTransition, writing nothing, when a job's group (or any group of
        the switched workers) would be left with no online worker switched on."""
        ...

    async def candidates(
        self, group: str, online_after: Micros, job_type: str | None = None
    ) -> list[Candidate]:
        """Online workers of the group that accept `job_type` (WorkerInfo.accepts; any type
        when None) with their live task counts; switches not applied."""
        ...

    async def hand_off(
        self, owner: str, items: Sequence[HandOff], now: Micros, lease_until: Micros
    ) -> set[str]:
        """In one transaction, move each run `owner` still holds running at that attempt to
        WORKERS_OWNER and create its tasks, leased until `lease_until`; nothing is written for
        the others. Returns the run ids handed over."""
        ...

    async def lease(
        self, worker_id: str, limit: int, now: Micros, lease_until: Micros
    ) -> list[TaskWork]:
        """Start up to `limit` of the worker's assigned tasks, oldest first, and return what
        to run. A task whose run ended meanwhile, or whose job left workers or the worker's
        registered groups, is ended here instead (killed or error) and its attempt settled.
        Raises UnknownWorker when the worker is unknown or stopped."""
        ...

    async def append_output(
        self, worker_id: str, task_id: str, stream: str, offset: int, data: bytes
    ) -> int:
        """Store a piece of the task's "log" or "result" at its byte offset; returns the
        stream's size after it. The part already stored is ignored. Raises NotFound for a
        task not of this worker (UnknownWorker when the worker itself is unknown or stopped),
        Conflict for an offset past the stored size."""
        ...

    async def read_output(
        self, task_id: str, stream: str, offset: int, limit: int
    ) -> tuple[bytes, Task]:
        """Up to `limit` bytes of the stream from `offset`, with the task; NotFound for an
        unknown task."""
        ...

    async def finish(
        self, worker_id: str, task_id: str, state: TaskState, exit_code: int | None,
        error: str | None, now: Micros, result: bytes | None = None,
    ) -> Settled | None:
        """End a live task of this worker (with its whole result inline when none was
        uploaded); once its attempt's last task ends, settle the run. Returns the run's change,
        or None. Raises Conflict, writing nothing, when the worker no longer holds the task."""
        ...

    async def reap(self, now: Micros, limit: int = 500) -> list[Settled]:
        """End as lost up to `limit` live tasks whose lease lapsed; settle their attempts."""
        ...

    async def kill(self, run_id: str, now: Micros) -> RunState:
        """Stop a run: one on workers is flagged for them (its state is returned unchanged and
        the next heartbeat tells them); any other ends killed now. Raises NotFound for an
        unknown run, IllegalTransition for one already ended."""
        ...

    async def tasks_of(self, run_id: str) -> list[Task]:
        """The run's tasks, by attempt then worker name."""
        ...

    async def live_on_host(self, host: str) -> list[tuple[Task, Run, Job]]:
        """Tasks assigned or running on a host (address or worker name), oldest first."""
        ...

    async def last_outcome(self, job_ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """Per job: (finished_at, state, started_at) of its latest run that ran and ended."""
        ...


# -- alerts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    job_id: str
    run_id: str
    failures: int
    webhook: str
    created_at: Micros  # when it is due (again)
    state: str  # pending, sending, sent, failed
    tries: int
    sent_at: Micros | None
    error: str | None
    namespace: str = ""
    key: str = ""


class AlertStore(Protocol):
    async def claim(self, now: Micros, retry_after: Micros, limit: int = 50) -> list[Alert]:
        """Up to `limit` alerts due by `now`, marked as being sent and due again at
        `retry_after` in case this send never reports; with their job's namespace and key."""
        ...

    async def settle(self, alert: Alert, error: str | None, now: Micros) -> None:
        """Record a send: sent when `error` is None; else due again, or failed for good once
        it was tried MAX_TRIES times."""
        ...

    async def of_job(self, job_id: str, limit: int = 100) -> list[Alert]:
        """The job's alerts, newest first."""
        ...

    async def failures(self, job_id: str) -> int:
        """The job's current run of failed runs (0 for an unknown job)."""
        ...


class NodeStore(Store, Protocol):
    @property
    def workers(self) -> WorkerStore: ...

    @property
    def alerts(self) -> AlertStore: ...

    @property
    def apps(self) -> AppStore: ...

    @property
    def admission(self) -> AdmissionStore: ...

    @property
    def sentinel(self) -> SentinelStore: ...

    @property
    def audit(self) -> AuditStore: ...

    @property
    def single_node(self) -> bool:
        """Only this process uses the database (SQLite): every lease not its own is a dead
        process's, and no other node needs waking."""
        ...


class AppStore(Protocol):
    """Apps, the namespaces they claim, and their tokens (hashes only).

    Invariants: an app name is unique; a namespace claim (exact name or `prefix*`) belongs to
    one app; a token id is unique and its token belongs to an existing app; removing an app
    removes its claims and tokens in the same transaction. A revoked token stays listed (with
    `revoked_at`) and never becomes live again. Every write is atomic.
    """

    async def create_app(self, app: App) -> None:
        """Create the app with its claims (`app.namespaces`), atomically; Conflict if the
        name is taken or another app holds one of the claims."""
        ...

    async def get_app(self, name: str) -> App | None:
        """The app with its claims (`namespaces`, sorted)."""
        ...

    async def list_apps(self) -> list[App]:
        """Every app by name, with its claims."""
        ...

    async def update_app(self, app: App) -> None:
        """Replace grants, limits and note; raises NotFound."""
        ...

    async def remove_app(self, name: str) -> None:
        """Remove the app, its claims and its tokens; raises NotFound."""
        ...

    async def add_namespace(self, app: str, claim: str, now: Micros) -> None:
        """Claim a namespace for an app: no-op if it has it; NotFound for an unknown app;
        Conflict if another app holds this exact claim."""
        ...

    async def remove_namespace(self, app: str, claim: str) -> None:
        """Raises NotFound unless the app holds the claim."""
        ...

    async def claims(self) -> dict[str, str]:
        """Every claim -> the app holding it."""
        ...

    async def add_token(self, record: TokenRecord) -> None:
        """NotFound for an unknown app; Conflict if the id is taken."""
        ...

    async def get_token(self, token_id: str) -> TokenRecord | None: ...

    async def list_tokens(self, app: str) -> list[TokenRecord]:
        """The app's tokens, revoked ones included, oldest first."""
        ...

    async def revoke_token(self, app: str, token_id: str, now: Micros) -> TokenRecord:
        """Set `revoked_at` (kept if already set); NotFound unless the app has the token."""
        ...

    async def bootstrap(self, app: App, claims: Sequence[str], record: TokenRecord,
                        now: Micros, only_if_no_admin: bool = True) -> bool:
        """First start, atomically: unless a live admin token exists (or regardless, with
        `only_if_no_admin` off), create `app` if missing, give it the `claims` nobody holds,
        and add `record` (if its id is free). True if the token was added."""
        ...

    async def set_secret(self, app: str, kind: str, sealed: str, now: Micros) -> None:
        """Store (or replace) the app's secret of this kind, already sealed under the server
        key (cronwheel.secretbox); NotFound for an unknown app. Removed with the app."""
        ...

    async def get_secret(self, app: str, kind: str) -> str | None:
        """The sealed secret, or None."""
        ...

    async def remove_secret(self, app: str, kind: str) -> bool:
        """True if there was one."""
        ...

    async def sealed_secrets(self) -> list[tuple[str, str, str]]:
        """Every (app, kind, sealed): a key rotation re-seals them."""
        ...


class AdmissionStore(Protocol):
    """The dialects' network rules and the qschedule applications (issue 10 point 4).

    Invariants: one rule per (dialect, network) and one qschedule app per id, per name and
    per token hash; a rule or a qschedule app belongs to an existing app, and goes with it.
    Every write is atomic.
    """

    async def add_rule(self, rule: AdmissionRule) -> None:
        """NotFound for an unknown app; Conflict if the (dialect, network) has a rule."""
        ...

    async def remove_rule(self, app: str, dialect: str, network: str) -> None:
        """NotFound unless the app has this rule."""
        ...

    async def rules(self) -> list[AdmissionRule]:
        """Every stored rule, by dialect and network."""
        ...

    async def add_qschedule(self, record: QscheduleApp, if_absent: bool = False) -> bool:
        """NotFound for an unknown app; Conflict if its id, name or token is taken. With
        `if_absent`, a record with the same id, name, app and token is not an error: False."""
        ...

    async def remove_qschedule(self, app: str, qid: int) -> None:
        """NotFound unless the app has this qschedule app."""
        ...

    async def qschedule_apps(self, app: str | None = None) -> list[QscheduleApp]:
        """The qschedule apps (of one app, or all), by id."""
        ...

    async def qschedule_by_hash(self, token_hash: str) -> QscheduleApp | None: ...


class SentinelStore(Protocol):
    """The Sentinel dialect's numeric ids: a jobId per job it made (the job's key is
    `str(jobId)`), with Sentinel's own fields, and a taskId per run, given the first time the
    run is shown and never changed."""

    async def add_job(self, job: SentinelJob) -> SentinelJob:
        """Store a new row; the answer carries its new id."""
        ...

    async def update_job(self, job: SentinelJob) -> None:
        """Replace name, department, bizGroups and info; NotFound for an unknown id."""
        ...

    async def drop_job(self, job_id: int) -> None: ...

    async def get_job(self, job_id: int) -> SentinelJob | None: ...

    async def list_jobs(self, app: str, department: str | None, biz_group: str | None,
                        after_id: int, limit: int) -> list[SentinelJob]:
        """The app's jobs by id, filtered by department and one bizGroups id."""
        ...

    async def task_ids(self, job_id: int, run_ids: Sequence[str]) -> dict[str, int]:
        """The taskId of each run, given now to those without one."""
        ...

    async def task(self, task_id: int) -> tuple[str, int] | None:
        """(run id, jobId) of a taskId, or None."""
        ...


# -- Kubernetes runs ---------------------------------------------------------------------------

KUBE_CREATING, KUBE_ACTIVE, KUBE_ENDED = "creating", "active", "ended"  # a KubeRun's phase


@dataclass(frozen=True, slots=True)
class KubeRun:
    """A run handed to a cluster: the Job to create and who follows it."""

    run_id: str
    attempt: int
    job_id: str
    cluster: str
    namespace: str
    job_name: str
    manifest: dict[str, Any]
    logs: str
    phase: str
    created_at: Micros
    outcome: str | None
    reason: str | None
    callback_url: str | None
    callback_state: str
    callback_tries: int


@dataclass(frozen=True, slots=True)
class PodRecord:
    """A pod of a run's Job as the follower saw it: one attempt of the run (and that
    attempt's task, which holds its log). Times are the pod's own when the cluster said."""

    name: str
    node: str
    state: TaskState
    exit_code: int | None
    error: str | None
    restarts: int = 0
    started_at: Micros | None = None
    finished_at: Micros | None = None


class KubeRunStore(Protocol):
    """Runs on Kubernetes, beside the Store's runs. A handed-off run is leased to KUBE_OWNER
    (no node rescues it); its follower's lease (`follow_until`) lapses when its node dies and
    another node's `claim` takes it. `settle` ends the run once, whoever reports it; pod logs
    are appended at byte offsets, so a piece sent twice is stored once."""

    async def hand_off(
        self, owner: str, run: KubeRun, now: Micros, follow_until: Micros
    ) -> bool: ...

    async def claim(
        self, owner: str, now: Micros, follow_until: Micros, limit: int = 500
    ) -> list[KubeRun]: ...

    async def created(self, run_id: str) -> None: ...

    async def run_states(self, run_ids: Sequence[str]) -> dict[str, RunState]: ...

    async def get(self, run_id: str) -> KubeRun | None: ...

    async def record_pods(
        self, run: KubeRun, pods: Sequence[PodRecord], now: Micros
    ) -> dict[str, str]: ...

    async def append_log(self, task_id: str, offset: int, data: bytes) -> int: ...

    async def settle(
        self, owner: str, run: KubeRun, state: RunState, reason: str | None, now: Micros
    ) -> bool: ...

    async def ended_jobs(
        self, job_id: str, outcome: RunState, skip: int
    ) -> list[tuple[str, str]]: ...

    async def purge(self, ended_before: Micros, limit: int = 1_000) -> int: ...

    async def callback_policy(self, run: KubeRun) -> RetryPolicy | None: ...

    async def due_callbacks(self, owner: str, now: Micros) -> list[KubeRun]: ...

    async def callback_sent(
        self, run: KubeRun, ok: bool, retryable: bool, now: Micros
    ) -> str: ...


# -- the audit trail ---------------------------------------------------------------------------


class AuditStore(Protocol):
    """The audit trail. A change's entry is written by the change's own write (see
    `PendingChange`); `record` is for entries with no change to ride on (refusals, failures),
    many at once in one transaction. Entries are listed newest first by (at, id)."""

    # Whether a change's own write carries its entry (SQL); False: the memory store, where
    # the API records a change once it has succeeded.
    transactional: bool

    async def record(self, entries: Sequence[AuditEntry]) -> None: ...

    async def find(
        self, where: AuditFilter, after: AuditCursor | None, limit: int
    ) -> list[AuditEntry]: ...

    async def purge(self, before: Micros, limit: int) -> int:
        """Delete up to `limit` entries older than `before`; how many went."""
        ...


@dataclass(slots=True)
class PendingChange:
    """The audit entry of the change a request is making, waiting for that change's write.

    The API puts one in `CURRENT_CHANGE` for a request that changes something; the SQL store
    writes `describe(outcome)` inside the transaction of the first write made while it is
    `armed`, then marks it `recorded`. A write that fails rolls the entry back with it; the
    API then records the refusal or failure on its own. `judge` turns the write's result into
    an outcome when a write can end without changing anything (a conflicting create)."""

    describe: Callable[[str], AuditEntry]
    armed: Callable[[], bool] = lambda: True  # the request reached a route that changes
    recorded: bool = False
    judge: Callable[[Any], str] | None = None


CURRENT_CHANGE: ContextVar[PendingChange | None] = ContextVar("cronwheel_change", default=None)


def change_to_record() -> PendingChange | None:
    """The pending change a write made now must carry, if any."""
    change = CURRENT_CHANGE.get()
    if change is None or change.recorded or not change.armed():
        return None
    return change
