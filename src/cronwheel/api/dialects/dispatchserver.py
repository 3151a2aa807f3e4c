"""The dispatchserver dialect: the iuap dispatch service's Quartz-style `*.do` endpoints.

A thin adapter (see docs/dialects/dispatchserver.md). Java clients post form fields whose values
are JSON strings, newer ones post a JSON object; both are parsed here by hand so that every
failure answers in the dialect's `{"success", "error", "resultValue"}` envelope, never in
FastAPI's 422 shape. A task is an ordinary job keyed by `jobCode` in the namespace
`<prefix><groupCode>`, or `<prefix><tenantid>:<sysid>:<groupCode>` when the client sends the
iuap tenant cookies, driven through the same `Service` use cases as the native API. The prefix
is the one of the client's admission rule (`CRONWHEEL_DISPATCH_NAMESPACE_PREFIX` for the
built-in loopback rule); the `userid` cookie is the principal's user.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cronwheel.api.convert import body_fingerprint
from cronwheel.api.dialects.admission import NotAdmitted, admit
from cronwheel.api.dialects.common import (
    STATUS,
    caller_of,
    json_kind,
    retry_after,
    service_of,
    settings_of,
    shown,
)
from cronwheel.api.errors import register_envelope
from cronwheel.api.responses import Json
from cronwheel.domain.admission import DISPATCHSERVER
from cronwheel.domain.cron import CronExpr, CronSchedule
from cronwheel.domain.errors import DomainError, InvalidField, ItemErrors, NotFound
from cronwheel.domain.intervals import MIN_STEP_US, UNITS_US, SimpleTrigger
from cronwheel.domain.jobs import Job, JobSpec, JobState
from cronwheel.domain.limits import TooFrequent
from cronwheel.domain.schedules import Schedule
from cronwheel.domain.targets import Target, target_from_dict
from cronwheel.domain.tcp_target import parse_tcp_target
from cronwheel.domain.time import MAX_INSTANT, US_PER_MS, Micros, from_datetime, to_iso
from cronwheel.domain.worker_target import NO_JOB_TYPES
from cronwheel.service import Service, Submission
from cronwheel.settings import Settings

log = logging.getLogger("cronwheel.api.dispatchserver")
router = APIRouter(prefix="/dispatchserver", tags=["dispatchserver dialect"])

# Errors raised before a handler runs (wrong method, unknown path), named like ours.
_HTTP_FIELDS = {"method_not_allowed": "method", "not_found": "path"}
register_envelope(
    "/dispatchserver/",
    lambda code, message: {
        "success": False,
        "error": f"{_HTTP_FIELDS.get(code, 'request')}: {message}",
        "resultValue": None,
    },
)

FORM = "application/x-www-form-urlencoded"
CRON = "CronTrigger"
SIMPLE = "SimpleTrigger"
TRIGGER_TYPES = {CRON.lower(): CRON, SIMPLE.lower(): SIMPLE}
RECALL_TYPES = ("HTTP", "SOCKET")
# intervalType -> unit; NULL (the Java enum's "not set") means milliseconds.
INTERVAL_TYPES = {
    "NULL": "millisecond",
    "MILLISECOND": "millisecond",
    "SECOND": "second",
    "MINUTE": "minute",
    "HOUR": "hour",
    "DAY": "day",
}
DEFAULT_PRIORITY = 5  # Quartz's Trigger.DEFAULT_PRIORITY
JAVA_INT_MAX = 2**31 - 1  # interval and repeatCount are Java ints
OPTION = "recallConfig.option"
# JobSpec's own checks, in the dialect's words.
SPEC_FIELDS = {
    "key": "taskConfig.jobCode",
    "namespace": "taskConfig.groupCode",
    "priority": "taskConfig.priority",
}
_WHOLE = re.compile(r"^[+-]?\d{1,19}$")
_COOKIE_VALUE = re.compile(r"^[^\s:*\x00-\x1f\x7f]{1,100}$")  # no ':' keeps tenants apart
TENANT_COOKIES = ("tenantid", "sysid")
USER_COOKIE = "userid"
_MILLIS = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


class Reject(Exception):
    """Any answer but success: the HTTP status and '<field>: <what is wrong>'."""

    def __init__(self, status: int, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.status = status
        self.message = f"{field}: {problem}"


def invalid(field: str, problem: str) -> Reject:
    return Reject(400, field, problem)


def from_domain(exc: DomainError, field: str) -> Reject:
    """A domain error re-told under the dialect's field path, without the core's field name."""
    name = (exc.field or "").rsplit(".", 1)[-1]
    problem = exc.message.removeprefix(f"{name} ") if name else exc.message
    return Reject(STATUS.get(type(exc), 400), field, problem)


class Envelope(BaseModel):
    """Every answer of this dialect, success or not (for the OpenAPI page)."""

    success: bool = Field(description="true on success")
    error: str | None = Field(description="null, or '<field>: <what is wrong>'")
    resultValue: str | None = Field(description="null; trigger.do: the id of the new run")


# -- reading values --------------------------------------------------------------------------------






def parse_json(raw: bytes | str, field: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(field, f"is not valid JSON: {exc}") from None


def present(value: Any) -> bool:
    """Null, absent and blank are all 'not given' (form fields arrive as empty strings)."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def as_int(value: Any, where: str) -> int:
    """A whole number: a JSON integer, an integral float (as Jackson takes) or digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _WHOLE.match(value.strip()):
        return int(value.strip())
    raise invalid(where, f"must be a whole number, got {shown(value)}")


def as_bool(value: Any, where: str) -> bool:
    """true/false, or the strings "true"/"false" in any case (Boolean.parseBoolean's words)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid(where, f"must be true or false, got {shown(value)}")


@dataclass(frozen=True, slots=True)
class Section:
    """One JSON object of the request and its dotted path, so that errors name the field."""

    data: Mapping[str, Any]
    path: str = ""

    def where(self, name: str) -> str:
        return f"{self.path}{name}"

    def get(self, name: str) -> Any:
        value = self.data.get(name)
        return value if present(value) else None

    def need(self, name: str) -> Any:
        value = self.get(name)
        if value is None:
            raise invalid(self.where(name), "is required")
        return value

    def text(self, name: str) -> str:
        value = self.need(name)
        if not isinstance(value, str):
            raise invalid(self.where(name), f"must be a string, got {json_kind(value)}")
        return value

    def integer(self, name: str, default: int | None = None) -> int:
        value = self.get(name)
        if value is None and default is not None:
            return default
        return as_int(self.need(name), self.where(name))

    def boolean(self, name: str, default: bool | None = None) -> bool:
        value = self.get(name)
        if value is None and default is not None:
            return default
        return as_bool(self.need(name), self.where(name))

    def section(self, name: str) -> Section:
        """A nested config: a JSON object, or a string holding one (the document's String)."""
        where = self.where(name)
        value = self.need(name)
        if isinstance(value, str):
            value = parse_json(value, where)
        if not isinstance(value, dict):
            raise invalid(where, f"must be a JSON object (or a string holding one), "
                                 f"got {json_kind(value)}")
        return Section(value, where + ".")


# -- the request body ------------------------------------------------------------------------------


async def read_fields(request: Request) -> dict[str, Any]:
    """The request's fields from a JSON object, or from form fields plus the query string."""
    body = await request.body()
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media.startswith("multipart/"):
        raise invalid("body", "multipart bodies are not supported; send "
                              f"{FORM} fields or a JSON object")
    if body.lstrip()[:1] in (b"{", b"[") or media.endswith("json"):
        data = parse_json(body, "body")
        if not isinstance(data, dict):
            raise invalid("body", f"expected a JSON object or form fields, got {json_kind(data)}")
        return data
    return form_fields(request.url.query, body)


def form_fields(query: str, body: bytes) -> dict[str, Any]:
    """Like a servlet's getParameter: query string and form body, the first value of a name."""
    fields: dict[str, Any] = {}
    for text in (query, body.decode("utf-8", "replace")):
        for name, values in parse_qs(text, keep_blank_values=True).items():
            fields.setdefault(name, values[0])
    return fields


# -- dates -----------------------------------------------------------------------------------------


def parse_date(value: Any, where: str, zone: str) -> Micros | None:
    """Epoch milliseconds, 'yyyy-MM-dd HH:mm:ss' on the dispatch zone's clock, or ISO 8601."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return from_millis(value, where)
    if isinstance(value, str) and _MILLIS.match(value.strip()):
        text = value.strip()
        return from_millis(float(text) if "." in text else int(text), where)
    if isinstance(value, str):
        return from_wall(value.strip(), where, zone)
    raise invalid(where, f"must be epoch milliseconds or a date text, got {json_kind(value)}")


def from_millis(millis: float, where: str) -> Micros:
    if not math.isfinite(millis) or not 0 <= millis <= MAX_INSTANT // US_PER_MS:
        raise invalid(where, f"epoch milliseconds must be between 0 and "
                             f"{MAX_INSTANT // US_PER_MS}, got {shown(millis)}")
    return round(millis * US_PER_MS)


def from_wall(text: str, where: str, zone: str) -> Micros:
    """A text without an offset is wall time in `zone`, as the old JVM parsed it."""
    expected = (f"must be epoch milliseconds, 'yyyy-MM-dd HH:mm:ss' ({zone}) "
                f"or ISO 8601 with an offset, got {shown(text)}")
    try:
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(zone))
        instant = from_datetime(value)
    except (ValueError, OverflowError):
        raise invalid(where, expected) from None
    if not 0 <= instant <= MAX_INSTANT:
        raise invalid(where, f"must be between 1970 and 9999, got {shown(text)}")
    return instant


# -- recallConfig ----------------------------------------------------------------------------------


def recall_target(recall: Section) -> Target:
    """HTTP: a POST to option.url; SOCKET: a JSON line to option.host:port, no ack unless asked."""
    kind = recall.text("recallType").strip().upper()
    if kind not in RECALL_TYPES:
        raise invalid(recall.where("recallType"),
                      f"must be HTTP or SOCKET, got {shown(recall.get('recallType'))}")
    option = recall.section("option")
    try:
        if kind == "HTTP":
            return target_from_dict({"kind": "http", "url": option.get("url")}, OPTION,
                                    job_types=NO_JOB_TYPES)
        host = option.need("host")
        port = option.integer("port")
        ack = option.boolean("ack", False)
        return parse_tcp_target({"kind": "tcp", "host": host, "port": port, "ack": ack}, OPTION)
    except InvalidField as exc:
        raise from_domain(exc, exc.field or OPTION) from None


def recall_payload(recall: Section) -> Any:
    """`data` parsed when it is JSON (so the callback body is that JSON), else the text itself."""
    where = recall.where("data")
    payload = recall.data.get("data")
    if payload is None:
        raise invalid(where, "is required (a string, preferably JSON)")
    if isinstance(payload, str):
        with contextlib.suppress(orjson.JSONDecodeError):
            payload = orjson.loads(payload)
    return payload


# -- taskConfig ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Task:
    key: str
    group: str
    priority: int
    schedule: Schedule
    shape: dict[str, Any]  # the schedule as parsed from the request, for the fingerprint


def parse_task(task: Section, zone: str, now: Micros) -> Task:
    trigger = trigger_type(task)
    key = task.text("jobCode")
    group = task.text("groupCode")
    priority = task.integer("priority", DEFAULT_PRIORITY)
    start = parse_date(task.get("startDate"), task.where("startDate"), zone)
    end = parse_date(task.get("endDate"), task.where("endDate"), zone)
    if start is not None and end is not None and end < start:
        raise invalid(task.where("endDate"), f"{to_iso(end)} is before taskConfig.startDate "
                                             f"{to_iso(start)}")
    if trigger == CRON:
        schedule, shape = cron_schedule(task, zone, start, end)
    else:
        schedule, shape = simple_schedule(task, start, end, now)
    shape |= {"triggerType": trigger, "start": start, "end": end}
    return Task(key, group, priority, schedule, shape)


def trigger_type(task: Section) -> str:
    value = task.text("triggerType")
    trigger = TRIGGER_TYPES.get(value.strip().lower())
    if trigger is None:
        raise invalid(task.where("triggerType"),
                      f"must be SimpleTrigger or CronTrigger, got {shown(value)}")
    return trigger


def cron_schedule(
    task: Section, zone: str, start: Micros | None, end: Micros | None
) -> tuple[Schedule, dict[str, Any]]:
    """Quartz syntax (seconds first, '?' in one day field) on the dispatch zone's wall clock."""
    text = task.text("cronExpress")
    try:
        expr = CronExpr.parse(text, "quartz")
    except InvalidField as exc:
        raise invalid(task.where("cronExpress"), exc.message) from None
    schedule = CronSchedule(expr=expr.text, syntax="quartz", tz=zone, start=start, end=end)
    return schedule, {"cronExpress": expr.text}


def simple_schedule(
    task: Section, start: Micros | None, end: Micros | None, now: Micros
) -> tuple[Schedule, dict[str, Any]]:
    """From startDate (or now), every interval, repeatCount times in all or for ever."""
    config = task.section("timeConfig")
    step = interval_step(config, interval_unit(config))
    count = repeat_count(config)
    schedule = SimpleTrigger(start if start is not None else now, step, count, end)
    return schedule, {"step": step, "count": count}


def interval_step(config: Section, unit: str) -> Micros:
    """interval in `unit`, as microseconds: a positive Java int, at least the core's minimum."""
    where = config.where("interval")
    amount = config.integer("interval")
    if not 1 <= amount <= JAVA_INT_MAX:
        raise invalid(where, f"must be 1 to {JAVA_INT_MAX} {unit}s, got {amount}")
    step = amount * UNITS_US[unit]
    if step < MIN_STEP_US:
        raise invalid(where, f"{amount} {unit}s is too short; the shortest interval is "
                             f"{MIN_STEP_US // US_PER_MS} ms")
    if step > MAX_INSTANT:
        raise invalid(where, f"{amount} {unit}s is longer than the calendar (to year 9999)")
    return step


def interval_unit(config: Section) -> str:
    value = config.get("intervalType")
    if value is None:
        return INTERVAL_TYPES["NULL"]
    unit = INTERVAL_TYPES.get(value.strip().upper()) if isinstance(value, str) else None
    if unit is None:
        raise invalid(config.where("intervalType"),
                      f"must be one of {', '.join(INTERVAL_TYPES)}, got {shown(value)}")
    return unit


def repeat_count(config: Section) -> int | None:
    """The number of executions in all (the document: 仅执行指定的次数); None for ever."""
    if config.boolean("isForever", False):
        return None
    count = config.integer("repeatCount")
    if not 1 <= count <= JAVA_INT_MAX:
        raise invalid(config.where("repeatCount"),
                      f"must be 1 to {JAVA_INT_MAX} executions when isForever is false, "
                      f"got {count}")
    return count


# -- add.do ----------------------------------------------------------------------------------------


def parse_add(
    fields: Mapping[str, Any], settings: Settings, now: Micros, where: Where | None = None,
) -> tuple[Submission, bool]:
    """The submission for one add.do request, and its `replace` flag."""
    top = Section(fields)
    recall = top.section("recallConfig")
    task_section = top.section("taskConfig")
    replace = top.boolean("replace")
    target = recall_target(recall)
    payload = recall_payload(recall)
    task = parse_task(task_section, settings.dispatch_timezone, now)
    try:
        spec = JobSpec(
            namespace=(where or Where(settings.dispatch_namespace_prefix)).of(task.group),
            key=task.key,
            schedule=task.schedule,
            target=target,
            payload=payload,
            priority=task.priority,
        )
    except InvalidField as exc:
        raise from_domain(exc, SPEC_FIELDS.get(exc.field or "", "taskConfig")) from None
    fingerprint = body_fingerprint({
        "dialect": "dispatchserver",
        "target": target.to_dict(),
        "data": payload,
        "priority": task.priority,
        "schedule": task.shape,
    })
    return Submission(spec, fingerprint, target_field=OPTION), replace


def refused_field(error: DomainError, schedule: Schedule) -> str:
    """The add.do field a refusal of the service is about: the payload limit is data's; a
    callback address the target guard refuses is the option's field that gave it; a schedule
    that can never fire is its endDate's when it has one, else its cronExpress's (a
    SimpleTrigger without an end always fires at its start)."""
    if error.field == "payload":
        return "recallConfig.data"
    if isinstance(error, TooFrequent):  # the app's shortest repeat
        return "taskConfig.cronExpress"
    if error.field and error.field.startswith(OPTION):  # the target guard's refusal
        return error.field
    if error.field == "schedule":
        ends = isinstance(schedule, CronSchedule | SimpleTrigger) and schedule.end is not None
        return "taskConfig.endDate" if ends else "taskConfig.cronExpress"
    return "taskConfig"


async def add(request: Request) -> None:
    """A task deleted with delete.do is gone, as in Quartz: adding it again brings it back
    with the new definition (`revive`, decided in the store's own transaction)."""
    service, settings = service_of(request), settings_of(request)
    where = await admitted(request)
    fields = await read_fields(request)
    item, replace = parse_add(fields, settings, service.clock.now(), where)
    spec = item.spec
    try:
        [outcome] = await service.submit([item], replace=replace, revive=True,
                                         caller=caller_of(request))
    except ItemErrors as exc:
        raise from_domain(exc.first, refused_field(exc.first, spec.schedule)) from None
    if outcome.conflict:
        group = Section(fields).section("taskConfig").get("groupCode")
        raise Reject(409, "taskConfig.jobCode",
                     f"task {spec.key!r} of group {group!r} exists with a different "
                     "definition; send replace=true to overwrite it")


# -- who is asking: the admission rule and the tenant cookies -------------------------------------


@dataclass(frozen=True, slots=True)
class Where:
    """Where a client's tasks live: its rule's prefix, and its tenant and system (cookies)."""

    prefix: str
    tenant: str | None = None
    system: str = ""

    def of(self, group: str) -> str:
        if self.tenant is None:
            return self.prefix + group
        return f"{self.prefix}{self.tenant}:{self.system}:{group}"


def cookie(request: Request, name: str) -> str | None:
    value = request.cookies.get(name, "").strip()
    if not value:
        return None
    if not _COOKIE_VALUE.match(value):
        raise invalid(f"cookie.{name}", "must be 1-100 characters without spaces, ':' or '*', "
                                        f"got {shown(value)}")
    return value


async def admitted(request: Request) -> Where:
    """Admit the client (or refuse it in this envelope), then read its tenant cookies; the
    userid cookie becomes the principal's user (the audit trail's)."""
    try:
        found = await admit(request, DISPATCHSERVER)
    except NotAdmitted as exc:
        raise Reject(exc.status, "client", exc.message) from None
    tenant, system = (cookie(request, name) for name in TENANT_COOKIES)
    user = cookie(request, USER_COOKIE)
    if user is not None:
        request.state.principal = dataclasses.replace(found.principal, user=user)
    if tenant is None and system is not None:
        raise invalid("cookie.tenantid", "is required with cookie.sysid")
    return Where(found.namespace, tenant, system or "")


async def find_job(service: Service, namespace: str, key: str) -> Job | None:
    try:
        return await service.get(namespace, key)
    except NotFound:
        return None


# -- pause.do, resumeTask.do, delete.do, trigger.do ------------------------------------------------


async def live_job(request: Request) -> Job:
    """The task named by jobName and groupName (of the client's tenant); a deleted one is
    gone, as in Quartz."""
    where = await admitted(request)
    fields = Section(await read_fields(request))
    key = fields.text("jobName")
    group = fields.text("groupName")
    namespace = where.of(group)
    job = await find_job(service_of(request), namespace, key)
    if job is None or job.state is JobState.CANCELLED:
        raise Reject(404, "jobName", f"no task {key!r} in group {group!r}")
    return job


async def pause(request: Request) -> None:
    job = await live_job(request)
    await service_of(request).pause(job.spec.namespace, job.spec.key)


async def resume(request: Request) -> None:
    """Missed occurrences follow the job's misfire policy (fire once, by default)."""
    job = await live_job(request)
    await service_of(request).resume(job.spec.namespace, job.spec.key)


async def delete(request: Request) -> None:
    job = await live_job(request)
    await service_of(request).cancel(job.spec.namespace, job.spec.key)


async def trigger(request: Request) -> str:
    """An extra run now with the task's data; the schedule does not move."""
    job = await live_job(request)
    run = await service_of(request).trigger(job.spec.namespace, job.spec.key,
                                            caller=caller_of(request))
    return run.id


# -- the envelope ----------------------------------------------------------------------------------






def envelope(status: int, error: str | None = None, result: str | None = None,
             headers: dict[str, str] | None = None) -> Json:
    return Json({"success": error is None, "error": error, "resultValue": result}, status,
                headers=headers)


async def answer(request: Request, work: Awaitable[str | None], field: str = "jobName") -> Json:
    """Run one use case and shape every outcome into the dialect envelope."""
    try:
        result = await work
    except Reject as exc:
        return envelope(exc.status, exc.message)
    except DomainError as exc:
        refused = from_domain(exc, field)
        return envelope(refused.status, refused.message, headers=retry_after(exc))
    except Exception:
        log.exception("dispatchserver.unexpected_error", extra={"path": request.url.path})
        return envelope(500, "server: internal error; see the server log")
    return envelope(200, None, result)


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Envelope, "description": "a malformed body or an invalid field"},
    401: {"model": Envelope, "description": "the client's rule needs a token "
                                            "(Authorization: Bearer cw_...): none or a "
                                            "refused one was sent"},
    403: {"model": Envelope, "description": "the client's network is not admitted, or the "
                                            "app holds its max_jobs"},
    404: {"model": Envelope, "description": "no task with this jobName in this groupName"},
    409: {"model": Envelope, "description": "a different task exists, or a refused state change"},
    429: {"model": Envelope, "description": "over the app's submits per second; Retry-After "
          "says when to try again"},
}
_CONFIG = {"oneOf": [{"type": "string", "description": "JSON text"}, {"type": "object"}]}
_ADD_SCHEMA = {
    "type": "object",
    "required": ["recallConfig", "taskConfig", "replace"],
    "properties": {"recallConfig": _CONFIG, "taskConfig": _CONFIG,
                   "replace": {"oneOf": [{"type": "boolean"}, {"type": "string"}]}},
}
_REF_SCHEMA = {
    "type": "object",
    "required": ["jobName", "groupName"],
    "properties": {"jobName": {"type": "string"}, "groupName": {"type": "string"}},
}


def _body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}, FORM: {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


@router.post("/add.do", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(_ADD_SCHEMA))
async def add_do(request: Request) -> Json:
    """Add a task, or overwrite it with replace=true."""
    return await answer(request, add(request), "taskConfig.jobCode")


@router.post("/pause.do", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(_REF_SCHEMA))
async def pause_do(request: Request) -> Json:
    """Pause a task: it fires nothing until resumed."""
    return await answer(request, pause(request))


@router.post("/resumeTask.do", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(_REF_SCHEMA))
async def resume_do(request: Request) -> Json:
    """Resume a paused task; missed occurrences fire once."""
    return await answer(request, resume(request))


@router.post("/delete.do", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(_REF_SCHEMA))
async def delete_do(request: Request) -> Json:
    """Delete a task: it never fires again (its history stays)."""
    return await answer(request, delete(request))


@router.post("/trigger.do", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(_REF_SCHEMA))
@router.post("/ trigger.do", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(_REF_SCHEMA))
async def trigger_do(request: Request) -> Json:
    """Run a task once now; resultValue is the new run's id. Also at the document's
    '/dispatchserver/ trigger.do' (a stray space, sent as %20)."""
    return await answer(request, trigger(request))
