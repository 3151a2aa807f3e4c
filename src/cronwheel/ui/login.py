"""Logging in with a token and out again."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from cronwheel.ui.render import page
from cronwheel.ui.session import COOKIE, access_of, principal_of, sessions_of
from cronwheel.ui.web import ConsoleRoute, form_of, local

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/login")
async def login_form(request: Request) -> Response:
    if not access_of(request).needs_login:
        return RedirectResponse("/ui", 303)
    return page(request, None, "login.html", next=local(request.query_params.get("next")))


@router.post("/login")
async def log_in(request: Request) -> Response:
    access = access_of(request)
    form = await form_of(request)
    target = local(form.get("next"))
    token = form.get("token", "").strip()
    address = request.client.host if request.client else None
    principal = await access.authenticate(token, address) if token else None
    if principal is None or principal.role == "worker":
        message = ("a worker token cannot use the console" if principal is not None
                   else "that token is unknown, expired or revoked")
        return page(request, None, "login.html", 401, next=target, error=message)
    session_id, _session = sessions_of(request).open(token)
    answer = RedirectResponse(target, 303)
    answer.set_cookie(COOKIE, session_id, max_age=int(sessions_of(request).seconds),
                      path="/ui", httponly=True, samesite="strict",
                      secure=request.url.scheme == "https")
    return answer


@router.post("/logout")
async def log_out(request: Request) -> Response:
    caller = await principal_of(request)
    form = await form_of(request)
    if caller is not None and caller.session is not None and form.get("csrf") == caller.csrf:
        sessions_of(request).close(request.cookies.get(COOKIE))
    answer = RedirectResponse("/ui/login", 303)
    answer.delete_cookie(COOKIE, path="/ui")
    return answer
