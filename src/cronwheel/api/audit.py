"""GET /v1/audit: the audit trail, for admins, newest first, filtered and paged by cursor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from cronwheel.api.auth import AUTHENTICATED, RESPONSES, Admin
from cronwheel.api.responses import Json
from cronwheel.api.schemas import AuditPage
from cronwheel.contracts import AuditStore
from cronwheel.domain.audit import OUTCOMES, AuditCursor, AuditEntry, AuditFilter
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.time import parse_instant, to_iso

router = APIRouter(prefix="/v1", tags=["audit"], dependencies=AUTHENTICATED,
                   responses=RESPONSES)
Text = Annotated[str | None, Query(min_length=1, max_length=255)]


def audit_of(request: Request) -> AuditStore:
    store: AuditStore = request.app.state.node.store.audit
    return store


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id, "at": to_iso(entry.at), "action": entry.action,
        "outcome": entry.outcome, "status": entry.status, "app": entry.app,
        "token_prefix": entry.token_prefix, "role": entry.role, "user": entry.user,
        "address": entry.address, "namespace": entry.namespace, "target": entry.target,
        "detail": entry.detail,
    }


def audit_filter(app: str | None = None, namespace: str | None = None,
                 action: str | None = None, outcome: str | None = None,
                 token_prefix: str | None = None, since: str | None = None,
                 until: str | None = None) -> AuditFilter:
    """The filter a caller asked for; a bad outcome or instant is a 422 naming the field."""
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidField(f"outcome must be one of {', '.join(OUTCOMES)}", "outcome")
    return AuditFilter(
        app=app, namespace=namespace, action=action, outcome=outcome,
        token_prefix=token_prefix,
        since=parse_instant(since, "since") if since else None,
        until=parse_instant(until, "until") if until else None)


@router.get("/audit", response_model=AuditPage)
async def list_audit(
    request: Request,
    caller: Admin,
    app: Text = None,
    namespace: Text = None,
    action: Text = None,
    outcome: Text = None,
    token_prefix: Text = None,
    since: Annotated[str | None, Query(max_length=64, description="ISO 8601, inclusive")] = None,
    until: Annotated[str | None, Query(max_length=64, description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Json:
    """Every change a caller asked for, refusals included: who (app, token prefix, role,
    dialect user), what (action, namespace, target), when, from which address, and how it
    ended (`ok`, `no_change`, or the refusal: `unauthenticated`, `forbidden`, `not_found`,
    `conflict`, `invalid`, `too_large`, `rate_limited`, `error`)."""
    where = audit_filter(app, namespace, action, outcome, token_prefix, since, until)
    after = AuditCursor.decode(cursor) if cursor else None
    found = await audit_of(request).find(where, after, limit + 1)
    page = found[:limit]
    more = len(found) > limit
    return Json({"entries": [entry_json(e) for e in page],
                 "next_cursor": AuditCursor.after(page[-1]).encode() if more else None})
