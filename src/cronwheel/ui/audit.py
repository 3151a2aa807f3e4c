"""The audit trail for admins: who changed what, newest first, filtered, paged by cursor."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from cronwheel.api.audit import audit_filter, audit_of
from cronwheel.domain.audit import OUTCOMES, AuditCursor
from cronwheel.ui.render import page
from cronwheel.ui.runs import _instant
from cronwheel.ui.session import Forbidden
from cronwheel.ui.web import ConsoleRoute, caller_of

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
PAGE = 50
FIELDS = ("app", "namespace", "action", "outcome", "from", "to")


@router.get("/audit")
async def audit(request: Request) -> Response:
    caller = await caller_of(request)
    if not caller.admin:
        raise Forbidden(f"a {caller.principal.role} token may not read the audit trail",
                        "authorization")
    q = {name: request.query_params.get(name, "").strip()[:255] for name in FIELDS}
    where = replace(audit_filter(app=q["app"] or None, namespace=q["namespace"] or None,
                                 action=q["action"] or None, outcome=q["outcome"] or None),
                    since=_instant(q["from"], "from"), until=_instant(q["to"], "to"))
    cursor = request.query_params.get("cursor") or None
    after = AuditCursor.decode(cursor) if cursor else None
    found = await audit_of(request).find(where, after, PAGE + 1)
    entries = found[:PAGE]
    next_url = None
    if len(found) > PAGE:
        more = AuditCursor.after(entries[-1]).encode()
        next_url = "/ui/audit?" + urlencode({k: v for k, v in q.items() if v} | {"cursor": more})
    return page(request, caller, "audit.html", entries=entries, q=q, next_url=next_url,
                outcomes=OUTCOMES)
