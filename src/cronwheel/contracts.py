"""The plug points of cronwheel and the promises each must keep.

Store
    Durable home of jobs, runs and attempts. Every write is atomic. Claims are leases:
    `acquire_due_jobs` hands a job to one owner until `lease_until`; nobody else may fire it
    before that lease lapses. A run is unique on (job, scheduled time) for scheduled runs, and
    it is created in the same transaction that advances its job, so an occurrence fires at most
    once whatever the timing. A run in state running is held by a lease too; once it lapses,
    `acquire_due_runs` hands it to a new owner, recording the lost attempt as abandoned.
    Rescuers re-check state in the same statement that changes it.

Transport
    Sends one delivery and reports what happened. It never raises for a receiver's failure:
    a refused connection, a timeout or an error status is a `DeliveryResult` with
    `retryable` set as the receiver's answer suggests. It must give up by `delivery.timeout`.
    The same run id (the idempotency key) goes out on every attempt of a run.

Clock
    The engine asks the clock for "now" and sleeps through it, so tests can set time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cronwheel.domain.access import App, TokenRecord
from cronwheel.domain.jobs import Job, JobState
from cronwheel.domain.misfire import FirePlan
from cronwheel.domain.runs import Attempt, AttemptOutcome, Run, RunState
from cronwheel.domain.targets import Target
from cronwheel.domain.time import Micros


class Clock(Protocol):
    def now(self) -> Micros: ...


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


@dataclass(frozen=True, slots=True)
class NodeStatus:
    info: NodeInfo
    heartbeat_at: Micros
    stopped_at: Micros | None
    jobs_held: int  # claimed into its look-ahead window
    runs_held: int  # deliveries under way


@dataclass(frozen=True, slots=True)
class JobFilter:
    namespace: str | None = None
    state: JobState | None = None
    key_prefix: str | None = None


class Store(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def add_jobs(
        self, jobs: Sequence[Job], all_or_nothing: bool, replace: bool = False
    ) -> list[AddOutcome]:
        """Insert new jobs; with `replace`, overwrite the definition of existing different ones
        (keeping their id and history, restarting their schedule)."""
        ...

    async def get_job(self, namespace: str, key: str) -> Job | None: ...

    async def get_job_by_id(self, job_id: str) -> Job | None: ...

    async def list_jobs(self, where: JobFilter, after_id: str | None, limit: int) -> list[Job]: ...

    async def change_job(
        self, namespace: str, key: str, change: Callable[[Job], Job], cancel_runs: bool = False
    ) -> Job:
        """Apply a domain transition atomically; raises NotFound or the transition's error."""
        ...

    async def acquire_due_jobs(
        self, owner: str, now: Micros, horizon: Micros, limit: int, lease_until: Micros
    ) -> list[Job]: ...

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
    ) -> Run: ...

    async def acquire_due_runs(
        self, owner: str, now: Micros, limit: int, lease_until: Micros
    ) -> list[tuple[Run, Job]]: ...

    async def record_attempts(self, owner: str, records: Sequence[AttemptRecord]) -> None: ...

    async def renew_runs(self, owner: str, run_ids: Sequence[str], lease_until: Micros) -> None:
        """Extend the leases of runs this owner still holds in memory."""
        ...

    async def release(self, owner: str | None) -> None:
        """Give up leases held by `owner` (every lease when None: a single-node restart)."""
        ...

    async def list_runs(self, job_id: str, before_id: str | None, limit: int) -> list[Run]: ...

    async def db_now(self) -> Micros:
        """The database's clock: the cluster's one clock for fire decisions."""
        ...

    async def heartbeat(self, node: NodeInfo, now: Micros, stopped: bool = False) -> None: ...

    async def list_nodes(self) -> list[NodeStatus]: ...

    async def purge(self, finished_before: Micros, limit: int) -> int:
        """Delete up to `limit` runs finished before the instant, with their attempts."""
        ...

    async def purge_output(self, finished_before: Micros, limit: int) -> int:
        """Delete the output of up to `limit` tasks finished before the instant; their runs,
        attempts and tasks stay (a read of it then finds an empty, ended stream)."""
        ...

    async def get_run(self, run_id: str) -> tuple[Run, list[Attempt]] | None: ...


class Transport(Protocol):
    async def deliver(self, delivery: Delivery) -> DeliveryResult: ...

    async def aclose(self) -> None: ...


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
