"""Schedule preview: the next fire times of an expression, before any job is made of it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from cronwheel.api.auth import AUTHENTICATED, RESPONSES
from cronwheel.api.schemas import PreviewOut
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.preview import preview
from cronwheel.domain.time import parse_instant

# Any token may preview: it reads nothing stored.
router = APIRouter(prefix="/v1/schedules", tags=["schedules"], dependencies=AUTHENTICATED,
                   responses={401: RESPONSES[401]})


@router.get("/preview", response_model=PreviewOut)
async def get_preview(
    request: Request,
    expr: Annotated[str, Query(min_length=1, max_length=1000,
                               description="a cron expression (Unix 5 fields or Quartz 6/7), "
                               "a rate such as 'every 5m', or an ISO 8601 repeating interval")],
    tz: Annotated[str | None, Query(max_length=64, description="IANA zone, for cron")] = None,
    after: Annotated[str | None, Query(description="ISO 8601 instant; default now")] = None,
    n: Annotated[int, Query(ge=1, le=100)] = 10,
    kind: Annotated[str | None, Query(pattern="^(cron|rate|iso8601)$")] = None,
) -> PreviewOut:
    start = request.app.state.node.clock.now() if after is None else _after(after)
    try:
        found = preview(expr, tz, kind, start, n)
        return PreviewOut(kind=found.kind, expr=expr, tz=tz, description=found.description,
                          next=found.next)
    except InvalidField as exc:
        field = exc.field if exc.field in ("tz",) else "expr"
        raise InvalidField(exc.message, field) from None


def _after(text: str) -> int:
    try:
        return parse_instant(text, "after")
    except InvalidField as exc:
        raise InvalidField(exc.message, "after") from None
