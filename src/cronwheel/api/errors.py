"""Native error envelope: {"error": {"code", "message", "field"}}; never a bare 500."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from cronwheel.api.responses import Json
from cronwheel.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    IllegalTransition,
    ItemErrors,
    NotFound,
    UnknownWorker,
)
from cronwheel.domain.limits import LimitExceeded, RateLimited

log = logging.getLogger("cronwheel.api")

STATUS = {NotFound: 404, UnknownWorker: 404, Conflict: 409, IllegalTransition: 409,
          Forbidden: 403, LimitExceeded: 403, RateLimited: 429}

Envelope = Callable[[str, str], dict[str, Any]]
# Path prefix -> how that dialect shapes an error (code, message), for errors raised before
# a dialect's own handler runs (a wrong method, an unknown path under its prefix).
_ENVELOPES: dict[str, Envelope] = {}


def register_envelope(prefix: str, envelope: Envelope) -> None:
    _ENVELOPES[prefix] = envelope


def _envelope_for(path: str) -> Envelope | None:
    for prefix, envelope in _ENVELOPES.items():
        if path.startswith(prefix):
            return envelope
    return None


def shaped_error(path: str, code: str, message: str) -> dict[str, Any]:
    """An error body in the envelope of the API that owns `path` (native by default)."""
    envelope = _envelope_for(path)
    return envelope(code, message) if envelope is not None else error_body(code, message)


def retry_headers(error: DomainError) -> dict[str, str]:
    """`Retry-After` (whole seconds) for a refusal by the app's rate; none for the rest."""
    if isinstance(error, ItemErrors):
        error = error.first
    return {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else {}


def status_of(error: DomainError) -> int:
    if isinstance(error, ItemErrors):  # refused items read as the first of them
        error = error.first
    return STATUS.get(type(error), 422)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """Pydantic's location as a dotted path without the 'body' root: items[3].key."""
    parts: list[str] = []
    for part in loc:
        if part in ("body", "query", "path") and not parts:
            continue
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "body"


def first_problem(exc: ValidationError | RequestValidationError) -> tuple[str, str]:
    error = exc.errors()[0]
    return field_path(tuple(error.get("loc", ()))), str(error.get("msg", "invalid value"))


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return {"error": body}


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    routes = request.app.router.routes
    methods = [
        method for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]
    return ", ".join(methods)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
# What FastAPI answers (400) for a body it cannot decode at all, such as bytes that are not
# UTF-8; a body that is text but not JSON is already a 422 naming `body`, and so is this.
_UNPARSED_BODY = "There was an error parsing the body"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> Json:
        return Json(error_body(exc.code, exc.message, exc.field), status_of(exc),
                    headers=retry_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Json:
        fields = [
            {"field": field_path(tuple(e.get("loc", ()))), "message": str(e.get("msg"))}
            for e in exc.errors()
        ]
        field, message = first_problem(exc)
        body = error_body("invalid_argument", f"{field}: {message}", field, fields=fields)
        return Json(body, 422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Json:
        if (exc.status_code == 400 and exc.detail == _UNPARSED_BODY
                and _envelope_for(request.url.path) is None):
            body = error_body("invalid_argument", "body: not valid JSON text", "body")
            return Json(body, 422)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        body = shaped_error(request.url.path, code, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return Json(body, exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Json:
        log.exception("api.unexpected_error", extra={"path": request.url.path})
        return Json(error_body("internal", "internal error; see the server log"), 500)
