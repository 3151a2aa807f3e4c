"""The native API under /v1."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response

from cronwheel.api import auditing
from cronwheel.api.auth import (
    AUTHENTICATED,
    RESPONSES,
    Reader,
    Writer,
    hidden_run,
    require_create,
    require_grant,
    require_read,
    require_run,
    require_upstreams,
    require_write,
)
from cronwheel.api.convert import (
    graph_json,
    job_json,
    run_detail_fields,
    run_out,
    submission,
)
from cronwheel.api.deps import job_types_of, service_of
from cronwheel.api.errors import error_body
from cronwheel.api.responses import Json
from cronwheel.api.schemas import (
    BatchIn,
    BatchOut,
    DeletedOut,
    DependenciesOut,
    JobIn,
    JobOut,
    JobPage,
    RunDetail,
    RunPage,
    TriggerIn,
)
from cronwheel.contracts import AddOutcome, JobFilter
from cronwheel.domain.access import Principal, can_admin, can_read
from cronwheel.domain.audit import OK
from cronwheel.domain.errors import DomainError, InvalidField, ItemErrors
from cronwheel.domain.jobs import DEFAULT_NAMESPACE, Job, JobState
from cronwheel.domain.paging import MAX_CURSOR, JobPosition, decode_cursor, encode_cursor
from cronwheel.domain.targets import Target
from cronwheel.domain.worker_target import SpecParsers
from cronwheel.service import Service, Submission

router = APIRouter(prefix="/v1", tags=["jobs"], dependencies=AUTHENTICATED, responses=RESPONSES)
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

Namespace = Annotated[str, Query(min_length=1, max_length=255)]
Limit = Annotated[int, Query(ge=1, le=1000)]
RunsOnDelete = Literal["keep", "delete"]


def _cursor(value: str | None) -> str | None:
    if value is not None and not _ID.match(value):
        raise InvalidField("cursor is not one this API returned", "cursor")
    return value


@router.post("/jobs", response_model=JobOut, status_code=201,
             responses={200: {"description": "the same job existed already"}})
async def create_job(
    request: Request,
    body: JobIn,
    caller: Writer,
    replace: Annotated[bool, Query(description="overwrite a different existing job")] = False,
) -> Any:
    """201 created; 200 the same job existed (or was replaced, with `replace=true`); 409 a
    different job has this key."""
    auditing.note(request.state, namespace=body.namespace, target=body.key)
    require_create(caller, body.namespace)
    service = service_of(request)
    item = submission(body, service.clock.now(), job_types_of(request))
    require_grant(caller, item.spec.target, installed=job_types_of(request).names())
    require_upstreams(caller, item.spec)
    auditing.judge(_conflicted)
    [outcome] = await service.submit([item], replace=replace, caller=caller)
    if outcome.conflict:
        return Json(
            error_body("conflict", f"job {body.key!r} exists with a different definition",
                       "key", existing=job_json(outcome.job)),
            409,
        )
    status = 201 if outcome.created else 200
    return Json(job_json(outcome.job), status)


@router.post("/jobs/batch", response_model=BatchOut, status_code=201)
async def create_jobs(request: Request, body: BatchIn, caller: Writer) -> Any:
    """All or nothing: any invalid or conflicting item leaves every job of the batch unwritten."""
    namespaces = sorted({job.namespace for job in body.jobs})
    auditing.note(request.state, namespace=namespaces[0] if len(namespaces) == 1 else None,
                  detail={"jobs": len(body.jobs), "namespaces": namespaces[:20]})
    for index, job in enumerate(body.jobs):
        require_create(caller, job.namespace, f"jobs[{index}].namespace")
    service = service_of(request)
    items, problems = _batch_items(body, service.clock.now(), job_types_of(request))
    if problems:
        return _batch_error("invalid_argument", "some jobs are invalid", problems, 422)
    for index, item in enumerate(items):
        require_grant(caller, item.spec.target, f"jobs[{index}].target.type",
                      job_types_of(request).names())
        require_upstreams(caller, item.spec, f"jobs[{index}].depends_on")
    auditing.judge(_conflicted)
    try:
        outcomes = await service.submit(items, all_or_nothing=True, caller=caller)
    except ItemErrors as exc:
        refused = [_item_problem(index, error) for index, error in exc.items]
        return _batch_error("invalid_argument", "some jobs are invalid", refused, 422)
    conflicts = [
        {"index": i, "field": f"jobs[{i}].key", "code": "conflict",
         "message": f"job {o.job.spec.key!r} exists with a different definition"}
        for i, o in enumerate(outcomes) if o.conflict
    ]
    if conflicts:
        return _batch_error("conflict", "some jobs exist with a different definition",
                            conflicts, 409)
    created = sum(o.created for o in outcomes)
    counts = {"created": created, "existing": len(outcomes) - created}
    if _minimal(request):
        return Json({"ids": [o.job.id for o in outcomes], **counts}, 201,
                    headers={"Preference-Applied": "return=minimal"})
    return Json({"jobs": [job_json(o.job) for o in outcomes], **counts}, 201)


def _minimal(request: Request) -> bool:
    """`Prefer: return=minimal` (RFC 7240): the caller wants the ids, not every job echoed
    (a fifth of a batch's server CPU). Not in the OpenAPI document: the default stays the
    documented answer."""
    return any(part.strip().lower() == "return=minimal"
               for value in request.headers.getlist("prefer") for part in value.split(","))


def _conflicted(outcomes: list[AddOutcome]) -> str:
    """A create that found a different job wrote nothing: the audit trail says so."""
    return "conflict" if any(o.conflict for o in outcomes) else OK


def _batch_items(
    body: BatchIn, now: int, job_types: SpecParsers
) -> tuple[list[Submission], list[dict[str, Any]]]:
    items: list[Submission] = []
    problems: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    targets: dict[bytes, Target] = {}
    for index, job in enumerate(body.jobs):
        name = (job.namespace, job.key)
        if name in seen:
            problems.append({"index": index, "field": f"jobs[{index}].key",
                             "code": "invalid_argument", "message": "key repeated in the batch"})
            continue
        seen.add(name)
        try:
            items.append(submission(job, now, job_types, targets))
        except DomainError as exc:
            problems.append(_item_problem(index, exc))
    return items, problems


def _item_problem(index: int, error: DomainError) -> dict[str, Any]:
    return {"index": index, "field": f"jobs[{index}].{error.field or 'body'}",
            "code": error.code, "message": error.message}


def _batch_error(code: str, message: str, items: list[dict[str, Any]], status: int) -> Any:
    first = items[0]
    body = error_body(code, f"{message}; first: {first['field']}: {first['message']}",
                      first["field"], items=items)
    return Json(body, status)


JobCursor = Annotated[str | None, Query(
    max_length=MAX_CURSOR,
    description="where the page starts: the `next_cursor` of the page before (opaque; a job "
                "id, the format before, is still taken). Pages go in (namespace, key) order.")]


@router.get("/jobs", response_model=JobPage)
async def list_jobs(
    request: Request,
    caller: Reader,
    namespace: Annotated[str | None, Query(max_length=255)] = None,
    state: JobState | None = None,
    key_prefix: Annotated[str | None, Query(max_length=255)] = None,
    limit: Limit = 100,
    cursor: JobCursor = None,
) -> Json:
    """Only the jobs the caller may read: a namespace it may not see lists empty. Each page
    costs the same however many jobs there are (keyset paging on an index); the next one is
    at `next_cursor`, also given as a `Link: <...>; rel="next"` header."""
    service = service_of(request)
    where = JobFilter(namespace=namespace, state=state, key_prefix=key_prefix)
    after = await _job_position(service, cursor)
    found, resume = await visible_jobs(service, caller, where, after, limit + 1)
    page = found[:limit]
    if len(found) > limit:
        resume = _position(page[-1])
    following = encode_cursor(resume) if resume is not None else None
    return Json({"jobs": [job_json(j) for j in page], "next_cursor": following},
                headers=_next_link(request, following))


async def _job_position(service: Service, cursor: str | None) -> JobPosition | None:
    if cursor is None:
        return None
    if not _ID.match(cursor):
        return decode_cursor(cursor)
    job = await service.store.get_job_by_id(cursor)  # a cursor of the id-paged API
    if job is None:
        raise InvalidField("cursor names no job: start again without it", "cursor")
    return _position(job)


def _position(job: Job) -> JobPosition:
    return job.spec.namespace, job.spec.key


def _next_link(request: Request, cursor: str | None) -> dict[str, str] | None:
    """RFC 8288's `next` link: the same query, from the next page's cursor."""
    if cursor is None:
        return None
    return {"Link": f'<{request.url.include_query_params(cursor=cursor)}>; rel="next"'}


@router.post("/jobs/{key:path}/pause", response_model=JobOut)
@router.post("/jobs/{key:path}/disable", response_model=JobOut,
             description="The same as pause: a disabled job fires nothing until enabled.")
async def pause_job(
    request: Request, key: str, caller: Writer, namespace: Namespace = DEFAULT_NAMESPACE
) -> Json:
    require_write(caller, namespace, key)
    return Json(job_json(await service_of(request).pause(namespace, key)))


@router.post("/jobs/{key:path}/resume", response_model=JobOut)
@router.post("/jobs/{key:path}/enable", response_model=JobOut,
             description="The same as resume; missed occurrences follow the misfire policy.")
async def resume_job(
    request: Request, key: str, caller: Writer, namespace: Namespace = DEFAULT_NAMESPACE
) -> Json:
    require_write(caller, namespace, key)
    return Json(job_json(await service_of(request).resume(namespace, key)))


@router.post("/jobs/{key:path}/cancel", response_model=JobOut)
async def cancel_job(
    request: Request, key: str, caller: Writer, namespace: Namespace = DEFAULT_NAMESPACE
) -> Json:
    require_write(caller, namespace, key)
    return Json(job_json(await service_of(request).cancel(namespace, key)))


@router.post("/jobs/{key:path}/trigger", status_code=202, response_model=RunDetail)
async def trigger_job(
    request: Request,
    key: str,
    caller: Writer,
    namespace: Namespace = DEFAULT_NAMESPACE,
    body: Annotated[TriggerIn | None, Body()] = None,
) -> Any:
    require_write(caller, namespace, key)
    override = body is not None and "payload" in body.model_fields_set
    payload = body.payload if body is not None else None
    run = await service_of(request).trigger(namespace, key, payload, override, caller)
    return Json(run_out(run).model_dump(mode="json") | {"attempt_log": []}, 202)


RunCursor = Annotated[str | None, Query(
    max_length=36, description="where the page starts: the `next_cursor` of the page before "
                               "(a run id). Pages go newest first.")]


@router.get("/jobs/{key:path}/runs", response_model=RunPage)
async def list_runs(
    request: Request,
    response: Response,
    key: str,
    caller: Reader,
    namespace: Namespace = DEFAULT_NAMESPACE,
    limit: Limit = 100,
    cursor: RunCursor = None,
) -> RunPage:
    """The job's runs, newest first, a page per call at the same cost however many there
    are (keyset paging on the job's runs index); the next page is at `next_cursor`, also
    given as a `Link: <...>; rel="next"` header."""
    require_read(caller, namespace, key)
    found = await service_of(request).runs(namespace, key, _cursor(cursor), limit + 1)
    more = len(found) > limit
    page = found[:limit]
    following = page[-1].id if more else None
    response.headers.update(_next_link(request, following) or {})
    return RunPage(runs=[run_out(r) for r in page], next_cursor=following)


@router.get("/jobs/{key:path}/dependencies", response_model=DependenciesOut)
async def job_dependencies(
    request: Request,
    key: str,
    caller: Reader,
    namespace: Namespace = DEFAULT_NAMESPACE,
    window: Annotated[str | None, Query(max_length=32, description="cd (default), h(3)...: "
                                        "the span around now whose runs are shown")] = None,
) -> Json:
    """The jobs this one waits for (upstream) and the jobs waiting for it (downstream), as
    trees, each with its scheduled runs planned in the window and their states. An upstream
    that does not exist is shown with state `missing`: a run waiting for it expires."""
    require_read(caller, namespace, key)
    service = service_of(request)
    job, bounds, up, down = await service.dependencies(namespace, key, window)
    runs = await service.store.upstream_history(job.id, *bounds)
    return Json(graph_json(job, window or "cd", bounds, runs, up, down))


@router.delete("/jobs/{key:path}", response_model=DeletedOut)
async def delete_job(
    request: Request,
    key: str,
    caller: Writer,
    namespace: Namespace = DEFAULT_NAMESPACE,
    runs: Annotated[RunsOnDelete, Query(
        description="keep: runs stay until retention; delete: they go with the job")] = "keep",
) -> Json:
    """Remove the job: it fires no more and its key is free. Its unfinished runs are
    cancelled; its runs stay readable by id until retention unless `runs=delete`."""
    require_write(caller, namespace, key)
    job = await service_of(request).delete(namespace, key, delete_runs=runs == "delete")
    return Json({"job": job_json(job), "runs": "deleted" if runs == "delete" else "kept"})


# Last among /jobs routes: a key may contain '/', so this would shadow the ones above.
@router.get("/jobs/{key:path}", response_model=JobOut)
async def get_job(
    request: Request, key: str, caller: Reader, namespace: Namespace = DEFAULT_NAMESPACE
) -> Json:
    require_read(caller, namespace, key)
    return Json(job_json(await service_of(request).get(namespace, key)))


@router.get("/runs/{run_id}", response_model=RunDetail)
async def get_run(request: Request, run_id: str, caller: Reader) -> RunDetail:
    run, attempts = await service_of(request).run(run_id)
    if not can_read(caller, run.namespace):
        raise hidden_run(run_id)
    return RunDetail(**run_detail_fields(run, attempts))


@router.post("/runs/{run_id}/remove", response_model=RunDetail,
             responses={409: {"description": "the run has started or ended: kill it instead"}})
async def remove_run(request: Request, run_id: str, caller: Writer) -> RunDetail:
    """End a run that has not started yet (waiting for its dependencies, or pending and never
    attempted) `cancelled`; it stays listed. A started run is killed instead."""
    service = service_of(request)
    run, _attempts = await service.run(run_id)
    require_run(caller, run, write=True)
    removed = await service.remove_run(run_id)
    return RunDetail(**run_detail_fields(removed, (await service.run(run_id))[1]))


MAX_ROUNDS = 8  # queries for one page when another app's claims hide some of the rows read
MAX_SCAN = 5_000  # jobs a page of a sparse filter (state, key prefix in any namespace) reads


async def visible_jobs(
    service: Service, caller: Principal, where: JobFilter, after: JobPosition | None, want: int
) -> tuple[list[Job], JobPosition | None]:
    """Up to `want` of the jobs the caller may read, and where to go on if the page was cut
    short. The store reads only the namespaces the caller's app claims; rows of a namespace
    carved out by another app's more specific claim are dropped here. A page stops early
    (with a position to go on from) rather than scan: after MAX_ROUNDS reads of mostly
    hidden rows, or MAX_SCAN jobs read for a sparse filter."""
    if not can_admin(caller):
        if where.namespace is not None and not can_read(caller, where.namespace):
            return [], None
        where = replace(where, claims=caller.namespaces)
    found: list[Job] = []
    for _round in range(MAX_ROUNDS):
        asked = want - len(found)
        batch, resume = await _bounded_page(service, where, after, asked)
        found.extend(j for j in batch if can_read(caller, j.spec.namespace))
        if resume is not None:
            return found, resume
        if len(batch) < asked or len(found) >= want:
            return found, None
        after = _position(batch[-1])
    return found, after


async def _bounded_page(
    service: Service, where: JobFilter, after: JobPosition | None, want: int
) -> tuple[list[Job], JobPosition | None]:
    """A page that reads at most MAX_SCAN jobs, and where it stopped if it stopped short."""
    if not where.sparse:
        return await service.list_jobs(where, after, want), None
    until = await service.store.listing_bound(where, after, MAX_SCAN)
    found = await service.list_jobs(replace(where, until=until), after, want)
    return found, until if until is not None and len(found) < want else None
