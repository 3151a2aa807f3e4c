"""The Kubernetes job service dialect: `/api/once_job`, `/api/cron_job`, `/api/job_logs`.

Its clients create container jobs by `job_name` (unique) and address them by the `job_id`
they were given; answers are `{code, cause, error_msg, data}` with code 200 on success.
Both the document's methods (everything POST) and the real service's (GET lists, describe
and logs, DELETE delete) are served. Each job is a cronwheel job in namespace
`k8s-job` whose key is the `job_name` and whose target is a Kubernetes target; the
request as sent is kept as the job's payload (a Kubernetes target sends no payload), so
lists show it back. See docs/dialects/kubernetes.md for every choice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request

from cronwheel.api.dialects.admission import KUBERNETES_NAMESPACE, NotAdmitted, admit
from cronwheel.api.dialects.common import caller_of, retry_after, service_of
from cronwheel.api.errors import register_envelope
from cronwheel.api.responses import Json
from cronwheel.contracts import KUBE_CREATING, KubeRunStore
from cronwheel.domain.admission import KUBERNETES
from cronwheel.domain.errors import Conflict, DomainError, IllegalTransition, InvalidField
from cronwheel.domain.jobs import ConcurrencyPolicy, Job, JobSpec, JobState
from cronwheel.domain.limits import LimitExceeded, RateLimited
from cronwheel.domain.runs import Run, RunState
from cronwheel.domain.schedules import OneShot, Schedule, schedule_from_dict
from cronwheel.domain.targets import target_from_dict
from cronwheel.domain.time import US_PER_S
from cronwheel.domain.worker_target import NO_JOB_TYPES
from cronwheel.service import Service, Submission

NAMESPACE = KUBERNETES_NAMESPACE  # that of the built-in loopback rule
ONCE, CRON = "once_job", "cron_job"
_ENVELOPE = {"type": "object", "required": ["code", "cause", "error_msg", "data"],
             "properties": {"code": {"type": "integer"}, "cause": {"type": "string"},
                            "error_msg": {"type": "string"}, "data": {}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": _ENVELOPE}}}


# Every route's failures, in the envelope (see HTTP_STATUS); 401 and 403 come from the
# admission policy, before the route looks at the request.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("invalid parameter, no job_id, or a body that is not JSON"),
    401: _error("code 401: the client's rule needs a token (Authorization: Bearer cw_...), "
                "and none or a refused one was sent"),
    403: _error("code 403: the client's network is not admitted"),
    404: _error("no job with this job_id"),
    409: _error("a job of this job_name exists, or a Job of it was submitted"),
    422: _error("the job does not verify (a field the target refuses)"),
    429: _error("code 104: over the app's submits per second; Retry-After says when to "
                "try again"),
    503: _error("the server is closing"),
}
router = APIRouter(prefix="/api", tags=["kubernetes job service dialect"], responses=ERRORS)
for _prefix in ("/api/once_job/", "/api/cron_job/", "/api/job_logs/"):  # 404s, 405s
    register_envelope(_prefix, lambda code, message: envelope_error(-1, f"{code}: {message}"))

# The real service's failure codes (its pkg/errors), with its messages.
INVALID, NO_JOB_ID, DECODE, VERIFY, EXISTS, CLOSING = 100, 101, 103, 105, 106, 107
SUBMITTED, NOT_FOUND, FORBIDDEN = 254, 153, 403  # 403: cronwheel's own, not the service's
UNAUTHORIZED = 401  # cronwheel's own: the client's rule needs a token
LIMITED_FLOW = 104  # the document's public code for a request refused by rate limiting
MESSAGES = {
    INVALID: "invalid parameter.", NO_JOB_ID: "job_id is empty.",
    DECODE: "http body decode failed.", VERIFY: "verify Job failed.",
    EXISTS: "data already exists.", CLOSING: "server is closing.",
    SUBMITTED: "job Submitted", NOT_FOUND: "db query failed.",
    FORBIDDEN: "client not admitted.", UNAUTHORIZED: "client not authenticated.",
    LIMITED_FLOW: "request limited.",
}
HTTP_STATUS = {INVALID: 400, NO_JOB_ID: 400, DECODE: 400, VERIFY: 422, EXISTS: 409,
               SUBMITTED: 409, NOT_FOUND: 404, FORBIDDEN: 403, UNAUTHORIZED: 401,
               CLOSING: 503, LIMITED_FLOW: 429}
# job_status, as the real service numbers its states
SUBMIT, CREATED, FAILED, SUCCEEDED, DELETED = -1, 0, 1, 2, 3
# the request's field for each target field a check may name
FIELDS = {"target.cluster": "route", "target.namespace": "namespace", "target.image": "image",
          "target.command": "command", "target.args": "metadata.args",
          "target.env": "metadata.envs", "target.labels": "metadata.labels",
          "target.annotations": "metadata.annotations",
          "target.parallelism": "metadata.parallelism",
          "target.completions": "metadata.completions",
          "target.backoff_limit": "metadata.backoff_limit",
          "target.active_deadline": "metadata.active_deadline_seconds",
          "target.ttl_after_finished": "metadata.ttl_seconds_after_finished",
          "target.restart_policy": "metadata.restart_policy",
          "target.callback_url": "metadata.callback_url"}
MAX_PAGE_NUM = 1_000_000_000  # an offset of at most 10^12 rows, within any integer type


class DialectError(Exception):
    def __init__(self, code: int, cause: str) -> None:
        super().__init__(cause)
        self.code = code
        self.cause = cause


def envelope_error(code: int, cause: str) -> dict[str, Any]:
    return {"code": code, "cause": cause, "error_msg": MESSAGES.get(code, ""), "data": None}


def _ok(data: Any) -> Json:
    return Json({"code": 200, "cause": "", "error_msg": "", "data": data})


async def admit_client(request: Request) -> None:
    """Who may use this dialect, which carries no credentials: the `kubernetes` rules of the
    admission policy (loopback as the `system` app in `k8s-job` by default). The rule's
    namespace is where this request's jobs are created and looked up."""
    try:
        admitted = await admit(request, KUBERNETES)
    except NotAdmitted as exc:
        raise DialectError(UNAUTHORIZED if exc.status == 401 else FORBIDDEN,
                           f"client: {exc.message}") from None
    request.state.k8s_namespace = admitted.namespace


