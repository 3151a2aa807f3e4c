"""Every call of the native API, once: its method, path, query, body, whether it may be
retried, and how its answer becomes a typed value. The sync and async clients only send them.

A call may be retried when sending it twice does what sending it once does: reads, PUT and
DELETE, job creation (idempotent by key and definition), and setting worker switches.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from cronwheel.api.schemas import (
    AuditPage,
    BatchOut,
    ClusterOut,
    DeletedOut,
    DependenciesOut,
    HostRuns,
    JobAlerts,
    JobIn,
    JobOut,
    JobPage,
    JobWorkers,
    KillOut,
    LogPageOut,
    PreviewOut,
    RerunOut,
    RunDetail,
    RunPage,
    RunTasks,
    ScheduleChanged,
    ScheduleList,
    SwitchOut,
    WorkerList,
)
from cronwheel.client.errors import ApiError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
JsonObject = dict[str, Any]
Params = dict[str, str | int | float | bool]
NO_BODY: Any = object()
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class Created:
    """A job as the server holds it, and whether this call created it (201) or found the
    same definition there already (200)."""

    job: JobOut
    created: bool


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[int, Any], T]
    params: Params = field(default_factory=dict)
    json: Any = NO_BODY
    content: bytes | None = None
    idempotent: bool | None = None  # None: by method

    @property
    def retriable(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")


def _model(model: type[M]) -> Callable[[int, Any], M]:
    def read(status: int, answer: Any) -> M:
        return model.model_validate(answer)

    return read


def _object(status: int, answer: Any) -> JsonObject:
    if not isinstance(answer, dict):
        raise ApiError(status, "bad_response", "the server's answer is not a JSON object")
    return answer


def _created(status: int, answer: Any) -> Created:
    return Created(JobOut.model_validate(answer), created=status == 201)


def _params(**given: str | int | float | bool | None) -> Params:
    return {name: value for name, value in given.items() if value is not None}


def _seg(value: str) -> str:
    return quote(value, safe="")


def _job(key: str, tail: str = "") -> str:
    return f"/v1/jobs/{_seg(key)}{tail}"


def _body(value: BaseModel | Mapping[str, Any]) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    return dict(value)


# -- jobs ------------------------------------------------------------------------------------


def create_job(job: JobIn | Mapping[str, Any], replace: bool = False) -> Call[Created]:
    params = _params(replace=True) if replace else {}
    return Call("POST", "/v1/jobs", _created, params, _body(job), idempotent=True)


def create_jobs(jobs: Sequence[JobIn | Mapping[str, Any]]) -> Call[BatchOut]:
    body = {"jobs": [_body(job) for job in jobs]}  # a wrong item: the server's 422 names it
    return Call("POST", "/v1/jobs/batch", _model(BatchOut), json=body, idempotent=True)


def list_jobs(
    namespace: str | None = None, state: str | None = None, key_prefix: str | None = None,
    limit: int = 100, cursor: str | None = None,
) -> Call[JobPage]:
    params = _params(namespace=namespace, state=state, key_prefix=key_prefix, limit=limit,
                     cursor=cursor)
    return Call("GET", "/v1/jobs", _model(JobPage), params)


def get_job(key: str, namespace: str = DEFAULT_NAMESPACE) -> Call[JobOut]:
    return Call("GET", _job(key), _model(JobOut), _params(namespace=namespace))


def change_job(key: str, action: str, namespace: str = DEFAULT_NAMESPACE) -> Call[JobOut]:
    """pause, resume, cancel, disable or enable."""
    if action not in ("pause", "resume", "cancel", "disable", "enable"):
        raise ValueError(f"no job action {action!r}")
    return Call("POST", _job(key, f"/{action}"), _model(JobOut), _params(namespace=namespace))


def trigger_job(
    key: str, namespace: str = DEFAULT_NAMESPACE, payload: Any = NO_BODY
) -> Call[RunDetail]:
    body = NO_BODY if payload is NO_BODY else {"payload": payload}
    return Call("POST", _job(key, "/trigger"), _model(RunDetail), _params(namespace=namespace),
                body)


def delete_job(
    key: str, namespace: str = DEFAULT_NAMESPACE, delete_runs: bool = False
) -> Call[DeletedOut]:
    params = _params(namespace=namespace, runs="delete" if delete_runs else "keep")
    return Call("DELETE", _job(key), _model(DeletedOut), params)


def job_runs(
    key: str, namespace: str = DEFAULT_NAMESPACE, limit: int = 100, cursor: str | None = None
) -> Call[RunPage]:
    params = _params(namespace=namespace, limit=limit, cursor=cursor)
    return Call("GET", _job(key, "/runs"), _model(RunPage), params)


def job_workers(key: str, namespace: str = DEFAULT_NAMESPACE) -> Call[JobWorkers]:
    return Call("GET", _job(key, "/workers"), _model(JobWorkers), _params(namespace=namespace))


def switch_job_workers(
    key: str, switches: Mapping[str, bool], namespace: str = DEFAULT_NAMESPACE
) -> Call[JobWorkers]:
    return Call("POST", _job(key, "/workers"), _model(JobWorkers), _params(namespace=namespace),
                {"workers": dict(switches)}, idempotent=True)


def job_alerts(key: str, namespace: str = DEFAULT_NAMESPACE) -> Call[JobAlerts]:
    return Call("GET", _job(key, "/alerts"), _model(JobAlerts), _params(namespace=namespace))


def job_dependencies(
    key: str, namespace: str = DEFAULT_NAMESPACE, window: str | None = None
) -> Call[DependenciesOut]:
    """`window`: cd (today, the default), h(3)...: the span whose runs each job shows."""
    return Call("GET", _job(key, "/dependencies"), _model(DependenciesOut),
                _params(namespace=namespace, window=window))


# -- a job's time expressions by id, and backfills -------------------------------------------


def job_schedules(key: str, namespace: str = DEFAULT_NAMESPACE) -> Call[ScheduleList]:
    return Call("GET", _job(key, "/schedules"), _model(ScheduleList),
                _params(namespace=namespace))


def add_schedule(
    key: str, schedule: Mapping[str, Any], namespace: str = DEFAULT_NAMESPACE
) -> Call[ScheduleChanged]:
    """`schedule` as a job's, plus an optional `id` (else the smallest free number)."""
    return Call("POST", _job(key, "/schedules"), _model(ScheduleChanged),
                _params(namespace=namespace), dict(schedule))


