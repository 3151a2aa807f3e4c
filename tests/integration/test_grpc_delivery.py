"""The gRPC transport against a real grpc.aio receiver on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import orjson
import pytest

from cronwheel.contracts import Delivery
from cronwheel.delivery.grpc import GrpcTransport
from cronwheel.delivery.proto import callback_pb2, callback_pb2_grpc
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.targets import GrpcTarget
from cronwheel.domain.time import to_iso
from tests.support import free_port

SCHEDULED_AT = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
PAYLOAD = {"report": "daily", "ids": [1, 2, 3], "note": "héllo"}


@dataclass
class Seen:
    request: callback_pb2.CallbackRequest
    metadata: dict[str, str]
    peer: str


@dataclass
class Receiver(callback_pb2_grpc.CallbackServicer):
    """Answers as `mode` says and remembers what it was sent."""

    address: str = ""
    mode: str = "ok"
    seen: list[Seen] = field(default_factory=list)

    async def Deliver(  # the generated servicer's method name
        self, request: callback_pb2.CallbackRequest, context: Any
    ) -> callback_pb2.CallbackReply:
        metadata = {str(k): str(v) for k, v in context.invocation_metadata()}
        self.seen.append(Seen(request, metadata, context.peer()))
        if self.mode == "refuse":
            return callback_pb2.CallbackReply(ok=False, message="not today")
        if self.mode == "unavailable":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "overloaded")
        if self.mode == "invalid":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad payload")
        if self.mode == "slow":
            await asyncio.sleep(5)
        return callback_pb2.CallbackReply(ok=True, message="done")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = grpc.aio.server()
    servicer = Receiver()
    callback_pb2_grpc.add_CallbackServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    servicer.address = f"127.0.0.1:{port}"
    try:
        yield servicer
    finally:
        await server.stop(grace=None)


@pytest.fixture
async def transport() -> AsyncIterator[GrpcTransport]:
    transport = GrpcTransport()
    try:
        yield transport
    finally:
        await transport.aclose()


def delivery(
    address: str, run_id: str = "run-1", attempt: int = 1, timeout: float = 5, key: str = "nightly"
) -> Delivery:
    return Delivery(
        run_id=run_id,
        attempt=attempt,
        job_id="job-42",
        namespace="billing",
        key=key,
        scheduled_at=SCHEDULED_AT,
        fired_at=SCHEDULED_AT + 1_500,
        target=GrpcTarget(address, timeout=timeout),
        payload=PAYLOAD,
    )


async def test_delivery_arrives_with_every_field(
    receiver: Receiver, transport: GrpcTransport
) -> None:
    result = await transport.deliver(delivery(receiver.address, run_id="run-7", attempt=3))

    assert result.outcome is AttemptOutcome.SUCCESS
    assert result.retryable is False
    assert result.status_code == 0
    assert result.response == "done"
    assert result.error is None
    [seen] = receiver.seen
    request = seen.request
    assert request.run_id == "run-7"
    assert request.idempotency_key == "run-7"
    assert request.attempt == 3
    assert request.namespace == "billing"
    assert request.job_key == "nightly"
    assert request.job_id == "job-42"
    assert request.scheduled_at_us == SCHEDULED_AT
    assert request.fired_at_us == SCHEDULED_AT + 1_500
    assert orjson.loads(request.payload_json) == PAYLOAD
    assert seen.metadata["idempotency-key"] == "run-7"
    assert seen.metadata["cronwheel-attempt"] == "3"
    assert seen.metadata["cronwheel-run-id"] == "run-7"
    assert seen.metadata["cronwheel-job-key"] == "nightly"
    assert seen.metadata["cronwheel-namespace"] == "billing"
    assert seen.metadata["cronwheel-scheduled-at"] == to_iso(SCHEDULED_AT)


async def test_non_ascii_metadata_is_percent_encoded(
    receiver: Receiver, transport: GrpcTransport
) -> None:
    result = await transport.deliver(delivery(receiver.address, key="café"))

    assert result.outcome is AttemptOutcome.SUCCESS
    [seen] = receiver.seen
    assert seen.request.job_key == "café"
    assert seen.metadata["cronwheel-job-key"] == "caf%C3%A9"


async def test_reply_not_ok_is_a_retryable_failure(
    receiver: Receiver, transport: GrpcTransport
) -> None:
    receiver.mode = "refuse"

    result = await transport.deliver(delivery(receiver.address))

    assert result.outcome is AttemptOutcome.FAILURE
    assert result.retryable is True
    assert result.response == "not today"
    assert result.error == "receiver replied ok=false"


async def test_unavailable_status_is_retryable(
    receiver: Receiver, transport: GrpcTransport
) -> None:
    receiver.mode = "unavailable"

    result = await transport.deliver(delivery(receiver.address))

    assert result.outcome is AttemptOutcome.ERROR
    assert result.retryable is True
    assert result.status_code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert result.error is not None and "UNAVAILABLE" in result.error
    assert result.response == "overloaded"


async def test_invalid_argument_is_not_retryable(
    receiver: Receiver, transport: GrpcTransport
) -> None:
    receiver.mode = "invalid"

    result = await transport.deliver(delivery(receiver.address))

    assert result.outcome is AttemptOutcome.FAILURE
    assert result.retryable is False
    assert result.status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert result.error == "gRPC INVALID_ARGUMENT: bad payload"


async def test_slow_receiver_times_out(receiver: Receiver, transport: GrpcTransport) -> None:
    receiver.mode = "slow"
    started = time.monotonic()

    result = await transport.deliver(delivery(receiver.address, timeout=0.3))

    assert time.monotonic() - started < 2
    assert result.outcome is AttemptOutcome.TIMEOUT
    assert result.retryable is True
    assert result.error == "no answer within 0.3s"


async def test_nothing_listening_is_a_retryable_error(transport: GrpcTransport) -> None:
    started = time.monotonic()

    result = await transport.deliver(delivery(f"127.0.0.1:{free_port()}", timeout=2))

    assert time.monotonic() - started < 2
    assert result.outcome is AttemptOutcome.ERROR
    assert result.retryable is True
    assert result.error is not None and "UNAVAILABLE" in result.error


async def test_deliveries_share_one_channel(receiver: Receiver, transport: GrpcTransport) -> None:
    first = await transport.deliver(delivery(receiver.address, run_id="run-a"))
    second = await transport.deliver(delivery(receiver.address, run_id="run-b"))

    assert first.outcome is second.outcome is AttemptOutcome.SUCCESS
    assert [s.request.run_id for s in receiver.seen] == ["run-a", "run-b"]
    # One TCP connection: the receiver saw both calls come from the same client port.
    assert receiver.seen[0].peer == receiver.seen[1].peer
    assert len(transport._channels) == 1
