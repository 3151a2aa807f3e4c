"""Native routes for a job's time expressions (by id) and for backfills and reruns.

Included before the native router: its GET /v1/jobs/{key} takes any path under /jobs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from cronwheel.api.auth import AUTHENTICATED, RESPONSES, Reader, Writer, require_read, require_write
from cronwheel.api.convert import job_json, run_out
from cronwheel.api.deps import service_of
from cronwheel.api.responses import Json
from cronwheel.api.schemas import (
    SCHEDULE_DOC,
    ChangesIn,
    JobOut,
    RerunIn,
    RerunOut,
    ScheduleChanged,
    ScheduleList,
)
from cronwheel.contracts import RerunOutcome
from cronwheel.domain.access import can_write
from cronwheel.domain.errors import Forbidden, InvalidField
from cronwheel.domain.job_schedules import Change
from cronwheel.domain.jobs import DEFAULT_NAMESPACE
from cronwheel.domain.jsonlimits import check_json_ints
from cronwheel.domain.time import Micros, parse_instant
from cronwheel.domain.union import Item
from cronwheel.schedule_service import RerunRequest, Schedules

router = APIRouter(prefix="/v1", tags=["jobs"], dependencies=AUTHENTICATED, responses=RESPONSES)
Namespace = Annotated[str, Query(min_length=1, max_length=255)]
ITEM_DOC = ("A schedule as in a job's `schedule` (" + SCHEDULE_DOC + "), plus an optional "
            "`id` (1 to 64 letters, digits, '.', '_', '-'); without one it gets the smallest "
            "free number.")


def _item(item: Item) -> dict[str, Any]:
    return item.to_dict()


def _schedule_body(body: dict[str, Any]) -> dict[str, Any]:
    try:
        check_json_ints(body)
    except ValueError as exc:
        raise InvalidField(str(exc), "body") from None
    return body


@router.get("/jobs/{key:path}/schedules", response_model=ScheduleList)
async def list_schedules(
    request: Request, key: str, caller: Reader, namespace: Namespace = DEFAULT_NAMESPACE
) -> Json:
    """The job's time expressions, each with its id; a job with one schedule lists it as "1"."""
    require_read(caller, namespace, key)
    items = await Schedules(service_of(request)).list(namespace, key)
    return Json({"schedules": [_item(i) for i in items]})


@router.post("/jobs/{key:path}/schedules", response_model=ScheduleChanged, status_code=201)
async def add_schedule(
    request: Request,
    key: str,
    body: Annotated[dict[str, Any], Body(description=ITEM_DOC)],
    caller: Writer,
    namespace: Namespace = DEFAULT_NAMESPACE,
) -> Json:
    """Adds a time expression: the job fires at the union of its expressions' instants."""
    require_write(caller, namespace, key)
    job, item = await Schedules(service_of(request)).add(namespace, key, _schedule_body(body),
                                                        caller)
    return Json({"schedule": _item(item), "job": job_json(job)}, 201)


@router.put("/jobs/{key:path}/schedules/{schedule_id}", response_model=ScheduleChanged)
async def edit_schedule(
    request: Request,
    key: str,
    schedule_id: str,
    body: Annotated[dict[str, Any], Body(description=ITEM_DOC)],
    caller: Writer,
    namespace: Namespace = DEFAULT_NAMESPACE,
) -> Json:
    """Replaces one expression; it counts from now, and the next fire time is recomputed."""
    require_write(caller, namespace, key)
    schedules = Schedules(service_of(request))
    job, item = await schedules.edit(namespace, key, schedule_id, _schedule_body(body),
                                     caller)
    return Json({"schedule": _item(item), "job": job_json(job)})


@router.patch("/jobs/{key:path}/schedules", response_model=JobOut)
async def change_schedules(
    request: Request, key: str, body: ChangesIn, caller: Writer,
    namespace: Namespace = DEFAULT_NAMESPACE,
) -> Json:
    """Several adds, edits and removals, in order, in one transaction: all or none. Only the
    result must keep an expression; a refused change is named `changes[i].field`."""
    require_write(caller, namespace, key)
    changes = [Change(c.op, c.id, None if c.schedule is None else _schedule_body(c.schedule))
               for c in body.changes]
    job = await Schedules(service_of(request)).change(namespace, key, changes, caller)
    return Json(job_json(job))


@router.delete("/jobs/{key:path}/schedules/{schedule_id}", response_model=JobOut)
async def remove_schedule(
    request: Request, key: str, schedule_id: str, caller: Writer,
    namespace: Namespace = DEFAULT_NAMESPACE,
) -> Json:
    """409 (field `schedules`) when it is the job's only expression."""
    require_write(caller, namespace, key)
    job = await Schedules(service_of(request)).remove(namespace, key, schedule_id, caller)
    return Json(job_json(job))


@router.post("/jobs/{key:path}/rerun", response_model=RerunOut, status_code=202)
async def rerun(
    request: Request, key: str, body: RerunIn, caller: Writer,
    namespace: Namespace = DEFAULT_NAMESPACE,
) -> Json:
    """Backfill: every planned instant in [from, to] gets a run due now (an ended run of the
    instant gets a new attempt instead); 422 when the range is open, in the future or larger
    than the limit (`max_backfill`, 1,000 by default)."""
    require_write(caller, namespace, key)
    if body.downstream:  # the dependents are rerun too: the caller must be allowed each of them
        for job in await service_of(request).downstream(namespace, key):
            if not can_write(caller, job.spec.namespace):
                raise Forbidden(f"a downstream job ({job.spec.key!r} in namespace "
                                f"{job.spec.namespace!r}) is not the caller's to rerun",
                                "downstream")
    wanted = RerunRequest(_instant(body.from_, "from"), _instant(body.to, "to"), body.downstream)
    outcome = await Schedules(service_of(request)).rerun(namespace, key, wanted, caller)
    return Json(_rerun_json(outcome), 202)


def _instant(value: str | None, field: str) -> Micros | None:
    return None if value is None else parse_instant(value, field)


def _rerun_json(outcome: RerunOutcome) -> dict[str, Any]:
    runs = [*outcome.created, *outcome.rerun, *outcome.in_flight]
    runs.sort(key=lambda run: (run.scheduled_at, run.job_key))
    return {"created": len(outcome.created), "rerun": len(outcome.rerun),
            "in_flight": len(outcome.in_flight),
            "runs": [run_out(run).model_dump(mode="json") for run in runs]}
