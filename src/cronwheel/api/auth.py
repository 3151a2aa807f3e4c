"""Who is calling: `Authorization: Bearer <token>` on /v1 (and /metrics unless public).

`AuthMiddleware` authenticates before anything else reads the request, so a caller without
a credential learns nothing (not even what a valid body looks like): 401 with
`WWW-Authenticate: Bearer`. Routes then ask the principal's questions through the helpers
below: a role that may never do this is 403; a job or run in a namespace the caller cannot
see is 404 with the same message as a job that does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from cronwheel.api.errors import error_body
from cronwheel.api.responses import Json
from cronwheel.apps_service import AppService
from cronwheel.domain.access import (
    NO_CODE_TYPES,
    Principal,
    Role,
    can_read,
    can_write,
    may_use_type,
)
from cronwheel.domain.errors import Forbidden, NotFound
from cronwheel.domain.jobs import JobSpec
from cronwheel.domain.runs import Run
from cronwheel.domain.targets import Target
from cronwheel.domain.worker_target import WorkerTarget

log = logging.getLogger("cronwheel.auth")

READERS = (Role.ADMIN, Role.OPERATOR, Role.VIEWER)
WRITERS = (Role.ADMIN, Role.OPERATOR)
WORKERS = (Role.ADMIN, Role.WORKER)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="cronwheel"'}

# Documented on every route that needs a token (the router's `responses`).
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no credential, or one that is unknown, expired or revoked"},
    403: {"description": "the credential's role or app may not do this"},
}


def needs_token(path: str, metrics_public: bool) -> bool:
    if path == "/metrics":
        return not metrics_public
    return path == "/v1" or path.startswith("/v1/")


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class AuthMiddleware:
    """Authenticates the requests that need a token; puts the principal in `request.state`."""

    def __init__(self, app: ASGIApp, apps: AppService, metrics_public: bool = False) -> None:
        self.app = app
        self.apps = apps
        self.metrics_public = metrics_public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not needs_token(scope["path"], self.metrics_public):
            await self.app(scope, receive, send)
            return
        raw = bearer_token(scope)
        client = scope.get("client")
        try:
            principal = None if raw is None else await self.apps.authenticate(
                raw, client[0] if client else None)
        except Exception:
            log.exception("auth.store_failed")
            await Json(error_body("unavailable", "cannot check credentials now; retry"),
                       503)(scope, receive, send)
            return
        if principal is None:
            await _refuse(raw is not None)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _refuse(presented: bool) -> Json:
    if presented:
        message = "the token is unknown, expired or revoked"
        challenge = {"WWW-Authenticate": CHALLENGE["WWW-Authenticate"] + ', error="invalid_token"'}
    else:
        message = "this endpoint needs a token: send 'Authorization: Bearer <token>'"
        challenge = CHALLENGE
    return Json(error_body("unauthenticated", message), 401, headers=challenge)


_bearer = HTTPBearer(auto_error=False, description="an app token: cw_<id>_<secret>")


async def principal_of(
    request: Request,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Principal:
    """The caller, as the middleware found it (also declares the bearer scheme in OpenAPI)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a route outside the middleware's paths: refuse, never guess
        raise Unauthenticated()
    return principal


Caller = Annotated[Principal, Depends(principal_of)]
AUTHENTICATED = [Depends(principal_of)]


def _role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Caller) -> Principal:
        return require_role(principal, roles)

    return check


# A route's role, checked before its body is read: a viewer's bad body is 403, not 422.
Reader = Annotated[Principal, Depends(_role(Role.ADMIN, Role.OPERATOR, Role.VIEWER))]
Writer = Annotated[Principal, Depends(_role(Role.ADMIN, Role.OPERATOR))]
WorkerCaller = Annotated[Principal, Depends(_role(Role.ADMIN, Role.WORKER))]
Admin = Annotated[Principal, Depends(_role(Role.ADMIN))]


class Unauthenticated(Exception):
    pass


def install(app: FastAPI, apps: AppService, metrics_public: bool) -> None:
    app.add_middleware(AuthMiddleware, apps=apps, metrics_public=metrics_public)

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(_request: Request, _exc: Unauthenticated) -> Json:
        return _refuse(False)


# -- what a route asks -----------------------------------------------------------------------


def require_role(principal: Principal, roles: tuple[Role, ...]) -> Principal:
    if principal.role not in roles:
        raise Forbidden(f"a {principal.role.value} token may not do this", "authorization")
    return principal


def require_admin(principal: Principal) -> Principal:
    return require_role(principal, (Role.ADMIN,))


def hidden_job(namespace: str, key: str) -> NotFound:
    """The very error a missing job gets: a job the caller may not see does not exist."""
    return NotFound(f"no job {key!r} in namespace {namespace!r}", "key")


def hidden_run(run_id: str) -> NotFound:
    return NotFound(f"no run {run_id!r}", "run_id")


def require_read(principal: Principal, namespace: str, key: str) -> Principal:
    require_role(principal, READERS)
    if not can_read(principal, namespace):
        raise hidden_job(namespace, key)
    return principal


def require_write(principal: Principal, namespace: str, key: str) -> Principal:
    require_role(principal, WRITERS)
    if not can_read(principal, namespace):
        raise hidden_job(namespace, key)
    if not can_write(principal, namespace):
        raise Forbidden(f"may not change jobs in namespace {namespace!r}", "namespace")
    return principal


def require_create(principal: Principal, namespace: str, field: str = "namespace") -> None:
    """Creating a job: the namespace must be the caller's app's (403 naming the field)."""
    require_role(principal, WRITERS)
    if not can_write(principal, namespace):
        raise Forbidden(f"namespace {namespace!r} does not belong to app {principal.app!r}",
                        field)


def require_run(principal: Principal, run: Run, write: bool = False) -> None:
    require_role(principal, WRITERS if write else READERS)
    if not can_read(principal, run.namespace):
        raise hidden_run(run.id)
    if write and not can_write(principal, run.namespace):
        raise Forbidden(f"may not change runs in namespace {run.namespace!r}", "run_id")


def require_upstreams(principal: Principal, spec: JobSpec, field: str = "depends_on") -> None:
    """A job may wait only for jobs its caller may read: otherwise the dependency graph would
    show another app's jobs and runs. An unreadable namespace is refused as if empty (404)."""
    for index, dep in enumerate(spec.depends_on):
        if not can_read(principal, dep.namespace):
            raise NotFound(f"no job {dep.job!r} in namespace {dep.namespace!r}",
                           f"{field}[{index}].namespace")


def require_grant(principal: Principal, target: Target, field: str = "target.type",
                  installed: Collection[str] = NO_CODE_TYPES) -> None:
    """Worker jobs that run code (shell, python, sql, command types: any type not among the
    server's `installed` ones) need the app to have been granted the type by an admin."""
    if isinstance(target, WorkerTarget) and not may_use_type(principal, target.job_type,
                                                             installed):
        raise Forbidden(f"app {principal.app!r} may not create {target.job_type!r} jobs: an "
                        "admin grants job types (PATCH /v1/apps/{app}, cronwheel apps grant)",
                        field)
