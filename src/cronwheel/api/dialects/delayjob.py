"""The delay-job dialect over HTTP: the delay-job service's five POST endpoints under /api/v1.

A thin adapter. It parses the raw body itself (so malformed JSON and wrong types answer in the
dialect's `{"code", "message"}` envelope, never FastAPI's 422 shape) and runs the use cases of
`delayjob_jobs`, which the gRPC service (`delayjob_grpc`) shares. See docs/dialects/delayjob.md.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cronwheel.api.dialects import delayjob_jobs as jobs
from cronwheel.api.dialects.admission import NotAdmitted, admit
from cronwheel.api.dialects.common import caller_of, service_of, settings_of
from cronwheel.api.errors import register_envelope
from cronwheel.api.responses import Json
from cronwheel.domain.admission import DELAYJOB

router = APIRouter(prefix="/api/v1", tags=["delay-job dialect"])
register_envelope("/api/v1/", lambda code, message: {"code": code, "message": message})


class Envelope(BaseModel):
    """Every answer of this dialect, success or not (for the OpenAPI page)."""

    code: str = Field(description="ok on success; otherwise the failure code")
    message: str = Field(description="success, or '<field>: <what is wrong>'")


async def parse_json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise jobs.invalid("body", f"not valid JSON: {exc}") from None


async def answer(request: Request, use_case: jobs.UseCase) -> Json:
    """Admit the client, read the body, run the use case in the namespace of the client's
    rule and shape every outcome into the dialect envelope."""

    async def work() -> None:
        try:
            admitted = await admit(request, DELAYJOB)
        except NotAdmitted as exc:
            raise jobs.refused(exc) from None
        await use_case(service_of(request), settings_of(request), await parse_json(request),
                       admitted.namespace, caller_of(request))

    found = await jobs.settle(work(), request.url.path)
    headers = {} if found.retry_after is None else {"Retry-After": str(found.retry_after)}
    return Json({"code": found.code, "message": found.message}, found.status, headers=headers)


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Envelope, "description": "invalid JSON or an invalid field"},
    401: {"model": Envelope, "description": "unauthorized: the client's rule needs a token "
                                            "(Authorization: Bearer cw_...) and none or a "
                                            "refused one was sent"},
    403: {"model": Envelope, "description": "forbidden: the client's network is not "
                                            "admitted; or limit_exceeded: the app holds its "
                                            "max_jobs"},
    404: {"model": Envelope, "description": "no job with this outJobNo"},
    409: {"model": Envelope, "description": "a conflicting job, or a refused state change"},
    429: {"model": Envelope, "description": "rate_limited: over the app's submits per "
          "second; Retry-After says when to try again"},
}


def _body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


JOB_SCHEMA = jobs.DelayJobIn.model_json_schema()
REF_SCHEMA = jobs.JobRef.model_json_schema()


@router.post("/submit/job", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(JOB_SCHEMA))
async def submit_job(request: Request) -> Json:
    """Register one delay job."""
    return await answer(request, jobs.submit_one)


@router.post("/submit/jobs", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc({"type": "array", "items": JOB_SCHEMA}))
async def submit_jobs(request: Request) -> Json:
    """Register a JSON array of delay jobs, all or nothing."""
    return await answer(request, jobs.submit_many)


@router.post("/pause/job", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(REF_SCHEMA))
async def pause_job(request: Request) -> Json:
    """Pause a type 10 countdown; it keeps its remaining time."""
    return await answer(request, jobs.changer("pause"))


@router.post("/resume/job", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(REF_SCHEMA))
async def resume_job(request: Request) -> Json:
    """Resume a paused countdown: it fires its remaining time from now."""
    return await answer(request, jobs.changer("resume"))


@router.post("/cancel/job", response_model=Envelope, responses=ERRORS,
             openapi_extra=_body_doc(REF_SCHEMA))
async def cancel_job(request: Request) -> Json:
    """Cancel a job that has not fired."""
    return await answer(request, jobs.changer("cancel"))
