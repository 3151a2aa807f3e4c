"""HTTP(S) callbacks: JSON bodies, idempotency headers; plain http through the lean keep-alive
client of http1.py, the rest (https, followed redirects) through one pooled aiohttp session."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import aiohttp
import httptools
import orjson

from cronwheel.contracts import Delivery, DeliveryResult
from cronwheel.delivery import (
    METADATA_NAMES,
    RESPONSE_LIMIT,
    USER_AGENT,
    metadata_headers,
    metadata_values,
)
from cronwheel.delivery.answers import refused_code
from cronwheel.delivery.guard import Lookup, guarded_connector, refusal_of, refused, system_lookup
from cronwheel.delivery.http1 import Endpoint, Http1Client
from cronwheel.domain.delayjob_body import UNIT_MS, body_due
from cronwheel.domain.netpolicy import NetPolicy
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.targets import SUCCESS_CODE_OK, HttpTarget

# Statuses worth retrying; any other 4xx means the request itself is wrong.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})
# An answer whose `code` decides is read whole up to this size, so that a long message cannot
# cut a {"code": "fail", ...} short into an unparsable (and so successful) answer.
CODE_ANSWER_LIMIT = 65_536


def classify(status: int) -> tuple[AttemptOutcome, bool]:
    if 200 <= status < 300:
        return AttemptOutcome.SUCCESS, False
    return AttemptOutcome.FAILURE, status >= 500 or status in RETRYABLE_4XX


def _error(status: int, location: str | None) -> str:
    if 300 <= status < 400 and location is not None:
        return f"HTTP {status}: redirect to {location[:200]} not followed (target policy)"
    return f"HTTP {status}"


def read_code(status: int, text: str) -> DeliveryResult:
    """A 2xx under the delay-job contract: a code other than "ok" is a failure to retry."""
    code = refused_code(text)
    kept = text[:RESPONSE_LIMIT]
    if code is None:
        return DeliveryResult(AttemptOutcome.SUCCESS, False, status, kept)
    error = f"receiver answered code {code[:100]!r}"
    return DeliveryResult(AttemptOutcome.FAILURE, True, status, kept, error)


class HttpTransport:
    def __init__(
        self, limit: int = 512, limit_per_host: int = 128, policy: NetPolicy | None = None,
        lookup: Lookup = system_lookup, delayjob_unit: str = UNIT_MS,
    ) -> None:
        self._limit = limit
        self._delayjob_unit = delayjob_unit  # of triggerTime in delay-job callback bodies
        self._limit_per_host = limit_per_host
        self._policy = policy or NetPolicy()
        self._lookup = lookup
        self._session: aiohttp.ClientSession | None = None
        self._lean: Http1Client | None = None  # plain-http targets (see http1.py)
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = guarded_connector(  # the target guard, on each connection's address
                self._policy, self._lookup, limit=self._limit,
                limit_per_host=self._limit_per_host, ttl_dns_cache=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, json_serialize=lambda v: orjson.dumps(v).decode(),
                headers={"User-Agent": USER_AGENT},  # a target's own headers still win
            )
        return self._session

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        target = delivery.target
        assert isinstance(target, HttpTarget)
        body = None
        if target.method != "GET":
            payload = delivery.payload
            if target.success == SUCCESS_CODE_OK:  # the delay-job contract: the time it was due
                payload = body_due(payload, delivery.scheduled_at, self._delayjob_unit)
            body = orjson.dumps(payload)
        endpoint = None if self._policy.follow_redirects else _endpoint(target.url)
        try:
            if endpoint is not None:
                request = _lean_request(target, endpoint, delivery, body)
                if request is None:  # a target header has one of our names
                    request = _request_bytes(target.method, endpoint,
                                             _headers(target, delivery, body), body)
                return await self._send_lean(target, endpoint, request)
            return await self._send_aiohttp(target, _headers(target, delivery, body), body)
        except TimeoutError:
            return DeliveryResult(
                AttemptOutcome.TIMEOUT, True, error=f"no answer within {target.timeout:g}s"
            )
        except (aiohttp.ClientError, OSError, httptools.HttpParserError) as exc:
            refusal = refusal_of(exc)
            if refusal is not None:
                return refused(refusal)
            return DeliveryResult(AttemptOutcome.ERROR, True, error=f"{type(exc).__name__}: {exc}")

    async def _send_lean(
        self, target: HttpTarget, endpoint: Endpoint, request: bytes
    ) -> DeliveryResult:
        """Plain http, redirects not followed: the keep-alive client of http1.py."""
        if self._lean is None:
            self._lean = Http1Client(self._policy, self._lookup)
        answer = await self._lean.request(endpoint, request, _keep(target), target.timeout)
        return answered(target, answer.status, answer.body, answer.location)

    async def _send_aiohttp(
        self, target: HttpTarget, headers: dict[str, str], body: bytes | None
    ) -> DeliveryResult:
        timeout = self._timeouts.get(target.timeout)
        if timeout is None:
            timeout = self._timeouts[target.timeout] = aiohttp.ClientTimeout(total=target.timeout)
        async with self._client().request(
            target.method, target.url, data=body, headers=headers, timeout=timeout,
            allow_redirects=self._policy.follow_redirects,
        ) as response:
            answer = await response.content.read(_keep(target))
            return answered(target, response.status, answer, response.headers.get("Location"))

    async def aclose(self) -> None:
        if self._lean is not None:
            self._lean.close()
        if self._session is not None:
            await self._session.close()


def _keep(target: HttpTarget) -> int:
    """How much of an answer is read: all of a delay-job answer (its `code` decides)."""
    return CODE_ANSWER_LIMIT if target.success == SUCCESS_CODE_OK else RESPONSE_LIMIT


def answered(target: HttpTarget, status: int, body: bytes, location: str | None) -> DeliveryResult:
    """The result of an answer, whichever client got it."""
    outcome, retryable = classify(status)
    if outcome is AttemptOutcome.SUCCESS and target.success == SUCCESS_CODE_OK:
        return read_code(status, body.decode("utf-8", "replace"))
    text = body[:RESPONSE_LIMIT].decode("utf-8", "replace")
    error = None if outcome is AttemptOutcome.SUCCESS else _error(status, location)
    return DeliveryResult(outcome, retryable, status, text, error)


@functools.lru_cache(maxsize=4096)
def _endpoint(url: str) -> Endpoint | None:
    return Endpoint.of(url)


def _headers(target: HttpTarget, delivery: Delivery, body: bytes | None) -> dict[str, str]:
    """The target's headers, then ours (ours win a name both have), then the body's type."""
    headers = dict(target.headers)
    headers.update(metadata_headers(delivery))
    if body is not None:
        headers["Content-Type"] = "application/json"
    return headers


def _opening(method: str, endpoint: Endpoint, names: Iterable[str]) -> list[str]:
    """The request line, Host, User-Agent (unless the headers `names` have one: a target's
    own wins, as with aiohttp's session default) and Accept."""
    lines = [f"{method} {endpoint.target} HTTP/1.1", f"Host: {endpoint.host_header}"]
    if not any(name.lower() == "user-agent" for name in names):
        lines.append(f"User-Agent: {USER_AGENT}")
    lines.append("Accept: */*")
    return lines


def _request_bytes(
    method: str, endpoint: Endpoint, headers: dict[str, str], body: bytes | None
) -> bytes:
    """The request head (and body) with `headers` (see `_headers`)."""
    lines = _opening(method, endpoint, headers)
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head if body is None else head + body


# Our headers as head lines, filled per delivery by one format call; and the names which, in
# a target's headers, send a request through `_request_bytes` (where ours replace theirs).
_METADATA_LINES = "".join(f"{name}: {{}}\r\n" for name in METADATA_NAMES)
_OURS = frozenset(name.lower() for name in (*METADATA_NAMES, "Content-Type", "Content-Length"))


@functools.lru_cache(maxsize=4096)
def _head_start(
    method: str, endpoint: Endpoint, headers: tuple[tuple[str, str], ...]
) -> str | None:
    """What every request to a target starts with, up to its own headers; None if one of
    those has a name of ours."""
    if any(name.lower() in _OURS for name, _value in headers):
        return None
    lines = _opening(method, endpoint, (name for name, _value in headers))
    lines.extend(f"{name}: {value}" for name, value in headers)
    return "\r\n".join(lines) + "\r\n"


def _lean_request(
    target: HttpTarget, endpoint: Endpoint, delivery: Delivery, body: bytes | None
) -> bytes | None:
    """The bytes `_request_bytes` makes for this delivery, from the target's cached start
    (None when that has a name of ours). A callback's head cost ~10 µs the general way."""
    start = _head_start(target.method, endpoint, target.headers)
    if start is None:
        return None
    ours = _METADATA_LINES.format(*metadata_values(delivery))
    if body is None:
        return f"{start}{ours}\r\n".encode()
    tail = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return f"{start}{ours}{tail}".encode() + body
