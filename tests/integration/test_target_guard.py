"""The target guard at connect time: names resolving to refused addresses, literal forms,
redirects; every transport. Receivers are on loopback; names come from an injected lookup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from aiohttp import web

from cronwheel.contracts import Delivery, DeliveryResult
from cronwheel.delivery.grpc import GrpcTransport
from cronwheel.delivery.guard import StaticLookup
from cronwheel.delivery.http import HttpTransport
from cronwheel.delivery.kafka import KafkaTransport
from cronwheel.delivery.proto import callback_pb2_grpc
from cronwheel.delivery.proto import delayjob_callback_pb2_grpc as delayjob_grpc
from cronwheel.delivery.tcp import TcpTransport
from cronwheel.domain.netpolicy import NetPolicy
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.targets import (
    SERVICE_DELAYJOB,
    SUCCESS_CODE_OK,
    GrpcTarget,
    HttpTarget,
    KafkaTarget,
    Target,
)
from cronwheel.domain.tcp_target import TcpTarget
from tests.dialects.test_delayjob_contract import JobCallback
from tests.integration.test_grpc_delivery import Receiver as GrpcReceiver
from tests.receivers import HttpReceiver
from tests.support import free_port

NAMES = StaticLookup({
    "metadata.test": ["169.254.169.254"],
    "metadata6.test": ["fd00:ec2::254"],
    "mapped.test": ["::ffff:169.254.169.254"],
    "lan.test": ["10.0.0.7"],
    "receiver.test": ["127.0.0.1"],
    "mixed.test": ["169.254.169.254", "127.0.0.1"],
})
STRICT = NetPolicy.from_settings(allow=[])  # not even loopback
FOLLOW = NetPolicy.from_settings(follow_redirects=True)


def delivery(target: Target) -> Delivery:
    return Delivery(run_id="run-1", attempt=1, job_id="job-1", namespace="default", key="k",
                    scheduled_at=0, fired_at=0, target=target, payload={"n": 1})


def assert_refused(result: DeliveryResult, *words: str) -> None:
    assert result.outcome is AttemptOutcome.FAILURE
    assert not result.retryable
    assert result.error is not None and result.error.startswith("target refused")
    for word in words:
        assert word in result.error


async def http_send(
    url: str, policy: NetPolicy | None = None, method: str = "POST",
    headers: tuple[tuple[str, str], ...] = (),
) -> DeliveryResult:
    transport = HttpTransport(policy=policy, lookup=NAMES)
    try:
        return await transport.deliver(delivery(HttpTarget(url, method, headers, timeout=5)))
    finally:
        await transport.aclose()


@pytest.mark.parametrize("host", ["metadata.test", "metadata6.test", "mapped.test", "lan.test"])
async def test_a_name_resolving_to_a_refused_address_fails_the_attempt(host: str) -> None:
    result = await http_send(f"http://{host}:{free_port()}/latest/meta-data")
    assert_refused(result, host)


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data",
    "http://[::ffff:169.254.169.254]/latest/meta-data",
    "http://[fd00:ec2::254]/latest/meta-data",
    "http://0xa9fea9fe/latest/meta-data",
    "http://0.0.0.0:1/",
])
async def test_a_literal_refused_address_is_never_connected_to(url: str) -> None:
    """The intro's case: GET with a Metadata-Flavor header would be answered by a cloud."""
    result = await http_send(url, method="GET", headers=(("X-Probe", "1"),))
    assert_refused(result)


async def test_a_name_of_loopback_reaches_the_receiver(receiver: HttpReceiver) -> None:
    result = await http_send(f"http://receiver.test:{receiver.port}/callback")
    assert result.outcome is AttemptOutcome.SUCCESS
    [seen] = await receiver.wait_for(1)
    assert seen.headers["Host"] == f"receiver.test:{receiver.port}"


async def test_refused_addresses_of_a_name_are_skipped(receiver: HttpReceiver) -> None:
    result = await http_send(f"http://mixed.test:{receiver.port}/callback")
    assert result.outcome is AttemptOutcome.SUCCESS
    assert len(await receiver.wait_for(1)) == 1


