"""TCP socket callbacks with asyncio streams: one JSON line per connection, one ack line back.

This is the `SOCKET` callback of the old delay-job API. Each delivery opens a connection to
the target's host:port and writes one frame: a compact JSON object and "\\n"::

    {"run_id": "...", "attempt": 1, "idempotency_key": "...", "namespace": "...",
     "job_key": "...", "scheduled_at": "2026-01-01T00:00:00Z", "payload": <any JSON>}

JSON escapes newlines inside strings, so the frame is exactly one line whatever the payload.

With `ack` (the default) cronwheel then reads one line of at most 64 KiB (the newline, or the
receiver closing the connection, ends it; a trailing "\\r" and surrounding spaces are ignored):

* `OK` (any case), or a JSON object with `"ok": true`: success, the run is done.
* `FAIL` or `FAIL <reason>` (any case): failure, retried per the job's retry policy.
* a JSON object `{"ok": false, "error": "...", "retry": false}`: failure; retried unless
  `retry` is exactly `false`. `error` is optional.
* anything else (an empty line, other text, JSON without a boolean `ok`, a line over 64 KiB):
  failure, retried.
* the connection closed before any byte of an answer: error, retried.
* no answer within the target's timeout: timeout, retried.
* refused connection, unknown host, reset: error, retried.

cronwheel does not half-close its side before the ack: answer after the newline, do not wait
for end of stream. Without `ack` the delivery succeeds once the whole frame is with the
kernel, and the connection is closed.

One connection per delivery, closed afterwards: receivers of the old SOCKET API read one
message per connection, and a fresh connection never inherits a half-read stream from a
timed-out attempt. Connections to one host:port are capped (64 by default) so a backlog
cannot exhaust the receiver; waiting for a slot counts against the delivery's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from cronwheel.contracts import Delivery, DeliveryResult
from cronwheel.delivery import RESPONSE_LIMIT
from cronwheel.delivery.guard import (
    Lookup,
    TargetRefused,
    checked_addresses,
    open_checked,
    refused,
    system_lookup,
)
from cronwheel.domain.netpolicy import NetPolicy
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.tcp_target import TcpTarget
from cronwheel.domain.time import to_iso

ACK_LIMIT = 64 * 1024  # bytes of one acknowledgement line
DEFAULT_PER_RECEIVER = 64  # connections open at once to one host:port


def encode_frame(delivery: Delivery) -> bytes:
    """The one line sent: compact JSON (orjson never emits a raw newline) and "\\n"."""
    frame = {
        "run_id": delivery.run_id,
        "attempt": delivery.attempt,
        "idempotency_key": delivery.idempotency_key,
        "namespace": delivery.namespace,
        "job_key": delivery.key,
        "scheduled_at": to_iso(delivery.scheduled_at),
        "payload": delivery.payload,
    }
    return orjson.dumps(frame) + b"\n"


def _failure(text: str | None, error: str, retryable: bool = True) -> DeliveryResult:
    response = None if text is None else text[:RESPONSE_LIMIT]
    return DeliveryResult(AttemptOutcome.FAILURE, retryable, None, response, error)


def _json_ack(text: str) -> DeliveryResult:
    try:
        answer: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        return _failure(text, "unrecognised acknowledgement: JSON without a boolean 'ok'")
    if answer["ok"]:
        return DeliveryResult(AttemptOutcome.SUCCESS, False, None, text[:RESPONSE_LIMIT])
    reason = answer.get("error")
    error = f"receiver replied ok=false: {reason}" if reason else "receiver replied ok=false"
    return _failure(text, error[:RESPONSE_LIMIT], answer.get("retry") is not False)


def parse_ack(line: bytes) -> DeliveryResult:
    """Read one acknowledgement line (without its newline) as the module docstring says."""
    text = line.decode("utf-8", "replace").strip()
    word, _, reason = text.partition(" ")
    if text.upper() == "OK":
        return DeliveryResult(AttemptOutcome.SUCCESS, False, None, text)
    if word.upper() == "FAIL":
        reason = reason.strip()
        error = f"receiver replied FAIL: {reason}" if reason else "receiver replied FAIL"
        return _failure(text, error[:RESPONSE_LIMIT])
    if text.startswith("{"):
        return _json_ack(text)
    shown = text[:80] if text else "an empty line"
    return _failure(text, f"unrecognised acknowledgement: {shown!r}")


async def read_ack(reader: asyncio.StreamReader) -> DeliveryResult:
    """One line; a receiver closing after a bare `OK` (no newline) still counts."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return DeliveryResult(
                AttemptOutcome.ERROR, True, error="connection closed before an acknowledgement"
            )
        line = exc.partial
    except asyncio.LimitOverrunError:
        return _failure(None, f"acknowledgement longer than {ACK_LIMIT // 1024} KiB")
    return parse_ack(line)


