"""/v1/apps: apps, their namespaces and their tokens (admins), and /v1/whoami (any token).

A new token is in the answer of its creation only; lists show its prefix, never the token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from cronwheel.api import auditing
from cronwheel.api.auth import AUTHENTICATED, RESPONSES, Admin, Caller, Reader
from cronwheel.api.responses import Json
from cronwheel.apps_service import AppService
from cronwheel.domain.access import (
    App,
    AppLimits,
    Grants,
    Principal,
    Role,
    TokenRecord,
    can_admin,
)
from cronwheel.domain.errors import NotFound
from cronwheel.domain.time import parse_instant, to_iso, to_iso_or_none

router = APIRouter(prefix="/v1", tags=["apps"], dependencies=AUTHENTICATED, responses=RESPONSES)
AppName = Annotated[str, Path(min_length=1, max_length=63)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GrantsIn(_Strict):
    job_types: list[str] = Field(default_factory=list, max_length=64,
                                 description="worker job types that run code: shell, python, sql")


class AppIn(_Strict):
    name: str = Field(min_length=1, max_length=63)
    namespaces: list[str] = Field(default_factory=list, max_length=1_000,
                                  description="exact names, or prefixes ending in '*'")
    grants: GrantsIn | None = None
    limits: dict[str, Any] | None = Field(None, description="overrides of the server's limits")
    note: str = Field("", max_length=1_000)


class AppChangeIn(_Strict):
    grants: GrantsIn | None = None
    limits: dict[str, Any] | None = None
    note: str | None = Field(None, max_length=1_000)


class NamespaceIn(_Strict):
    namespace: str = Field(min_length=1, max_length=256)


class TokenIn(_Strict):
    role: Role
    groups: list[str] = Field(default_factory=list, max_length=64,
                              description="worker tokens: the worker groups they serve")
    label: str = Field("", max_length=255)
    expires_at: str | None = Field(None, description="ISO 8601 instant; never when absent")


def apps_of(request: Request) -> AppService:
    service: AppService = request.app.state.node.apps
    return service


@router.get("/whoami")
async def whoami(caller: Caller) -> Json:
    """The caller's app, role and reach: what this token may touch."""
    return Json(_principal_json(caller))


@router.post("/apps", status_code=201)
async def create_app(request: Request, body: AppIn, caller: Admin) -> Json:
    auditing.note(request.state, target=body.name)
    app = await apps_of(request).create_app(
        body.name, body.namespaces, _grants(body.grants), _limits(body.limits), body.note)
    return Json(app_json(app), 201)


@router.get("/apps")
async def list_apps(request: Request, caller: Admin) -> Json:
    return Json({"apps": [app_json(a) for a in await apps_of(request).list_apps()]})


@router.get("/apps/{app}")
async def get_app(request: Request, app: AppName, caller: Reader) -> Json:
    _own_or_admin(caller, app)
    return Json(app_json(await apps_of(request).get_app(app)))


@router.patch("/apps/{app}")
async def change_app(request: Request, app: AppName, body: AppChangeIn, caller: Admin) -> Json:
    changed = await apps_of(request).update_app(app, _grants(body.grants), _limits(body.limits),
                                                body.note)
    return Json(app_json(changed))


@router.delete("/apps/{app}", status_code=204,
               responses={409: {"description": "an app cannot remove itself"}})
async def remove_app(request: Request, app: AppName, caller: Admin) -> Response:
    """Removes the app, its namespace claims and its tokens; its jobs stay (admins see them)."""
    await apps_of(request).remove_app(app, by=caller)
    return Response(status_code=204)


@router.get("/apps/{app}/namespaces")
async def list_namespaces(request: Request, app: AppName, caller: Reader) -> Json:
    _own_or_admin(caller, app)
    found = await apps_of(request).get_app(app)
    return Json({"app": app, "namespaces": list(found.namespaces)})


@router.post("/apps/{app}/namespaces", status_code=201,
             responses={409: {"description": "another app holds this claim"}})
async def add_namespace(request: Request, app: AppName, body: NamespaceIn, caller: Admin) -> Json:
    return Json(app_json(await apps_of(request).add_namespace(app, body.namespace)), 201)


@router.delete("/apps/{app}/namespaces/{claim:path}")
async def remove_namespace(request: Request, app: AppName, claim: str, caller: Admin) -> Json:
    return Json(app_json(await apps_of(request).remove_namespace(app, claim)))


@router.post("/apps/{app}/tokens", status_code=201)
async def create_token(request: Request, app: AppName, body: TokenIn, caller: Admin) -> Json:
    """The token is in this answer only: keep it; the server stores its hash."""
    expires = None if body.expires_at is None else parse_instant(body.expires_at, "expires_at")
    issued = await apps_of(request).create_token(app, body.role, body.groups, body.label,
                                                 expires)
    return Json({"token": issued.token} | token_json(issued.record, None), 201)


@router.get("/apps/{app}/tokens")
async def list_tokens(request: Request, app: AppName, caller: Admin) -> Json:
    service = apps_of(request)
    now = service.clock.now()
    return Json({"app": app,
                 "tokens": [token_json(t, now) for t in await service.list_tokens(app)]})


@router.post("/apps/{app}/tokens/{token_id}/revoke")
async def revoke_token(request: Request, app: AppName, token_id: str, caller: Admin) -> Json:
    """Refused from the next request on; the token stays listed as revoked."""
    service = apps_of(request)
    return Json(token_json(await service.revoke_token(app, token_id), service.clock.now()))


def _own_or_admin(caller: Principal, app: str) -> None:
    if not can_admin(caller) and caller.app != app:
        raise NotFound(f"no app {app!r}", "app")


def _grants(body: GrantsIn | None) -> Grants | None:
    return None if body is None else Grants.from_json({"job_types": body.job_types})


def _limits(body: dict[str, Any] | None) -> AppLimits | None:
    return None if body is None else AppLimits.from_json(body)


def app_json(app: App) -> dict[str, Any]:
    return {"name": app.name, "created_at": to_iso(app.created_at),
            "namespaces": list(app.namespaces), "grants": app.grants.to_json(),
            "limits": app.limits.to_json(), "note": app.note}


def token_json(record: TokenRecord, now: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id, "prefix": record.prefix, "app": record.app, "role": record.role.value,
        "groups": list(record.groups), "label": record.label,
        "created_at": to_iso(record.created_at), "expires_at": to_iso_or_none(record.expires_at),
        "revoked_at": to_iso_or_none(record.revoked_at),
    }
    if now is not None:
        body["live"] = record.live(now)
    return body


def _principal_json(caller: Principal) -> dict[str, Any]:
    return {"app": caller.app, "role": caller.role.value, "token": caller.token_prefix,
            "namespaces": list(caller.namespaces), "except": list(caller.foreign),
            "groups": list(caller.groups), "job_types": sorted(caller.job_types)}
