"""HTTP(S) callbacks with aiohttp: one pooled session, JSON bodies, idempotency headers."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from cronwheel.contracts import Delivery, DeliveryResult
from cronwheel.delivery import RESPONSE_LIMIT, USER_AGENT, metadata_headers
from cronwheel.delivery.answers import refused_code
from cronwheel.delivery.guard import Lookup, guarded_connector, refusal_of, refused, system_lookup
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


def _error(response: aiohttp.ClientResponse) -> str:
    if 300 <= response.status < 400 and "Location" in response.headers:
        where = response.headers["Location"][:200]
        return f"HTTP {response.status}: redirect to {where} not followed (target policy)"
    return f"HTTP {response.status}"


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
        headers = dict(target.headers)
        headers.update(metadata_headers(delivery))
        body = None
        if target.method != "GET":
            headers["Content-Type"] = "application/json"
            payload = delivery.payload
            if target.success == SUCCESS_CODE_OK:  # the delay-job contract: the time it was due
                payload = body_due(payload, delivery.scheduled_at, self._delayjob_unit)
            body = orjson.dumps(payload)
        timeout = self._timeouts.get(target.timeout)
        if timeout is None:
            timeout = self._timeouts[target.timeout] = aiohttp.ClientTimeout(total=target.timeout)
        try:
            async with self._client().request(
                target.method, target.url, data=body, headers=headers, timeout=timeout,
                allow_redirects=self._policy.follow_redirects,
            ) as response:
                outcome, retryable = classify(response.status)
                if outcome is AttemptOutcome.SUCCESS and target.success == SUCCESS_CODE_OK:
                    answer = await response.content.read(CODE_ANSWER_LIMIT)
                    return read_code(response.status, answer.decode("utf-8", "replace"))
                text = (await response.content.read(RESPONSE_LIMIT)).decode("utf-8", "replace")
                error = None if outcome is AttemptOutcome.SUCCESS else _error(response)
                return DeliveryResult(outcome, retryable, response.status, text, error)
        except TimeoutError:
            return DeliveryResult(
                AttemptOutcome.TIMEOUT, True, error=f"no answer within {target.timeout:g}s"
            )
        except (aiohttp.ClientError, OSError) as exc:
            refusal = refusal_of(exc)
            if refusal is not None:
                return refused(refusal)
            return DeliveryResult(AttemptOutcome.ERROR, True, error=f"{type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            raise

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
