"""Jobs: the filtered list, a job's page, the new-job form and the actions on a job."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Request, Response

from cronwheel.api import auditing
from cronwheel.api.auth import require_grant
from cronwheel.api.convert import job_json, submission
from cronwheel.api.deps import job_types_of, service_of, settings_of, workers_of
from cronwheel.contracts import JobFilter
from cronwheel.domain.access import Principal
from cronwheel.domain.errors import DomainError, InvalidField, ItemErrors
from cronwheel.domain.jobs import Job, JobState
from cronwheel.domain.paging import JobPosition, decode_cursor, encode_cursor
from cronwheel.domain.worker_target import WorkerTarget
from cronwheel.service import Service
from cronwheel.settings import Settings
from cronwheel.ui import forms
from cronwheel.ui.render import back, page
from cronwheel.ui.session import Caller
from cronwheel.ui.web import ConsoleRoute, caller_of, local, posted, visible_workers

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
PAGE = 50
SCAN = 200  # rows read per query while filtering a page
MAX_SCAN = 1_000  # rows read for one page at most: a sparse filter pages on instead
NEXT_FIRES = 8
FILTERS = ("namespace", "state", "key", "schedule", "target", "dialect")
DIALECTS = ("native", "delayjob", "dispatchserver", "qschedule")
ACTIONS = ("pause", "resume", "cancel", "trigger", "delete")


def dialect_of(namespace: str, settings: Settings,
               qschedule: Collection[str] = frozenset()) -> str:
    """Which API a job's namespace belongs to: each dialect keeps its jobs in its own
    namespaces (docs/dialects/); `qschedule` names the qschedule apps (app data)."""
    if namespace == settings.delayjob_namespace:
        return "delayjob"
    if namespace.startswith(settings.dispatch_namespace_prefix):
        return "dispatchserver"
    if namespace in qschedule:
        return "qschedule"
    return "native"


@dataclass(frozen=True, slots=True)
class _Wanted:
    """What a page of jobs keeps beyond what the store filters."""

    caller: Caller
    settings: Settings
    schedule: str
    target: str
    dialect: str
    qschedule: frozenset[str] = frozenset()

    def __call__(self, job: Job) -> bool:
        spec = job.spec
        return (self.caller.can_read(spec.namespace)
                and (not self.schedule or spec.schedule.kind == self.schedule)
                and (not self.target or spec.target.kind == self.target)
                and (not self.dialect
                     or dialect_of(spec.namespace, self.settings, self.qschedule) == self.dialect))


async def _page_of_jobs(
    service: Service, wanted: _Wanted, where: JobFilter, after: JobPosition | None
) -> tuple[list[Job], str | None]:
    """Up to PAGE jobs the caller may see and the filters keep, reading at most MAX_SCAN
    rows; the cursor goes on from the last row read. The store reads only the namespaces the
    caller's app claims (`where.claims`), in (namespace, key) order on the jobs' index; a
    filter the index cannot answer (state, a key prefix in any namespace) reads a window of
    SCAN jobs at a time, ended by `listing_bound`, never more."""
    found: list[Job] = []
    for _round in range(MAX_SCAN // SCAN):
        until = await service.store.listing_bound(where, after, SCAN) if where.sparse else None
        batch = await service.list_jobs(replace(where, until=until), after, SCAN)
        for index, job in enumerate(batch):
            if wanted(job):
                found.append(job)
                if len(found) == PAGE:
                    more = index < len(batch) - 1 or len(batch) == SCAN or until is not None
                    return found, encode_cursor(_position(job)) if more else None
        if until is None and len(batch) < SCAN:
            return found, None
        after = until if until is not None else _position(batch[-1])
    return found, encode_cursor(after) if after is not None else None


def _position(job: Job) -> JobPosition:
    return job.spec.namespace, job.spec.key


def _state(text: str) -> JobState | None:
    try:
        return JobState(text) if text else None
    except ValueError:
        raise InvalidField(f"state must be one of {', '.join(JobState)}", "state") from None


@router.get("/jobs")
async def list_jobs(request: Request) -> Response:
    caller = await caller_of(request)
    q = {name: request.query_params.get(name, "").strip()[:255] for name in FILTERS}
    if q["namespace"]:
        caller.require_read(q["namespace"], f"no namespace {q['namespace']!r}")
    where = JobFilter(namespace=q["namespace"] or None, state=_state(q["state"]),
                      key_prefix=q["key"] or None,
                      claims=None if caller.admin else caller.principal.namespaces)
    cursor = request.query_params.get("cursor") or None
    after = decode_cursor(cursor) if cursor else None
    settings = settings_of(request)
    if q["dialect"] and q["dialect"] not in DIALECTS:
        raise InvalidField(f"dialect must be one of {', '.join(DIALECTS)}", "dialect")
    qschedule = frozenset(a.name for a in await request.app.state.node.apps.list_qschedule())
    wanted = _Wanted(caller, settings, q["schedule"], q["target"], q["dialect"], qschedule)
    found, more = await _page_of_jobs(service_of(request), wanted, where, after)
    next_url = None
    if more:
        next_url = "/ui/jobs?" + urlencode({k: v for k, v in q.items() if v} | {"cursor": more})
    return page(request, caller, "jobs.html", jobs=found, q=q, next_url=next_url,
                states=list(JobState), schedule_kinds=("cron", "rate", "every", "simple",
                                                       "once", "iso8601"),
                target_kinds=("http", "grpc", "kafka", "tcp", "log", "worker"),
                dialects=DIALECTS, dialect_of=lambda ns: dialect_of(ns, settings, qschedule),
                deletable=_deleter(service_of(request)) is not None)


def _job_url(job: Job) -> str:
    return "/ui/job?" + urlencode({"namespace": job.spec.namespace, "key": job.spec.key})


def _next_fires(job: Job, now: int) -> tuple[list[int], str | None]:
    """The job's next fire times, from its own schedule, and the zone to show them in."""
    zone = job.spec.schedule.to_dict().get("tz")
    times: list[int] = []
    at = job.next_fire_at
    if job.state is JobState.ACTIVE and at is not None:
        while at is not None and len(times) < NEXT_FIRES:
            times.append(at)
            at = job.spec.schedule.next_after(at)
    try:
        ZoneInfo(zone) if zone else None
    except (KeyError, ValueError):
        zone = None
    return times, zone if isinstance(zone, str) else None


