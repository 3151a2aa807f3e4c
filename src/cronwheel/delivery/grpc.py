"""gRPC callbacks with grpc.aio: one channel per receiver, cronwheel.v1.Callback/Deliver
(or the delay-job service's delay.job.JobCallback/trigger, see delayjob_grpc.py)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import grpc
import orjson

from cronwheel.contracts import Delivery, DeliveryResult
from cronwheel.delivery import RESPONSE_LIMIT, delayjob_grpc, metadata_headers
from cronwheel.delivery.guard import (
    Lookup,
    TargetRefused,
    checked_server,
    refused,
    split_host_port,
    system_lookup,
)
from cronwheel.delivery.proto import callback_pb2, callback_pb2_grpc
from cronwheel.domain.delayjob_body import UNIT_MS
from cronwheel.domain.netpolicy import NetPolicy
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.targets import SERVICE_DELAYJOB, GrpcTarget

# Codes that say "try again later"; any other error code means the request itself is wrong.
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)

# A receiver that was down must be reachable again soon after it returns: calls fail fast
# while the channel backs off, so cap the reconnect backoff well below gRPC's 120 s default.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)


def classify(code: grpc.StatusCode) -> tuple[AttemptOutcome, bool]:
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return AttemptOutcome.TIMEOUT, True
    if code is grpc.StatusCode.UNAVAILABLE:
        return AttemptOutcome.ERROR, True
    return AttemptOutcome.FAILURE, code in RETRYABLE_CODES


def status_number(code: grpc.StatusCode) -> int:
    number: int = code.value[0]
    return number


def _metadata(delivery: Delivery) -> tuple[tuple[str, str], ...]:
    """gRPC metadata must be lower-case keys and printable ASCII values, so escape the rest."""
    return tuple(
        (name.lower(), value if value.isascii() and value.isprintable() else quote(value))
        for name, value in metadata_headers(delivery).items()
    )


def rpc_failure(exc: grpc.aio.AioRpcError, timeout: float) -> DeliveryResult:
    """A call that ended in a gRPC status error, as an attempt's outcome."""
    code = exc.code()
    outcome, retryable = classify(code)
    details = (exc.details() or "")[:RESPONSE_LIMIT]
    if outcome is AttemptOutcome.TIMEOUT:
        error = f"no answer within {timeout:g}s"
    else:
        error = f"gRPC {code.name}: {details}" if details else f"gRPC {code.name}"
    return DeliveryResult(outcome, retryable, status_number(code), details or None, error)


def request_for(delivery: Delivery) -> callback_pb2.CallbackRequest:
    return callback_pb2.CallbackRequest(
        run_id=delivery.run_id,
        attempt=delivery.attempt,
        idempotency_key=delivery.idempotency_key,
        namespace=delivery.namespace,
        job_key=delivery.key,
        job_id=delivery.job_id,
        scheduled_at_us=delivery.scheduled_at,
        fired_at_us=delivery.fired_at,
        payload_json=orjson.dumps(delivery.payload),
    )


def _channel_options(target: GrpcTarget) -> list[tuple[str, int | str]]:
    """Connecting to the checked address, still naming the receiver as the job did."""
    options: list[tuple[str, int | str]] = [*CHANNEL_OPTIONS]
    options.append(("grpc.default_authority", target.address))
    if target.tls:
        options.append(("grpc.ssl_target_name_override", split_host_port(target.address)[0]))
    return options


Key = tuple[str, str, bool]  # checked ip:port, the target's address, tls


class GrpcTransport:
    def __init__(
        self, policy: NetPolicy | None = None, lookup: Lookup = system_lookup,
        delayjob_unit: str = UNIT_MS,
    ) -> None:
        self._policy = policy or NetPolicy()
        self._delayjob_unit = delayjob_unit  # of CallbackReq.triggerTime
        self._lookup = lookup
        self._channels: dict[Key, grpc.aio.Channel] = {}
        self._stubs: dict[Key, callback_pb2_grpc.CallbackStub] = {}

    def _channel(self, target: GrpcTarget, checked: str) -> grpc.aio.Channel:
        key = (checked, target.address, target.tls)
        channel = self._channels.get(key)
        if channel is None:
            where = f"ipv6:{checked}" if checked.startswith("[") else f"ipv4:{checked}"
            options = _channel_options(target)
            if target.tls:
                channel = grpc.aio.secure_channel(
                    where, grpc.ssl_channel_credentials(), options=options
                )
            else:
                channel = grpc.aio.insecure_channel(where, options=options)
            self._channels[key] = channel
        return channel

    def _stub(self, target: GrpcTarget, checked: str) -> callback_pb2_grpc.CallbackStub:
        key = (checked, target.address, target.tls)
        stub = self._stubs.get(key)
        if stub is None:
            channel = self._channel(target, checked)
            stub = callback_pb2_grpc.CallbackStub(channel)  # type: ignore[no-untyped-call]
            self._stubs[key] = stub
        return stub

    async def _check(self, target: GrpcTarget) -> str | DeliveryResult:
        """The target guard: resolve and check now; the caller connects to what passed."""
        try:
            [checked, *_] = await checked_server(target.address, self._policy, self._lookup)
        except TargetRefused as exc:
            return refused(exc)
        except OSError as exc:
            return DeliveryResult(AttemptOutcome.ERROR, True, error=f"{type(exc).__name__}: {exc}")
        return checked

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        target = delivery.target
        assert isinstance(target, GrpcTarget)
        checked = await self._check(target)
        if isinstance(checked, DeliveryResult):
            return checked
        if target.service == SERVICE_DELAYJOB:
            return await self._trigger(target, checked, delivery)
        request = request_for(delivery)
        try:
            reply: callback_pb2.CallbackReply = await self._stub(target, checked).Deliver(
                request, timeout=target.timeout, metadata=_metadata(delivery)
            )
        except grpc.aio.AioRpcError as exc:
            return rpc_failure(exc, target.timeout)
        except asyncio.CancelledError:
            raise
        message = reply.message[:RESPONSE_LIMIT]
        ok = status_number(grpc.StatusCode.OK)  # the call itself succeeded; `reply.ok` decides
        if reply.ok:
            return DeliveryResult(AttemptOutcome.SUCCESS, False, ok, message)
        error = "receiver replied ok=false"
        return DeliveryResult(AttemptOutcome.FAILURE, True, ok, message, error)

    async def _trigger(
        self, target: GrpcTarget, checked: str, delivery: Delivery
    ) -> DeliveryResult:
        """The delay-job receiver's delay.job.JobCallback/trigger, on the same checked
        channel as cronwheel's own service."""
        try:
            reply = await delayjob_grpc.stub_for(self._channel(target, checked)).trigger(
                delayjob_grpc.request_for(delivery, self._delayjob_unit),
                timeout=target.timeout,
                metadata=_metadata(delivery),
            )
        except grpc.aio.AioRpcError as exc:
            return rpc_failure(exc, target.timeout)
        return delayjob_grpc.result_of(reply)

    async def aclose(self) -> None:
        channels = list(self._channels.values())
        self._channels.clear()
        self._stubs.clear()
        for channel in channels:
            await channel.close()
