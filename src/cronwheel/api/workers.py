"""Native API of workers: the protocol workers speak (docs/workers.md), and what operators
ask of them: which workers there are, what runs on a host, kill, logs, per-job switches."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from cronwheel.api.auth import (
    AUTHENTICATED,
    RESPONSES,
    Admin,
    Reader,
    WorkerCaller,
    Writer,
    require_read,
    require_run,
    require_write,
)
from cronwheel.api.convert import run_out
from cronwheel.api.deps import apps_of, job_types_of, service_of, workers_of
from cronwheel.api.responses import Json
from cronwheel.api.schemas import (
    HostRuns,
    JobAlerts,
    JobWorkers,
    KillOut,
    LogPageOut,
    RunTasks,
    SwitchOut,
    WorkerList,
)
from cronwheel.api.worker_scope import visible
from cronwheel.domain.access import Principal, can_admin, can_read, can_work
from cronwheel.domain.errors import Forbidden, InvalidField, UnknownWorker
from cronwheel.domain.jobs import DEFAULT_NAMESPACE, Job
from cronwheel.domain.jsonlimits import INT64_MAX
from cronwheel.domain.tasks import Task, TaskWork, WorkerStatus
from cronwheel.domain.time import to_iso, to_iso_or_none
from cronwheel.domain.worker_ids import may_act_for, new_worker_id
from cronwheel.worker_service import LogPage

router = APIRouter(prefix="/v1", tags=["workers"], dependencies=AUTHENTICATED,
                   responses=RESPONSES)

MAX_PIECE = 4 * 1_048_576  # bytes of output per request
MAX_PAGE = 1_048_576
FOLLOW_POLL_S = 0.25
MAX_INLINE_B64 = 4 * (64 * 1024 + 2) // 3 + 4  # 64 KB of result, base64-encoded
Namespace = Annotated[str, Query(min_length=1, max_length=255)]
T = TypeVar("T")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(_Strict):
    name: str = Field(min_length=1, max_length=255)
    host: str | None = Field(None, max_length=255)
    groups: list[str] = Field(default_factory=lambda: ["default"], min_length=1, max_length=64)
    capacity: int = Field(4, ge=1, le=10_000)
    version: str = Field("", max_length=32)
    types: list[str] | None = Field(
        None, max_length=64, description="the job types it accepts (built-in, plugin and "
        "command types); absent: the server's built-in and plugin types")


class HeartbeatIn(_Strict):
    running: list[str] = Field(default_factory=list, max_length=10_000)


class LeaseIn(_Strict):
    max: int = Field(1, ge=0, le=1_000)
    wait: float = Field(0.0, ge=0, le=30)


class FinishIn(_Strict):
    outcome: str
    exit_code: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    error: str | None = Field(None, max_length=100_000)
    result: str | None = Field(None, max_length=MAX_INLINE_B64,
                               description="a small result, base64; larger ones are uploaded")


class SwitchIn(_Strict):
    workers: dict[str, bool] = Field(min_length=1, max_length=1_000,
                                     description="worker name -> may run (true) or not")


# -- the workers' protocol ---------------------------------------------------------------


@router.post("/workers", status_code=201)
async def register(request: Request, body: RegisterIn, caller: WorkerCaller) -> Json:
    """Needs a worker token (or an admin's) serving every group the worker names. The
    server issues the worker's id, bound to this token: only it (or an admin) may act for
    the worker afterwards."""
    for group in body.groups:
        if not can_work(caller, group):
            raise Forbidden(f"this token does not serve worker group {group!r}", "groups")
    service = workers_of(request)
    host = body.host or (request.client.host if request.client else "unknown")
    # a worker that does not say which types it accepts runs the server's own (built-in and
    # plugin types, as before workers declared types), never a command type
    types = job_types_of(request).names() if body.types is None else body.types
    info = await service.register(body.name, host, body.groups, body.capacity, body.version,
                                  worker_id=new_worker_id(caller), types=types)
    return Json({"id": info.id, "name": info.name, "host": info.host,
                 "heartbeat_s": service.timings.heartbeat_s,
                 "lease_s": service.timings.lease_s}, 201)


@router.post("/workers/{worker_id}/heartbeat")
async def heartbeat(
    request: Request, worker_id: str, body: HeartbeatIn, caller: WorkerCaller
) -> Json:
    _act_as(caller, worker_id)
    kill = await workers_of(request).heartbeat(worker_id, body.running)
    return Json({"kill": kill})


@router.post("/workers/{worker_id}/lease")
async def lease(request: Request, worker_id: str, body: LeaseIn, caller: WorkerCaller) -> Json:
    _act_as(caller, worker_id)
    work = await workers_of(request).lease(worker_id, body.max, body.wait,
                                           request.is_disconnected)
    return Json({"tasks": [_work_json(w) for w in work]})


@router.post("/workers/{worker_id}/tasks/{task_id}/output")
async def output(
    request: Request, worker_id: str, task_id: str, caller: WorkerCaller,
    stream: Annotated[str, Query()] = "log",
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> Json:
    _act_as(caller, worker_id)
    data = await request.body()
    if len(data) > MAX_PIECE:
        raise InvalidField(f"send at most {MAX_PIECE} bytes per request", "body")
    size = await workers_of(request).output(worker_id, task_id, stream, offset, data)
    return Json({"size": size})


@router.post("/workers/{worker_id}/tasks/{task_id}/finish")
async def finish(
    request: Request, worker_id: str, task_id: str, body: FinishIn, caller: WorkerCaller
) -> Json:
    _act_as(caller, worker_id)
    result = None
    if body.result is not None:
        try:
            result = base64.b64decode(body.result, validate=True)
        except (binascii.Error, ValueError):  # ValueError: not even ASCII
            raise InvalidField("result must be base64", "result") from None
    await workers_of(request).finish(worker_id, task_id, body.outcome, body.exit_code,
                                     body.error, result)
    return Json({"recorded": True})


@router.post("/workers/{worker_id}/stop")
async def stop(request: Request, worker_id: str, caller: WorkerCaller) -> Json:
    _act_as(caller, worker_id)
    await workers_of(request).stop(worker_id)
    return Json({"stopped": True})


def _act_as(caller: Principal, worker_id: str) -> None:
    """Only the token that registered a worker (or an admin's) acts for it; any other id
    is answered as a worker the server does not know, so ids of others leak nothing."""
    if not may_act_for(caller, worker_id):
        raise UnknownWorker()


# -- operators ---------------------------------------------------------------------------


@router.get("/workers", response_model=WorkerList)
async def list_workers(request: Request, caller: Reader, include_stopped: bool = False) -> Json:
    """Every worker for an admin; for anyone else the workers its own app's tokens
    registered."""
    found = await _visible(request, caller, await workers_of(request).workers(include_stopped),
                           lambda w: w.info.id)
    return Json({"workers": [_worker_json(w) for w in found]})


@router.post("/workers/switch", response_model=SwitchOut)
async def switch_for_all_jobs(request: Request, body: SwitchIn, caller: Admin) -> Json:
    """Take workers off line (false) or back (true) for every job, e.g. before a restart.
    Refused if a group would be left with no worker. Admins only: it touches every app."""
    await workers_of(request).switch_for_all_jobs(body.workers)
    return Json({"workers": body.workers})


@router.get("/workers/{host}/runs", response_model=HostRuns)
async def runs_on_host(request: Request, host: str, caller: Reader) -> Json:
    """Runs in progress on a host (its address, or a worker's name), of the namespaces the
    caller may read."""
    found = [row for row in await workers_of(request).runs_on_host(host)
             if can_read(caller, row[1].namespace)]
    return Json({"host": host, "runs": [
        run_out(run).model_dump(mode="json") | {"task": _task_json(task)}
        for task, run, _job in found
    ]})


@router.post("/runs/{run_id}/kill", status_code=202, response_model=KillOut)
async def kill(request: Request, run_id: str, caller: Writer) -> Json:
    """Stop a run. On workers the process tree is killed within a heartbeat or two and the
    run ends `killed`; a run waiting for a retry ends `killed` at once."""
    await _check_run(request, caller, run_id, write=True)
    state = await workers_of(request).kill(run_id)
    return Json({"run_id": run_id, "state": state.value,
                 "killing": state.value == "running"}, 202)


@router.get("/runs/{run_id}/tasks", response_model=RunTasks)
async def run_tasks(request: Request, run_id: str, caller: Reader) -> Json:
    await _check_run(request, caller, run_id)
    tasks = await workers_of(request).tasks(run_id)
    return Json({"run_id": run_id, "tasks": [_task_json(t) for t in tasks]})


@router.get("/runs/{run_id}/log", response_model=LogPageOut)
async def run_log(
    request: Request, run_id: str, caller: Reader,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 65_536,
    stream: Annotated[str, Query(pattern="^(log|result)$")] = "log",
    attempt: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    worker: Annotated[str | None, Query(max_length=255)] = None,
) -> Json:
    """A page of a run's output by byte offset: `text`, `next_offset` to ask for next, and
    `end` once the run's task has finished and everything was read."""
    await _check_run(request, caller, run_id)
    page = await workers_of(request).log(run_id, offset, limit, stream, attempt, worker)
    return Json(_page_json(page))


@router.get("/runs/{run_id}/log/follow")
async def follow_log(
    request: Request, run_id: str, caller: Reader,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    stream: Annotated[str, Query(pattern="^(log|result)$")] = "log",
    attempt: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    worker: Annotated[str | None, Query(max_length=255)] = None,
) -> StreamingResponse:
    """Server-sent events: an `output` event per new piece while the run goes on, then
    `end`. Reconnect with `offset` = the last event's `next_offset` to go on."""
    await _check_run(request, caller, run_id)
    service = workers_of(request)
    first = await service.log(run_id, offset, MAX_PAGE, stream, attempt, worker)

    async def events() -> AsyncIterator[bytes]:
        page = first
        while True:
            if page.text:
                yield _event("output", _page_json(page))
            if page.end:
                yield _event("end", {"size": page.size, "state": page.task.state.value})
                return
            if page.next_offset >= page.size:
                if await request.is_disconnected():
                    return
                await asyncio.sleep(FOLLOW_POLL_S)
            page = await service.log(run_id, page.next_offset, MAX_PAGE, stream,
                                     page.task.attempt, page.task.worker_name)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


@router.get("/jobs/{key:path}/workers", response_model=JobWorkers)
async def job_workers(
    request: Request, key: str, caller: Reader, namespace: Namespace = DEFAULT_NAMESPACE
) -> Json:
    """The workers of the job's group and whether each may run it: every one for an admin,
    for anyone else those its own app's tokens registered."""
    require_read(caller, namespace, key)
    job = await service_of(request).get(namespace, key)
    return await _job_workers_json(request, caller, job)


@router.post("/jobs/{key:path}/workers", response_model=JobWorkers)
async def switch_job_workers(
    request: Request, key: str, body: SwitchIn, caller: Writer,
    namespace: Namespace = DEFAULT_NAMESPACE,
) -> Json:
    """Take workers off line for this job (false) or back (true). Refused (409) when no
    online worker of the job's group would be left on."""
    require_write(caller, namespace, key)
    job = await service_of(request).get(namespace, key)
    await workers_of(request).switch_for_job(job, body.workers)
    return await _job_workers_json(request, caller, job)


@router.get("/jobs/{key:path}/alerts", response_model=JobAlerts)
async def job_alerts(
    request: Request, key: str, caller: Reader, namespace: Namespace = DEFAULT_NAMESPACE
) -> Json:
    require_read(caller, namespace, key)
    job = await service_of(request).get(namespace, key)
    failures, found = await workers_of(request).alerts(job)
    return Json({"key": key, "namespace": namespace,
                 "failures": failures,
                 "alerts": [
                     {"id": a.id, "run_id": a.run_id, "failures": a.failures,
                      "webhook": a.webhook, "state": a.state, "tries": a.tries,
                      "sent_at": None if a.sent_at is None else to_iso(a.sent_at),
                      "error": a.error}
                     for a in found
                 ]})


async def _check_run(
    request: Request, caller: Principal, run_id: str, write: bool = False
) -> None:
    """A run of a namespace the caller may not read is as missing as a run that is not."""
    run, _attempts = await service_of(request).run(run_id)
    require_run(caller, run, write)


async def _visible(request: Request, caller: Principal, found: Sequence[T],
                   worker_id: Callable[[T], str]) -> list[T]:
    return await visible(apps_of(request), caller.app, can_admin(caller), found, worker_id)


async def _job_workers_json(request: Request, caller: Principal, job: Job) -> Json:
    found = await _visible(request, caller, await workers_of(request).job_workers(job),
                           lambda w: w.status.info.id)
    return Json({"key": job.spec.key, "namespace": job.spec.namespace, "workers": [
        _worker_json(w.status) | {"enabled": w.enabled} for w in found
    ]})


# -- shapes ------------------------------------------------------------------------------


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _page_json(page: LogPage) -> dict[str, Any]:
    return {"run_id": page.run_id, "task_id": page.task.id, "attempt": page.task.attempt,
            "worker": page.task.worker_name, "stream": page.stream, "offset": page.offset,
            "next_offset": page.next_offset, "size": page.size, "end": page.end,
            "text": page.text}



def _task_json(task: Task) -> dict[str, Any]:
    return {"id": task.id, "run_id": task.run_id, "attempt": task.attempt,
            "worker": task.worker_name, "worker_id": task.worker_id, "host": task.host,
            "state": task.state.value, "created_at": to_iso(task.created_at),
            "started_at": to_iso_or_none(task.started_at),
            "finished_at": to_iso_or_none(task.finished_at),
            "exit_code": task.exit_code, "error": task.error, "log_size": task.log_size,
            "result_size": task.result_size, "kill_requested": task.kill_requested}


def _worker_json(w: WorkerStatus) -> dict[str, Any]:
    return {"id": w.info.id, "name": w.info.name, "host": w.info.host,
            "groups": list(w.info.groups), "types": list(w.info.accepted),
            "capacity": w.info.capacity, "busy": w.busy,
            "online": w.online, "version": w.info.version,
            "started_at": to_iso(w.started_at), "heartbeat_at": to_iso(w.heartbeat_at),
            "stopped_at": to_iso_or_none(w.stopped_at)}


def _work_json(work: TaskWork) -> dict[str, Any]:
    return {"task_id": work.task.id, "run_id": work.task.run_id,
            "attempt": work.task.attempt, "job_id": work.task.job_id,
            "namespace": work.namespace, "key": work.key, "type": work.job_type,
            "spec": work.spec, "timeout": work.timeout, "payload": work.payload,
            "scheduled_at": to_iso(work.scheduled_at)}
