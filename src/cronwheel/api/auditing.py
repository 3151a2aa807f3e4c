"""Recording the audit trail: every request that asks for a change gets one entry.

`AuditMiddleware` wraps each state-changing request (POST, PUT, PATCH, DELETE) in a
`contracts.PendingChange`. When the request's change writes (through the SQL store's
`Database.write`), the entry is written inside that very transaction with outcome `ok`:
the change and its entry commit together or not at all. A request whose change did not
commit (a refusal: 401, 403, 404, 409, 422, 429; or a failure) is recorded afterwards with
the outcome its status stands for, by `AuditTrail`: a bounded queue written in batches by
one task, so a flood of refused requests costs one insert per batch, never a transaction
each; beyond the bound, entries are dropped and counted, and the count is itself recorded.

Not recorded: reads, the worker protocol (register, heartbeat, lease, report: a worker's own
bookkeeping, not a change of anyone's jobs), console log in and out, the preview (a POST
that changes nothing), and the engine's own work (fires, retries, results).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cronwheel.contracts import CURRENT_CHANGE, AddOutcome, AuditStore, Clock, PendingChange
from cronwheel.domain.access import Principal
from cronwheel.domain.audit import OK, WRITTEN_STATUS, AuditEntry, clip, outcome_of_status
from cronwheel.domain.jobs import DEFAULT_NAMESPACE
from cronwheel.ids import new_id
from cronwheel.metrics import AUDIT_DROPPED

log = logging.getLogger("cronwheel.audit")

CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Actions that take a changing method but are no caller's change (see the module's doc).
NOT_CHANGES = frozenset({
    "register", "heartbeat", "lease", "output", "finish", "stop",  # the worker protocol
    "console.log_in", "console.log_out",  # the console's session, not a change
    "kubernetes.job_logs",  # a POST that reads
})
NO_CHANGE = "no_change"  # a 2xx/3xx that wrote nothing (an answer in a dialect's envelope)
FACTS = "audit_facts"  # request.state.audit_facts: what a route knows better than its path


def note(state: Any, **facts: Any) -> None:
    """Let a route name what it changes (`namespace`, `target`, `action`, `detail`) when its
    path does not say it, e.g. a create whose namespace is in the body."""
    current = getattr(state, FACTS, None)
    if current is None:
        current = {}
        setattr(state, FACTS, current)
    current.update(facts)


def judge(decide: Callable[[Any], str]) -> None:
    """Let the change's write decide its outcome from its result (a create that found a
    different job wrote nothing: `conflict`, not `ok`)."""
    change = CURRENT_CHANGE.get()
    if change is not None:
        change.judge = decide


def conflicted(outcomes: Sequence[AddOutcome]) -> str:
    """A judge for a create: one that found a different job wrote nothing (`conflict`)."""
    return "conflict" if any(o.conflict for o in outcomes) else OK


def action_of(endpoint: Callable[..., Any]) -> str:
    """An endpoint's action: its name, after its dialect's (or the console's) name."""
    module = getattr(endpoint, "__module__", "")
    name = getattr(endpoint, "__name__", "unknown")
    if ".dialects." in module:
        return f"{module.rsplit('.', 1)[-1]}.{name}"
    if module.startswith("cronwheel.ui."):
        return f"console.{name}"
    return name


class AuditTrail:
    """Writes the entries no change carried, in batches, from one task. `bound` entries wait
    at most; more are dropped and counted (`cronwheel_audit_dropped_total`), and the count is
    written as an `audit_dropped` entry once there is room again."""

    def __init__(self, store: AuditStore, clock: Clock, bound: int = 10_000,
                 batch: int = 500, flush_s: float = 0.2) -> None:
        self.store = store
        self.clock = clock
        self.bound = bound
        self.batch = batch
        self.flush_s = flush_s
        self.dropped = 0
        self._queue: deque[AuditEntry] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def later(self, entry: AuditEntry) -> None:
        if len(self._queue) >= self.bound:
            self.dropped += 1
            AUDIT_DROPPED.inc()
            return
        self._queue.append(entry)
        if self._task is None or self._task.done():
            # A fresh context: the writer must not carry the request's pending change.
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="cronwheel-audit", context=contextvars.Context())
        if len(self._queue) >= self.batch:
            self._wake.set()

    async def flush(self) -> None:
        """Write everything waiting now (tests; shutdown)."""
        while self._queue or self.dropped:
            await self._write_batch()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_s)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.warning("audit.write_failed", exc_info=True)

    async def _write_batch(self) -> None:
        entries = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
        if self.dropped:
            entries.append(AuditEntry(id=new_id(), at=self.clock.now(), action="audit_dropped",
                                      outcome="error", status=503,
                                      detail={"count": self.dropped}))
            log.warning("audit.dropped", extra={"count": self.dropped})
            self.dropped = 0
        try:
            await self.store.record(entries)
        except Exception:
            self.dropped += len(entries)
            AUDIT_DROPPED.inc(len(entries))
            raise


