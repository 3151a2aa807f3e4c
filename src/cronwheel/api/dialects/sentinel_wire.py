"""The Sentinel dialect's wire: its envelope, its request shapes and its credential.

Every answer is `{"code": 0 ok | 1 failure | 9999 system error, "msg", "data"}` (plus `field`
on a refusal, naming the field as Sentinel spells it). A request is form-encoded, as Jarvis
clients send it (`appName`, `appToken`, `user`, and `parameters`, a JSON object as text), or
a JSON object with the same names (`parameters` as an object or as text). The app is admitted
by its appToken (apps_service.sentinel_principal); the request then carries a Principal of
that app, role operator, in `request.state.principal`, as /v1 requests do.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import Request
from pydantic import BaseModel, Field

from cronwheel.api.errors import register_envelope, status_of
from cronwheel.api.responses import Json
from cronwheel.domain.access import Principal
from cronwheel.domain.app_keys import CredentialRefused
from cronwheel.domain.errors import DomainError, ItemErrors
from cronwheel.secretbox import SecretKeyError

log = logging.getLogger("cronwheel.api.sentinel")

OK, FAILURE, SYSTEM_ERROR = 0, 1, 9999
PREFIXES = ("/api/job/", "/api/task/", "/api/log/")
MAX_USER = 255
_HTTP_FIELDS = {"method_not_allowed": "method", "not_found": "path"}


class Envelope(BaseModel):
    """Every answer of this dialect (for the OpenAPI page)."""

    code: int = Field(description="0 success, 1 failure, 9999 system error")
    msg: str
    data: Any = Field(None, description="the endpoint's answer; null on failure")
    field: str | None = Field(None, description="on failure: the field at fault")


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Envelope, "description": text} for status, text in (
        (400, "a field is missing or malformed (code 1, field)"),
        (401, "appName or appToken refused (code 1, field)"),
        (403, "the app may not do this (code 1, field)"),
        (404, "no such job or task of this app (code 1, field)"),
        (409, "the state does not allow it (code 1, field)"),
        (500, "a fault of the server (code 9999)"),
        (503, "the server key cannot open the app's appKey (code 9999)"),
    )
}


def _http_envelope(code: str, message: str) -> dict[str, Any]:
    return {"code": FAILURE, "msg": message, "data": None,
            "field": _HTTP_FIELDS.get(code, "request")}


for _prefix in PREFIXES:
    register_envelope(_prefix, _http_envelope)


class Refusal(Exception):
    def __init__(self, status: int, msg: str, field: str | None, data: Any = None) -> None:
        super().__init__(msg)
        self.status, self.msg, self.field, self.data = status, msg, field, data


def bad(msg: str, field: str) -> Refusal:
    return Refusal(400, msg, field)


def envelope(status: int, code: int, msg: str, data: Any = None,
             field: str | None = None) -> Json:
    body: dict[str, Any] = {"code": code, "msg": msg, "data": data}
    if field is not None:
        body["field"] = field
    return Json(body, status)


@dataclass(frozen=True, slots=True)
class Call:
    """An admitted request: who, and its parameters."""

    principal: Principal
    params: Mapping[str, Any]


Handler = Callable[[Request, Call], Awaitable[Any]]


async def answer(request: Request, handler: Handler, rename: Callable[[str], str]) -> Json:
    """Admit the request, run the handler, and shape whatever happens as the envelope;
    `rename` turns a core field name into the Sentinel field it came from."""
    try:
        call = await admit(request)
        data = await handler(request, call)
    except Refusal as exc:
        return envelope(exc.status, FAILURE, exc.msg, exc.data, exc.field)
    except CredentialRefused as exc:
        return envelope(401, FAILURE, exc.message, None, exc.field)
    except DomainError as exc:
        first = exc.first if isinstance(exc, ItemErrors) else exc
        status = status_of(exc)
        return envelope(400 if status == 422 else status, FAILURE, first.message, None,
                        rename(first.field or "parameters"))
    except SecretKeyError:  # logged by the app service: this node lacks the cluster's key
        return envelope(503, SYSTEM_ERROR, "system error: the server key cannot open the "
                                           "app's appKey; see the server log")
    except Exception:
        log.exception("sentinel.unexpected_error", extra={"path": request.url.path})
        return envelope(500, SYSTEM_ERROR, "system error; see the server log")
    return envelope(200, OK, "success", data)


async def admit(request: Request) -> Call:
    fields = await read_fields(request)
    app_name, app_token = fields.get("appName"), fields.get("appToken")
    if not isinstance(app_name, str) or not app_name:
        raise Refusal(401, "appName is required", "appName")
    if not isinstance(app_token, str) or not app_token:
        raise Refusal(401, "appToken is required", "appToken")
    user = fields.get("user")
    if user is not None and (not isinstance(user, str) or len(user) > MAX_USER):
        raise bad(f"user must be a name of at most {MAX_USER} characters", "user")
    client = request.client
    principal = await request.app.state.node.apps.sentinel_principal(
        app_name, app_token, user or None, client.host if client else None)
    request.state.principal = principal
    return Call(principal, parameters(fields.get("parameters")))


async def read_fields(request: Request) -> Mapping[str, Any]:
    """The top-level fields, from a form or from a JSON object."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if kind == "application/x-www-form-urlencoded":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise bad("the form is not UTF-8", "body") from None
        pairs = parse_qs(text, keep_blank_values=True)
        return {name: values[-1] for name, values in pairs.items()}
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad("the body is neither a form nor a JSON object", "body") from None
    if not isinstance(data, dict):
        raise bad("the body must be a JSON object", "body")
    return data


def parameters(value: Any) -> Mapping[str, Any]:
    """`parameters`: a JSON object, or its text (as forms carry it); absent is empty."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise bad("parameters must be a JSON object (as text in a form)",
                      "parameters") from None
    if not isinstance(value, dict):
        raise bad("parameters must be a JSON object", "parameters")
    return value
