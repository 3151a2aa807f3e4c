"""The Sentinel dialect (seed 002; Mogujie's Jarvis 2 REST API): jobs, tasks and their logs.

A thin adapter (see docs/dialects/sentinel.md). A job made here is a worker job in its app's
namespace whose key is its numeric jobId; a task is a run, numbered the first time it is
shown. Everything goes through the same Service, Schedules and WorkerService as the native
API, with the app's Principal: the same grants (shell needs one), limits and cycle checks.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request

from cronwheel.api.auth import require_create, require_grant, require_run, require_upstreams
from cronwheel.api.deps import job_types_of, service_of, settings_of, workers_of
from cronwheel.api.dialects.sentinel_wire import (
    ERRORS,
    Call,
    Envelope,
    Handler,
    Refusal,
    answer,
    bad,
)
from cronwheel.api.responses import Json
from cronwheel.domain import jobs as job_rules
from cronwheel.domain import sentinel as words
from cronwheel.domain.access import Principal, can_read
from cronwheel.domain.dependencies import parse_dependencies
from cronwheel.domain.errors import IllegalTransition, InvalidField, NotFound
from cronwheel.domain.job_schedules import Change, Op
from cronwheel.domain.jobs import Job, JobSpec, JobState, RetryPolicy
from cronwheel.domain.runs import Run, RunKind, RunState
from cronwheel.domain.schedules import schedule_from_dict
from cronwheel.domain.sentinel import JobFields, JobStatus, SentinelJob
from cronwheel.domain.targets import target_from_dict
from cronwheel.domain.time import US_PER_MS, US_PER_S
from cronwheel.domain.union import MAX_ITEMS
from cronwheel.schedule_service import RerunRequest, Schedules
from cronwheel.service import Submission

router = APIRouter(tags=["Sentinel dialect"])

DEFAULT_PAGE = 10_000  # bytes of a log page, as Jarvis reads
MAX_PAGE = 1_048_576
MAX_WHOLE = 4 * 1_048_576  # readAllResult / readAllExecuteLog: more must be paged
MAX_TASKS = 1_000
MAX_IDS = 1_000
KEY_TRIES = 5  # jobIds skipped when other APIs' jobs hold their keys
STREAMS = {"result": "result", "log": "log"}

# core field -> the Sentinel field it came from
_RENAMES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:schedule\.)?items\[(\d+)\].*"), r"scheduleExpressionList[\1].expression"),
    (re.compile(r"^changes\[(\d+)\].*"), r"scheduleExpressionList[\1]"),
    (re.compile(r"^schedules?(\..*)?$"), "scheduleExpressionList"),
    (re.compile(r"^target\.type$"), "jobType"),
    (re.compile(r"^target\.group$"), "workerGroupId"),
    (re.compile(r"^target(\..*)?$"), "content"),
    (re.compile(r"^depends_on\[(\d+)\].*"), r"dependencyList[\1].preJobId"),
    (re.compile(r"^depends_on.*"), "dependencyList"),
    (re.compile(r"^expiry$"), "expiredTime"),
    (re.compile(r"^retry\..*"), "failedAttempts"),
    (re.compile(r"^(key|run_id)$"), "jobId"),
    (re.compile(r"^(payload|jobs)$"), "parameters"),
]


def rename(field: str) -> str:
    for pattern, name in _RENAMES:
        if pattern.match(field):
            return pattern.sub(name, field)
    return field


def route(handler: Handler) -> Any:
    async def endpoint(request: Request) -> Json:
        return await answer(request, handler, rename)

    endpoint.__doc__ = handler.__doc__
    endpoint.__name__ = handler.__name__
    return endpoint


# -- finding jobs and tasks --------------------------------------------------------------------


def home(principal: Principal) -> str:
    """The namespace the app's Sentinel jobs live in: the claim named as the app, else its
    first exact claim."""
    exact = [claim for claim in principal.namespaces if not claim.endswith("*")]
    if principal.app in exact:
        return principal.app
    if not exact:
        raise Refusal(403, f"app {principal.app!r} owns no namespace (an admin adds one: "
                           "cronwheel apps create --namespace)", "appName")
    return exact[0]


async def sentinel_job(request: Request, principal: Principal, job_id: int,
                       field: str = "jobId") -> tuple[SentinelJob, Job]:
    row = await request.app.state.node.store.sentinel.get_job(job_id)
    if row is None or row.app != principal.app or not can_read(principal, row.namespace):
        raise NotFound(f"no job {job_id}", field)
    try:
        job = await service_of(request).get(row.namespace, row.key)
    except NotFound:
        raise NotFound(f"no job {job_id}", field) from None
    return row, job


async def task_run(request: Request, principal: Principal, task_id: int,
                   field: str = "taskId") -> tuple[int, Run]:
    found = await request.app.state.node.store.sentinel.task(task_id)
    if found is None:
        raise NotFound(f"no task {task_id}", field)
    run_id, job_id = found
    try:
        run, _attempts = await service_of(request).run(run_id)
        require_run(principal, run)
    except NotFound:
        raise NotFound(f"no task {task_id}", field) from None
    return job_id, run


async def task_ids(request: Request, job_id: int, runs: list[Run]) -> dict[str, int]:
    store = request.app.state.node.store.sentinel
    return dict(await store.task_ids(job_id, [run.id for run in runs]))


def task_json(task_id: int, job_id: int, run: Run) -> dict[str, Any]:
    return {"taskId": task_id, "jobId": job_id, "status": int(words.TASK_STATUS[run.state]),
            "state": run.state.value, "attemptId": max(run.attempts, 1),
            "scheduleTime": run.scheduled_at // US_PER_MS,
            "startTime": words.millis(run.started_at), "endTime": words.millis(run.finished_at)}


# -- building a job ----------------------------------------------------------------------------

_DEFAULTS: dict[str, Any] = {
    "contentType": 1, "status": 1, "priority": 1, "isTemp": False, "activeStartDate": 0,
    "activeEndDate": 0, "expiredTime": words.DEFAULT_EXPIRED_S, "failedAttempts": 0,
    "failedInterval": words.DEFAULT_FAILED_INTERVAL_S, "workerGroupId": 1, "params": {},
}


def info_of(fields: JobFields, old: Mapping[str, Any]) -> dict[str, Any]:
    """The Sentinel fields as they stand after this submit or edit."""
    given = {
        "jobType": fields.job_type, "contentType": fields.content_type,
        "content": fields.content, "params": fields.params,
        "status": None if fields.status is None else int(fields.status),
        "priority": fields.priority, "isTemp": fields.is_temp,
        "activeStartDate": fields.active_start_ms, "activeEndDate": fields.active_end_ms,
        "expiredTime": fields.expired_time_s, "failedAttempts": fields.failed_attempts,
        "failedInterval": fields.failed_interval_s, "workerGroupId": fields.worker_group_id,
    }
    return _DEFAULTS | dict(old) | {k: v for k, v in given.items() if v is not None}


def spec_of(request: Request, row: SentinelJob, schedule: Mapping[str, Any],
            depends_on: list[dict[str, Any]]) -> JobSpec:
    info, now = row.info, service_of(request).clock.now()
    target = target_from_dict(
        words.worker_target(info["jobType"], info["content"], info["contentType"],
                            info["workerGroupId"], info["params"]),
        job_types=job_types_of(request))
    retry = words.retry_policy(info["failedAttempts"], info["failedInterval"])
    return JobSpec(
        namespace=row.namespace, key=row.key, schedule=schedule_from_dict(schedule, now),
        target=target, priority=info["priority"],
        retry=RetryPolicy(max_attempts=retry["max_attempts"],
                          initial_backoff_us=retry["initial_backoff"] * US_PER_S,
                          max_backoff_us=retry["max_backoff"] * US_PER_S,
                          multiplier=1.0, jitter=0.0),
        depends_on=parse_dependencies(depends_on, row.namespace),
        expiry_us=info["expiredTime"] * US_PER_S,
    )


def union_of(changes: list[Change]) -> list[dict[str, Any]]:
    """A new job's expressions as union items: given ids kept, the others numbered."""
    if len(changes) > MAX_ITEMS:
        raise InvalidField(f"at most {MAX_ITEMS} expressions", "scheduleExpressionList")
    taken = {change.id for change in changes if change.id is not None}
    free = (str(n) for n in range(1, 10 * MAX_ITEMS) if str(n) not in taken)
    return [{**(change.data or {}), "id": change.id or next(free)} for change in changes]