@pytest.mark.parametrize("host", ["0x7f.1", "0x7f.0.0.1", "[::ffff:127.0.0.1]"])
async def test_other_spellings_of_loopback_are_loopback(host: str, receiver: HttpReceiver) -> None:
    """The guard reads them as the resolver will: allowed by default, refused when strict.
    (aiohttp itself refuses all-decimal forms such as `127.1` and `2130706433` in a URL.)"""
    url = f"http://{host}:{receiver.port}/callback"
    assert (await http_send(url)).outcome is AttemptOutcome.SUCCESS
    assert_refused(await http_send(url, STRICT), "127.0.0.1")
    assert len(receiver.received) == 1


async def test_loopback_is_refused_by_a_strict_policy(receiver: HttpReceiver) -> None:
    assert_refused(await http_send(receiver.url, STRICT), "internal address")
    assert receiver.received == []


@pytest.fixture
async def redirector() -> AsyncIterator[dict[str, str]]:
    """A loopback server answering 302 to wherever `where["to"]` says."""
    where = {"to": ""}

    async def handle(_request: web.Request) -> web.Response:
        raise web.HTTPFound(where["to"])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    where["url"] = f"http://127.0.0.1:{port}/go"
    try:
        yield where
    finally:
        await runner.cleanup()


async def test_redirects_are_not_followed_by_default(
    redirector: dict[str, str], receiver: HttpReceiver
) -> None:
    redirector["to"] = receiver.url
    result = await http_send(redirector["url"])
    assert result.outcome is AttemptOutcome.FAILURE and result.status_code == 302
    assert result.error is not None and "not followed" in result.error
    assert receiver.received == []


@pytest.mark.parametrize("to", [
    "http://169.254.169.254/latest/meta-data",
    "http://metadata.test/latest/meta-data",
    "http://[::ffff:169.254.169.254]/",
])
async def test_a_followed_redirect_to_a_refused_address_is_refused(
    redirector: dict[str, str], to: str
) -> None:
    redirector["to"] = to
    assert_refused(await http_send(redirector["url"], FOLLOW))


async def test_a_followed_redirect_to_an_allowed_address_arrives(
    redirector: dict[str, str], receiver: HttpReceiver
) -> None:
    redirector["to"] = receiver.url
    result = await http_send(redirector["url"], FOLLOW)
    assert result.outcome is AttemptOutcome.SUCCESS
    assert len(await receiver.wait_for(1)) == 1


