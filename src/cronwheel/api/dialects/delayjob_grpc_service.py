"""The delay-job management API over gRPC: the servicer of delay.job.Job.

Each rpc decodes its message into the JSON value its HTTP twin takes and runs the same use
case of `delayjob_jobs`, so both answer alike: `JobResp{code, message}` is the HTTP envelope.
A proto3 field cannot be absent, so `type` 0 means the default 5, as on the delay-job service.
Every call passes the admission policy of the `delayjob-grpc` dialect first (the peer's
address; a token in the `authorization` metadata where its rule asks for one): a refused
client gets UNAUTHENTICATED or PERMISSION_DENIED with the reason.

Each call is one entry of the audit trail (action `delayjob_grpc.<rpc>`), as an HTTP
request is by `auditing.AuditMiddleware`: gRPC has no ASGI request, so the servicer puts the
`PendingChange` around the use case itself. A change's entry is written in the change's own
transaction; a refusal (not admitted, invalid, unknown job, a state that forbids it) or a
call that changed nothing is recorded right after, with the status its HTTP twin answers.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import grpc

from cronwheel.api.auditing import NO_CHANGE, AuditTrail
from cronwheel.api.dialects import delayjob_jobs as jobs
from cronwheel.api.dialects.admission import defaults_for
from cronwheel.apps_service import Admitted, AppService
from cronwheel.contracts import CURRENT_CHANGE, PendingChange
from cronwheel.delivery.proto import delayjob_job_pb2 as pb
from cronwheel.delivery.proto import delayjob_job_pb2_grpc as pb_grpc
from cronwheel.domain.access import Principal
from cronwheel.domain.admission import DELAYJOB_GRPC, NotAdmitted
from cronwheel.domain.audit import OK, WRITTEN_STATUS, AuditEntry, clip, outcome_of_status
from cronwheel.domain.time import Micros
from cronwheel.ids import new_id
from cronwheel.service import Service
from cronwheel.settings import Settings

SERVICE = "delay.job.Job"
DELAYJOB_GRPC_ACTION = "delayjob_grpc"  # the trail's actions: delayjob_grpc.submitJob, ...


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


@dataclass(frozen=True, slots=True)
class Call:
    """One rpc as the audit trail sees it: which, when, from where, about what."""

    rpc: str
    at: Micros
    address: str | None
    target: str | None  # the outJobNo, for a call about one job
    detail: dict[str, Any]

    def entry(self, outcome: str, status: int, principal: Principal | None = None,
              namespace: str | None = None) -> AuditEntry:
        """Who: the admitted principal (its app; a token prefix only where the client's
        rule asks for a token); None for a client the policy refused."""
        return AuditEntry(
            id=new_id(), at=self.at, action=f"{DELAYJOB_GRPC_ACTION}.{self.rpc}",
            outcome=outcome, status=status,
            app=principal.app if principal is not None else None,
            token_prefix=(principal.token_prefix or None) if principal is not None else None,
            role=principal.role.value if principal is not None else None,
            address=clip(self.address), namespace=clip(namespace), target=clip(self.target),
            detail={"rpc": f"{SERVICE}/{self.rpc}"} | self.detail,
        )


class JobServicer(pb_grpc.JobServicer):
    def __init__(self, service: Service, settings: Settings, apps: AppService,
                 trail: AuditTrail | None = None) -> None:
        self._service = service
        self._settings = settings
        self._apps = apps
        self._trail = trail  # None: no audit trail (a servicer made on its own, in a test)

    async def _admit(self, context: Any, call: Call) -> Admitted:
        try:
            return await self._apps.admit(DELAYJOB_GRPC, call.address,
                                          defaults_for(DELAYJOB_GRPC, self._settings),
                                          bearer_of(context))
        except NotAdmitted as exc:
            if self._trail is not None:
                self._trail.later(call.entry(outcome_of_status(exc.status), exc.status))
            status = (grpc.StatusCode.UNAUTHENTICATED if exc.status == 401
                      else grpc.StatusCode.PERMISSION_DENIED)
            await context.abort(status, f"client: {exc.message}")
            raise  # abort raises; this line is for the type checker

    async def _run(self, rpc: str, use_case: jobs.UseCase, body: Any, context: Any,
                   target: str | None = None, **detail: Any) -> pb.JobResp:
        now = self._service.clock.now()
        call = Call(rpc, now, peer_host(context.peer()), target, detail)
        admitted = await self._admit(context, call)
        work = use_case(self._service, self._settings, body, admitted.namespace,
                        admitted.principal)  # the app's limits apply
        if self._trail is None:
            code, message, _status = await jobs.outcome(work, f"{SERVICE}/{rpc}")
            return pb.JobResp(code=code, message=message)
        code, message, _status = await self._audited(call, admitted, work, self._trail)
        return pb.JobResp(code=code, message=message)

    async def _audited(self, call: Call, admitted: Admitted, work: Awaitable[None],
                       trail: AuditTrail) -> tuple[str, str, int]:
        """Run the use case with its entry pending: the change's write carries it; what
        wrote nothing is recorded after, by the status the HTTP twin would answer."""
        principal, namespace = admitted.principal, admitted.namespace

        def describe(outcome: str) -> AuditEntry:
            return call.entry(outcome, WRITTEN_STATUS.get(outcome, 200), principal, namespace)

        change = PendingChange(describe)
        token = CURRENT_CHANGE.set(change)
        status = 500  # a call cancelled on the way is recorded as an error
        try:
            code, message, status = await jobs.outcome(work, f"{SERVICE}/{call.rpc}")
        finally:
            CURRENT_CHANGE.reset(token)
            recorded, change.recorded = change.recorded, True
            if not recorded:
                outcome = outcome_of_status(status)
                if outcome == OK and trail.store.transactional:
                    outcome = NO_CHANGE
                trail.later(call.entry(outcome, status, principal, namespace))
        return code, message, status

    async def submitJob(self, request: pb.CreateJobReq, context: Any) -> pb.JobResp:
        return await self._run("submitJob", jobs.submit_one, job_of(request), context,
                               request.outJobNo)

    async def submitJobs(self, request: pb.CreateJobsReq, context: Any) -> pb.JobResp:
        body = [job_of(job) for job in request.jobs]
        return await self._run("submitJobs", jobs.submit_many, body, context,
                               jobs=len(body))

    async def pauseJob(self, request: pb.OperateJobReq, context: Any) -> pb.JobResp:
        return await self._run("pauseJob", jobs.changer("pause"), {"outJobNo": request.outJobNo},
                               context, request.outJobNo)

    async def resumeJob(self, request: pb.OperateJobReq, context: Any) -> pb.JobResp:
        return await self._run("resumeJob", jobs.changer("resume"),
                               {"outJobNo": request.outJobNo}, context, request.outJobNo)

    async def cancelJob(self, request: pb.OperateJobReq, context: Any) -> pb.JobResp:
        return await self._run("cancelJob", jobs.changer("cancel"),
                               {"outJobNo": request.outJobNo}, context, request.outJobNo)
