"""What every console route shares: the caller or a trip to the login page, the form of a
POST (checked against the session's CSRF token), and errors shown as pages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from cronwheel.api.deps import apps_of
from cronwheel.api.worker_scope import visible
from cronwheel.domain.errors import DomainError, NotFound
from cronwheel.ui.render import page
from cronwheel.ui.session import Caller, Forbidden, principal_of

log = logging.getLogger("cronwheel.ui")
MAX_FORM = 2 * 1_048_576  # a payload may be up to 1 MiB of JSON, as text in a form
T = TypeVar("T")
STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409, "illegal_state": 409}


class LoginNeeded(Exception):
    pass


class BadForm(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ConsoleRoute(APIRoute):
    """Answers a console request's failures with a page, never the API's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginNeeded:
                target = request.url.path
                if request.method == "GET" and request.url.query:
                    target += "?" + request.url.query
                return RedirectResponse(f"/ui/login?next={quote(target)}", 303)
            except DomainError as exc:
                status = STATUS.get(exc.code, 422)
                if isinstance(exc, Forbidden | NotFound):
                    status = 403 if isinstance(exc, Forbidden) else 404
                return page(request, await principal_of(request), "error.html", status,
                            message=exc.message, field=exc.field, code=status)
            except BadForm as exc:
                return page(request, await principal_of(request), "error.html", exc.status,
                            message=exc.message, field=None, code=exc.status)

        return guarded


async def caller_of(request: Request) -> Caller:
    caller = await principal_of(request)
    if caller is None:
        raise LoginNeeded()
    return caller


async def form_of(request: Request) -> dict[str, str]:
    """The fields of an urlencoded POST (the last value of a repeated name)."""
    body = await request.body()
    if len(body) > MAX_FORM:
        raise BadForm("the form is too large", 413)
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


async def posted(request: Request) -> tuple[Caller, dict[str, str]]:
    """The caller and form of a POST that changes something; refused unless the form came
    from one of the caller's own pages (its session's CSRF token)."""
    caller = await caller_of(request)
    form = await form_of(request)
    if caller.session is not None and form.get("csrf") != caller.session.csrf:
        raise BadForm("this form is stale or did not come from the console; reload the page",
                      403)
    return caller, form


def local(url: str | None, default: str = "/ui") -> str:
    """Only a console path: a crafted `next` must not send anyone elsewhere."""
    if url and url.startswith("/ui") and not url.startswith("//") and "\\" not in url:
        return url
    return default


async def visible_workers(request: Request, caller: Caller, found: Sequence[T],
                          worker_id: Callable[[T], str]) -> list[T]:
    """The workers the caller may see, as on the API: all for an admin, else its app's."""
    if caller.admin:  # an open console's callers too: it has no apps
        return list(found)
    return await visible(apps_of(request), caller.principal.app, False, found, worker_id)
