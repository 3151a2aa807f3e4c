"""The lean keep-alive client behind plain-http callbacks (delivery/http1.py), against a
real loopback server written for it: reuse, stale connections, answers it must read right,
and the target guard on each new connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import uvloop

from cronwheel.contracts import Delivery, DeliveryResult
from cronwheel.delivery import RESPONSE_LIMIT
from cronwheel.delivery.guard import TargetRefused
from cronwheel.delivery.http import HttpTransport
from cronwheel.delivery.http1 import Endpoint, Http1Client
from cronwheel.domain.netpolicy import NetPolicy
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.targets import HttpTarget


@dataclass
class Wire:
    """An HTTP/1.1 server on loopback that answers each request with `answer(n)` (n counts
    requests from 1), and drops a connection instead of answering when told to."""

    answers: dict[int, bytes] = field(default_factory=dict)
    drop: set[int] = field(default_factory=set)  # requests to read and then hang up on
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    def answer(self, n: int) -> bytes:
        return self.answers.get(n, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                self.requests.append(head + await reader.readexactly(length))
                n = len(self.requests)
                if n in self.drop:
                    break
                writer.write(self.answer(n))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    state = Wire()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


def delivery(url: str, run_id: str = "run-1", timeout: float = 5) -> Delivery:
    return Delivery(run_id=run_id, attempt=1, job_id="job-1", namespace="default", key="k",
                    scheduled_at=0, fired_at=0, target=HttpTarget(url, timeout=timeout),
                    payload={"n": 1})


async def send_all(wire: Wire, count: int, path: str = "/cb") -> list[DeliveryResult]:
    transport = HttpTransport()
    try:
        return [await transport.deliver(delivery(f"http://127.0.0.1:{wire.port}{path}",
                                                 f"run-{i}"))
                for i in range(count)]
    finally:
        await transport.aclose()


async def test_callbacks_to_one_receiver_share_a_kept_alive_connection(wire: Wire) -> None:
    results = await send_all(wire, 3, "/cb?x=1")
    assert [r.outcome for r in results] == [AttemptOutcome.SUCCESS] * 3
    assert [r.response for r in results] == ["ok"] * 3
    assert wire.connections == 1
    head = wire.requests[2].decode()
    assert head.startswith("POST /cb?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{wire.port}\r\n" in head
    assert "Idempotency-Key: run-2\r\n" in head
    assert "Content-Type: application/json\r\n" in head
    assert head.endswith('\r\n\r\n{"n":1}')


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("POST", (), ["User-Agent: cronwheel/", "Accept: */*", "Idempotency-Key: run-1",
                      "Cronwheel-Attempt: 1", "Cronwheel-Run-Id: run-1", "Cronwheel-Job-Key: k",
                      "Cronwheel-Namespace: default",
                      "Cronwheel-Scheduled-At: 1970-01-01T00:00:00.000001Z",
                      "Content-Type: application/json", "Content-Length: 7"]),
        ("GET", (("X-Team", "a"), ("user-agent", "theirs")),
         ["Accept: */*", "X-Team: a", "user-agent: theirs", "Idempotency-Key: run-1"]),
        # a target header with one of our names: ours replace its value, in its place
        ("POST", (("idempotency-key", "x"), ("Idempotency-Key", "theirs"), ("X-B", "b")),
         ["idempotency-key: x", "Idempotency-Key: run-1", "X-B: b", "Cronwheel-Attempt: 1"]),
        ("POST", (("Content-Type", "text/plain"),),
         ["Content-Type: application/json", "Idempotency-Key: run-1"]),
    ],
)
async def test_the_request_head_carries_the_target_headers_then_ours(
    wire: Wire, method: str, headers: tuple[tuple[str, str], ...], expected: list[str]
) -> None:
    target = HttpTarget(f"http://127.0.0.1:{wire.port}/cb", method=method, headers=headers)
    transport = HttpTransport()
    try:
        base = delivery(target.url)
        sent = Delivery(**{**{f: getattr(base, f) for f in base.__slots__},
                           "target": target, "scheduled_at": 1})
        assert (await transport.deliver(sent)).outcome is AttemptOutcome.SUCCESS
    finally:
        await transport.aclose()
    head, _, body = wire.requests[0].decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    assert lines[:2] == [f"{method} /cb HTTP/1.1", f"Host: 127.0.0.1:{wire.port}"]
    found = [next(i for i, line in enumerate(lines) if line.startswith(want))
             for want in expected]
    assert found == sorted(found)  # each expected line is there, in this order
    assert sum(line.lower().startswith("user-agent:") for line in lines) == 1
    assert sum(line.startswith("Content-Type:") for line in lines) == (method == "POST")
    assert body == ('{"n":1}' if method == "POST" else "")


async def test_a_receiver_that_closes_each_connection_gets_a_new_one_each_time(
    wire: Wire,
) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    wire.answers = {1: closing, 2: closing}
    results = await send_all(wire, 3)
    assert [r.outcome for r in results] == [AttemptOutcome.SUCCESS] * 3
    assert wire.connections == 3


async def test_a_kept_alive_connection_dropped_without_an_answer_is_retried_once(
    wire: Wire,
) -> None:
    """The stale keep-alive case: the request goes again, on a new connection, under the
    same idempotency key."""
    wire.drop = {2}
    results = await send_all(wire, 2)
    assert [r.outcome for r in results] == [AttemptOutcome.SUCCESS] * 2
    assert wire.connections == 2
    assert [b"Idempotency-Key: run-1" in r for r in wire.requests] == [False, True, True]


async def test_a_new_connection_dropped_without_an_answer_fails_the_attempt(wire: Wire) -> None:
    wire.drop = {1}
    [result] = await send_all(wire, 1)
    assert result.outcome is AttemptOutcome.ERROR and result.retryable
    assert result.error is not None and "closed the connection" in result.error
    assert len(wire.requests) == 1


async def test_chunked_and_long_answers_are_read_and_cut(wire: Wire) -> None:
    chunk = b"x" * 5000
    wire.answers = {
        1: b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n"
           + b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n",
        2: b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere.test/\r\nContent-Length: 0\r\n\r\n",
    }
    busy, moved, ok = await send_all(wire, 3)
    assert busy.outcome is AttemptOutcome.FAILURE and busy.retryable
    assert busy.status_code == 503 and busy.response == "x" * RESPONSE_LIMIT
    assert moved.status_code == 302 and not moved.retryable
    assert moved.error == (
        "HTTP 302: redirect to http://elsewhere.test/ not followed (target policy)")
    assert ok.outcome is AttemptOutcome.SUCCESS
    assert wire.connections == 1  # the chunked answer was read to its end, the connection kept


async def test_an_answer_that_never_comes_times_out_and_its_connection_is_closed(
    wire: Wire,
) -> None:
    wire.answers = {1: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart"}  # never ends
    transport = HttpTransport()
    url = f"http://127.0.0.1:{wire.port}/cb"
    try:
        late = await transport.deliver(delivery(url, timeout=0.2))
        after = await transport.deliver(delivery(url, "run-2"))
    finally:
        await transport.aclose()
    assert late.outcome is AttemptOutcome.TIMEOUT and late.retryable
    assert after.outcome is AttemptOutcome.SUCCESS
    assert wire.connections == 2


class Names:
    """A lookup whose answers a test changes, counting the questions."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.asked = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked += 1
        return self.addresses