@router.get("/job")
async def job_page(request: Request) -> Response:
    caller = await caller_of(request)
    namespace = request.query_params.get("namespace", "default")
    key = request.query_params.get("key", "")
    caller.require_read(namespace, f"no job {key!r} in namespace {namespace!r}")
    service = service_of(request)
    job = await service.get(namespace, key)
    cursor = request.query_params.get("cursor") or None
    found = await service.runs(namespace, key, cursor, PAGE + 1)
    runs, more = found[:PAGE], len(found) > PAGE
    workers = None
    if isinstance(job.spec.target, WorkerTarget):
        workers = await visible_workers(request, caller,
                                        await workers_of(request).job_workers(job),
                                        lambda w: w.status.info.id)
    times, zone = _next_fires(job, service.clock.now())
    definition = job_json(job)
    return page(
        request, caller, "job.html", job=job, runs=runs, workers=workers,
        upstream=job.spec.depends_on, downstream=await service.dependents(namespace, key),
        next_times=times, zone=zone, job_url=_job_url(job),
        more_url=f"{_job_url(job)}&cursor={runs[-1].id}" if more else None,
        definition=orjson.dumps({k: definition[k] for k in (
            "schedule", "target", "payload", "retry", "misfire", "concurrency", "alert",
            "priority")}, option=orjson.OPT_INDENT_2).decode(),
        writable=caller.can_write(namespace),
        deletable=_deleter(service) is not None,
    )


@router.get("/jobs/new")
async def new_job_form(request: Request) -> Response:
    caller = await caller_of(request)
    return page(request, caller, "job_new.html", values=dict(forms.DEFAULTS), error=None)