def schedule_for(fields: JobFields, info: Mapping[str, Any], has_deps: bool) -> dict[str, Any]:
    if fields.expressions:
        return {"kind": "union", "items": union_of(fields.expressions)}
    if has_deps:
        return {"kind": "dependencies"}
    if info["isTemp"]:
        return {"kind": "once", "after": 0}  # a temporary job runs once, now
    raise bad("a job needs scheduleExpressionList or dependencyList (or isTemp for a "
              "one-shot job run now)", "scheduleExpressionList")


async def upstreams(request: Request, principal: Principal, changes: list[words.DependencyChange],
                    have: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`depends_on` after applying the changes (ADD, EDIT, DELETE by preJobId) to `have`."""
    entries = {entry["job"]: entry for entry in have}
    for index, change in enumerate(changes):
        field = f"dependencyList[{index}].preJobId"
        pre, _job = await sentinel_job(request, principal, change.pre_job_id, field)
        exists = pre.key in entries
        if change.op is Op.ADD and exists:
            raise bad(f"job {pre.id} is a dependency already: use EDIT", field)
        if change.op is not Op.ADD and not exists:
            raise NotFound(f"job {pre.id} is not a dependency of this job", field)
        if change.op is Op.REMOVE:
            del entries[pre.key]
        else:
            entries[pre.key] = {"job": pre.key, "namespace": pre.namespace,
                                "strategy": change.strategy.value, "window": change.window}
    return list(entries.values())


async def apply_status(request: Request, job: Job, status: JobStatus) -> None:
    """1 valid: scheduled; 2 invalid, 3 expired, 5 paused: not scheduled (paused); 4 trash:
    cancelled. Asking for the status a job has is no change."""
    service = service_of(request)
    namespace, key = job.spec.namespace, job.spec.key
    try:
        if status is JobStatus.VALID:
            await service.change_jobs(namespace, [key], job_rules.enable)
        elif status is JobStatus.TRASH:
            if job.state is not JobState.CANCELLED:
                await service.cancel(namespace, key)
        else:
            await service.change_jobs(namespace, [key], job_rules.disable)
    except IllegalTransition as exc:
        raise IllegalTransition(exc.message, "status") from None


# -- jobs --------------------------------------------------------------------------------------


async def submit(request: Request, call: Call) -> dict[str, Any]:
    """Section 1: a new job; answers its jobId."""
    principal, service = call.principal, service_of(request)
    now = service.clock.now()
    fields = words.job_fields(call.params, now, settings_of(request).sentinel_timezone, True)
    namespace = home(principal)
    require_create(principal, namespace, "appName")
    depends_on = await upstreams(request, principal, fields.dependencies, [])
    info = info_of(fields, {})
    schedule = schedule_for(fields, info, bool(depends_on))
    store = request.app.state.node.store.sentinel
    blank = SentinelJob(0, principal.app, namespace, fields.name or "",
                        fields.department or "", fields.biz_groups or "", info, now)
    for _try in range(KEY_TRIES):
        row = await store.add_job(blank)
        try:
            spec = spec_of(request, row, schedule, depends_on)
            require_grant(principal, spec.target, "jobType")
            require_upstreams(principal, spec, "dependencyList")
            [outcome] = await service.submit([Submission(spec)])
        except BaseException:
            await store.drop_job(row.id)
            raise
        if outcome.created:
            break
        # a job another API made holds this key: never take it over; ids are never reused
        await store.drop_job(row.id)
    else:
        raise Refusal(409, f"namespace {namespace!r} holds jobs made by other APIs under the "
                           "next jobIds; try again", "jobName")
    if info["status"] != JobStatus.VALID:
        await apply_status(request, await service.get(namespace, row.key),
                           JobStatus(info["status"]))
    return {"jobId": row.id}


async def edit(request: Request, call: Call) -> None:
    """Jarvis's job edit: the fields given change; expressions and dependencies stay."""
    principal, service = call.principal, service_of(request)
    job_id = words.required_whole(call.params, "jobId")
    row, job = await sentinel_job(request, principal, job_id)
    now = service.clock.now()
    fields = words.job_fields(call.params, now, settings_of(request).sentinel_timezone, False)
    changed = replace(row, name=fields.name or row.name,
                      department=row.department if fields.department is None
                      else fields.department,
                      biz_groups=row.biz_groups if fields.biz_groups is None
                      else fields.biz_groups,
                      info=info_of(fields, row.info))
    await replace_job(request, principal, changed, job, job.spec.schedule.to_dict(),
                      [d.to_dict() for d in job.spec.depends_on])
    if fields.status is not None:
        await apply_status(request, await service.get(job.spec.namespace, job.spec.key),
                           fields.status)


async def replace_job(request: Request, principal: Principal, row: SentinelJob, job: Job,
                      schedule: Mapping[str, Any], depends_on: list[dict[str, Any]]) -> None:
    """Write the job anew (replace=true: checked as a submit, cycles included) and its row."""
    if job.state is JobState.CANCELLED:
        raise IllegalTransition(f"job {row.id} is in the trash: it cannot change", "jobId")
    spec = spec_of(request, row, schedule, depends_on)
    require_grant(principal, spec.target, "jobType")
    require_upstreams(principal, spec, "dependencyList")
    await service_of(request).submit([Submission(spec)], replace=True)
    await request.app.state.node.store.sentinel.update_job(row)
    if job.state is JobState.PAUSED:  # a replaced job is active: keep it paused
        await service_of(request).change_jobs(job.spec.namespace, [job.spec.key],
                                              job_rules.disable)


async def dependency_set(request: Request, call: Call) -> None:
    """Jarvis's dependency/set: ADD, EDIT or DELETE dependencies by preJobId."""
    job_id = words.required_whole(call.params, "jobId")
    row, job = await sentinel_job(request, call.principal, job_id)
    changes = words.dependency_changes(call.params, adding=False)
    if not changes:
        raise bad("dependencyList must not be empty", "dependencyList")
    have = [d.to_dict() for d in job.spec.depends_on]
    depends_on = await upstreams(request, call.principal, changes, have)
    schedule = job.spec.schedule.to_dict()
    if not depends_on and schedule.get("kind") == "dependencies":
        raise bad("the job has no time expression: its last dependency cannot go",
                  "dependencyList")
    await replace_job(request, call.principal, row, job, schedule, depends_on)


async def schedule_set(request: Request, call: Call) -> None:
    """Jarvis's scheduleExp/set: ADD, EDIT or DELETE expressions by expressionId, in one
    change (the job keeps the occurrences it has fired)."""
    job_id = words.required_whole(call.params, "jobId")
    row, _job = await sentinel_job(request, call.principal, job_id)
    service = service_of(request)
    changes = words.expression_changes(call.params, service.clock.now(),
                                       settings_of(request).sentinel_timezone, adding=False)
    if not changes:
        raise bad("scheduleExpressionList must not be empty", "scheduleExpressionList")
    await Schedules(service).change(row.namespace, row.key, changes)


async def status_set(request: Request, call: Call) -> dict[str, Any]:
    """Jarvis's status/set: every job of `jobIds` to `status` (1 to 5)."""
    ids = words.id_list(call.params, "jobIds", MAX_IDS)
    status = JobStatus(words.required_whole(call.params, "status", 1, 5))
    found = [await sentinel_job(request, call.principal, job_id, f"jobIds[{index}]")
             for index, job_id in enumerate(ids)]
    store = request.app.state.node.store.sentinel
    for row, job in found:
        await apply_status(request, job, status)
        await store.update_job(replace(row, info={**row.info, "status": int(status)}))
    return {"jobIds": ids, "status": int(status)}


async def query_jobs(request: Request, call: Call) -> dict[str, Any]:
    """The app's jobs, filtered by department and bizGroup, by jobId after `lastJobId`."""
    params = call.params
    department = words.text(params, "department")
    biz = words.whole(params, "bizGroupId", 0)
    after = words.whole(params, "lastJobId", 0) or 0
    size = words.whole(params, "size", 1, MAX_TASKS) or 100
    rows = await request.app.state.node.store.sentinel.list_jobs(
        call.principal.app, department, None if biz is None else str(biz), after, size)
    jobs = []
    for row in rows:
        try:
            _row, job = await sentinel_job(request, call.principal, row.id)
        except NotFound:
            continue  # removed through another API
        jobs.append({"jobId": row.id, "jobName": row.name, "department": row.department,
                     "bizGroups": row.biz_groups, "state": job.state.value,
                     **{k: v for k, v in row.info.items() if k != "content"}})
    return {"list": jobs}


# -- tasks -------------------------------------------------------------------------------------


async def query_task_ids(request: Request, call: Call) -> dict[str, Any]:
    """Section 2: the tasks of a job, newest first (`size`, at most 1000)."""
    job_id = words.required_whole(call.params, "jobId")
    size = words.whole(call.params, "size", 1, MAX_TASKS) or 100
    row, _job = await sentinel_job(request, call.principal, job_id)
    runs = await service_of(request).runs(row.namespace, row.key, None, size)
    ids = await task_ids(request, job_id, runs)
    return {"jobId": job_id, "taskIds": [ids[run.id] for run in runs],
            "list": [task_json(ids[run.id], job_id, run) for run in runs]}


async def query_job_task_status(request: Request, call: Call) -> dict[str, Any]:
    """Section 3: the status of a one-shot job's task."""
    job_id = words.required_whole(call.params, "jobId")
    row, _job = await sentinel_job(request, call.principal, job_id)
    runs = await service_of(request).runs(row.namespace, row.key, None, 2)
    if not runs:
        raise NotFound(f"job {job_id} has not been scheduled yet: no task", "jobId")
    if len(runs) > 1:
        raise Refusal(409, f"job {job_id} has several tasks: ask "
                           "/api/task/query/status with a taskId", "jobId")
    ids = await task_ids(request, job_id, runs)
    return task_json(ids[runs[0].id], job_id, runs[0])


async def query_status(request: Request, call: Call) -> dict[str, Any]:
    """Section 4: a task's status."""
    task_id = words.required_whole(call.params, "taskId")
    job_id, run = await task_run(request, call.principal, task_id)
    return task_json(task_id, job_id, run)


async def kill(request: Request, call: Call) -> dict[str, Any]:
    """Section 5: kill tasks. Each is killed on its own; those that cannot be are listed."""

    async def stop(run: Run) -> None:
        if run.state is RunState.WAITING:  # never started: nothing to stop, it ends
            await service_of(request).remove_run(run.id)
        else:
            await workers_of(request).kill(run.id)

    return await _each_task(request, call, "killed", stop)


async def _each_task(request: Request, call: Call, done: str,
                     act: Callable[[Run], Awaitable[Any]]) -> dict[str, Any]:
    """`act` on each of the `taskIds` the caller may change; those it cannot act on are
    listed in the refusal (404 when none was found, else 409)."""
    ids = words.id_list(call.params, "taskIds", MAX_IDS)
    failed: dict[str, str] = {}
    missing = 0
    for index, task_id in enumerate(ids):
        try:
            _job_id, run = await task_run(request, call.principal, task_id,
                                          f"taskIds[{index}]")
            require_run(call.principal, run, write=True)
            await act(run)
        except (NotFound, IllegalTransition) as exc:
            failed[str(task_id)] = exc.message
            missing += isinstance(exc, NotFound)
    if failed:
        raise Refusal(404 if missing == len(ids) else 409,
                      f"{len(failed)} of {len(ids)} tasks could not be {done}", "taskIds",
                      {"failed": failed})
    return {"taskIds": ids}


async def retry(request: Request, call: Call) -> dict[str, Any]:
    """Jarvis's task retry: the task runs again as its next attempt."""
    task_id = words.required_whole(call.params, "taskId")
    job_id, run = await task_run(request, call.principal, task_id)
    require_run(call.principal, run, write=True)
    if run.kind is not RunKind.SCHEDULED:
        raise Refusal(409, "only a scheduled task can be retried", "taskId")
    outcome = await Schedules(service_of(request)).rerun(
        run.namespace, run.job_key, RerunRequest(run.scheduled_at, run.scheduled_at))
    if not outcome.rerun and not outcome.created:
        raise Refusal(409, "the task is still in progress: nothing to retry", "taskId")
    return {"taskId": task_id, "jobId": job_id}


async def rerun(request: Request, call: Call) -> dict[str, Any]:
    """Jarvis's rerun: every planned instant of the jobs in [startDate, endDate] (ms) again,
    a new task where there was none, a new attempt where there was one (one still in
    progress is left alone: `inFlight`)."""
    ids = words.id_list(call.params, "jobIdList", MAX_IDS)
    start = words.required_whole(call.params, "startDate", 0, 2**62 // US_PER_MS)
    end = words.required_whole(call.params, "endDate", 0, 2**62 // US_PER_MS)
    found = [await sentinel_job(request, call.principal, job_id, f"jobIdList[{index}]")
             for index, job_id in enumerate(ids)]
    schedules = Schedules(service_of(request))
    counts = {"created": 0, "rerun": 0, "inFlight": 0}
    for row, _job in found:
        try:
            outcome = await schedules.rerun(
                row.namespace, row.key, RerunRequest(start * US_PER_MS, end * US_PER_MS))
        except InvalidField as exc:
            field = {"from": "startDate", "to": "endDate"}.get(exc.field or "", "endDate")
            raise InvalidField(exc.message, field) from None
        counts["created"] += len(outcome.created)
        counts["rerun"] += len(outcome.rerun)
        counts["inFlight"] += len(outcome.in_flight)
    return counts


async def remove(request: Request, call: Call) -> dict[str, Any]:
    """Jarvis's task remove: a task not started yet ends removed (99) and stays listed; one
    that has started must be killed."""
    return await _each_task(request, call, "removed",
                            lambda run: service_of(request).remove_run(run.id))


# -- logs --------------------------------------------------------------------------------------


async def _page(request: Request, call: Call, stream: str, offset: int, size: int
                ) -> dict[str, Any]:
    task_id = words.required_whole(call.params, "taskId")
    attempt = words.whole(call.params, "attemptId", 1, 1_000) or 1
    _job_id, run = await task_run(request, call.principal, task_id)
    try:
        page = await workers_of(request).log(run.id, offset, size, stream, attempt)
    except NotFound as exc:
        field = "attemptId" if exc.field == "attempt" else "taskId"
        raise NotFound(f"task {task_id}: {exc.message}", field) from None
    return {"log": page.text, "offset": page.next_offset, "isEnd": page.end,
            "size": page.size, "taskId": task_id, "attemptId": attempt}


async def _paged(request: Request, call: Call, stream: str) -> dict[str, Any]:
    offset = words.whole(call.params, "offset", 0) or 0
    size = words.whole(call.params, "size", 1, MAX_PAGE) or DEFAULT_PAGE
    return await _page(request, call, stream, offset, size)


async def _whole(request: Request, call: Call, stream: str) -> dict[str, Any]:
    page = await _page(request, call, stream, 0, MAX_PAGE)
    parts = [page["log"]]
    while not page["isEnd"] and page["offset"] < page["size"]:
        if page["offset"] >= MAX_WHOLE:
            raise Refusal(409, f"more than {MAX_WHOLE} bytes: read it in pages with offset",
                          "taskId")
        page = await _page(request, call, stream, page["offset"], MAX_PAGE)
        parts.append(page["log"])
    return page | {"log": "".join(parts), "offset": page["offset"]}


async def read_result(request: Request, call: Call) -> dict[str, Any]:
    """Section 7: a page of a task's result, from `offset` (bytes), `size` bytes."""
    return await _paged(request, call, "result")


async def read_execute_log(request: Request, call: Call) -> dict[str, Any]:
    """Section 9: a page of a task's execution log."""
    return await _paged(request, call, "log")


async def read_all_result(request: Request, call: Call) -> dict[str, Any]:
    """Section 6: a task's whole result (up to 4 MB; more is read in pages)."""
    return await _whole(request, call, "result")


async def read_all_execute_log(request: Request, call: Call) -> dict[str, Any]:
    """Section 8: a task's whole execution log (up to 4 MB)."""
    return await _whole(request, call, "log")


for _path, _handler in (
    ("/api/job/submit", submit),
    ("/api/job/edit", edit),
    ("/api/job/dependency/set", dependency_set),
    ("/api/job/scheduleExp/set", schedule_set),
    ("/api/job/status/set", status_set),
    ("/api/job/query", query_jobs),
    ("/api/task/query/taskIds", query_task_ids),
    ("/api/task/query/jobStatus", query_job_task_status),
    ("/api/task/query/status", query_status),
    ("/api/task/kill", kill),
    ("/api/task/retry", retry),
    ("/api/task/rerun", rerun),
    ("/api/task/remove", remove),
    ("/api/log/readResult", read_result),
    ("/api/log/readExecuteLog", read_execute_log),
    ("/api/log/readAllResult", read_all_result),
    ("/api/log/readAllExecuteLog", read_all_execute_log),
):
    router.add_api_route(_path, route(_handler), methods=["POST"],
                         operation_id="sentinel_" + _path.strip("/").replace("/", "_"),
                         response_model=Envelope, responses=ERRORS)