def edit_schedule(
    key: str, schedule_id: str, schedule: Mapping[str, Any], namespace: str = DEFAULT_NAMESPACE
) -> Call[ScheduleChanged]:
    return Call("PUT", _job(key, f"/schedules/{_seg(schedule_id)}"), _model(ScheduleChanged),
                _params(namespace=namespace), dict(schedule))


def remove_schedule(
    key: str, schedule_id: str, namespace: str = DEFAULT_NAMESPACE
) -> Call[JobOut]:
    return Call("DELETE", _job(key, f"/schedules/{_seg(schedule_id)}"), _model(JobOut),
                _params(namespace=namespace))


def change_schedules(
    key: str, changes: Sequence[Mapping[str, Any]], namespace: str = DEFAULT_NAMESPACE
) -> Call[JobOut]:
    """Ordered {"op": add|edit|remove, "id", "schedule"} changes, all or none."""
    return Call("PATCH", _job(key, "/schedules"), _model(JobOut), _params(namespace=namespace),
                {"changes": [dict(change) for change in changes]})


def rerun_job(
    key: str, start: str, end: str, downstream: bool = False,
    namespace: str = DEFAULT_NAMESPACE,
) -> Call[RerunOut]:
    """Not retried: a second send would give ended runs one more attempt."""
    body = {"from": start, "to": end, "downstream": downstream}
    return Call("POST", _job(key, "/rerun"), _model(RerunOut), _params(namespace=namespace),
                body)


# -- runs ------------------------------------------------------------------------------------


def get_run(run_id: str) -> Call[RunDetail]:
    return Call("GET", f"/v1/runs/{_seg(run_id)}", _model(RunDetail))


def remove_run(run_id: str) -> Call[RunDetail]:
    """End a run not started yet `cancelled` (it stays listed); a started one is killed."""
    return Call("POST", f"/v1/runs/{_seg(run_id)}/remove", _model(RunDetail))


def kill_run(run_id: str) -> Call[KillOut]:
    return Call("POST", f"/v1/runs/{_seg(run_id)}/kill", _model(KillOut))