def _ns(request: Request) -> str:
    """The namespace of the admitted client's rule."""
    namespace: str = request.state.k8s_namespace
    return namespace


Handler = Callable[[Request, Service, Any], Awaitable[Any]]


async def _answer(request: Request, handler: Handler, body: bool = True) -> Json:
    try:
        await admit_client(request)
        data: Any = None
        if body:
            raw = await request.body()
            try:
                data = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError as exc:
                raise DialectError(DECODE, f"body: not valid JSON: {exc}") from None
        return _ok(await handler(request, service_of(request), data))
    except DialectError as exc:
        return Json(envelope_error(exc.code, exc.cause), HTTP_STATUS.get(exc.code, 400))
    except DomainError as exc:
        code = {Conflict: EXISTS, IllegalTransition: SUBMITTED, RateLimited: LIMITED_FLOW,
                LimitExceeded: FORBIDDEN}.get(type(exc), VERIFY)
        if exc.code == "not_found":
            code = NOT_FOUND
        field = FIELDS.get(exc.field or "", exc.field)
        cause = f"{field}: {exc.message}" if field else exc.message
        return Json(envelope_error(code, cause), HTTP_STATUS[code], headers=retry_after(exc))


# -- reading a request ----------------------------------------------------------------------


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise DialectError(DECODE, "body: expected a JSON object")
    return data


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise DialectError(INVALID, f"{name}: required, a non-empty string")
    return value.strip()


def _exec_time(data: dict[str, Any], required: bool) -> int | None:
    """Unix seconds: a number (the real service) or a string of digits (the document)."""
    value = data.get("job_exec_time")
    if value in (None, "", 0) and not required:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise DialectError(INVALID, "job_exec_time: unix seconds, a number or a string of "
                           "digits")
    return int(value)


def _json_map(metadata: dict[str, Any], name: str) -> dict[str, str]:
    raw = metadata.get(name)
    if raw in (None, ""):
        return {}
    try:
        value = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise DialectError(INVALID, f"metadata.{name}: a JSON object as a string") from None
    if not isinstance(value, dict):
        raise DialectError(INVALID, f"metadata.{name}: a JSON object as a string")
    return {str(k): str(v) for k, v in value.items()}


def _int(metadata: dict[str, Any], name: str, default: int | None) -> int | None:
    raw = metadata.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise DialectError(INVALID, f"metadata.{name}: a whole number") from None


def _csv(value: Any) -> list[str]:
    return [part for part in str(value or "").split(",") if part != ""]


