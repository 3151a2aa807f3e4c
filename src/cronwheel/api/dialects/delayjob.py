"""The delay-job dialect: the old delay-job service's five POST endpoints under /api/v1.

A thin adapter. It parses the raw body itself (so malformed JSON and wrong types answer in the
dialect's `{"code", "message"}` envelope, never FastAPI's 422 shape), maps a delay job onto an
ordinary one-shot job in `settings.delayjob_namespace` keyed by `outJobNo`, and calls the same
`Service` use cases as the native API. See docs/dialects/delayjob.md.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from cronwheel.api.convert import body_fingerprint
from cronwheel.api.dialects.common import (
    STATUS,
    json_kind,
    service_of,
    settings_of,
    shown,
)
from cronwheel.api.errors import register_envelope
from cronwheel.api.responses import Json
from cronwheel.domain.errors import DomainError, InvalidField, ItemErrors
from cronwheel.domain.jobs import Job, JobSpec
from cronwheel.domain.schedules import OneShot
from cronwheel.domain.targets import Target, parse_kafka_endpoint, target_from_dict
from cronwheel.domain.time import from_seconds
from cronwheel.service import Submission
from cronwheel.settings import Settings

log = logging.getLogger("cronwheel.api.delayjob")
router = APIRouter(prefix="/api/v1", tags=["delay-job dialect"])

OK: dict[str, str] = {"code": "ok", "message": "success"}
register_envelope("/api/v1/", lambda code, message: {"code": code, "message": message})
TYPE_NORMAL = 5
TYPE_COUNTDOWN = 10
MAX_OUT_JOB_NO = 32
PROTOCOLS = ("HTTP", "GRPC", "KAFKA")
ENDPOINT_FORMS = {
    "HTTP": "an http(s) URL with a host, such as http://host:8080/callback",
    "GRPC": "host:port (or grpc://host:port)",
    "KAFKA": "broker:port[,broker:port...]/topic (optionally prefixed with kafka://)",
}
# What each field must be, for type errors and the like.
EXPECTED = {
    "outJobNo": f"a string of 1 to {MAX_OUT_JOB_NO} characters",
    "type": f"the integer {TYPE_NORMAL} (normal) or {TYPE_COUNTDOWN} (pausable countdown)",
    "triggerTime": "a number of seconds since the Unix epoch",
    "callbackProtocol": "one of " + ", ".join(PROTOCOLS),
    "callbackEndpoint": "a string",
    "jobInfo": "a string",
}
# Domain and service field names as the dialect calls them.
DIALECT_FIELDS = {"key": "outJobNo", "payload": "jobInfo", "schedule": "triggerTime",
                  "jobs": "body"}
M = TypeVar("M", bound=BaseModel)


class Reject(Exception):
    """Any answer but ok: the dialect code, the HTTP status and '<field>: <what is wrong>'."""

    def __init__(self, code: str, status: int, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.code = code
        self.status = status
        self.message = f"{field}: {problem}"


def invalid(field: str, problem: str) -> Reject:
    return Reject("invalid_argument", 400, field, problem)


class Envelope(BaseModel):
    """Every answer of this dialect, success or not (for the OpenAPI page)."""

    code: str = Field(description="ok on success; otherwise the error code")
    message: str = Field(description="success, or '<field>: <what is wrong>'")


OutJobNo = Annotated[str, Field(min_length=1, max_length=MAX_OUT_JOB_NO)]


class JobRef(BaseModel):
    """Body of pause, resume and cancel. Unknown fields are ignored, as old clients send more."""

    model_config = ConfigDict(extra="ignore", strict=True)

    outJobNo: OutJobNo


class DelayJobIn(JobRef):
    """One job of submit/job or submit/jobs; strict so that "5" or true is not a number."""

    type: int
    triggerTime: int | float
    callbackProtocol: str
    callbackEndpoint: str
    jobInfo: str

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: int) -> int:
        if value not in (TYPE_NORMAL, TYPE_COUNTDOWN):
            raise ValueError(f"must be {EXPECTED['type']}, got {value}")
        return value

    @field_validator("callbackProtocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        protocol = value.upper()
        if protocol not in PROTOCOLS:
            raise ValueError(f"must be {EXPECTED['callbackProtocol']}, got {shown(value)}")
        return protocol


# -- parsing -------------------------------------------------------------------------------------






def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Reject("invalid_json", 400, "body", f"not valid JSON: {exc}") from None


def problem_of(error: ErrorDetails) -> tuple[str, str]:
    """Pydantic's first error as (dialect field, what is wrong)."""
    loc = error.get("loc", ())
    field = str(loc[0]) if loc else "body"
    kind = error["type"]
    if kind == "missing":
        return field, "is required"
    if kind == "value_error":
        return field, str(error.get("ctx", {}).get("error", error["msg"]))
    if kind in ("string_too_short", "string_too_long"):
        return field, f"must be 1 to {MAX_OUT_JOB_NO} characters, got {len(error['input'])}"
    expected = EXPECTED.get(field, "valid")
    return field, f"must be {expected}, got {json_kind(error.get('input'))}"