def run_tasks(run_id: str) -> Call[RunTasks]:
    return Call("GET", f"/v1/runs/{_seg(run_id)}/tasks", _model(RunTasks))


def run_log(
    run_id: str, offset: int = 0, limit: int = 65_536, stream: str = "log",
    attempt: int | None = None, worker: str | None = None,
) -> Call[LogPageOut]:
    params = _params(offset=offset, limit=limit, stream=stream, attempt=attempt, worker=worker)
    return Call("GET", f"/v1/runs/{_seg(run_id)}/log", _model(LogPageOut), params)


def follow_log(
    run_id: str, offset: int = 0, stream: str = "log", attempt: int | None = None,
    worker: str | None = None,
) -> Call[None]:
    """Server-sent events; the clients read the stream themselves."""
    params = _params(offset=offset, stream=stream, attempt=attempt, worker=worker)
    return Call("GET", f"/v1/runs/{_seg(run_id)}/log/follow", lambda _s, _a: None, params)


# -- workers, cluster, schedules -------------------------------------------------------------


def workers(include_stopped: bool = False) -> Call[WorkerList]:
    params = _params(include_stopped=True) if include_stopped else {}
    return Call("GET", "/v1/workers", _model(WorkerList), params)


def switch_workers(switches: Mapping[str, bool]) -> Call[SwitchOut]:
    return Call("POST", "/v1/workers/switch", _model(SwitchOut), json={"workers": dict(switches)},
                idempotent=True)


def runs_on_host(host: str) -> Call[HostRuns]:
    return Call("GET", f"/v1/workers/{_seg(host)}/runs", _model(HostRuns))


def cluster(include_stopped: bool = False) -> Call[ClusterOut]:
    params = _params(include_stopped=True) if include_stopped else {}
    return Call("GET", "/v1/cluster", _model(ClusterOut), params)


def preview(
    expr: str, tz: str | None = None, after: str | None = None, n: int = 10,
    kind: str | None = None,
) -> Call[PreviewOut]:
    params = _params(expr=expr, tz=tz, after=after, n=n, kind=kind)
    return Call("GET", "/v1/schedules/preview", _model(PreviewOut), params)


def audit(
    app: str | None = None, namespace: str | None = None, action: str | None = None,
    outcome: str | None = None, token_prefix: str | None = None, since: str | None = None,
    until: str | None = None, limit: int = 100, cursor: str | None = None,
) -> Call[AuditPage]:
    """A page of the audit trail, newest first (admins)."""
    params = _params(app=app, namespace=namespace, action=action, outcome=outcome,
                     token_prefix=token_prefix, since=since, until=until, limit=limit,
                     cursor=cursor)
    return Call("GET", "/v1/audit", _model(AuditPage), params)


# -- apps, namespaces, tokens (admins; whoami for any token; see docs/auth.md) ---------------


def _none(status: int, answer: Any) -> None:
    return None


def _app(name: str, tail: str = "") -> str:
    return f"/v1/apps/{_seg(name)}{tail}"


def whoami() -> Call[JsonObject]:
    return Call("GET", "/v1/whoami", _object)


def apps() -> Call[JsonObject]:
    return Call("GET", "/v1/apps", _object)


def create_app(body: Mapping[str, Any]) -> Call[JsonObject]:
    return Call("POST", "/v1/apps", _object, json=dict(body))


def get_app(name: str) -> Call[JsonObject]:
    return Call("GET", _app(name), _object)


def update_app(name: str, body: Mapping[str, Any]) -> Call[JsonObject]:
    """grants, limits, note: what is given replaces what was there."""
    return Call("PATCH", _app(name), _object, json=dict(body), idempotent=True)


def remove_app(name: str) -> Call[None]:
    return Call("DELETE", _app(name), _none)


def namespaces(app: str) -> Call[JsonObject]:
    return Call("GET", _app(app, "/namespaces"), _object)


def add_namespace(app: str, claim: str) -> Call[JsonObject]:
    return Call("POST", _app(app, "/namespaces"), _object, json={"namespace": claim},
                idempotent=True)


def remove_namespace(app: str, claim: str) -> Call[JsonObject]:
    return Call("DELETE", _app(app, f"/namespaces/{_seg(claim)}"), _object)


def tokens(app: str) -> Call[JsonObject]:
    return Call("GET", _app(app, "/tokens"), _object)


