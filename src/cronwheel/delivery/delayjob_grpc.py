"""The delay-job callback over gRPC: delay.job.JobCallback/trigger, read by its `code`.

A GRPC target with `service` "delayjob" speaks the contract that receivers of the delay-job
service implement (see proto/delayjob_callback.proto). The request carries the job's own
values from its payload, `triggerTime` being the instant the run was due (milliseconds by
default, as the service's code sends); the reply's `code` decides, "ok" in any letter case
being success.
"""

from __future__ import annotations

import math
from typing import Any

import grpc
import orjson

from cronwheel.contracts import Delivery, DeliveryResult
from cronwheel.delivery import RESPONSE_LIMIT
from cronwheel.delivery.answers import is_ok
from cronwheel.delivery.proto import delayjob_callback_pb2 as pb
from cronwheel.delivery.proto import delayjob_callback_pb2_grpc as pb_grpc
from cronwheel.domain.delayjob_body import UNIT_MS, body_due
from cronwheel.domain.delayjob_body import trigger_time as due_time
from cronwheel.domain.runs import AttemptOutcome

OK_STATUS = 0  # grpc.StatusCode.OK: the call went through; the reply's code decides


def stub_for(channel: grpc.aio.Channel) -> pb_grpc.JobCallbackStub:
    return pb_grpc.JobCallbackStub(channel)  # type: ignore[no-untyped-call]


def request_for(delivery: Delivery, unit: str = UNIT_MS) -> pb.CallbackReq:
    """A delay job's own values with the time it was due in `unit`; for any other job, its
    key, the due time in `unit` and its payload as JSON."""
    payload: Any = body_due(delivery.payload, delivery.scheduled_at, unit)
    values = payload if isinstance(payload, dict) else {}
    out_job_no = values.get("outJobNo")
    sent = _int64(values.get("triggerTime"))
    trigger_time = sent if sent is not None else _int64(due_time(delivery.scheduled_at, unit))
    job_info = values.get("jobInfo")
    if job_info is None and "jobInfo" not in values and payload is not None:
        job_info = orjson.dumps(payload).decode()
    return pb.CallbackReq(
        outJobNo=out_job_no if isinstance(out_job_no, str) else delivery.key,
        triggerTime=trigger_time,
        jobInfo=job_info if isinstance(job_info, str) else "",
    )


def _int64(value: Any) -> int | None:
    """The whole number the int64 `triggerTime` can carry (a fraction of a second is cut; a
    native payload may hold anything), else None."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    whole = math.floor(value)
    return whole if -(2**63) <= whole < 2**63 else None


def result_of(reply: pb.CallbackResp) -> DeliveryResult:
    message = reply.message[:RESPONSE_LIMIT]
    if is_ok(reply.code):
        return DeliveryResult(AttemptOutcome.SUCCESS, False, OK_STATUS, message)
    error = f"receiver answered code {reply.code[:100]!r}"
    return DeliveryResult(AttemptOutcome.FAILURE, True, OK_STATUS, message, error)