def validated(model: type[M], data: Any, prefix: str = "") -> M:
    """Validate one JSON object; `prefix` ('[3].') names the batch item in the message."""
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "body"
        raise invalid(where, f"expected a JSON object, got {json_kind(data)}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, problem = problem_of(exc.errors()[0])
        raise invalid(prefix + field, problem) from None


# -- to domain values ----------------------------------------------------------------------------


def target_of(job: DelayJobIn) -> Target:
    protocol, endpoint = job.callbackProtocol, job.callbackEndpoint
    try:
        if protocol == "KAFKA":
            return parse_kafka_endpoint(endpoint, "callbackEndpoint")
        kind = protocol.lower()
        place = "url" if protocol == "HTTP" else "address"
        return target_from_dict({"kind": kind, place: endpoint}, "callbackEndpoint")
    except InvalidField as exc:
        detail = f" ({exc.message})" if protocol == "KAFKA" else ""
        raise InvalidField(
            f"for {protocol} it must be {ENDPOINT_FORMS[protocol]}; got {shown(endpoint)}{detail}",
            "callbackEndpoint",
        ) from None


def payload_of(job: DelayJobIn) -> dict[str, Any]:
    """What the callback receives: the client's own values, triggerTime exactly as sent."""
    return {
        "outJobNo": job.outJobNo,
        "type": job.type,
        "triggerTime": job.triggerTime,
        "jobInfo": job.jobInfo,
    }


def submission_of(job: DelayJobIn, settings: Settings, prefix: str = "") -> Submission:
    """A delay job is a one-shot job; type 10 makes it a countdown that keeps its time paused."""
    try:
        at = from_seconds(job.triggerTime, "triggerTime")
        payload = payload_of(job)
        spec = JobSpec(
            namespace=settings.delayjob_namespace,
            key=job.outJobNo,
            schedule=OneShot(at=at, countdown=job.type == TYPE_COUNTDOWN),
            target=target_of(job),
            payload=payload,
        )
    except InvalidField as exc:
        field, problem = dialect_problem(exc)
        raise invalid(prefix + field, problem) from None
    fingerprint = body_fingerprint({"dialect": "delayjob", **job.model_dump()})
    return Submission(spec, fingerprint)


def dialect_problem(exc: DomainError, default: str = "outJobNo") -> tuple[str, str]:
    """A domain (or service) error's field in the dialect's words, its message without that
    field's name: the payload limit names jobInfo, the batch limit the body."""
    field = exc.field or default
    message = exc.message.removeprefix(f"{field} ")
    return DIALECT_FIELDS.get(field, field), message


# -- the use cases -------------------------------------------------------------------------------






async def submit_one(request: Request) -> None:
    body = parse_json(await request.body())
    if isinstance(body, list):
        raise invalid("body", "expected a JSON object; send arrays to /api/v1/submit/jobs")
    job = validated(DelayJobIn, body)
    item = submission_of(job, settings_of(request))
    [outcome] = await service_of(request).submit([item])
    if outcome.conflict:
        raise conflict("outJobNo", job.outJobNo)


def conflict(field: str, key: str) -> Reject:
    return Reject("conflict", 409, field, f"job {key!r} exists with a different definition")


async def submit_many(request: Request) -> None:
    body = parse_json(await request.body())
    if not isinstance(body, list):
        raise invalid("body", f"expected a JSON array of jobs, got {json_kind(body)}")
    items = batch_items(body, settings_of(request))
    try:
        outcomes = await service_of(request).submit(items, all_or_nothing=True)
    except ItemErrors as exc:
        index, error = exc.items[0]
        field, problem = dialect_problem(error)
        raise invalid(f"[{index}].{field}", problem) from None
    for index, outcome in enumerate(outcomes):
        if outcome.conflict:
            raise conflict(f"[{index}].outJobNo", outcome.job.spec.key)


def batch_items(body: Sequence[Any], settings: Settings) -> list[Submission]:
    """Every item valid and no outJobNo twice, or the whole batch is refused."""
    items: list[Submission] = []
    first_at: dict[str, int] = {}
    for index, raw in enumerate(body):
        prefix = f"[{index}]."
        job = validated(DelayJobIn, raw, prefix)
        if job.outJobNo in first_at:
            first = first_at[job.outJobNo]
            problem = f"{job.outJobNo!r} is already item [{first}] of this batch"
            raise invalid(f"{prefix}outJobNo", problem)
        first_at[job.outJobNo] = index
        items.append(submission_of(job, settings, prefix))
    return items


async def job_key(request: Request) -> str:
    return validated(JobRef, parse_json(await request.body())).outJobNo


def is_countdown(job: Job) -> bool:
    schedule = job.spec.schedule
    return isinstance(schedule, OneShot) and schedule.countdown


async def pause(request: Request) -> None:
    """Only type 10 pauses: the old service never paused a normal job, so neither do we."""
    key = await job_key(request)
    service = service_of(request)
    namespace = settings_of(request).delayjob_namespace
    if not is_countdown(await service.get(namespace, key)):
        raise Reject("not_pausable", 409, "outJobNo",
                     f"only type {TYPE_COUNTDOWN} (pausable countdown) jobs can be paused; "
                     f"job {key!r} is not type {TYPE_COUNTDOWN}")
    await service.pause(namespace, key)


async def resume(request: Request) -> None:
    key = await job_key(request)
    await service_of(request).resume(settings_of(request).delayjob_namespace, key)


async def cancel(request: Request) -> None:
    key = await job_key(request)
    await service_of(request).cancel(settings_of(request).delayjob_namespace, key)


# -- the envelope --------------------------------------------------------------------------------


def envelope(code: str, message: str, status: int) -> Json:
    return Json({"code": code, "message": message}, status)


async def answer(request: Request, work: Awaitable[None]) -> Json:
    """Run one use case and shape every outcome into the dialect envelope."""
    try:
        await work
    except Reject as exc:
        return envelope(exc.code, exc.message, exc.status)
    except DomainError as exc:
        field, problem = dialect_problem(exc)
        return envelope(exc.code, f"{field}: {problem}", STATUS.get(type(exc), 400))
    except Exception:
        log.exception("delayjob.unexpected_error", extra={"path": request.url.path})
        return envelope("internal", "server: internal error; see the server log", 500)
    return envelope(OK["code"], OK["message"], 200)


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Envelope, "description": "invalid JSON or an invalid field"},
    404: {"model": Envelope, "description": "no job with this outJobNo"},
    409: {"model": Envelope, "description": "a conflicting job, or a refused state change"},
}


def _body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


JOB_SCHEMA = DelayJobIn.model_json_schema()
REF_SCHEMA = JobRef.model_json_schema()


@router.post("/submit/job", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(JOB_SCHEMA))
async def submit_job(request: Request) -> Json:
    """Register one delay job."""
    return await answer(request, submit_one(request))


@router.post("/submit/jobs", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc({"type": "array", "items": JOB_SCHEMA}))
async def submit_jobs(request: Request) -> Json:
    """Register a JSON array of delay jobs, all or nothing."""
    return await answer(request, submit_many(request))


@router.post("/pause/job", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(REF_SCHEMA))
async def pause_job(request: Request) -> Json:
    """Pause a type 10 countdown; it keeps its remaining time."""
    return await answer(request, pause(request))


@router.post("/resume/job", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(REF_SCHEMA))
async def resume_job(request: Request) -> Json:
    """Resume a paused countdown: it fires its remaining time from now."""
    return await answer(request, resume(request))


@router.post("/cancel/job", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(REF_SCHEMA))
async def cancel_job(request: Request) -> Json:
    """Cancel a job that has not fired."""
    return await answer(request, cancel(request))