def create_token(app: str, body: Mapping[str, Any]) -> Call[JsonObject]:
    """The answer holds the token itself: the only time the server shows it."""
    return Call("POST", _app(app, "/tokens"), _object, json=dict(body))


def revoke_token(app: str, token_id: str) -> Call[JsonObject]:
    return Call("POST", _app(app, f"/tokens/{_seg(token_id)}/revoke"), _object,
                idempotent=True)


def admission_rules(app: str) -> Call[JsonObject]:
    return Call("GET", _app(app, "/admission"), _object)


def add_admission_rule(app: str, body: Mapping[str, Any]) -> Call[JsonObject]:
    return Call("POST", _app(app, "/admission"), _object, json=dict(body))


def remove_admission_rule(app: str, dialect: str, network: str) -> Call[None]:
    return Call("DELETE", _app(app, f"/admission/{_seg(dialect)}/{_seg(network)}"), _none)


def qschedule_apps(app: str) -> Call[JsonObject]:
    return Call("GET", _app(app, "/qschedule"), _object)


def add_qschedule_app(app: str, body: Mapping[str, Any]) -> Call[JsonObject]:
    """The answer holds the Q-Server-Token: the only time the server shows it."""
    return Call("POST", _app(app, "/qschedule"), _object, json=dict(body))


def remove_qschedule_app(app: str, qid: int) -> Call[None]:
    return Call("DELETE", _app(app, f"/qschedule/{qid}"), _none)


def set_sentinel_key(app: str, app_key: str | None = None) -> Call[JsonObject]:
    """The answer holds the appKey: the only time the server shows it."""
    body = {} if app_key is None else {"app_key": app_key}
    return Call("POST", _app(app, "/sentinel-key"), _object, json=body)


def sentinel_key(app: str) -> Call[JsonObject]:
    """Whether the app has a Sentinel appKey (`set`), never the key."""
    return Call("GET", _app(app, "/sentinel-key"), _object)


def remove_sentinel_key(app: str) -> Call[None]:
    return Call("DELETE", _app(app, "/sentinel-key"), _none)


# -- the workers' protocol (what `cronwheel worker` speaks; see docs/workers.md) --------------


def register_worker(
    name: str, groups: Sequence[str] = ("default",), capacity: int = 4,
    host: str | None = None, version: str = "", types: Sequence[str] | None = None,
) -> Call[JsonObject]:
    """`types`: the job types the worker accepts (None: the built-in ones)."""
    body: JsonObject = {"name": name, "groups": list(groups), "capacity": capacity,
                        "version": version}
    if host is not None:
        body["host"] = host
    if types is not None:
        body["types"] = list(types)
    return Call("POST", "/v1/workers", _object, json=body)


def worker_heartbeat(worker_id: str, running: Sequence[str] = ()) -> Call[JsonObject]:
    return Call("POST", f"/v1/workers/{_seg(worker_id)}/heartbeat", _object,
                json={"running": list(running)}, idempotent=True)


def lease_tasks(worker_id: str, most: int = 1, wait: float = 0.0) -> Call[JsonObject]:
    return Call("POST", f"/v1/workers/{_seg(worker_id)}/lease", _object,
                json={"max": most, "wait": wait})


def task_output(
    worker_id: str, task_id: str, data: bytes, offset: int, stream: str = "log"
) -> Call[JsonObject]:
    """Append output at `offset`: sending the same piece again writes it once."""
    path = f"/v1/workers/{_seg(worker_id)}/tasks/{_seg(task_id)}/output"
    return Call("POST", path, _object, _params(stream=stream, offset=offset), content=data,
                idempotent=True)


def finish_task(
    worker_id: str, task_id: str, outcome: str, exit_code: int | None = None,
    error: str | None = None, result: bytes | None = None,
) -> Call[JsonObject]:
    body: JsonObject = {"outcome": outcome, "exit_code": exit_code, "error": error}
    if result is not None:
        body["result"] = base64.b64encode(result).decode()
    path = f"/v1/workers/{_seg(worker_id)}/tasks/{_seg(task_id)}/finish"
    return Call("POST", path, _object, json=body)


def stop_worker(worker_id: str) -> Call[JsonObject]:
    return Call("POST", f"/v1/workers/{_seg(worker_id)}/stop", _object, idempotent=True)
