"""Runs: the list across jobs by state and time, a run's page with its attempts and log
(paged by offset, followed live while it runs), kill and rerun."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from cronwheel.api.deps import service_of, workers_of
from cronwheel.contracts import RunFilter
from cronwheel.domain.errors import DomainError, InvalidField, NotFound
from cronwheel.domain.runs import Run, RunState
from cronwheel.domain.time import US_PER_S
from cronwheel.service import Service
from cronwheel.ui.render import back, page
from cronwheel.ui.session import Caller, Hidden
from cronwheel.ui.web import ConsoleRoute, caller_of, posted
from cronwheel.worker_service import LogPage

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
PAGE = 50
SCAN = 200
MAX_SCAN = 1_000
LOG_PAGE = 65_536
FOLLOW_POLL_S = 0.25
LIVE = (RunState.PENDING, RunState.RUNNING)


def _instant(text: str, field: str) -> int | None:
    """A `datetime-local` field, read as UTC."""
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidField("a time such as 2026-12-01T09:30", field) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return round(at.timestamp() * US_PER_S)


def _run_state(text: str) -> RunState | None:
    try:
        return RunState(text) if text else None
    except ValueError:
        raise InvalidField(f"state must be one of {', '.join(RunState)}", "state") from None


async def _page_of_runs(service: Service, caller: Caller, where: RunFilter,
                        before: str | None) -> tuple[list[Run], str | None]:
    """Up to PAGE runs, newest first. The store reads only the namespaces the caller's app
    claims (the runs' namespace index); rows of a namespace carved out by another app's more
    specific claim are dropped here, reading at most MAX_SCAN rows for a page."""
    found: list[Run] = []
    read = 0
    while read < MAX_SCAN:
        batch = await service.find_runs(where, before, SCAN)
        read += len(batch)
        for index, run in enumerate(batch):
            if caller.can_read(run.namespace):
                found.append(run)
                if len(found) == PAGE:
                    more = index < len(batch) - 1 or len(batch) == SCAN
                    return found, run.id if more else None
        if len(batch) < SCAN:
            return found, None
        before = batch[-1].id
    return found, before


@router.get("/runs")
async def list_runs(request: Request) -> Response:
    caller = await caller_of(request)
    q = {name: request.query_params.get(name, "").strip()[:255]
         for name in ("state", "namespace", "from", "to")}
    if q["namespace"]:
        caller.require_read(q["namespace"], f"no namespace {q['namespace']!r}")
    where = RunFilter(namespace=q["namespace"] or None, state=_run_state(q["state"]),
                      fired_from=_instant(q["from"], "from"), fired_to=_instant(q["to"], "to"),
                      claims=None if caller.admin else caller.principal.namespaces)
    found, more = await _page_of_runs(service_of(request), caller, where,
                                      request.query_params.get("cursor") or None)
    next_url = None
    if more:
        next_url = "/ui/runs?" + urlencode({k: v for k, v in q.items() if v} | {"cursor": more})
    return page(request, caller, "runs.html", runs=found, q=q, next_url=next_url,
                states=list(RunState))


async def _readable_run(request: Request, caller: Caller, run_id: str) -> Run:
    try:
        run, _attempts = await service_of(request).run(run_id)
    except NotFound:
        raise Hidden(f"no run {run_id!r}", "run_id") from None
    caller.require_read(run.namespace, f"no run {run_id!r}")
    return run


@router.get("/runs/{run_id}")
async def run_page(request: Request, run_id: str) -> Response:
    caller = await caller_of(request)
    await _readable_run(request, caller, run_id)
    run, attempts = await service_of(request).run(run_id)
    workers = workers_of(request)
    tasks = await workers.tasks(run_id)
    log = None
    if tasks:
        attempt = _int(request.query_params.get("attempt"), max(t.attempt for t in tasks))
        offset = _int(request.query_params.get("offset"), 0)
        log = await workers.log(run_id, offset, LOG_PAGE, attempt=attempt)
    return page(
        request, caller, "run.html", run=run, attempts=attempts, tasks=tasks, log=log,
        live=run.state in LIVE, writable=caller.can_write(run.namespace),
        attempt_numbers=sorted({t.attempt for t in tasks}),
        job_url="/ui/job?" + urlencode({"namespace": run.namespace, "key": run.job_key}),
        payload=None if not run.has_override else orjson.dumps(
            run.payload_override, option=orjson.OPT_INDENT_2).decode(),
        log_pages=_log_pages(run_id, log) if log else {},
    )


def _int(text: str | None, default: int) -> int:
    try:
        return max(int(text), 0) if text else default
    except ValueError:
        return default


def _log_pages(run_id: str, log: LogPage) -> dict[str, str]:
    """Links to the pages before and after this one, by byte offset."""
    offset, next_offset, size = log.offset, log.next_offset, log.size
    base = f"/ui/runs/{run_id}?attempt={log.task.attempt}"
    pages: dict[str, str] = {}
    if offset > 0:
        pages["first"] = f"{base}&offset=0#log"
        pages["previous"] = f"{base}&offset={max(offset - LOG_PAGE, 0)}#log"
    if next_offset < size:
        pages["next"] = f"{base}&offset={next_offset}#log"
        pages["last"] = f"{base}&offset={max(size - LOG_PAGE, 0)}#log"
    return pages


@router.get("/runs/{run_id}/follow")
async def follow(request: Request, run_id: str) -> StreamingResponse:
    """The run's log as server-sent events, for the run page's script: the API's follow
    endpoint needs a bearer token, which the page never holds."""
    caller = await caller_of(request)
    await _readable_run(request, caller, run_id)
    workers = workers_of(request)
    attempt = _int(request.query_params.get("attempt"), 0) or None
    first = await workers.log(run_id, _int(request.query_params.get("offset"), 0), LOG_PAGE,
                              attempt=attempt)

    async def events() -> AsyncIterator[bytes]:
        import asyncio

        page_ = first
        while True:
            if page_.text:
                yield _event("output", {"text": page_.text, "next_offset": page_.next_offset})
            if page_.end:
                yield _event("end", {"state": page_.task.state.value})
                return
            if page_.next_offset >= page_.size:
                if await request.is_disconnected():
                    return
                await asyncio.sleep(FOLLOW_POLL_S)
            page_ = await workers.log(run_id, page_.next_offset, LOG_PAGE,
                                      attempt=page_.task.attempt, worker=page_.task.worker_name)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


def _event(name: str, data: dict[str, object]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@router.post("/runs/{run_id}/kill")
async def kill(request: Request, run_id: str) -> Response:
    caller, _form = await posted(request)
    run = await _readable_run(request, caller, run_id)
    caller.require_write(run.namespace, "kill runs")
    try:
        state = await workers_of(request).kill(run_id)
    except DomainError as exc:
        if exc.code in ("forbidden", "not_found"):
            raise
        return back(caller, f"/ui/runs/{run_id}", problem=exc.message)
    said = "kill sent to its workers" if state is RunState.RUNNING else "killed"
    return back(caller, f"/ui/runs/{run_id}", notice=f"run {said}")


@router.post("/runs/{run_id}/rerun")
async def rerun(request: Request, run_id: str) -> Response:
    """A new run of the job with this run's payload (issue 11 brings a rerun of its own)."""
    caller, _form = await posted(request)
    run = await _readable_run(request, caller, run_id)
    caller.require_write(run.namespace, "rerun runs")
    try:
        fresh = await service_of(request).trigger(run.namespace, run.job_key,
                                                  run.payload_override, run.has_override)
    except DomainError as exc:
        if exc.code in ("forbidden", "not_found"):
            raise
        return back(caller, f"/ui/runs/{run_id}", problem=exc.message)
    return back(caller, f"/ui/runs/{fresh.id}", notice=f"rerun of {run_id}")
