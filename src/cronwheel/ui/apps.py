"""Apps and their tokens, for admins: shown only when the seam has a directory of them."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cronwheel.ui.render import page
from cronwheel.ui.session import Hidden
from cronwheel.ui.web import ConsoleRoute, caller_of

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/apps")
async def apps(request: Request) -> Response:
    caller = await caller_of(request)
    directory = caller.access.directory
    if directory is None:
        raise Hidden("this server has no apps: it takes no tokens yet")
    caller.require_admin()
    found = await directory.list_apps()
    tokens = {app.name: await directory.list_tokens(app.name) for app in found}
    return page(request, caller, "apps.html", apps=found, tokens=tokens,
                now=request.app.state.node.clock.now())
