"""The qschedule dialect: qschedule's "http interface(new)" (`/api2/*.do`, `/api/check/*.do`).

A thin adapter (see docs/dialects/qschedule.md). A qschedule application is a namespace: the
app's `name` (app data of a cronwheel app, with its numeric id and the hash of its
`Q-Server-Token`; `/v1/apps/{app}/qschedule`) is the namespace, a qschedule job name is a job
key in it. Bodies are parsed here by hand so that
every failure answers in the dialect's `{"ret", "message"}` envelope with the document's own
messages, never in FastAPI's 422 shape. Jobs are driven through the same `Service` and
`WorkerService` use cases as the native API.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Iterable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cronwheel.api.deps import workers_of
from cronwheel.api.dialects.common import caller_of, retry_after, service_of
from cronwheel.api.errors import register_envelope
from cronwheel.api.responses import Json
from cronwheel.apps_service import AppService
from cronwheel.domain import jobs as job_rules
from cronwheel.domain.admission import QscheduleApp
from cronwheel.domain.cron import CronSchedule
from cronwheel.domain.errors import (
    DomainError,
    IllegalTransition,
    InvalidField,
    ItemErrors,
    NotFound,
)
from cronwheel.domain.jobs import Job, JobState, MisfirePolicy, check_name
from cronwheel.domain.limits import RateLimited
from cronwheel.domain.runs import RunState
from cronwheel.domain.time import US_PER_MS, Micros
from cronwheel.domain.worker_target import WorkerTarget
from cronwheel.service import Service
from cronwheel.worker_service import WorkerService

log = logging.getLogger("cronwheel.api.qschedule")
router = APIRouter(tags=["qschedule dialect"])

# The document's messages, verbatim.
BAD_REQUEST = "参数错误"
UNAUTHORIZED = "授权失败"
NO_JOB = "job不存在"
QUERY_FAILED = "查询失败"
ENABLE_FAILED = "启用失败"
DISABLE_FAILED = "停止失败"
RETRY_FAILED = "重试失败"
INTERNAL = "内部错误"
BAD_WORKERS = "workers json 格式非法"
ALL_OFF = "所有机器不能全部下线"
PARTLY_DONE = "可能存在未操作成功的机器,请调用查看接口验证"
FAILED = "操作失败"
DONE = "操作成功"
RATE_LIMITED = "请求过于频繁"  # cronwheel's: over the app's submits per second (429)

TOKEN_HEADER = "Q-Server-Token"
JOB_TYPE = "remote"  # every job is run elsewhere (by a worker or a receiver), never in-process
NO_ROUTE = "none"  # loadBalance of a job not run by workers
# lastState: the run's end as the HTTP-like code qschedule reports.
NEVER_RAN = 0
LAST_STATES = {
    RunState.SUCCEEDED: 200,
    RunState.FAILED: 500,  # a timeout is a failed attempt: not told apart at run level
    RunState.KILLED: 499,
    RunState.CANCELLED: 499,
    RunState.MISSED: 499,  # skipped by the misfire policy: ended without running
    RunState.SKIPPED: 499,  # skipped by the concurrency policy: ended without running
    RunState.EXPIRED: 499,  # waited for its dependencies past its expiry: never ran
}
_HOST_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?$")
_NUMERIC = re.compile(r"^[0-9.]+$")
_HOST_PORT = re.compile(r"^(?P<host>[^:\[\]]+):(?P<port>\d{1,5})$")
MAX_HOSTNAME = 253

# Errors raised before a handler runs (wrong method, unknown path), in this envelope.
_HTTP_FIELDS = {"method_not_allowed": "method", "not_found": "path"}


def _http_envelope(code: str, _message: str) -> dict[str, Any]:
    return {"ret": False, "message": BAD_REQUEST, "field": _HTTP_FIELDS.get(code, "request")}


register_envelope("/api2/", _http_envelope)
register_envelope("/api/check/", _http_envelope)


class Reject(Exception):
    """Any answer but success: the HTTP status, the document's message, and maybe more."""

    def __init__(
        self, status: int, message: str, field: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.data = data
        self.headers: dict[str, str] = {}


def bad(field: str) -> Reject:
    return Reject(400, BAD_REQUEST, field)


class Envelope(BaseModel):
    """Every answer of this dialect, success or not (for the OpenAPI page)."""

    ret: bool = Field(description="true on success")
    message: str = Field(description="操作成功, the document's failure message, or (tasks.do) "
                                     "the id of the new run")
    field: str | None = Field(None, description="with 参数错误: the field at fault")
    data: Any = Field(None, description="job info, workers, or {'failed': {name: reason}}")


# -- the envelope ----------------------------------------------------------------------------------


def envelope(status: int, ret: bool, message: str, field: str | None = None,
             data: Any = None, headers: dict[str, str] | None = None) -> Json:
    body: dict[str, Any] = {"ret": ret, "message": message}
    if field is not None:
        body["field"] = field
    if data is not None:
        body["data"] = data
    return Json(body, status, headers=headers)


def done(data: Any = None, message: str = DONE) -> Json:
    return envelope(200, True, message, data=data)


async def answer(request: Request, work: Awaitable[Json], fault: str) -> Json:
    """Run one endpoint; a refusal is its envelope, a server fault `fault` with 500."""
    try:
        return await work
    except Reject as exc:
        return envelope(exc.status, False, exc.message, exc.field, exc.data, exc.headers)
    except Exception:
        log.exception("qschedule.unexpected_error", extra={"path": request.url.path})
        return envelope(500, False, fault)


# -- authorisation and request bodies --------------------------------------------------------------


def apps_of(request: Request) -> AppService:
    apps: AppService = request.app.state.node.apps
    return apps


async def app_of(request: Request) -> QscheduleApp:
    """The qschedule app whose token the request carries, found by the token's hash (app
    data, read on every request); its cronwheel app's operator becomes the principal."""
    raw = request.headers.get(TOKEN_HEADER)
    if raw is None:
        raise Reject(401, UNAUTHORIZED)
    token = raw.strip()
    if len(token) >= 2 and token[0] == token[-1] == '"':  # as the document writes it
        token = token[1:-1]
    given = token.encode("latin-1")  # the header's bytes (Starlette decodes them as latin-1)
    apps = apps_of(request)
    found = await apps.qschedule_app(given) if given else None
    if found is None:
        raise Reject(401, UNAUTHORIZED)
    client = request.client.host if request.client else None
    principal = await apps.app_principal(found.app, client)
    if principal is None:
        raise Reject(401, UNAUTHORIZED)
    request.state.principal = principal
    return found


async def read_object(request: Request) -> dict[str, Any]:
    """The body: one JSON object (whatever the Content-Type says)."""
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise bad("body") from None
    if not isinstance(data, dict):
        raise bad("body")
    return data


def job_name(value: Any, field: str) -> str:
    """A job name as the core allows a key: 1 to 255 characters, no control characters."""
    if not isinstance(value, str):
        raise bad(field)
    try:
        check_name(value, "key")
    except InvalidField:
        raise bad(field) from None
    return value


def job_names(value: Any) -> list[str]:
    """`jobs`: a JSON array of names (or a string holding one), each name once. How many
    may be given is the service's limit."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise bad("jobs") from None
    if not isinstance(value, list):
        raise bad("jobs")
    names = [job_name(item, f"jobs[{index}]") for index, item in enumerate(value)]
    return list(dict.fromkeys(names))


async def find_job(service: Service, namespace: str, key: str) -> Job | None:
    try:
        return await service.get(namespace, key)
    except NotFound:
        return None


async def app_job(request: Request, app: QscheduleApp, name: str) -> Job:
    job = await find_job(service_of(request), app.name, name)
    if job is None:
        raise Reject(404, NO_JOB, "job")
    return job


# -- job info --------------------------------------------------------------------------------------


def millis(value: Micros) -> int:
    return value // US_PER_MS


def whole(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def schedule_text(job: Job) -> str:
    schedule = job.spec.schedule
    return schedule.expr if isinstance(schedule, CronSchedule) else schedule.describe()


def last_fields(outcome: tuple[Any, ...] | None) -> dict[str, int]:
    """lastRun, lastState, lastDuration of the job's latest finished run (zeros for none)."""
    if outcome is None:
        return {"lastRun": 0, "lastState": NEVER_RAN, "lastDuration": 0}
    finished_at, state, started_at = outcome
    state_code = LAST_STATES.get(RunState(state), 500)
    if started_at is None:  # ended without being started: missed, skipped, cancelled early
        return {"lastRun": millis(finished_at), "lastState": state_code, "lastDuration": 0}
    return {"lastRun": millis(started_at), "lastState": state_code,
            "lastDuration": max(0, millis(finished_at - started_at))}


def info_of(job: Job, app_id: int, app_name: str, outcome: tuple[Any, ...] | None
            ) -> dict[str, Any]:
    """One job as the document's job info object."""
    spec = job.spec
    target = spec.target
    return {
        "appId": app_id,
        "appName": app_name,
        "name": spec.key,
        "type": JOB_TYPE,
        "state": job.state is JobState.ACTIVE,
        "cron": schedule_text(job),
        "nextRun": None if job.next_fire_at is None else millis(job.next_fire_at),
        **last_fields(outcome),
        "lastUpdate": millis(job.updated_at),
        "recover": "discard" if spec.misfire is MisfirePolicy.SKIP else "retry",
        "loadBalance": target.route.value if isinstance(target, WorkerTarget) else NO_ROUTE,
        "timeout": whole(target.timeout),
        "consecutiveFailTimesAlertThreshold": 0 if spec.alert is None else spec.alert.after,
        "desc": "",
    }


async def infos_of(workers: WorkerService, jobs: Iterable[tuple[Job, int, str]]
                   ) -> list[dict[str, Any]]:
    listed = list(jobs)
    outcomes = await workers.last_outcomes([job.id for job, _, _ in listed])
    return [info_of(job, app_id, app_name, outcomes.get(job.id))
            for job, app_id, app_name in listed]


# -- on.do, off.do ---------------------------------------------------------------------------------


def failure_reason(error: DomainError) -> str:
    return "no such job" if isinstance(error, NotFound) else error.message


async def switch_jobs(request: Request, enable: bool) -> Json:
    """All or nothing, in one transaction of the service: a name that is unknown, cancelled or
    completed refuses the request and nothing changes. A job already in the asked state counts
    as done."""
    app = await app_of(request)
    names = job_names((await read_object(request)).get("jobs"))
    rule = job_rules.enable if enable else job_rules.disable
    try:
        await service_of(request).change_jobs(app.name, names, rule, caller_of(request))
    except ItemErrors as exc:
        failed = {names[index]: failure_reason(error) for index, error in exc.items}
        raise Reject(409, ENABLE_FAILED if enable else DISABLE_FAILED,
                     data={"failed": failed}) from None
    except InvalidField as exc:  # the service's limit on the number of names
        raise bad(exc.field or "jobs") from None
    return done()


# -- job info, tasks.do ----------------------------------------------------------------------------


async def job_detail(request: Request, name: str) -> Json:
    app = await app_of(request)
    job = await app_job(request, app, job_name(name, "job"))
    [info] = await infos_of(workers_of(request), [(job, app.id, app.name)])
    return done(info)


async def run_now(request: Request) -> Json:
    """Trigger now; `param` (an object) is this run's payload. The message is the run id."""
    app = await app_of(request)
    body = await read_object(request)
    name = job_name(body.get("job"), "job")
    param = body.get("param")
    if param is not None and not isinstance(param, dict):
        raise bad("param")
    job = await app_job(request, app, name)
    try:
        run = await service_of(request).trigger(app.name, job.spec.key, param,
                                                override=param is not None,
                                                caller=caller_of(request))
    except RateLimited as exc:  # the app's submits per second
        refused = Reject(429, RATE_LIMITED, "job")
        refused.headers = retry_after(exc)
        raise refused from None
    except InvalidField:  # the service's payload limit
        raise bad("param") from None
    except (IllegalTransition, NotFound):
        raise Reject(409, RETRY_FAILED, "job") from None
    return done(message=run.id)


# -- workers ---------------------------------------------------------------------------------------


def worker_switches(value: Any) -> dict[str, bool]:
    """`workers`: a string holding a JSON object {"ip:port": bool} (or that object)."""
    if value is None:
        raise bad("workers")
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise Reject(400, BAD_WORKERS, "workers") from None
    if (not isinstance(value, dict) or not value
            or not all(isinstance(on, bool) for on in value.values())):
        raise Reject(400, BAD_WORKERS, "workers")
    return value


async def set_workers(request: Request) -> Json:
    """Switch the named workers on or off for one job. Names that are not workers of the job's
    group are left alone (the others are switched) and the answer says so."""
    app = await app_of(request)
    body = await read_object(request)
    name = job_name(body.get("jobName"), "jobName")
    changes = worker_switches(body.get("workers"))
    job = await app_job(request, app, name)
    workers = workers_of(request)
    target = job.spec.target
    if not isinstance(target, WorkerTarget):
        raise Reject(409, FAILED, "jobName")
    known = {w.status.info.name for w in await workers.job_workers(job)}
    unknown = {n: f"not a worker of group {target.group!r}" for n in changes if n not in known}
    mine = {n: on for n, on in changes.items() if n in known}
    if mine:
        try:
            await workers.switch_for_job(job, mine)
        except IllegalTransition:
            raise Reject(409, ALL_OFF, "workers") from None
    if unknown:
        raise Reject(409, PARTLY_DONE, "workers", {"failed": unknown})
    return done()


async def list_workers(request: Request, name: str) -> Json:
    app = await app_of(request)
    job = await app_job(request, app, job_name(name, "job"))
    if not isinstance(job.spec.target, WorkerTarget):
        raise Reject(409, QUERY_FAILED, "job")
    found = await workers_of(request).job_workers(job)
    return done([
        {"address": w.status.info.name, "canSchedule": w.enabled,
         "hostname": _hostname(w.status.info.host, w.status.info.name),
         "jobName": job.spec.key}
        for w in found
    ])


def _hostname(host: str, name: str) -> str:
    """The host with the worker's port, as the document shows it (`192.168.1.1:20010`): the
    port is the one its name ends with (qschedule names a worker by ip:port); a worker named
    otherwise has no port to show."""
    _, sep, port = name.rpartition(":")
    if not sep or not port.isdigit() or host.endswith(f":{port}"):
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- /api/check ------------------------------------------------------------------------------------


def host_forms(text: str) -> list[str]:
    """The spellings of a host to look for: an IP literal (as sent and canonical), a host
    name, or a worker's name `host:port`. Anything else is 参数错误."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        return list(dict.fromkeys([text, str(address)]))
    host, port = text, None
    parts = _HOST_PORT.match(text)
    if parts is not None:
        host, port = parts["host"], int(parts["port"])
    if port is not None and not 1 <= port <= 65535:
        raise bad("ip")
    if _is_ipv4(host):
        return [text]
    if len(host) > MAX_HOSTNAME or not _HOSTNAME.match(host) or _NUMERIC.match(host):
        raise bad("ip")  # all digits and dots but no IPv4 address (300.1.1.1): malformed
    return [text]


def _is_ipv4(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False


async def check_host(request: Request, ip: str) -> Json:
    """The jobs with runs in progress on a host, with their app when the namespace is one."""
    forms = host_forms(ip)
    workers = workers_of(request)
    apps = {app.name: app for app in await apps_of(request).list_qschedule()}
    jobs: dict[str, Job] = {}
    for host in forms:
        for _task, _run, job in await workers.runs_on_host(host):
            jobs.setdefault(job.id, job)
    listed = []
    for job in jobs.values():
        app = apps.get(job.spec.namespace)
        listed.append((job, 0 if app is None else app.id, job.spec.namespace))
    return done(await infos_of(workers, listed))


# -- routes ----------------------------------------------------------------------------------------

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Envelope, "description": "参数错误, or workers json 格式非法"},
    401: {"model": Envelope, "description": "授权失败: no or a wrong Q-Server-Token"},
    404: {"model": Envelope, "description": "job不存在"},
    409: {"model": Envelope, "description": "a refused change: 启用失败, 停止失败, 重试失败, "
                                            "所有机器不能全部下线, 可能存在…, 操作失败"},
    429: {"model": Envelope, "description": "请求过于频繁: tasks.do over the app's submits per "
          "second; Retry-After says when to try again"},
    500: {"model": Envelope, "description": "a server fault (logged)"},
}
_JOBS_SCHEMA = {"type": "object", "required": ["jobs"],
                "properties": {"jobs": {"type": "array", "items": {"type": "string"}}}}
_TASK_SCHEMA = {"type": "object", "required": ["job"],
                "properties": {"job": {"type": "string"}, "param": {"type": "object"}}}
_STATE_SCHEMA = {
    "type": "object", "required": ["jobName", "workers"],
    "properties": {"jobName": {"type": "string"},
                   "workers": {"oneOf": [{"type": "string", "description": "JSON text"},
                                         {"type": "object"}]}},
}
_TOKEN = {"parameters": [{"name": TOKEN_HEADER, "in": "header", "required": True,
                          "schema": {"type": "string"}}]}


def _doc(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = dict(_TOKEN)
    if schema is not None:
        content = {"application/json": {"schema": schema}}
        extra["requestBody"] = {"required": True, "content": content}
    return extra


@router.post("/api2/jobs/on.do", response_model=Envelope, responses=ERRORS,
             openapi_extra=_doc(_JOBS_SCHEMA))
async def jobs_on(request: Request) -> Json:
    """Enable (resume) jobs; all or none."""
    return await answer(request, switch_jobs(request, True), ENABLE_FAILED)


@router.post("/api2/jobs/off.do", response_model=Envelope, responses=ERRORS,
             openapi_extra=_doc(_JOBS_SCHEMA))
async def jobs_off(request: Request) -> Json:
    """Disable (pause) jobs; all or none."""
    return await answer(request, switch_jobs(request, False), DISABLE_FAILED)


@router.get("/api2/jobs/{job_name:path}.do", response_model=Envelope, responses=ERRORS,
            openapi_extra=_doc())
async def job_info(request: Request, job_name: str) -> Json:
    """A job's info; the name may contain dots (qschedule.demo.job1)."""
    return await answer(request, job_detail(request, job_name), QUERY_FAILED)


@router.post("/api2/tasks.do", response_model=Envelope, responses=ERRORS,
             openapi_extra=_doc(_TASK_SCHEMA))
async def tasks_do(request: Request) -> Json:
    """Run a job now with `param` as its payload; the message is the new run's id."""
    return await answer(request, run_now(request), INTERNAL)


@router.post("/api2/workers/state.do", response_model=Envelope, responses=ERRORS,
             openapi_extra=_doc(_STATE_SCHEMA))
async def workers_state(request: Request) -> Json:
    """Switch a job's workers on (true) or off (false); one must stay on."""
    return await answer(request, set_workers(request), FAILED)


@router.get("/api2/workers/{job_name:path}.do", response_model=Envelope, responses=ERRORS,
            openapi_extra=_doc())
async def job_workers(request: Request, job_name: str) -> Json:
    """The workers of a job's group, and whether each may run it."""
    return await answer(request, list_workers(request, job_name), QUERY_FAILED)


@router.get("/api/check/{ip}.do", response_model=Envelope, responses=ERRORS)
async def check(request: Request, ip: str) -> Json:
    """The jobs with runs in progress on a host (no token, as in the document)."""
    return await answer(request, check_host(request, ip), QUERY_FAILED)