class AuditMiddleware:
    """Puts a `PendingChange` around each state-changing request; records what it did not."""

    def __init__(self, app: ASGIApp, trail: AuditTrail,
                 routes: Callable[[], Iterable[Any]]) -> None:
        self.app = app
        self.trail = trail
        self.routes = routes
        self._table: Table | None = None  # built on the first refusal before routing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGING:
            await self.app(scope, receive, send)
            return
        status = 500
        at = self.trail.clock.now()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        def describe(outcome: str) -> AuditEntry:
            return entry_of(scope, at, outcome, WRITTEN_STATUS.get(outcome, status))

        change = PendingChange(describe, armed=lambda: _audited(scope.get("endpoint")))
        token = CURRENT_CHANGE.set(change)
        try:
            await self.app(scope, receive, sending)
        finally:
            CURRENT_CHANGE.reset(token)
            recorded, change.recorded = change.recorded, True  # closed: a task the request
            if not recorded:                                   # started cannot claim it now
                self._record_after(scope, at, status)

    def _record_after(self, scope: Scope, at: int, status: int) -> None:
        if "endpoint" not in scope:  # refused before routing (401, a bad Host): which route?
            endpoint = self._route_of(scope)
            if endpoint is None:
                return  # no such route: nothing was asked to change
            scope["endpoint"] = endpoint
        if not _audited(scope["endpoint"]):
            return
        outcome = outcome_of_status(status)
        if outcome == OK and self.trail.store.transactional:
            outcome = NO_CHANGE
        self.trail.later(entry_of(scope, at, outcome, status))

    def _route_of(self, scope: Scope) -> Callable[..., Any] | None:
        """The endpoint the request would have reached, with its path parameters."""
        if self._table is None:
            self._table = _route_table(self.routes())
        for methods, pattern, convertors, endpoint in self._table:
            found = pattern.match(scope["path"])
            if found and scope["method"] in methods:
                scope.setdefault("path_params", {
                    name: convertors[name].convert(value)
                    for name, value in found.groupdict().items()})
                return endpoint
        return None


Table = list[tuple[set[str], re.Pattern[str], dict[str, Any], Callable[..., Any]]]


def _route_table(routes: Iterable[Any]) -> Table:
    """Every route's methods, path pattern and endpoint, in the order routing tries them."""
    table: Table = []
    for context in iter_route_contexts(list(routes)):
        methods = getattr(context, "methods", None)
        if not methods or not context.path or not callable(context.endpoint):
            continue
        pattern, _format, convertors = compile_path(context.path)
        table.append((set(methods), pattern, convertors, context.endpoint))
    return table


def _audited(endpoint: Callable[..., Any] | None) -> bool:
    return endpoint is not None and action_of(endpoint) not in NOT_CHANGES


def entry_of(scope: Scope, at: int, outcome: str, status: int) -> AuditEntry:
    """The entry of the request in `scope`: who from the principal the auth layer put there
    (a dialect request nobody admitted is the `system` app's), what from the route."""
    state = scope.get("state") or {}
    facts: dict[str, Any] = state.get(FACTS) or {}
    principal: Principal | None = state.get("principal")
    endpoint = scope.get("endpoint")
    action = facts.get("action") or (action_of(endpoint) if endpoint else "unknown")
    client = scope.get("client")
    address = (principal.address if principal is not None else None) or (
        client[0] if client else None)
    params: dict[str, str] = scope.get("path_params") or {}
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    namespace = facts.get("namespace") or query.get("namespace") or (
        DEFAULT_NAMESPACE if "key" in params else None)
    target = facts.get("target") or "/".join(str(v) for v in params.values()) or None
    detail = {"method": scope["method"], "path": clip(scope["path"], 512)}
    detail |= facts.get("detail") or {}
    app = principal.app if principal is not None else None  # None: a refused dialect client
    return AuditEntry(
        id=new_id(), at=at, action=clip(action, 64) or "unknown", outcome=outcome,
        status=status, app=app,
        token_prefix=(principal.token_prefix or None) if principal is not None else None,
        role=principal.role.value if principal is not None else None,
        user=clip(principal.user if principal is not None else None),
        address=clip(address), namespace=clip(namespace), target=clip(target), detail=detail,
    )