def _target(clusters: list[str], data: dict[str, Any]) -> dict[str, Any]:
    """The Kubernetes target of a request: its metadata map, with the document's defaults
    (backoff 1, deadline and TTL 5 minutes) and `timeout` as the deadline when the metadata
    names none (the real service lets a default overwrite it; here what is sent wins)."""
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DialectError(INVALID, "metadata: an object of strings")
    timeout = data.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)):
        raise DialectError(INVALID, "timeout: a whole number of seconds")
    route = str(data.get("route") or "")
    cluster = route or (clusters[0] if clusters else "")  # no route: the first cluster
    deadline = _int(metadata, "active_deadline_seconds", timeout or 300)
    return {
        "kind": "kubernetes", "cluster": cluster, "namespace": _text(data, "namespace"),
        "image": _text(data, "image"), "command": _csv(data.get("command")),
        "args": _csv(metadata.get("args")), "env": _json_map(metadata, "envs"),
        "labels": _json_map(metadata, "labels"),
        "annotations": _json_map(metadata, "annotations"),
        "parallelism": _int(metadata, "parallelism", 1),
        "completions": _int(metadata, "completions", 1),
        "backoff_limit": _int(metadata, "backoff_limit", 1),
        "active_deadline": deadline,
        "ttl_after_finished": _int(metadata, "ttl_seconds_after_finished", 300),
        "restart_policy": metadata.get("restart_policy") or "Never",
        "logs": "always" if str(metadata.get("log_collect", "")).lower() == "true"
        else "failure",
        "callback_url": metadata.get("callback_url") or None,
    } | _history(metadata)


def _history(metadata: dict[str, Any]) -> dict[str, Any]:
    return {"keep_succeeded": _int(metadata, "successful_jobs_history_limit", None),
            "keep_failed": _int(metadata, "failed_jobs_history_limit", None)}


def _concurrency(metadata: Any) -> ConcurrencyPolicy:
    value = str((metadata or {}).get("concurrency_policy") or "Forbid").lower()
    try:
        return ConcurrencyPolicy(value)
    except ValueError:
        raise DialectError(INVALID, "metadata.concurrency_policy: Allow, Forbid or "
                           "Replace") from None


def _spec(request: Request, kind: str, data: dict[str, Any], name: str) -> JobSpec:
    now = service_of(request).clock.now()
    if kind == ONCE:
        at = _exec_time(data, required=True)
        assert at is not None
        schedule: Schedule = OneShot(max(now, at * US_PER_S))
    else:
        expr = _text(data, "schedule")
        try:
            schedule = schedule_from_dict({"kind": "cron", "expr": expr}, now)
        except InvalidField as exc:
            raise DialectError(VERIFY, f"schedule: {exc.message}") from None
    target = target_from_dict(_target(request.app.state.node.clusters.ids(), data),
                              job_types=NO_JOB_TYPES)
    stored = {k: data.get(k) for k in ("job_name", "job_exec_time", "namespace", "metadata",
                                        "image", "command", "timeout", "route", "schedule")}
    return JobSpec(_ns(request), name, schedule, target, payload={"kind": kind} | stored,
                   concurrency=_concurrency(data.get("metadata")))


# -- the jobs -------------------------------------------------------------------------------


async def _job_of(service: Service, kind: str, job_id: Any, namespace: str) -> Job:
    if not isinstance(job_id, str) or not job_id:
        raise DialectError(NO_JOB_ID, "job_id: required")
    job = await service.store.get_job_by_id(job_id)
    if job is None or job.spec.namespace != namespace or \
            (job.spec.payload or {}).get("kind") != kind:
        raise DialectError(NOT_FOUND, f"job_id: no {kind} {job_id!r}")
    return job


async def _create(request: Request, service: Service, kind: str, data: Any) -> dict[str, str]:
    body = _object(data)
    name = _text(body, "job_name")
    if await service.store.get_job(_ns(request), name) is not None:
        raise DialectError(EXISTS, f"job_name: {name!r} is taken")
    (outcome,) = await service.submit([Submission(_spec(request, kind, body, name))],
                                      caller=caller_of(request))
    if outcome.conflict or not outcome.created:
        raise DialectError(EXISTS, f"job_name: {name!r} is taken")
    return {"job_id": outcome.job.id}


