"""/v1/apps: apps, their namespaces and their tokens (admins), and /v1/whoami (any token).

Also the app data of the dialects (admins): the networks whose clients of a credential-less
dialect are the app (`/admission`), and its qschedule applications (`/qschedule`).
A new token (or Q-Server-Token) is in the answer of its creation only; lists show its prefix,
never the token.
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
from cronwheel.domain.admission import AdmissionRule, QscheduleApp
from cronwheel.domain.command_types import check_type_name
from cronwheel.domain.errors import NotFound
from cronwheel.domain.time import parse_instant, to_iso, to_iso_or_none

router = APIRouter(prefix="/v1", tags=["apps"], dependencies=AUTHENTICATED, responses=RESPONSES)
AppName = Annotated[str, Path(min_length=1, max_length=63)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GrantsIn(_Strict):
    job_types: list[str] = Field(default_factory=list, max_length=64,
                                 description="worker job types that run code: shell, python, sql, "
                                             "command types (hive, ...); no wildcard")


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


class RuleIn(_Strict):
    dialect: str = Field(description="delayjob, delayjob-grpc, dispatchserver or kubernetes")
    network: str = Field(min_length=1, max_length=64,
                         description="the clients' network in CIDR form (10.0.0.0/8)")
    namespace: str = Field(min_length=1, max_length=255,
                           description="where the dialect's jobs go: a namespace of the app "
                                       "(for dispatchserver, a prefix the app owns)")
    token: bool = Field(False, description="clients must also send 'Authorization: Bearer "
                                           "<operator token of the app>'")
    note: str = Field("", max_length=1_000)


class QscheduleIn(_Strict):
    id: int = Field(gt=0, lt=2**63, description="the qschedule app id its clients know")
    name: str = Field(min_length=1, max_length=255,
                      description="the qschedule app name: the namespace of its jobs")
    token: str | None = Field(None, min_length=8, max_length=512,
                              description="its Q-Server-Token; a new random one when absent")
    note: str = Field("", max_length=1_000)


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


@router.get("/apps/{app}/admission")
async def list_rules(request: Request, app: AppName, caller: Admin) -> Json:
    """The networks whose dialect clients are this app (docs/auth.md, "Dialects")."""
    rules = await apps_of(request).list_rules(app)
    return Json({"app": app, "rules": [rule_json(r) for r in rules]})


@router.post("/apps/{app}/admission", status_code=201,
             responses={409: {"description": "this dialect and network have a rule"}})
async def add_rule(request: Request, app: AppName, body: RuleIn, caller: Admin) -> Json:
    """Admit a dialect's clients of a network as this app, writing the given namespace.
    While a dialect has no rule, loopback clients are the `system` app."""
    rule = await apps_of(request).add_rule(app, body.dialect, body.network, body.namespace,
                                           body.token, body.note)
    return Json(rule_json(rule), 201)


@router.delete("/apps/{app}/admission/{dialect}/{network:path}", status_code=204)
async def remove_rule(request: Request, app: AppName, dialect: str, network: str,
                      caller: Admin) -> Response:
    await apps_of(request).remove_rule(app, dialect, network)
    return Response(status_code=204)


@router.get("/apps/{app}/qschedule")
async def list_qschedule(request: Request, app: AppName, caller: Admin) -> Json:
    """The app's qschedule applications (never their tokens)."""
    found = await apps_of(request).list_qschedule(app)
    return Json({"app": app, "qschedule": [qschedule_json(q) for q in found]})


@router.post("/apps/{app}/qschedule", status_code=201,
             responses={409: {"description": "the id, name or token is taken"}})
async def add_qschedule(request: Request, app: AppName, body: QscheduleIn,
                        caller: Admin) -> Json:
    """A qschedule application of this app; its Q-Server-Token is in this answer only."""
    token, record = await apps_of(request).add_qschedule(app, body.id, body.name, body.token,
                                                         body.note)
    return Json({"token": token} | qschedule_json(record), 201)


@router.delete("/apps/{app}/qschedule/{qid}", status_code=204)
async def remove_qschedule(request: Request, app: AppName, qid: Annotated[int, Path(gt=0)],
                           caller: Admin) -> Response:
    """Its token is refused from the next request on; its jobs stay."""
    await apps_of(request).remove_qschedule(app, qid)
    return Response(status_code=204)


def rule_json(rule: AdmissionRule) -> dict[str, Any]:
    return {"dialect": rule.dialect, "network": rule.network, "app": rule.app,
            "namespace": rule.namespace, "token": rule.token, "note": rule.note,
            "created_at": to_iso(rule.created_at)}


def qschedule_json(record: QscheduleApp) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "app": record.app, "note": record.note,
            "created_at": to_iso(record.created_at)}


class SentinelKeyIn(_Strict):
    app_key: str | None = Field(None, min_length=1, max_length=128,
                                description="the appKey to set; a random one when absent")


@router.post("/apps/{app}/sentinel-key", status_code=201)
async def set_sentinel_key(
    request: Request, app: AppName, caller: Admin, body: SentinelKeyIn | None = None,
) -> Json:
    """Set (or replace) the app's Sentinel appKey, stored sealed under the server key. The
    key is in this answer only: Sentinel clients compute appToken from it."""
    key = await apps_of(request).set_sentinel_key(app, None if body is None else body.app_key)
    return Json({"app": app, "app_key": key}, 201)


@router.get("/apps/{app}/sentinel-key")
async def has_sentinel_key(request: Request, app: AppName, caller: Admin) -> Json:
    """Whether the app has a Sentinel appKey (never the key)."""
    service = apps_of(request)
    await service.get_app(app)
    return Json({"app": app, "set": await service.has_sentinel_key(app)})


@router.delete("/apps/{app}/sentinel-key", status_code=204)
async def remove_sentinel_key(request: Request, app: AppName, caller: Admin) -> Response:
    """Sentinel requests of the app are refused from the next one on."""
    await apps_of(request).remove_sentinel_key(app)
    return Response(status_code=204)


def _own_or_admin(caller: Principal, app: str) -> None:
    if not can_admin(caller) and caller.app != app:
        raise NotFound(f"no app {app!r}", "app")


def _grants(body: GrantsIn | None) -> Grants | None:
    """Each grant names one job type: there is no wildcard (docs/workers.md)."""
    if body is None:
        return None
    for name in body.job_types:
        check_type_name(name, "grants.job_types")
    return Grants.from_json({"job_types": body.job_types})


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