@dataclass
class _Step:
    """Where a delivery is, so a timeout can say what it was waiting for."""

    doing: str = "waiting for a connection slot"


@dataclass
class _Slot:
    """Caps connections to one receiver; dropped when nobody uses it, so the map stays small."""

    semaphore: asyncio.Semaphore
    users: int = 0


class TcpTransport:
    def __init__(
        self, per_receiver: int = DEFAULT_PER_RECEIVER, policy: NetPolicy | None = None,
        lookup: Lookup = system_lookup,
    ) -> None:
        self._per_receiver = per_receiver
        self._policy = policy or NetPolicy()
        self._lookup = lookup
        self._slots: dict[tuple[str, int], _Slot] = {}

    @contextlib.asynccontextmanager
    async def _slot(self, target: TcpTarget) -> AsyncIterator[None]:
        key = (target.host.lower(), target.port)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(asyncio.Semaphore(self._per_receiver))
        slot.users += 1
        try:
            async with slot.semaphore:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0 and self._slots.get(key) is slot:
                del self._slots[key]

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        target = delivery.target
        assert isinstance(target, TcpTarget)
        try:
            frame = encode_frame(delivery)
        except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits: retrying won't help
            return _failure(None, f"payload cannot be encoded as JSON: {exc}", retryable=False)
        step = _Step()
        try:
            async with asyncio.timeout(target.timeout), self._slot(target):
                step.doing = f"resolving {target.host}"  # the target guard checks the result
                found = await checked_addresses(target.host, target.port, self._policy,
                                                self._lookup)
                return await _exchange(target, found, frame, step)
        except TargetRefused as exc:
            return refused(exc)
        except TimeoutError:
            error = f"timed out after {target.timeout:g}s while {step.doing}"
            return DeliveryResult(AttemptOutcome.TIMEOUT, True, error=error)
        except OSError as exc:
            return DeliveryResult(AttemptOutcome.ERROR, True, error=f"{type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            raise

    async def aclose(self) -> None:
        """Nothing stays open between deliveries; forget the per-receiver caps."""
        self._slots.clear()


async def _exchange(
    target: TcpTarget, addresses: list[str], frame: bytes, step: _Step
) -> DeliveryResult:
    """Connect, send the frame, read the ack; on any interruption abort the socket at once."""
    step.doing = f"connecting to {target.address}"
    reader, writer = await open_checked(addresses, target.port, limit=ACK_LIMIT)
    try:
        # drain() then waits until the whole frame is with the kernel, not merely buffered.
        writer.transport.set_write_buffer_limits(high=0)
        step.doing = "sending the frame"
        writer.write(frame)
        await writer.drain()
        if target.ack:
            step.doing = "waiting for the acknowledgement"
            result = await read_ack(reader)
        else:
            result = DeliveryResult(AttemptOutcome.SUCCESS, False)
    except BaseException:
        writer.transport.abort()  # close() would wait to flush to a receiver that may not read
        raise
    writer.close()
    with contextlib.suppress(OSError):  # the answer is in; a reset while closing changes nothing
        await writer.wait_closed()
    return result