async def _stop_runs(request: Request, service: Service, job: Job) -> None:
    """Kill the job's live runs (their Jobs are deleted); refused while a Job is being
    created, as the real service refuses a job that is submitted but not created."""
    kube: KubeRunStore | None = request.app.state.node.kube_runs
    runs = await service.store.list_runs(job.id, None, 100)
    live = [r for r in runs if r.state is RunState.RUNNING]
    for run in live:
        held = None if kube is None else await kube.get(run.id)
        if held is not None and held.phase == KUBE_CREATING:
            raise DialectError(SUBMITTED, "job_id: its Kubernetes Job is being created; try "
                               "again in a moment")
    for run in live:
        await request.app.state.node.workers.kill(run.id)


async def _update(request: Request, service: Service, kind: str, data: Any) -> str:
    """Delete and recreate: the running Job goes, the new definition replaces the old
    (same job_id and history)."""
    body = _object(data)
    job = await _job_of(service, kind, body.get("job_id"), _ns(request))
    spec = _spec(request, kind, body | {"job_name": job.spec.key}, job.spec.key)
    await _stop_runs(request, service, job)
    await service.submit([Submission(spec)], replace=True, caller=caller_of(request))
    return job.id


async def _delete(request: Request, service: Service, kind: str, job_id: str) -> dict[str, str]:
    job = await _job_of(service, kind, job_id, _ns(request))
    await _stop_runs(request, service, job)
    if job.state in (JobState.ACTIVE, JobState.PAUSED):  # a fired once job is completed
        await service.cancel(job.spec.namespace, job.spec.key)
    return {"job_id": job.id}


@dataclass(frozen=True, slots=True)
class Counts:
    status: int
    times: int
    successes: int
    information: str


RUNS_COUNTED = 1_000  # a job's newest runs its counts read


async def _counts(service: Service, job: Job, runs: list[Run] | None = None) -> Counts:
    """The job's status and counts from its newest RUNS_COUNTED runs (read here unless a
    list read them for its whole page)."""
    if runs is None:
        runs = await service.store.list_runs(job.id, None, RUNS_COUNTED)
    ran = [r for r in runs if r.started_at is not None]
    successes = sum(1 for r in ran if r.state is RunState.SUCCEEDED)
    latest = ran[0] if ran else None
    status = SUBMIT
    if job.state is JobState.CANCELLED:
        status = DELETED
    elif latest is not None:
        status = {RunState.RUNNING: CREATED, RunState.SUCCEEDED: SUCCEEDED,
                  RunState.KILLED: DELETED, RunState.CANCELLED: DELETED}.get(
            latest.state, FAILED)
    information = (latest.last_error or latest.state.value) if latest else ""
    return Counts(status, len(ran), successes, information)


async def _shown(service: Service, job: Job, number: int,
                 runs: list[Run] | None = None) -> dict[str, Any]:
    sent = dict(job.spec.payload or {})
    counts = await _counts(service, job, runs)
    shown = {
        "id": number, "job_id": job.id, "job_name": job.spec.key,
        "job_exec_time": int(sent.get("job_exec_time") or 0),
        "namespace": sent.get("namespace", ""),
        "metadata": orjson.dumps(sent.get("metadata") or {}).decode(),
        "image": sent.get("image", ""), "command": sent.get("command", ""),
        "timeout": sent.get("timeout") or 0, "job_status": counts.status,
        "job_exec_information": counts.information, "job_times": counts.times,
        "job_success_times": counts.successes,
        "create_time": job.created_at // US_PER_S, "update_time": job.updated_at // US_PER_S,
    }
    if sent.get("kind") == CRON:
        shown["schedule"] = sent.get("schedule", "")
        shown["suspend"] = job.state is JobState.PAUSED
    return shown


def _page_args(request: Request, data: Any) -> tuple[int, int]:
    source: dict[str, Any] = dict(request.query_params)
    if isinstance(data, dict):
        source |= data
    try:
        page_num = int(source.get("page_num") or 1)
        page_size = int(source.get("page_size") or 10)
    except (TypeError, ValueError):
        raise DialectError(INVALID, "page_num, page_size: whole numbers") from None
    if page_num > MAX_PAGE_NUM:
        raise DialectError(INVALID, f"page_num: at most {MAX_PAGE_NUM}")
    return max(1, page_num), min(max(1, page_size), 1_000)