@router.post("/jobs/new")
async def create_job(request: Request) -> Response:
    caller, form = await posted(request)
    auditing.note(request.state, namespace=form.get("namespace", "default"),
                  target=form.get("key"))
    values = dict(forms.DEFAULTS) | form
    try:
        body = forms.job_body(form)
        caller.require_write(body.namespace, "create jobs there")
        service = service_of(request)
        item = submission(body, service.clock.now(), job_types_of(request))
        principal = caller.principal if isinstance(caller.principal, Principal) else None
        if principal is not None:  # code-running types need a grant
            require_grant(principal, item.spec.target,
                          installed=job_types_of(request).names())
        [outcome] = await service.submit([item], caller=principal)  # the app's limits
    except (InvalidField, ItemErrors) as exc:
        return _form_error(request, caller, values, exc)
    except DomainError as exc:
        if exc.code == "forbidden":
            raise
        return _form_error(request, caller, values, exc)
    if outcome.conflict:
        error = DomainError(f"job {body.key!r} exists with a different definition", "key")
        return _form_error(request, caller, values, error, 409)
    verb = "created" if outcome.created else "already existed, unchanged"
    return back(caller, _job_url(outcome.job), notice=f"job {body.key} {verb}")


def _form_error(request: Request, caller: Caller, values: dict[str, str], exc: DomainError,
                status: int = 422) -> Response:
    field = exc.field or ""
    if field not in forms.DEFAULTS and field not in ("key", "url", "command", "spec", "tz",
                                                     "payload", "target_json"):
        field = forms.form_field(field)
    return page(request, caller, "job_new.html", status, values=values,
                error={"field": field, "label": forms.LABELS.get(field, field),
                       "message": exc.message})


def _deleter(service: Service) -> Callable[..., Any] | None:
    """Deleting a job comes with issue 13's `Service.delete`; until then the button hides."""
    found: Callable[..., Any] | None = getattr(service, "delete", None)
    return found


@router.post("/job/{action}")
async def act_on_job(request: Request, action: str) -> Response:
    caller, form = await posted(request)
    namespace, key = form.get("namespace", "default"), form.get("key", "")
    auditing.note(request.state, action=f"console.{action[:20]}_job", namespace=namespace,
                  target=key)
    target = local(form.get("back"), "/ui/job?" + urlencode({"namespace": namespace,
                                                             "key": key}))
    if action not in ACTIONS:
        raise InvalidField(f"unknown action {action!r}", "action")
    caller.require_write(namespace, f"{action} jobs")
    service = service_of(request)
    try:
        notice = await _act(service, action, namespace, key, form)
    except DomainError as exc:
        if exc.code in ("forbidden", "not_found"):
            raise
        return back(caller, target, problem=f"{key}: {exc.message}")
    if action == "delete":
        target = "/ui/jobs"
    return back(caller, target, notice=notice)


async def _act(service: Service, action: str, namespace: str, key: str,
               form: dict[str, str]) -> str:
    if action == "pause":
        await service.pause(namespace, key)
    elif action == "resume":
        await service.resume(namespace, key)
    elif action == "cancel":
        await service.cancel(namespace, key)
    elif action == "trigger":
        text = form.get("payload", "").strip()
        try:
            payload = orjson.loads(text) if text else None
        except orjson.JSONDecodeError:
            raise InvalidField("the payload is not JSON", "payload") from None
        run = await service.trigger(namespace, key, payload, override=bool(text))
        return f"{key}: triggered run {run.id}"
    elif action == "delete" and (delete := _deleter(service)) is not None:
        await delete(namespace, key, form.get("runs") == "delete")
    else:
        raise InvalidField(f"unknown action {action!r}", "action")
    return f"{key}: {action} done"


@router.post("/job/workers/switch")
async def switch_worker(request: Request) -> Response:
    caller, form = await posted(request)
    namespace, key = form.get("namespace", "default"), form.get("key", "")
    auditing.note(request.state, namespace=namespace, target=key)
    caller.require_write(namespace, "switch workers")
    job = await service_of(request).get(namespace, key)
    worker, enabled = form.get("worker", ""), form.get("enabled") == "on"
    target = _job_url(job) + "#workers"
    try:
        await workers_of(request).switch_for_job(job, {worker: enabled})
    except DomainError as exc:
        if exc.code in ("forbidden", "not_found"):
            raise
        return back(caller, target, problem=f"{worker}: {exc.message}")
    return back(caller, target, notice=f"{worker} switched {'on' if enabled else 'off'} for {key}")

