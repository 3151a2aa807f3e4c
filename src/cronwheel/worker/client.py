"""The worker's side of the worker protocol (docs/workers.md), over HTTP with httpx.

`WorkerClient` makes one call per method and turns answers into values or exceptions:
`Unreachable` when no usable answer came (refused, timed out, 5xx: worth retrying),
`ApiError` and its kinds otherwise. `OutputStream` uploads one task stream with offsets.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from cronwheel import __version__

log = logging.getLogger(__name__)
DEFAULT_SERVER = "http://127.0.0.1:1989"
CALL_TIMEOUT_S = 10.0
MAX_LEASE_WAIT_S = 30.0


def credentials(token: str | None) -> dict[str, str]:
    """The headers that authenticate this worker to the server: the one place credentials go.

    A worker token (`cronwheel tokens create APP --role worker --group G`) serving the
    worker's groups; the server refuses registration without one.
    """
    return {"Authorization": f"Bearer {token}"} if token else {}


class ClientError(Exception):
    """Base of the errors of this module."""


class Unreachable(ClientError):
    """No usable answer (connection refused or reset, timeout, a 5xx): try again later."""


class ApiError(ClientError):
    """The server refused the call; `code` comes from its error envelope."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.body = body


class UnknownWorker(ApiError):
    """404 `unknown_worker`: the server does not know this worker id (it forgot it, or its
    database was reset, or the id is not this token's); register again."""


class Gap(ApiError):
    """409 on output: the offset is past what the server holds (`size`)."""

    def __init__(self, status: int, code: str, message: str, body: Any, size: int) -> None:
        super().__init__(status, code, message, body)
        self.size = size


class TaskGone(ApiError):
    """409 on finish: the task is no longer this worker's (it was declared lost)."""


@dataclass(frozen=True, slots=True)
class Registration:
    id: str
    heartbeat_s: float = 1.0
    lease_s: float = 5.0


@dataclass(frozen=True, slots=True)
class Task:
    """One execution of one attempt of a run on this worker, as the lease hands it out."""

    task_id: str
    run_id: str
    attempt: int
    job_id: str
    namespace: str
    key: str
    type: str
    spec: dict[str, Any]
    timeout: float
    payload: Any = None
    scheduled_at: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(
            task_id=str(data["task_id"]), run_id=str(data.get("run_id", "")),
            attempt=int(data.get("attempt", 1)), job_id=str(data.get("job_id", "")),
            namespace=str(data.get("namespace", "")), key=str(data.get("key", "")),
            type=str(data.get("type", "")), spec=dict(data.get("spec") or {}),
            timeout=float(data.get("timeout") or 3_600.0), payload=data.get("payload"),
            scheduled_at=str(data.get("scheduled_at") or ""),
        )


