"""A lean HTTP/1.1 keep-alive client for plain-http callbacks, on asyncio protocols + httptools.

Why not aiohttp for these: its request machinery (URL objects, header multidicts, payload
registry, tracing, a timer per request) cost ~90 µs of the event loop per callback, the
largest single cost of a node delivering thousands of callbacks a second. This client builds
the request as bytes and keeps idle connections per endpoint; aiohttp still serves what this
one does not (https, followed redirects, URLs that need encoding: see `Endpoint.of`).

The target guard runs on every new connection: the host is looked up (answers kept for
`dns_ttl` seconds, as aiohttp's connector kept them) and `checked_addresses` drops every
address the policy refuses before one is connected to. A reused connection goes where a
checked one went.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

from cronwheel.delivery.guard import Lookup, checked_addresses, system_lookup
from cronwheel.domain.netpolicy import NetPolicy

IDLE_S = 15.0  # an idle connection older than this is closed, not reused (aiohttp's default)
MAX_IDLE = 128  # idle connections kept per endpoint
BODY_CAP = 1 << 20  # a longer answer is cut here and its connection closed, not drained


class Disconnected(ConnectionError):
    """The server closed the connection before its answer was complete."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What a URL means on the wire: whom to connect to and what to put in the request."""

    host: str  # to look up (brackets removed)
    port: int
    host_header: str
    target: str  # the request target: path and query

    @classmethod
    def of(cls, url: str) -> Endpoint | None:
        """The endpoint of a plain `http://` URL this client sends as written, else None
        (https, credentials in the URL, characters that need encoding: aiohttp's job)."""
        if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
            return None
        try:
            parts = urlsplit(url)
            port = parts.port or 80
        except ValueError:
            return None
        host = parts.hostname
        if parts.scheme != "http" or not host or "@" in parts.netloc:
            return None
        shown = f"[{host}]" if ":" in host else host
        header = shown if port == 80 else f"{shown}:{port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(host, port, header, target)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes  # the first `keep` bytes asked for
    location: str | None  # the Location header, for a redirect's error message


class _Connection(asyncio.Protocol):
    """One socket; one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._keep = 0
        self._reset()

    def _reset(self) -> None:
        self._body = bytearray()
        self._size = 0
        self._location: str | None = None
        self._headers_done = False
        self._got_bytes = False
        self._reusable = False

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)
            return
        if self._size > BODY_CAP and self._waiter is not None:
            self._finish()  # enough of an endless answer: the connection is not reused

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done:  # a body that ends with the connection
            self._finish()
        else:
            self._fail(Disconnected("server closed the connection before answering")
                       if exc is None else exc)

    # -- httptools callbacks --

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"location":
            self._location = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        room = self._keep - len(self._body)
        if room > 0:
            self._body += body[:room]
        self._size += len(body)

    def on_message_complete(self) -> None:
        self._reusable = self._parser.should_keep_alive()
        self._finish()

    # -- the exchange --

    def _finish(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            status = self._parser.get_status_code()
            waiter.set_result(Answer(status, bytes(self._body), self._location))

    def _fail(self, exc: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    async def exchange(self, request: bytes, keep: int, deadline: float) -> Answer:
        """Send one request; its answer, keeping the first `keep` bytes of the body.
        TimeoutError at `deadline` (loop time), the connection then closed: one timer
        handle, cheaper than a timeout context per callback."""
        assert self.transport is not None
        self._reset()
        self._keep = keep
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        timer = loop.call_at(deadline, self._expire)
        self.transport.write(request)
        try:
            return await self._waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _expire(self) -> None:
        self._fail(TimeoutError())

    @property
    def got_bytes(self) -> bool:
        return self._got_bytes

    @property
    def reusable(self) -> bool:
        return self._reusable and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Http1Client:
    """Keep-alive connections per endpoint, each opened to an address the guard allowed."""

    def __init__(
        self, policy: NetPolicy, lookup: Lookup = system_lookup, dns_ttl: float = 60.0
    ) -> None:
        self._policy = policy
        self._lookup = lookup
        self._dns_ttl = dns_ttl
        self._answers: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}

    async def request(
        self, endpoint: Endpoint, request: bytes, keep: int, timeout: float
    ) -> Answer:
        """One request on a pooled connection (or a new, checked one), all within `timeout`
        seconds (TimeoutError). A reused connection the server had closed is retried once
        on a new one, as clients do for a stale keep-alive: nothing of an answer had come,
        and the idempotency key covers a repeat."""
        deadline = asyncio.get_running_loop().time() + timeout
        connection, reused = self._pooled(endpoint)
        if connection is None:
            connection = await self._connect(endpoint, deadline)
        try:
            answer = await connection.exchange(request, keep, deadline)
        except Disconnected:
            if not reused or connection.got_bytes:
                raise
            connection = await self._connect(endpoint, deadline)
            answer = await self._exchange_once(connection, request, keep, deadline)
        except BaseException:
            connection.close()  # a timeout or a cancel mid-exchange: its state is unknown
            raise
        self._release(endpoint, connection)
        return answer

    async def _exchange_once(
        self, connection: _Connection, request: bytes, keep: int, deadline: float
    ) -> Answer:
        try:
            return await connection.exchange(request, keep, deadline)
        except BaseException:
            connection.close()
            raise

    def _pooled(self, endpoint: Endpoint) -> tuple[_Connection | None, bool]:
        idle = self._idle.get((endpoint.host, endpoint.port))
        if not idle:
            return None, False
        oldest_ok = time.monotonic() - IDLE_S
        while idle:
            connection = idle.pop()  # the most recent: least likely to have been closed
            if not connection.closed and connection.idle_since >= oldest_ok:
                return connection, True
            connection.close()
        return None, False

    def _release(self, endpoint: Endpoint, connection: _Connection) -> None:
        if not connection.reusable:
            connection.close()
            return
        idle = self._idle.setdefault((endpoint.host, endpoint.port), deque())
        if len(idle) >= MAX_IDLE:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(self, endpoint: Endpoint, deadline: float) -> _Connection:
        async with asyncio.timeout_at(deadline):
            return await self._connect_checked(endpoint)

    async def _connect_checked(self, endpoint: Endpoint) -> _Connection:
        """A connection to the first allowed address that answers (TargetRefused if the
        policy allows none of them)."""
        addresses = await checked_addresses(
            endpoint.host, endpoint.port, self._policy, self._cached_lookup
        )
        loop = asyncio.get_running_loop()
        error: OSError = OSError(f"no address to connect to for {endpoint.host}")
        for address in addresses:
            try:
                _, connection = await loop.create_connection(
                    _Connection, address, endpoint.port)
            except OSError as exc:
                error = exc
            else:
                return connection
        raise error

    async def _cached_lookup(self, host: str, port: int) -> list[str]:
        key = (host, port)
        now = time.monotonic()
        found = self._answers.get(key)
        if found is not None and found[0] > now:
            return found[1]
        addresses = await self._lookup(host, port)
        self._answers[key] = (now + self._dns_ttl, addresses)
        return addresses

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