async def _list(request: Request, service: Service, kind: str, data: Any) -> dict[str, Any]:
    """Page `page_num` of the client's namespace's jobs of this kind, in job_name order: the
    store counts and pages them on its index (see Store.kind_page), reading only that page's
    rows and their runs (one read for the page), whatever else the table holds."""
    page_num, page_size = _page_args(request, data)
    start = (page_num - 1) * page_size
    chosen, total = await service.store.kind_page(_ns(request), kind, start, page_size)
    runs = await service.store.recent_runs([j.id for j in chosen], RUNS_COUNTED)
    return {"total": str(total), "page_num": page_num, "page_size": page_size,
            "data": [await _shown(service, j, start + i + 1, runs[j.id])
                     for i, j in enumerate(chosen)]}


async def _logs(request: Request, service: Service, job_id: str) -> list[dict[str, Any]]:
    """One entry per pod of the job's runs, newest run first."""
    job = await service.store.get_job_by_id(job_id) if job_id else None
    if job is None or job.spec.namespace != _ns(request):
        raise DialectError(NOT_FOUND, f"job_id: no job {job_id!r}")
    store = request.app.state.node.store
    entries: list[dict[str, Any]] = []
    for run in await service.store.list_runs(job.id, None, 100):
        for task in await store.workers.tasks_of(run.id):
            data, _ = await store.workers.read_output(task.id, "log", 0, 4 * 1024 * 1024)
            entries.append({"id": len(entries) + 1, "job_id": job.id,
                            "pod_name": task.worker_name,
                            "logs": data.decode("utf-8", errors="replace"),
                            "create_time": task.created_at // US_PER_S})
    return entries


# -- routes: the document's methods and the real service's ---------------------------------


def _routes(kind: str) -> None:
    base = f"/{kind}"

    async def create(request: Request) -> Json:
        return await _answer(request, lambda r, s, d: _create(r, s, kind, d))

    async def update(request: Request) -> Json:
        return await _answer(request, lambda r, s, d: _update(r, s, kind, d))

    async def delete(request: Request, job_id: str) -> Json:
        return await _answer(request, lambda r, s, _d: _delete(r, s, kind, job_id), body=False)

    async def lists(request: Request) -> Json:
        return await _answer(request, lambda r, s, d: _list(r, s, kind, d),
                             body=request.method == "POST")

    async def describe(request: Request, job_id: str) -> Json:
        async def one(_r: Request, s: Service, _d: Any) -> dict[str, Any]:
            return await _shown(s, await _job_of(s, kind, job_id, _ns(_r)), 1)

        return await _answer(request, one, body=False)

    routes: list[tuple[str, Callable[..., Awaitable[Json]], list[str]]] = [
        ("/create", create, ["POST"]), ("/update", update, ["POST"]),
        ("/delete/{job_id}", delete, ["DELETE", "POST"]), ("/lists", lists, ["GET", "POST"]),
        ("/describe/{job_id}", describe, ["GET", "POST"]),
    ]
    for path, endpoint, methods in routes:
        for method in methods:  # one operation each: the document's method and the real one
            operation = f"k8s_{kind}_{path.split('/')[1]}_{method.lower()}"
            router.add_api_route(base + path, endpoint, methods=[method], name=operation,
                                 operation_id=operation)


_routes(ONCE)
_routes(CRON)


async def _switch(request: Request, job_id: str, pause: bool) -> Json:
    async def change(_r: Request, s: Service, _d: Any) -> dict[str, str]:
        job = await _job_of(s, CRON, job_id, _ns(_r))
        if pause:
            await s.pause(job.spec.namespace, job.spec.key)
        else:
            await s.resume(job.spec.namespace, job.spec.key)
        return {"job_id": job.id}

    return await _answer(request, change, body=False)


@router.api_route("/cron_job/suspend/{job_id}", methods=["POST"])
async def suspend(request: Request, job_id: str) -> Json:
    """Stop making Jobs for a cron job (cronwheel's pause); running Jobs go on."""
    return await _switch(request, job_id, True)


@router.api_route("/cron_job/resume/{job_id}", methods=["POST"])
async def resume(request: Request, job_id: str) -> Json:
    """Make Jobs again from the next occurrence."""
    return await _switch(request, job_id, False)


@router.get("/job_logs/{job_id}", operation_id="k8s_job_logs_get")
@router.post("/job_logs/{job_id}", operation_id="k8s_job_logs_post")
async def job_logs(request: Request, job_id: str) -> Json:
    """Each pod's kept log, one entry per pod."""
    return await _answer(request, lambda r, s, _d: _logs(r, s, job_id), body=False)