class WorkerClient:
    """`client = WorkerClient(url)`; `await client.register(...)`; ...; `await client.close()`."""

    def __init__(self, server: str = DEFAULT_SERVER,
                 transport: httpx.AsyncBaseTransport | None = None,
                 token: str | None = None) -> None:
        self.server = server.strip().rstrip("/")
        self._token = token
        if not self.server.startswith(("http://", "https://")):
            raise ValueError(f"the server must be an http:// or https:// URL: {server!r}")
        self._http = httpx.AsyncClient(base_url=self.server, timeout=CALL_TIMEOUT_S,
                                       transport=transport,
                                       headers={"Accept": "application/json"})

    async def close(self) -> None:
        await self._http.aclose()

    async def register(self, name: str, groups: list[str], capacity: int,
                       host: str | None = None, types: list[str] | None = None
                       ) -> Registration:
        body: dict[str, Any] = {"name": name, "groups": groups, "capacity": capacity,
                                "version": __version__}
        if host:
            body["host"] = host
        if types is not None:  # the job types it accepts; absent means the built-in ones
            body["types"] = types
        answer = await self._call("/v1/workers", json=body)
        return Registration(str(answer["id"]), float(answer.get("heartbeat_s") or 1.0),
                            float(answer.get("lease_s") or 5.0))

    async def heartbeat(self, worker_id: str, running: list[str],
                        timeout: float = CALL_TIMEOUT_S) -> list[str]:
        """The ids of the running tasks the server wants killed."""
        answer = await self._call(f"/v1/workers/{worker_id}/heartbeat",
                                  json={"running": running}, timeout=timeout)
        return [str(t) for t in answer.get("kill") or []]

    async def lease(self, worker_id: str, most: int, wait: float) -> list[Task]:
        """Up to `most` tasks, waiting up to `wait` seconds (long poll) for the first."""
        wait = min(max(wait, 0.0), MAX_LEASE_WAIT_S)
        answer = await self._call(f"/v1/workers/{worker_id}/lease",
                                  json={"max": most, "wait": wait},
                                  timeout=wait + CALL_TIMEOUT_S)
        try:
            return [Task.from_json(t) for t in answer.get("tasks") or []]
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(200, "bad_response", f"a leased task is malformed: {exc!r}",
                           answer) from None

    async def output(self, worker_id: str, task_id: str, stream: str, offset: int,
                     data: bytes) -> int:
        """Append `data` at `offset` of a task's stream; the size the server now holds."""
        answer = await self._call(
            f"/v1/workers/{worker_id}/tasks/{task_id}/output",
            params={"stream": stream, "offset": offset}, content=data,
            headers={"Content-Type": "application/octet-stream"}, conflict=_gap,
        )
        return int(answer["size"])

    async def finish(self, worker_id: str, task_id: str, outcome: dict[str, Any]) -> None:
        await self._call(f"/v1/workers/{worker_id}/tasks/{task_id}/finish", json=outcome,
                         conflict=_gone)

    async def stop(self, worker_id: str) -> None:
        await self._call(f"/v1/workers/{worker_id}/stop", json={})

    async def _call(self, path: str, *, json: Any = None, content: bytes | None = None,
                    params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                    timeout: float = CALL_TIMEOUT_S,
                    conflict: Callable[[int, str, str, Any], ApiError] | None = None,
                    ) -> dict[str, Any]:
        try:
            response = await self._http.post(
                path, json=json, content=content, params=params, timeout=timeout,
                headers={**credentials(self._token), **(headers or {})},
            )
        except httpx.TransportError as exc:
            raise Unreachable(f"{self.server}: {type(exc).__name__} {exc}".strip()) from None
        return _answer(response, conflict)


def _answer(response: httpx.Response,
            conflict: Callable[[int, str, str, Any], ApiError] | None) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if response.is_success and isinstance(body, dict):
        return body
    if status >= 500 or response.is_success:
        raise Unreachable(f"HTTP {status} from {response.url}")
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or f"http_{status}")
    message = str(error.get("message") or response.reason_phrase)
    if status == 404 and (code == "unknown_worker" or _old_unknown(code, error)):
        raise UnknownWorker(status, code, message, body)
    if status == 409 and conflict is not None:
        raise conflict(status, code, message, body)
    raise ApiError(status, code, message, body)


def _old_unknown(code: str, error: dict[str, Any]) -> bool:
    """Earlier servers answered a forgotten worker's heartbeat `not_found` on field
    `worker_id`: still understood, so a newer worker comes back to an older server."""
    return code == "not_found" and error.get("field") == "worker_id"


def _gap(status: int, code: str, message: str, body: Any) -> ApiError:
    size = _find_size(body)
    if size is None:
        return ApiError(status, code, message, body)
    return Gap(status, code, message, body, size)


