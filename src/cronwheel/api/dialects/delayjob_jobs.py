"""The delay-job use cases, shared by its HTTP endpoints and its gRPC service.

Each use case takes the decoded request (a JSON value) and either returns or raises `Reject`
with the delay-job service's failure code, the HTTP status the HTTP twin answers, and the
message '<field>: <what is wrong>'. A delay job is an ordinary one-shot job in
`settings.delayjob_namespace` keyed by `outJobNo`; see docs/dialects/delayjob.md.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from cronwheel.api import auditing
from cronwheel.api.convert import body_fingerprint
from cronwheel.api.dialects.common import json_kind, shown
from cronwheel.domain.access import Principal
from cronwheel.domain.admission import NotAdmitted
from cronwheel.domain.delayjob_body import UNIT_MS, trigger_time
from cronwheel.domain.errors import (
    Conflict,
    DomainError,
    IllegalTransition,
    InvalidField,
    ItemErrors,
    NotFound,
)
from cronwheel.domain.jobs import Job, JobSpec, JobState
from cronwheel.domain.limits import LimitExceeded, RateLimited
from cronwheel.domain.log_target import LogTarget
from cronwheel.domain.schedules import OneShot
from cronwheel.domain.targets import (
    SERVER_BROKERS,
    SERVICE_DELAYJOB,
    SUCCESS_CODE_OK,
    Target,
    parse_kafka_endpoint,
    target_from_dict,
)
from cronwheel.domain.time import Micros, from_seconds
from cronwheel.domain.worker_target import NO_JOB_TYPES
from cronwheel.service import Service, Submission
from cronwheel.settings import Settings

log = logging.getLogger("cronwheel.api.delayjob")

TYPE_NORMAL = 5
TYPE_COUNTDOWN = 10
MAX_OUT_JOB_NO = 32  # the delay-job service's limits, as its tables enforce them
MAX_JOB_INFO = 256
PROTOCOLS = ("HTTP", "GRPC", "KAFKA", "LOG")
ENDPOINT_FORMS = {
    "HTTP": "an http(s) URL with a host, such as http://host:8080/callback",
    "GRPC": "host:port (or grpc://host:port)",
    "KAFKA": "a topic name (on the server's brokers) or broker:port[,broker:port...]/topic",
    "LOG": "any text (LOG by convention)",
}
EXPECTED = {
    "outJobNo": f"a string of 1 to {MAX_OUT_JOB_NO} characters",
    "type": f"the integer {TYPE_NORMAL} (normal) or {TYPE_COUNTDOWN} (pausable countdown)",
    "triggerTime": "a number of seconds since the Unix epoch",
    "callbackProtocol": "one of " + ", ".join(PROTOCOLS),
    "callbackEndpoint": "a string",
    "jobInfo": f"a string of at most {MAX_JOB_INFO} characters",
}
DIALECT_FIELDS = {"key": "outJobNo", "payload": "jobInfo", "schedule": "triggerTime",
                  "jobs": "body"}

# The delay-job service's failure codes.
OK = "ok"
INVALID_PARAMS = "invalid_params"
OUT_JOB_NO_IS_EXIST = "out_job_no_is_exist"
JOB_NOT_EXIST = "job_not_exist"
JOB_IS_TRIGGERED = "job_is_triggered"
CANNOT_CANCEL_JOB = "cannot_cancel_job"
JOB_IS_CANCEL = "job_is_cancel"
UNKNOWN_ERROR = "unknown_error"
# cronwheel's own codes: the admission policy refused the client (docs/auth.md)
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
RATE_LIMITED = "rate_limited"  # cronwheel's: the app's submits per second (HTTP 429)
LIMIT_EXCEEDED = "limit_exceeded"  # cronwheel's: the app's max_jobs (HTTP 403)
M = TypeVar("M", bound=BaseModel)


class Reject(Exception):
    """Any answer but ok: the failure code, the HTTP status and '<field>: <what is wrong>'."""

    def __init__(self, code: str, status: int, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.code = code
        self.status = status
        self.message = f"{field}: {problem}"


def invalid(field: str, problem: str) -> Reject:
    return Reject(INVALID_PARAMS, 400, field, problem)


def refused(exc: NotAdmitted) -> Reject:
    """The admission policy's refusal, in this dialect's envelope ('client: ...')."""
    return Reject(UNAUTHORIZED if exc.status == 401 else FORBIDDEN, exc.status, "client",
                  exc.message)


OutJobNo = Annotated[str, Field(min_length=1, max_length=MAX_OUT_JOB_NO)]


class JobRef(BaseModel):
    """Body of pause, resume and cancel. Unknown fields are ignored, as old clients send more."""

    model_config = ConfigDict(extra="ignore", strict=True)

    outJobNo: OutJobNo


class DelayJobIn(JobRef):
    """One job of submit/job or submit/jobs; strict so that "5" or true is not a number."""

    type: int | None = TYPE_NORMAL
    triggerTime: int | float
    callbackProtocol: str
    callbackEndpoint: str
    jobInfo: Annotated[str, Field(max_length=MAX_JOB_INFO)] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: int | None) -> int:
        if value is None:  # as the delay-job service: absent or null is a normal job
            return TYPE_NORMAL
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
        return field, f"must be {EXPECTED[field]}, got {len(error['input'])} characters"
    return field, f"must be {EXPECTED.get(field, 'valid')}, got {json_kind(error.get('input'))}"


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


def kafka_target(endpoint: str, settings: Settings) -> Target:
    """A bare topic goes to the server's brokers, as on the delay-job service (refused here
    when this server has none); or `broker:port/topic` names its own."""
    if "/" in endpoint:
        return parse_kafka_endpoint(endpoint, "callbackEndpoint")
    if not settings.kafka_brokers:
        raise InvalidField(
            "a bare topic needs the server's Kafka brokers, and none are set "
            "(CRONWHEEL_KAFKA_BOOTSTRAP); give broker:port/topic instead",
            "callbackEndpoint",
        )
    target = {"kind": "kafka", "bootstrap": SERVER_BROKERS, "topic": endpoint}
    return target_from_dict(target, "callbackEndpoint", job_types=NO_JOB_TYPES)


def target_of(job: DelayJobIn, settings: Settings) -> Target:
    protocol, endpoint = job.callbackProtocol, job.callbackEndpoint
    if not endpoint:
        raise InvalidField(f"for {protocol} it must be {ENDPOINT_FORMS[protocol]}; got ''",
                           "callbackEndpoint")
    try:
        if protocol == "LOG":
            return LogTarget()
        if protocol == "KAFKA":
            return kafka_target(endpoint, settings)
        if protocol == "HTTP":
            return target_from_dict(
                {"kind": "http", "url": endpoint, "success": SUCCESS_CODE_OK}, "callbackEndpoint",
                job_types=NO_JOB_TYPES,
            )
        return target_from_dict(
            {"kind": "grpc", "address": endpoint, "service": SERVICE_DELAYJOB}, "callbackEndpoint",
            job_types=NO_JOB_TYPES,
        )
    except InvalidField as exc:
        detail = f" ({exc.message})" if protocol == "KAFKA" else ""
        raise InvalidField(
            f"for {protocol} it must be {ENDPOINT_FORMS[protocol]}; got {shown(endpoint)}{detail}",
            "callbackEndpoint",
        ) from None


def payload_of(job: DelayJobIn, at: Micros, unit: str) -> dict[str, Any]:
    """The callback body of the delay-job contract, fixed at submit: triggerTime in
    milliseconds (the service's code), or in seconds as sent (its document)."""
    sent = trigger_time(at, unit) if unit == UNIT_MS else job.triggerTime
    return {"outJobNo": job.outJobNo, "triggerTime": sent, "jobInfo": job.jobInfo}


def submission_of(job: DelayJobIn, settings: Settings, prefix: str = "",
                  namespace: str | None = None) -> Submission:
    """A delay job is a one-shot job; type 10 makes it a countdown that keeps its time paused.
    It goes to the namespace the client's admission rule names (the setting's by default)."""
    try:
        at = from_seconds(job.triggerTime, "triggerTime")
        payload = payload_of(job, at, settings.delayjob_callback_time_unit)
        spec = JobSpec(
            namespace=namespace or settings.delayjob_namespace,
            key=job.outJobNo,
            schedule=OneShot(at=at, countdown=job.type == TYPE_COUNTDOWN),
            target=target_of(job, settings),
            payload=payload,
        )
    except InvalidField as exc:
        field, problem = dialect_problem(exc)
        raise invalid(prefix + field, problem) from None
    fingerprint = body_fingerprint({"dialect": "delayjob", **job.model_dump()})
    return Submission(spec, fingerprint, target_field="callbackEndpoint")


def dialect_problem(exc: DomainError, default: str = "outJobNo") -> tuple[str, str]:
    """A domain (or service) error's field in the dialect's words, its message without that
    field's name: the payload limit names jobInfo, the batch limit the body, a target the
    guard refuses the callbackEndpoint."""
    field = exc.field or default
    message = exc.message.removeprefix(f"{field} ")
    if field.startswith("callbackEndpoint."):  # the target guard's url, address or bootstrap
        field = "callbackEndpoint"
    return DIALECT_FIELDS.get(field, field), message


# -- the use cases -------------------------------------------------------------------------------


def exists(field: str, key: str) -> Reject:
    return Reject(OUT_JOB_NO_IS_EXIST, 409, field,
                  f"job {key!r} exists with a different definition")


async def submit_one(service: Service, settings: Settings, body: Any,
                     namespace: str | None = None, caller: Principal | None = None) -> None:
    if isinstance(body, list):
        raise invalid("body", "expected a JSON object; send arrays to /api/v1/submit/jobs")
    job = validated(DelayJobIn, body)
    auditing.judge(auditing.conflicted)  # a different job under this outJobNo: nothing written
    [outcome] = await service.submit([submission_of(job, settings, namespace=namespace)],
                                   caller=caller)
    if outcome.conflict:
        raise exists("outJobNo", job.outJobNo)


async def submit_many(service: Service, settings: Settings, body: Any,
                      namespace: str | None = None, caller: Principal | None = None) -> None:
    if not isinstance(body, list):
        raise invalid("body", f"expected a JSON array of jobs, got {json_kind(body)}")
    auditing.judge(auditing.conflicted)
    try:
        outcomes = await service.submit(batch_items(body, settings, namespace),
                                        all_or_nothing=True,
                                        caller=caller)
    except ItemErrors as exc:
        index, error = exc.items[0]
        field, problem = dialect_problem(error)
        raise invalid(f"[{index}].{field}", problem) from None
    for index, outcome in enumerate(outcomes):
        if outcome.conflict:
            raise exists(f"[{index}].outJobNo", outcome.job.spec.key)


def batch_items(body: Sequence[Any], settings: Settings,
                namespace: str | None = None) -> list[Submission]:
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
        items.append(submission_of(job, settings, prefix, namespace))
    return items


def is_countdown(job: Job) -> bool:
    schedule = job.spec.schedule
    return isinstance(schedule, OneShot) and schedule.countdown


Change = Callable[[str, str], Awaitable[Job]]


class UseCase(Protocol):
    """One use case: the decoded request, the namespace the client's rule names, and the app
    the request was admitted as (its limits apply)."""

    def __call__(self, service: Service, settings: Settings, body: Any,
                 namespace: str | None = None,
                 caller: Principal | None = None) -> Awaitable[None]: ...



def changer(op: str) -> UseCase:
    """The use case of one state change, shaped like the submits."""

    async def run(service: Service, settings: Settings, body: Any,
                  namespace: str | None = None, caller: Principal | None = None) -> None:
        await change(service, settings, body, op, namespace)

    return run


async def change(service: Service, settings: Settings, body: Any, op: str,
                 in_namespace: str | None = None) -> None:
    """Pause, resume or cancel; a refused change answers the code for the job's state."""
    key = validated(JobRef, body).outJobNo
    namespace = in_namespace or settings.delayjob_namespace
    if op == "pause" and not is_countdown(await service.get(namespace, key)):
        raise Reject(INVALID_PARAMS, 409, "outJobNo",
                     f"only type {TYPE_COUNTDOWN} (pausable countdown) jobs can be paused; "
                     f"job {key!r} is not type {TYPE_COUNTDOWN}")
    changes: dict[str, Change] = {
        "pause": service.pause, "resume": service.resume, "cancel": service.cancel,
    }
    try:
        await changes[op](namespace, key)
    except IllegalTransition as exc:
        state = (await service.get(namespace, key)).state
        raise Reject(refusal_code(op, state), 409, "outJobNo", dialect_problem(exc)[1]) from None


def refusal_code(op: str, state: JobState) -> str:
    """The delay-job service's code for a state change this job's state refuses."""
    if state is JobState.CANCELLED:
        return JOB_IS_CANCEL
    if state is JobState.COMPLETED:
        return CANNOT_CANCEL_JOB if op == "cancel" else JOB_IS_TRIGGERED
    return INVALID_PARAMS  # pausing a paused job, resuming one that is not paused


# -- the outcome ---------------------------------------------------------------------------------

DOMAIN_CODES: dict[type[DomainError], tuple[str, int]] = {
    NotFound: (JOB_NOT_EXIST, 404),
    Conflict: (OUT_JOB_NO_IS_EXIST, 409),
    IllegalTransition: (INVALID_PARAMS, 409),
    LimitExceeded: (LIMIT_EXCEEDED, 403),
    RateLimited: (RATE_LIMITED, 429),
}


class Outcome(NamedTuple):
    code: str
    message: str
    status: int
    retry_after: int | None = None  # seconds, for a refusal by the app's submit rate


async def outcome(work: Awaitable[None], where: str) -> tuple[str, str, int]:
    """Run one use case: (code, message, HTTP status), the same for HTTP and gRPC callers."""
    code, message, status, _retry = await settle(work, where)
    return code, message, status


async def settle(work: Awaitable[None], where: str) -> Outcome:
    """`outcome`, with the seconds a rate-limited caller should wait (HTTP's Retry-After)."""
    try:
        await work
    except Reject as exc:
        return Outcome(exc.code, exc.message, exc.status)
    except DomainError as exc:
        field, problem = dialect_problem(exc)
        code, status = DOMAIN_CODES.get(type(exc), (INVALID_PARAMS, 400))
        wait = exc.retry_after if isinstance(exc, RateLimited) else None
        return Outcome(code, f"{field}: {problem}", status, wait)
    except Exception:
        log.exception("delayjob.unexpected_error", extra={"path": where})
        return Outcome(UNKNOWN_ERROR, "server: internal error; see the server log", 500)
    return Outcome(OK, "success", 200)