async def test_each_new_connection_checks_the_address_the_name_resolves_to_now(
    wire: Wire,
) -> None:
    """DNS rebinding: once the kept answer has expired, a new connection goes only where the
    policy allows, even to a name that was fine a moment ago."""
    names = Names(["127.0.0.1"])
    client = Http1Client(NetPolicy(), names, dns_ttl=0)
    endpoint = Endpoint.of(f"http://receiver.test:{wire.port}/cb")
    assert endpoint is not None
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    wire.answers = {1: closing}
    request = b"GET /cb HTTP/1.1\r\nHost: receiver.test\r\n\r\n"
    try:
        assert (await client.request(endpoint, request, 100, 5)).status == 200
        names.addresses = ["169.254.169.254"]
        with pytest.raises(TargetRefused, match=r"169\.254\.169\.254"):
            await client.request(endpoint, request, 100, 5)
    finally:
        client.close()
    assert names.asked == 2 and len(wire.requests) == 1


async def test_answers_are_kept_for_the_ttl_and_still_checked(wire: Wire) -> None:
    names = Names(["127.0.0.1"])
    endpoint = Endpoint.of(f"http://receiver.test:{wire.port}/cb")
    assert endpoint is not None
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    wire.answers = {1: closing, 2: closing}
    request = b"GET /cb HTTP/1.1\r\nHost: receiver.test\r\n\r\n"
    strict = Http1Client(NetPolicy.from_settings(allow=[]), names)
    client = Http1Client(NetPolicy(), names)
    try:
        for _ in range(2):
            assert (await client.request(endpoint, request, 100, 5)).status == 200
        with pytest.raises(TargetRefused, match="internal address"):
            await strict.request(endpoint, request, 100, 5)
    finally:
        client.close()
        strict.close()
    assert wire.connections == 2 and names.asked == 2  # one question per client


@pytest.mark.parametrize(("url", "expected"), [
    ("http://h.test/cb", ("h.test", 80, "h.test", "/cb")),
    ("http://h.test:8080", ("h.test", 8080, "h.test:8080", "/")),
    ("http://[::1]:81/a?b=c#frag", ("::1", 81, "[::1]:81", "/a?b=c")),
    ("https://h.test/cb", None),  # TLS: aiohttp's
    ("http://user:pw@h.test/cb", None),  # credentials: aiohttp's (basic auth)
    ("http://h.test/caf\u00e9", None),  # needs encoding: aiohttp's
    ("http://h.test/a b", None),
])
def test_which_urls_the_lean_client_sends(
    url: str, expected: tuple[str, int, str, str] | None
) -> None:
    endpoint = Endpoint.of(url)
    got = None if endpoint is None else (
        endpoint.host, endpoint.port, endpoint.host_header, endpoint.target)
    assert got == expected


def test_the_client_works_on_uvloop_the_servers_loop() -> None:
    """uvloop's transports are not asyncio.Transport subclasses, and its callbacks run in
    another order: a concurrent burst on the loop the server runs."""
    async def burst() -> list[DeliveryResult]:
        state = Wire()
        server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
        state.port = server.sockets[0].getsockname()[1]
        transport = HttpTransport()
        url = f"http://127.0.0.1:{state.port}/cb"
        try:
            return await asyncio.gather(*(transport.deliver(delivery(url, f"run-{i}"))
                                          for i in range(50)))
        finally:
            await transport.aclose()
            server.close()

    results = uvloop.run(burst())
    assert [r.outcome for r in results] == [AttemptOutcome.SUCCESS] * 50