def _find_size(body: Any) -> int | None:
    """`size` at the top of a 409 answer, or inside its error envelope (or its details)."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    details = error.get("details")
    details = details if isinstance(details, dict) else {}
    for place in (body, error, details):
        size = place.get("size")
        if isinstance(size, int) and not isinstance(size, bool):
            return size
    return None


def _gone(status: int, code: str, message: str, body: Any) -> ApiError:
    return TaskGone(status, code, message, body)


def _marker(text: str) -> bytes:
    return f"\n[cronwheel: {text}]\n".encode()


class OutputStream:
    """A task's `log` or `result` stream, uploaded in order while the task runs.

    `write` only appends to a buffer; a background task posts it in batches (up to `batch`
    bytes, or whatever came within `linger` seconds) at the byte offset the server holds,
    retrying with backoff when the server cannot be reached. The buffer is bounded: when full,
    `write` waits (back pressure on the task's output) -- unless the server has been
    unreachable for `drop_after` seconds, then output is dropped and a marker line says how
    much. `drop_after=None` never drops (for results).
    """

    def __init__(self, client: WorkerClient, worker_id: Callable[[], str], task_id: str,
                 stream: str, *, batch: int = 256 * 1024, linger: float = 0.2,
                 max_buffer: int = 4 * 1024 * 1024, drop_after: float | None = 60.0) -> None:
        self._client = client
        self._worker_id = worker_id
        self.task_id = task_id
        self.stream = stream
        self._batch = batch
        self._linger = linger
        self._max = max(max_buffer, batch)
        self._drop_after = drop_after
        self._buf = bytearray()
        self.offset = 0  # what the server holds
        self._dropped = 0
        self._unreachable_since: float | None = None
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._closing = False
        self.gone = False  # the server refused the stream: whatever comes is discarded
        self._task: asyncio.Task[None] | None = None

    async def write(self, data: bytes) -> None:
        if self.gone or self._closing or not data:
            return
        if self._task is None:
            self._task = asyncio.create_task(self._upload(), name=f"output {self.task_id}")
        while self._buf and len(self._buf) + len(data) > self._max:
            if self._dropping():
                self._dropped += len(data)
                return
            self._space.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._space.wait(), 1.0)
            if self.gone:
                return
        self._flush_marker()
        was_empty = not self._buf
        self._buf += data
        if was_empty or len(self._buf) >= self._batch:
            self._wake.set()

    async def close(self, timeout: float | None = None) -> None:
        """Upload what is left (giving up after `timeout` seconds) and stop."""
        if not self.gone:
            self._flush_marker()
        self._closing = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            log.warning("worker.upload_abandoned", extra={
                "task_id": self.task_id, "stream": self.stream, "bytes": len(self._buf)})

    def _dropping(self) -> bool:
        since = self._unreachable_since
        return (self._drop_after is not None and since is not None
                and time.monotonic() - since >= self._drop_after)

    def _flush_marker(self) -> None:
        if self._dropped:
            self._buf += _marker(f"{self._dropped} bytes of output dropped: "
                                 "the server was unreachable")
            self._dropped = 0

    async def _upload(self) -> None:
        backoff = 0.2
        while self._buf or not self._closing:
            if not self._buf:
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._buf) < self._batch and not self._closing:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._linger)
            if await self._send(bytes(self._buf[: self._batch])):
                backoff = 0.2
            elif self.gone:
                return
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _send(self, chunk: bytes) -> bool:
        """One POST; False when it must be retried (or the stream is gone)."""
        try:
            size = await self._client.output(self._worker_id(), self.task_id, self.stream,
                                             self.offset, chunk)
        except Gap as exc:
            size = exc.size
        except (Unreachable, UnknownWorker) as exc:  # an unknown worker registers again soon
            if self._unreachable_since is None:
                self._unreachable_since = time.monotonic()
                log.warning("worker.upload_failed", extra={
                    "task_id": self.task_id, "stream": self.stream, "error": str(exc)})
            return False
        except ApiError as exc:
            log.warning("worker.upload_refused", extra={
                "task_id": self.task_id, "stream": self.stream, "error": str(exc)})
            self.gone = True
            self._buf.clear()
            self._space.set()
            return False
        self._unreachable_since = None
        before = self.offset
        self._advance(size)
        return self.offset > before  # no progress: retry after a pause rather than spin

    def _advance(self, size: int) -> None:
        """The server holds `size` bytes: forget what it has; mark what it lost."""
        if size >= self.offset:
            held = min(size - self.offset, len(self._buf))
            del self._buf[:held]
            self.offset = size
        else:  # the server holds less than it confirmed before: those bytes are gone
            lost = self.offset - size
            self._buf[:0] = _marker(f"{lost} bytes of output lost by the server")
            self.offset = size
        self._space.set()


INLINE_RESULT = 64 * 1024  # a result up to this size goes with the finish call


class InlineResult:
    """A task's result, held back to travel inside the finish call when it is small (most
    are: an exit code, a short body), which saves a request and a write per task. A larger
    one spills into its `OutputStream` and is uploaded as usual."""

    def __init__(self, stream: OutputStream, limit: int = INLINE_RESULT) -> None:
        self.stream = stream
        self._limit = limit
        self._held = bytearray()
        self.spilled = False

    async def write(self, data: bytes) -> None:
        if not self.spilled and len(self._held) + len(data) <= self._limit:
            self._held += data
            return
        if not self.spilled:
            self.spilled = True
            await self.stream.write(bytes(self._held))
            self._held.clear()
        await self.stream.write(data)

    async def close(self, timeout: float | None = None) -> None:
        """Upload what spilled, or what was written to `stream` directly (a task whose
        stdout is its result writes there as it comes)."""
        await self.stream.close(timeout)

    def finish_fields(self) -> dict[str, str]:
        """What to add to the finish body: the held result, base64-encoded."""
        if self.spilled or not self._held:
            return {}
        return {"result": base64.b64encode(bytes(self._held)).decode()}
