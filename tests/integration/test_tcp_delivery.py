"""The TCP socket transport against real asyncio TCP receivers on loopback; no mocks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import pytest

from cronwheel.contracts import Delivery
from cronwheel.delivery.tcp import ACK_LIMIT, TcpTransport
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.targets import Target
from cronwheel.domain.tcp_target import TcpTarget
from cronwheel.domain.time import to_iso
from tests.support import free_port

SCHEDULED_AT = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
LINE_LIMIT = 16 * 1024 * 1024  # what the test receivers accept in one line
PAYLOAD = {"report": "daily", "note": "line one\nline two\r\n", "ids": [1, 2], "x": "héllo"}


@dataclass
class Seen:
    line: bytes  # what the receiver read up to and including the first newline
    rest: bytes  # anything after it until the client closed (should be nothing)
    reset: bool = False  # the client aborted the connection rather than closing it


@dataclass
class Receiver:
    """Reads one line per connection, then answers `answer` (and with "answer_close" hangs
    up), closes without answering ("close"), or keeps quiet ("silent")."""

    host: str = "127.0.0.1"
    port: int = 0
    answer: bytes = b"OK\n"
    mode: str = "answer"  # answer | answer_close | close | silent
    hold: asyncio.Event | None = None  # if given, each connection waits until it is set
    seen: asyncio.Queue[Seen] = field(default_factory=asyncio.Queue)
    open_now: int = 0
    open_most: int = 0
    opened: asyncio.Event = field(default_factory=asyncio.Event)  # set on each new connection
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.open_now += 1
        self.open_most = max(self.open_most, self.open_now)
        self.opened.set()
        try:
            if self.hold is not None:
                await self.hold.wait()
            line = await reader.readline()
            if self.mode.startswith("answer"):
                writer.write(self.answer)
                await writer.drain()
            seen = Seen(line, b"")
            if self.mode in ("answer", "silent"):
                try:
                    seen.rest = await reader.read()  # until the client goes
                except ConnectionResetError:
                    seen.reset = True
            await self.seen.put(seen)
        finally:
            self.open_now -= 1
            self._writers.discard(writer)
            writer.close()

    def close_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()


@contextlib.asynccontextmanager
async def serving(host: str) -> AsyncIterator[Receiver]:
    """A real listener on an OS-chosen port: no window for another process to take it."""
    receiver = Receiver(host=host)
    server = await asyncio.start_server(receiver.handle, host, 0, limit=LINE_LIMIT)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        receiver.close_all()
        await server.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving("127.0.0.1") as recv:
        yield recv


@pytest.fixture
async def transport() -> AsyncIterator[TcpTransport]:
    transport = TcpTransport()
    try:
        yield transport
    finally:
        await transport.aclose()


def delivery(target: TcpTarget, run_id: str = "run-1", payload: Any = PAYLOAD) -> Delivery:
    return Delivery(
        run_id=run_id,
        attempt=3,
        job_id="job-42",
        namespace="billing",
        key="nightly",
        scheduled_at=SCHEDULED_AT,
        fired_at=SCHEDULED_AT + 1_500,
        target=cast(Target, target),  # TcpTarget joins the union when the registry takes it in
        payload=payload,
    )


def to(recv: Receiver, run_id: str = "run-1", timeout: float = 5, ack: bool = True) -> Delivery:
    return delivery(TcpTarget(recv.host, recv.port, timeout=timeout, ack=ack), run_id)


async def next_seen(recv: Receiver) -> Seen:
    return await asyncio.wait_for(recv.seen.get(), 5)


async def test_frame_is_one_line_with_every_field(
    receiver: Receiver, transport: TcpTransport
) -> None:
    result = await transport.deliver(to(receiver, run_id="run-7"))

    assert result.outcome is AttemptOutcome.SUCCESS
    assert result.retryable is False
    assert result.response == "OK"
    assert result.error is None
    seen = await next_seen(receiver)
    assert seen.line.endswith(b"\n") and seen.line.count(b"\n") == 1
    expected = {
        "run_id": "run-7",
        "attempt": 3,
        "idempotency_key": "run-7",
        "namespace": "billing",
        "job_key": "nightly",
        "scheduled_at": to_iso(SCHEDULED_AT),
        "payload": PAYLOAD,
    }
    assert seen.line == orjson.dumps(expected) + b"\n"  # compact, fields in this order
    assert orjson.loads(seen.line) == expected
    assert orjson.loads(seen.line)["scheduled_at"] == "2026-01-01T00:00:00Z"
    assert orjson.loads(seen.line)["payload"]["note"] == "line one\nline two\r\n"
    assert (seen.rest, seen.reset) == (b"", False)  # one message, then a clean close


@pytest.mark.parametrize(
    "answer",
    [b"OK\n", b"ok\r\n", b"  OK  \n", b'{"ok": true}\n', b'{"ok":true,"note":"x"}\n', b"OK"],
)
async def test_acknowledged(receiver: Receiver, transport: TcpTransport, answer: bytes) -> None:
    receiver.answer = answer
    receiver.mode = "answer" if answer.endswith(b"\n") else "answer_close"

    result = await transport.deliver(to(receiver))

    assert result.outcome is AttemptOutcome.SUCCESS
    assert result.retryable is False
    assert result.response == answer.decode().strip()
    assert result.error is None


async def test_fail_with_a_reason_is_a_retryable_failure(
    receiver: Receiver, transport: TcpTransport
) -> None:
    receiver.answer = b"FAIL disk full\n"

    result = await transport.deliver(to(receiver))

    assert result.outcome is AttemptOutcome.FAILURE
    assert result.retryable is True
    assert result.error == "receiver replied FAIL: disk full"
    assert result.response == "FAIL disk full"


@pytest.mark.parametrize("answer", [b"FAIL\n", b"fail \r\n", b"FAIL"])
async def test_bare_fail_is_a_retryable_failure(
    receiver: Receiver, transport: TcpTransport, answer: bytes
) -> None:
    receiver.answer = answer
    receiver.mode = "answer" if answer.endswith(b"\n") else "answer_close"

    result = await transport.deliver(to(receiver))

    assert (result.outcome, result.retryable) == (AttemptOutcome.FAILURE, True)
    assert result.error == "receiver replied FAIL"


async def test_json_not_ok_with_retry_false_is_final(
    receiver: Receiver, transport: TcpTransport
) -> None:
    receiver.answer = b'{"ok":false,"error":"unknown order","retry":false}\n'

    result = await transport.deliver(to(receiver))

    assert result.outcome is AttemptOutcome.FAILURE
    assert result.retryable is False
    assert result.error == "receiver replied ok=false: unknown order"


@pytest.mark.parametrize(
    "answer", [b'{"ok":false}\n', b'{"ok":false,"retry":true}\n', b'{"ok":false,"retry":"no"}\n']
)
async def test_json_not_ok_is_retried_unless_retry_is_false(
    receiver: Receiver, transport: TcpTransport, answer: bytes
) -> None:
    receiver.answer = answer

    result = await transport.deliver(to(receiver))

    assert (result.outcome, result.retryable) == (AttemptOutcome.FAILURE, True)
    assert result.error == "receiver replied ok=false"


@pytest.mark.parametrize(
    "answer",
    [
        b"\n",
        b"okay\n",
        b"HTTP/1.1 200 OK\r\n",
        b'{"ok":"yes"}\n',
        b'{"ok":1}\n',
        b"{oops\n",
        b"[true]\n",
        b"\xff\xfe\n",
        b"FAILED\n",
    ],
)
async def test_anything_else_is_a_retryable_failure(
    receiver: Receiver, transport: TcpTransport, answer: bytes
) -> None:
    receiver.answer = answer

    result = await transport.deliver(to(receiver))

    assert (result.outcome, result.retryable) == (AttemptOutcome.FAILURE, True)
    assert result.error is not None and result.error.startswith("unrecognised acknowledgement")


async def test_overlong_answer_is_a_retryable_failure(
    receiver: Receiver, transport: TcpTransport
) -> None:
    receiver.answer = b"O" * (ACK_LIMIT + 10) + b"\n"

    result = await transport.deliver(to(receiver))

    assert (result.outcome, result.retryable) == (AttemptOutcome.FAILURE, True)
    assert result.error == "acknowledgement longer than 64 KiB"
    assert result.response is None


async def test_closed_without_answer_is_a_retryable_error(
    receiver: Receiver, transport: TcpTransport
) -> None:
    receiver.mode = "close"

    result = await transport.deliver(to(receiver))

    assert (result.outcome, result.retryable) == (AttemptOutcome.ERROR, True)
    assert result.error == "connection closed before an acknowledgement"
    assert (await next_seen(receiver)).line.endswith(b"\n")


async def test_silent_receiver_times_out(receiver: Receiver, transport: TcpTransport) -> None:
    receiver.mode = "silent"
    started = time.monotonic()

    result = await transport.deliver(to(receiver, timeout=0.3))

    assert 0.25 <= time.monotonic() - started < 1.5
    assert (result.outcome, result.retryable) == (AttemptOutcome.TIMEOUT, True)
    assert result.error == "timed out after 0.3s while waiting for the acknowledgement"
    seen = await next_seen(receiver)  # the transport dropped the connection on timeout
    assert seen.rest == b"" and seen.line.endswith(b"\n")


async def test_nothing_listening_is_a_retryable_error(transport: TcpTransport) -> None:
    started = time.monotonic()

    result = await transport.deliver(delivery(TcpTarget("127.0.0.1", free_port(), timeout=2)))

    assert time.monotonic() - started < 1.5
    assert (result.outcome, result.retryable) == (AttemptOutcome.ERROR, True)
    assert result.error is not None and result.error.startswith("ConnectionRefusedError")


async def test_unknown_host_is_a_retryable_error(transport: TcpTransport) -> None:
    result = await transport.deliver(delivery(TcpTarget("no-such-host.invalid", 9, timeout=2)))

    assert result.outcome in (AttemptOutcome.ERROR, AttemptOutcome.TIMEOUT)
    assert result.retryable is True


async def test_without_ack_succeeds_once_written(
    receiver: Receiver, transport: TcpTransport
) -> None:
    receiver.mode = "silent"  # would never answer: the transport must not wait for it
    started = time.monotonic()

    result = await transport.deliver(to(receiver, ack=False, timeout=3))

    assert time.monotonic() - started < 1
    assert (result.outcome, result.retryable) == (AttemptOutcome.SUCCESS, False)
    assert result.response is None
    seen = await next_seen(receiver)
    assert orjson.loads(seen.line)["payload"] == PAYLOAD
    assert (seen.rest, seen.reset) == (b"", False)  # a clean close right after the line


async def test_large_payload_without_ack_arrives_whole(
    receiver: Receiver, transport: TcpTransport
) -> None:
    receiver.mode = "silent"
    big = {"blob": "x\n" * 2_000_000}  # ~4 MB once escaped: far beyond socket buffers

    target = TcpTarget(receiver.host, receiver.port, timeout=10, ack=False)

    result = await transport.deliver(delivery(target, payload=big))

    assert result.outcome is AttemptOutcome.SUCCESS
    seen = await next_seen(receiver)
    assert orjson.loads(seen.line)["payload"] == big


async def test_ipv6_loopback(transport: TcpTransport) -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback on this machine: {exc}")
    async with serving("::1") as recv:
        result = await transport.deliver(to(recv, run_id="run-6"))

        assert result.outcome is AttemptOutcome.SUCCESS
        assert orjson.loads((await next_seen(recv)).line)["run_id"] == "run-6"


async def test_connections_per_receiver_are_capped(receiver: Receiver) -> None:
    transport = TcpTransport(per_receiver=2)
    receiver.hold = asyncio.Event()
    runs = [
        asyncio.create_task(transport.deliver(to(receiver, run_id=f"run-{i}"))) for i in range(5)
    ]
    async with asyncio.timeout(5):
        while receiver.open_now < 2:
            await receiver.opened.wait()
            receiver.opened.clear()
    await asyncio.sleep(0.1)  # a third connection, were it allowed, would show up by now
    assert receiver.open_now == 2

    receiver.hold.set()
    results = await asyncio.gather(*runs)

    assert all(r.outcome is AttemptOutcome.SUCCESS for r in results)
    assert receiver.open_most == 2
    assert sorted([orjson.loads((await next_seen(receiver)).line)["run_id"] for _ in runs]) == [
        f"run-{i}" for i in range(5)
    ]
    assert transport._slots == {}  # caps of idle receivers are not kept


async def test_waiting_for_a_slot_counts_against_the_timeout(receiver: Receiver) -> None:
    transport = TcpTransport(per_receiver=1)
    receiver.mode = "silent"
    first = asyncio.create_task(transport.deliver(to(receiver, timeout=1)))
    await asyncio.sleep(0.1)

    second = await transport.deliver(to(receiver, timeout=0.2))

    assert second.outcome is AttemptOutcome.TIMEOUT
    assert second.error == "timed out after 0.2s while waiting for a connection slot"
    assert (await first).outcome is AttemptOutcome.TIMEOUT


async def test_transport_is_reusable_after_aclose(
    receiver: Receiver, transport: TcpTransport
) -> None:
    await transport.aclose()

    result = await transport.deliver(to(receiver))

    assert result.outcome is AttemptOutcome.SUCCESS


async def test_unencodable_payload_is_a_final_failure(transport: TcpTransport) -> None:
    target = TcpTarget("127.0.0.1", free_port())

    result = await transport.deliver(delivery(target, payload={"n": 2**70}))

    assert (result.outcome, result.retryable) == (AttemptOutcome.FAILURE, False)
    assert result.error is not None and "cannot be encoded" in result.error
