"""Request and response models of the native API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cronwheel.domain.job_schedules import Op
from cronwheel.domain.jobs import (
    DEFAULT_NAMESPACE,
    MAX_PRIORITY,
    ConcurrencyPolicy,
    MisfirePolicy,
)
from cronwheel.domain.jsonlimits import check_json_ints
from cronwheel.domain.union import MAX_ITEMS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetryIn(_Strict):
    max_attempts: int = Field(3, ge=1, le=100)
    initial_backoff: float = Field(1.0, ge=0, le=86_400, description="seconds")
    max_backoff: float = Field(300.0, ge=0, le=86_400, description="seconds")
    multiplier: float = Field(2.0, ge=1, le=10)
    jitter: float = Field(0.2, ge=0, le=1)


class MisfireIn(_Strict):
    policy: MisfirePolicy = MisfirePolicy.FIRE_ONCE
    grace: float = Field(60.0, ge=0, le=31_536_000, description="seconds a late fire is on time")


SCHEDULE_DOC = (
    "One of: {'kind': 'once', 'at': '2026-11-21T18:00:00Z'}; {'kind': 'once', 'after': 'PT30S'} "
    "(or a number of seconds; add 'countdown': true for a pausable countdown that keeps its "
    "remaining time while paused); {'kind': 'simple', 'interval': 5, 'unit': 'minute', "
    "'repeat': 3 (-1: for ever), 'start': ..., 'end': ...}; {'kind': 'rate', 'every': '5m'}; "
    "{'kind': 'iso8601', 'expr': 'R5/2026-01-01T00:00:00Z/PT1H'}; {'kind': 'cron', "
    "'expr': '0 30 9 ? * MON-FRI', 'tz': 'Europe/Berlin'}. Every kind takes 'start' and 'end'."
)
TARGET_DOC = (
    "One of: {'kind': 'http', 'url': ..., 'method': 'POST', 'headers': {}, 'timeout': 10, "
    "'success': '2xx' or 'code_ok'}; "
    "{'kind': 'grpc', 'address': 'host:port', 'timeout': 10, 'service': 'cronwheel' or "
    "'delayjob'}; "
    "{'kind': 'kafka', 'bootstrap': ['host:port'] or 'server', 'topic': 'name', 'timeout': 10}; "
    "{'kind': 'log', 'level': 'info'}; "
    "{'kind': 'tcp', 'host': ..., 'port': n}; {'kind': 'worker', 'group': 'default', "
    "'route': 'round-robin', 'type': 'shell', 'spec': {'command': 'echo hi'}, 'timeout': 3600} "
    "(run by a worker process; see docs/workers.md); "
    "{'kind': 'kubernetes', 'cluster': 'id', 'namespace': 'ns', 'image': ..., 'command': [], "
    "'args': [], ...} (a batch/v1 Job per run; see docs/kubernetes.md)."
)


class AlertIn(_Strict):
    after: int = Field(ge=1, le=10_000, description="consecutive failed runs before an alert")
    webhook: str = Field(max_length=2_000, description="http(s) URL the alert is POSTed to")


class JobIn(_Strict):
    namespace: str = Field(DEFAULT_NAMESPACE, min_length=1, max_length=255)
    key: str = Field(min_length=1, max_length=255)
    schedule: dict[str, Any] = Field(description=SCHEDULE_DOC)
    target: dict[str, Any] = Field(description=TARGET_DOC)
    payload: Any = Field(None, description="any JSON value; sent as the body of each delivery")
    priority: int = Field(0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    retry: RetryIn = Field(default_factory=RetryIn)  # not a default copied for every job
    misfire: MisfireIn = Field(default_factory=MisfireIn)
    concurrency: ConcurrencyPolicy | None = Field(
        None,
        description="while the previous run is in flight: allow another, forbid (skip), "
        "or replace (cancel the previous run); allow by default, forbid for kubernetes targets",
    )
    alert: AlertIn | None = Field(None, description="alert a webhook after N failed runs in a row")
    depends_on: list[dict[str, Any]] | None = Field(
        None, max_length=32,
        description="[{'job': KEY, 'namespace': NS (default: this job's), 'strategy': 'all' | "
        "'last' | 'any', 'window': 'cd' | 'X(n)' | 'X(n,m)'}]; a run waits until every entry "
        "holds (docs/dependencies.md)",
    )
    expiry: float | None = Field(
        None, ge=1, le=31_622_400,
        description="seconds past its planned time a run may wait for its dependencies "
        "before it expires (default 86400)",
    )

    @field_validator("schedule", "target", "payload")
    @classmethod
    def _ints(cls, value: Any) -> Any:
        return check_json_ints(value)


class BatchIn(_Strict):
    jobs: list[JobIn] = Field(min_length=1)


class TriggerIn(_Strict):
    payload: Any = Field(None, description="replaces the job's payload for this run only")

    @field_validator("payload")
    @classmethod
    def _ints(cls, value: Any) -> Any:
        return check_json_ints(value)


class JobOut(BaseModel):
    id: str
    namespace: str
    key: str
    state: str
    schedule: dict[str, Any]
    target: dict[str, Any]
    payload: Any
    priority: int
    retry: RetryIn
    misfire: MisfireIn
    concurrency: ConcurrencyPolicy
    alert: AlertIn | None = None
    depends_on: list[dict[str, Any]] = Field(default_factory=list)
    expiry: float = 86_400.0
    next_fire_at: str | None
    remaining: float | None = Field(description="seconds left on a paused countdown")
    last_fire_at: str | None
    created_at: str
    updated_at: str


class DeletedOut(BaseModel):
    job: JobOut = Field(description="the job as it was")
    runs: str = Field(description="kept (until retention; unfinished ones cancelled) or deleted")


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None


class BatchOut(BaseModel):
    jobs: list[JobOut]
    created: int
    existing: int


class AttemptOut(BaseModel):
    number: int
    outcome: str
    started_at: str
    finished_at: str
    node: str
    status_code: int | None
    response: str | None
    error: str | None


class RunOut(BaseModel):
    id: str
    job_id: str
    namespace: str
    key: str
    kind: str
    state: str
    scheduled_at: str
    fired_at: str
    attempts: int
    started_at: str | None
    finished_at: str | None
    node: str | None
    last_error: str | None
    payload: Any = None


class RunDetail(RunOut):
    attempt_log: list[AttemptOut]


class RunPage(BaseModel):
    runs: list[RunOut]
    next_cursor: str | None


class GraphRunOut(BaseModel):
    id: str
    scheduled_at: str
    state: str


class GraphJobOut(BaseModel):
    namespace: str
    key: str
    state: str = Field(description="the job's state, or 'missing' for an unknown upstream")
    strategy: str | None
    window: str | None
    runs: list[GraphRunOut]
    repeated: bool = Field(description="drawn already in this tree; its branches are there")
    children: list[GraphJobOut]


class DependenciesOut(BaseModel):
    namespace: str
    key: str
    state: str
    window: str
    start: str
    end: str
    runs: list[GraphRunOut]
    upstream: list[GraphJobOut]
    downstream: list[GraphJobOut]


class NodeOut(BaseModel):
    owner: str = Field(description="this process's id; a restarted node gets a new one")
    name: str
    address: str
    version: str
    started_at: str
    heartbeat_at: str
    stopped_at: str | None
    alive: bool = Field(description="heartbeat within the lease: its work is its own")
    state: str = Field("alive", description="alive; stopped (said goodbye, listed for ten "
                       "minutes); lost (silent past its lease without stopping)")
    jobs_held: int = Field(description="jobs claimed into its look-ahead window")
    runs_held: int = Field(description="runs it is delivering")


class KubernetesOut(BaseModel):
    id: str = Field(description="the cluster's id in the configuration (`target.cluster`)")
    ok: bool = Field(description="its API server answered and Jobs can be listed")
    detail: str | None = None
    error: str | None = None


class ClusterOut(BaseModel):
    now: str = Field(description="the database's clock")
    node: str = Field(description="the owner id of the node that answered")
    leader: bool = Field(description="whether the answering node holds the singleton duties")
    engine: str | None = Field(
        None, description="the owner id the engine firing for this server claims under: the "
        "node itself, its engine process (`serve --engine-process`), or none")
    nodes: list[NodeOut]
    kubernetes: list[KubernetesOut] = Field(
        default_factory=list, description="configured Kubernetes clusters, checked now")


class PreviewOut(BaseModel):
    kind: str
    expr: str
    tz: str | None
    description: str
    next: list[str]


# -- workers, as operators see them (the workers' own protocol is in api/workers.py) ---------


class WorkerOut(BaseModel):
    id: str = Field(description="this process's registration; a restarted worker gets a new one")
    name: str
    host: str
    groups: list[str]
    types: list[str] = Field(description="the job types it accepts (`cronwheel worker --types`)")
    capacity: int
    busy: int
    online: bool
    version: str
    started_at: str
    heartbeat_at: str
    stopped_at: str | None


class WorkerList(BaseModel):
    workers: list[WorkerOut]


class JobWorkerOut(WorkerOut):
    enabled: bool = Field(description="may run this job (its own switch, else the all-jobs one)")


class JobWorkers(BaseModel):
    key: str
    namespace: str
    workers: list[JobWorkerOut]


class SwitchOut(BaseModel):
    workers: dict[str, bool]


class TaskOut(BaseModel):
    id: str
    run_id: str
    attempt: int
    worker: str
    worker_id: str
    host: str
    state: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    exit_code: int | None
    error: str | None
    log_size: int
    result_size: int
    kill_requested: bool


class RunTasks(BaseModel):
    run_id: str
    tasks: list[TaskOut]


class HostRunOut(RunOut):
    task: TaskOut


class HostRuns(BaseModel):
    host: str
    runs: list[HostRunOut]


class KillOut(BaseModel):
    run_id: str
    state: str
    killing: bool = Field(description="its processes are being killed (it was running)")


class LogPageOut(BaseModel):
    run_id: str
    task_id: str
    attempt: int
    worker: str
    stream: str
    offset: int
    next_offset: int = Field(description="the offset to ask for next")
    size: int
    end: bool = Field(description="the task has finished and everything was read")
    text: str


class AlertOut(BaseModel):
    id: str
    run_id: str
    failures: int
    webhook: str
    state: str
    tries: int
    sent_at: str | None
    error: str | None


class JobAlerts(BaseModel):
    key: str
    namespace: str
    failures: int = Field(description="failed runs in a row now")
    alerts: list[AlertOut]


# -- a job's time expressions by id, and backfills (api/schedules.py) -----------------------


class ScheduleItemOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    kind: str
    added_at: str


class ScheduleList(BaseModel):
    schedules: list[ScheduleItemOut]


class ScheduleChanged(BaseModel):
    schedule: ScheduleItemOut
    job: JobOut


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Op = Field(description="add, edit or remove (Sentinel's ADD, EDIT, DELETE)")
    id: str | None = Field(None, max_length=64, description="required to edit or remove")
    schedule: dict[str, Any] | None = Field(None, description="the expression, to add or edit")


class ChangesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    changes: list[ChangeIn] = Field(min_length=1, max_length=MAX_ITEMS)


class RerunIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str | None = Field(None, alias="from", max_length=64,
                              description="ISO 8601 instant: the first planned instant rerun")
    to: str | None = Field(None, max_length=64, description="ISO 8601 instant, included")
    downstream: bool = Field(False, description="rerun the dependent jobs' runs too")


class RerunOut(BaseModel):
    created: int = Field(description="occurrences that had no run: a new run, due now")
    rerun: int = Field(description="ended runs given a new attempt, due now")
    in_flight: int = Field(description="runs pending or running already, left as they are")
    runs: list[RunOut]


class AuditEntryOut(BaseModel):
    id: str
    at: str = Field(description="when the change was asked for (ISO 8601, UTC)")
    action: str = Field(description="the operation: create_job, revoke_token, "
                        "delayjob.submit_job, console.pause_job...")
    outcome: str = Field(description="ok, no_change, or the refusal: unauthenticated, "
                         "forbidden, not_found, conflict, invalid, too_large, rate_limited, "
                         "error")
    status: int = Field(description="the HTTP status the caller was answered")
    app: str | None = Field(description="the caller's app; null without a valid credential")
    token_prefix: str | None
    role: str | None
    user: str | None = Field(description="a dialect's end user, where it names one")
    address: str | None = Field(description="the client's address")
    namespace: str | None
    target: str | None = Field(description="what was changed: a job key, run id, app...")
    detail: dict[str, Any] = Field(description="the method and path, and small facts")


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: str | None
