"""The delay-job management API over gRPC: the servicer of delay.job.Job.

Each rpc decodes its message into the JSON value its HTTP twin takes and runs the same use
case of `delayjob_jobs`, so both answer alike: `JobResp{code, message}` is the HTTP envelope.
A proto3 field cannot be absent, so `type` 0 means the default 5, as on the delay-job service.
"""

from __future__ import annotations

from typing import Any

from cronwheel.api.dialects import delayjob_jobs as jobs
from cronwheel.delivery.proto import delayjob_job_pb2 as pb
from cronwheel.delivery.proto import delayjob_job_pb2_grpc as pb_grpc
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


class JobServicer(pb_grpc.JobServicer):
    def __init__(self, service: Service, settings: Settings) -> None:
        self._service = service
        self._settings = settings

    async def _run(self, name: str, use_case: jobs.UseCase, body: Any) -> pb.JobResp:
        work = use_case(self._service, self._settings, body)
        code, message, _status = await jobs.outcome(work, f"delay.job.Job/{name}")
        return pb.JobResp(code=code, message=message)

    async def submitJob(self, request: pb.CreateJobReq, context: Any) -> pb.JobResp:
        return await self._run("submitJob", jobs.submit_one, job_of(request))

    async def submitJobs(self, request: pb.CreateJobsReq, context: Any) -> pb.JobResp:
        body = [job_of(job) for job in request.jobs]
        return await self._run("submitJobs", jobs.submit_many, body)

    async def pauseJob(self, request: pb.OperateJobReq, context: Any) -> pb.JobResp:
        return await self._run("pauseJob", jobs.changer("pause"), {"outJobNo": request.outJobNo})

    async def resumeJob(self, request: pb.OperateJobReq, context: Any) -> pb.JobResp:
        return await self._run("resumeJob", jobs.changer("resume"),
                               {"outJobNo": request.outJobNo})

    async def cancelJob(self, request: pb.OperateJobReq, context: Any) -> pb.JobResp:
        return await self._run("cancelJob", jobs.changer("cancel"),
                               {"outJobNo": request.outJobNo})