@pytest.fixture
async def tcp_receiver() -> AsyncIterator[list[bytes]]:
    lines: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append(await reader.readline())
        writer.write(b"OK\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    lines.append(str(server.sockets[0].getsockname()[1]).encode())
    try:
        yield lines
    finally:
        server.close()
        await server.wait_closed()


async def tcp_send(host: str, port: int, policy: NetPolicy | None = None) -> DeliveryResult:
    transport = TcpTransport(policy=policy, lookup=NAMES)
    return await transport.deliver(delivery(TcpTarget(host, port, timeout=5)))


async def test_tcp_connects_to_the_checked_address(tcp_receiver: list[bytes]) -> None:
    port = int(tcp_receiver[0])
    assert (await tcp_send("receiver.test", port)).outcome is AttemptOutcome.SUCCESS
    assert (await tcp_send("0x7f.1", port)).outcome is AttemptOutcome.SUCCESS
    assert (await tcp_send("127.1", port)).outcome is AttemptOutcome.SUCCESS
    assert_refused(await tcp_send("metadata.test", port), "169.254.169.254")
    assert_refused(await tcp_send("0251.0376.0251.0376", port), "169.254.169.254")
    assert_refused(await tcp_send("127.0.0.1", port, STRICT))
    assert len(tcp_receiver) == 4  # the port, then three frames


@pytest.fixture
async def grpc_receiver() -> AsyncIterator[GrpcReceiver]:
    server = grpc.aio.server()
    servicer = GrpcReceiver()
    callback_pb2_grpc.add_CallbackServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    servicer.address = f"receiver.test:{port}"
    try:
        yield servicer
    finally:
        await server.stop(grace=None)


async def test_grpc_connects_to_the_checked_address(grpc_receiver: GrpcReceiver) -> None:
    transport = GrpcTransport(lookup=NAMES)
    port = grpc_receiver.address.rpartition(":")[2]

    async def send(address: str) -> DeliveryResult:
        return await transport.deliver(delivery(GrpcTarget(address, timeout=5)))

    try:
        assert (await send(grpc_receiver.address)).outcome is AttemptOutcome.SUCCESS
        assert_refused(await send(f"metadata.test:{port}"), "169.254.169.254")
        assert_refused(await send(f"[::ffff:169.254.169.254]:{port}"))
    finally:
        await transport.aclose()
    assert len(grpc_receiver.seen) == 1


@pytest.mark.parametrize("server", ["metadata.test:9092", "169.254.169.254:9092",
                                    "[fd00:ec2::254]:9092"])
async def test_kafka_bootstrap_to_a_refused_address_is_refused(server: str) -> None:
    transport = KafkaTransport(lookup=NAMES)
    try:
        result = await transport.deliver(delivery(KafkaTarget((server,), "t", timeout=5)))
    finally:
        await transport.aclose()
    assert_refused(result)


# -- the delay-job contract's delivery paths go through the same guard ------------------------


@pytest.fixture
async def delayjob_receiver() -> AsyncIterator[tuple[JobCallback, int]]:
    """A loopback receiver of delay.job.JobCallback/trigger, answering "ok"."""
    servicer = JobCallback([])
    server = grpc.aio.server()
    delayjob_grpc.add_JobCallbackServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield servicer, port
    finally:
        await server.stop(grace=None)


async def test_a_delayjob_grpc_callback_connects_only_to_a_checked_address(
    delayjob_receiver: tuple[JobCallback, int],
) -> None:
    servicer, port = delayjob_receiver

    async def send(address: str, policy: NetPolicy | None = None) -> DeliveryResult:
        transport = GrpcTransport(policy=policy, lookup=NAMES)
        target = GrpcTarget(address, timeout=5, service=SERVICE_DELAYJOB)
        try:
            return await transport.deliver(delivery(target))
        finally:
            await transport.aclose()

    assert (await send(f"receiver.test:{port}")).outcome is AttemptOutcome.SUCCESS
    assert_refused(await send(f"169.254.169.254:{port}"), "169.254.169.254")
    assert_refused(await send(f"[::ffff:169.254.169.254]:{port}"))
    assert_refused(await send(f"metadata.test:{port}"), "169.254.169.254")
    assert_refused(await send(f"127.0.0.1:{port}", STRICT))  # a live receiver, not asked
    assert [r.outJobNo for r in servicer.requests] == ["k"]


async def test_an_http_code_ok_callback_is_guarded(receiver: HttpReceiver) -> None:
    async def send(url: str, policy: NetPolicy | None = None) -> DeliveryResult:
        transport = HttpTransport(policy=policy, lookup=NAMES)
        target = HttpTarget(url, timeout=5, success=SUCCESS_CODE_OK)
        try:
            return await transport.deliver(delivery(target))
        finally:
            await transport.aclose()

    ok = await send(f"http://receiver.test:{receiver.port}/callback")
    assert ok.outcome is AttemptOutcome.SUCCESS
    assert_refused(await send("http://169.254.169.254/cb"))
    assert_refused(await send(f"http://metadata.test:{receiver.port}/cb"), "169.254.169.254")
    assert_refused(await send(receiver.url, STRICT), "internal address")
    assert len(receiver.received) == 1


@pytest.mark.parametrize("brokers", [("metadata.test:9092",), ("169.254.169.254:9092",)])
async def test_the_servers_own_kafka_brokers_are_guarded_too(brokers: tuple[str, ...]) -> None:
    """A target naming no brokers ("bootstrap": "server", the delay-job bare topic) uses
    CRONWHEEL_KAFKA_BOOTSTRAP, checked like any target's brokers."""
    transport = KafkaTransport(lookup=NAMES, default_bootstrap=brokers)
    try:
        result = await transport.deliver(delivery(KafkaTarget((), "t", timeout=5)))
    finally:
        await transport.aclose()
    assert_refused(result)
