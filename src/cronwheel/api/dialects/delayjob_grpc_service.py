"""The delay-job management API over gRPC: the servicer of delay.job.Job.

Each rpc decodes its message into the JSON value its HTTP twin takes and runs the same use
case of `delayjob_jobs`, so both answer alike: `JobResp{code, message}` is the HTTP envelope.
A proto3 field cannot be absent, so `type` 0 means the default 5, as on the delay-job service.
Every call passes the admission policy of the `delayjob-grpc` dialect first (the peer's
address; a token in the `authorization` metadata where its rule asks for one): a refused
client gets UNAUTHENTICATED or PERMISSION_DENIED with the reason.
"""

from __future__ import annotations

from typing import Any

import grpc

from cronwheel.api.dialects import delayjob_jobs as jobs
from cronwheel.api.dialects.admission import defaults_for
from cronwheel.apps_service import Admitted, AppService
from cronwheel.delivery.proto import delayjob_job_pb2 as pb
from cronwheel.delivery.proto import delayjob_job_pb2_grpc as pb_grpc
from cronwheel.domain.admission import DELAYJOB_GRPC, NotAdmitted
from cronwheel.service import Service
from cronwheel.settings import Settings


def job_of(req: pb.CreateJobReq) -> dict[str, Any]:
    body: dict[str, Any] = {
        "outJobNo": req.outJobNo,
        "triggerTime": req.triggerTime,
        "callbackProtocol": req.callbackProtocol,
        "callbackEndpoint": req.callbackEndpoint,
        "jobInfo": req.jobInfo,
    }
    if req.type:
        body["type"] = req.type
    return body


def peer_host(peer: str) -> str | None:
    """The address in a gRPC peer string: `ipv4:10.1.2.3:5000`, `ipv6:[::1]:5000`; None for
    anything else (a Unix socket)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or None
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]") or None
    return None


def bearer_of(context: Any) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


class JobServicer(pb_grpc.JobServicer):
    def __init__(self, service: Service, settings: Settings, apps: AppService) -> None:
        self._service = service
        self._settings = settings
        self._apps = apps

    async def _admit(self, context: Any) -> Admitted:
        try:
            return await self._apps.admit(DELAYJOB_GRPC, peer_host(context.peer()),
                                          defaults_for(DELAYJOB_GRPC, self._settings),
                                          bearer_of(context))
        except NotAdmitted as exc:
            status = (grpc.StatusCode.UNAUTHENTICATED if exc.status == 401
                      else grpc.StatusCode.PERMISSION_DENIED)
            await context.abort(status, f"client: {exc.message}")
            raise  # abort raises; this line is for the type checker

    async def _run(self, name: str, use_case: jobs.UseCase, body: Any,
                   context: Any) -> pb.JobResp:
        admitted = await self._admit(context)
        work = use_case(self._service, self._settings, body, admitted.namespace,
                        admitted.principal)  # the app's limits apply
        code, message, _status = await jobs.outcome(work, f"delay.job.Job/{name}")
        return pb.JobResp(code=code, message=message)

    async def submitJob(self, request: pb.CreateJobReq, context: Any) -> pb.JobResp:
        return await self._run("submitJob", jobs.submit_one, job_of(request), context)

    async def submitJobs(self, request: pb.CreateJobsReq, context: Any) -> pb.JobResp:
        body = [job_of(job) for job in request.jobs]
        return await self._run("submitJobs", jobs.submit_many, body, context)

    async def pauseJob(self, request: pb.OperateJobReq, context: Any) -> pb.JobResp:
        return await self._run("pauseJob", jobs.changer("pause"), {"outJobNo": request.outJobNo},
                               context)

    async def resumeJob(self, request: pb.OperateJobReq, context: Any) -> pb.JobResp:
        return await self._run("resumeJob", jobs.changer("resume"),
                               {"outJobNo": request.outJobNo}, context)

    async def cancelJob(self, request: pb.OperateJobReq, context: Any) -> pb.JobResp:
        return await self._run("cancelJob", jobs.changer("cancel"),
                               {"outJobNo": request.outJobNo}, context)
