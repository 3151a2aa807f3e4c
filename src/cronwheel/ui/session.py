"""The console's one door to who is calling: `principal_of(request)`.

The console logs in with the same tokens as the API (issue 10). The login form posts a token;
the token is checked by `Access.authenticate` and kept server-side, under a random session id
that is the only thing the browser holds (an HttpOnly, SameSite=Strict cookie, Secure over
TLS). Every request authenticates the token again, so a revoked token ends its sessions on the
next click. What a principal may do is asked of `Access` too, so the console refuses exactly
what the API refuses.

`cronwheel serve` gives the console `ui/access.AppAccess`: the app service's `authenticate`
with `cronwheel.domain.access`'s `can_read`, `can_write` and `can_admin`. `OpenAccess` (no
login, everyone an admin, no apps page) is left for an app installed without a node's
tokens, e.g. a test of the pages alone.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import Request

from cronwheel.domain.access import Principal as DomainPrincipal
from cronwheel.domain.errors import DomainError, NotFound

COOKIE = "cw_console"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000


class Principal(Protocol):
    """What the console reads of a caller (issue 10's `domain.access.Principal` has these)."""

    @property
    def app(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def namespaces(self) -> tuple[str, ...]: ...


class AppRecord(Protocol):
    """An app as the apps page shows it (issue 10's `domain.access.App`)."""

    @property
    def name(self) -> str: ...

    @property
    def created_at(self) -> int: ...

    @property
    def namespaces(self) -> tuple[str, ...]: ...

    @property
    def note(self) -> str: ...


class TokenRecord(Protocol):
    """A token as listed: never the token, only its public prefix (`domain.access`)."""

    @property
    def prefix(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def created_at(self) -> int: ...

    @property
    def expires_at(self) -> int | None: ...

    @property
    def revoked_at(self) -> int | None: ...


class AppsDirectory(Protocol):
    """The apps and their tokens (issue 10's `AppService` has these two methods)."""

    async def list_apps(self) -> Sequence[AppRecord]: ...

    async def list_tokens(self, app: str) -> Sequence[TokenRecord]: ...


class Access(Protocol):
    """Who a token stands for and what it may do."""

    @property
    def needs_login(self) -> bool:
        """False while the server has no credentials at all (the API is open too)."""
        ...

    @property
    def directory(self) -> AppsDirectory | None:
        """The apps and tokens, once they exist (issue 10): the apps page shows only then."""
        ...

    async def authenticate(self, raw_token: str, address: str | None) -> Principal | None: ...

    def can_read(self, principal: Principal, namespace: str) -> bool: ...

    def can_write(self, principal: Principal, namespace: str) -> bool: ...

    def can_admin(self, principal: Principal) -> bool: ...


@dataclass(frozen=True, slots=True)
class OpenPrincipal:
    app: str = ""
    role: str = "admin"
    namespaces: tuple[str, ...] = ("*",)


class OpenAccess:
    """A server without credentials: nobody logs in and every request may do everything,
    as on its API."""

    needs_login = False
    directory = None

    async def authenticate(self, raw_token: str, address: str | None) -> Principal | None:
        return OpenPrincipal()

    def can_read(self, principal: Principal, namespace: str) -> bool:
        return True

    def can_write(self, principal: Principal, namespace: str) -> bool:
        return True

    def can_admin(self, principal: Principal) -> bool:
        return True


class Forbidden(DomainError):
    """The caller's role or app may not do this (shown as 403)."""

    code = "forbidden"


@dataclass(slots=True)
class Session:
    token: str
    csrf: str
    expires: float
    notices: list[tuple[str, str]] = field(default_factory=list)  # (notice|problem, text)


class Sessions:
    """Sessions of this process, by random id. A node restart (or another node behind a
    balancer without stickiness) asks for the token again: nothing secret is stored."""

    def __init__(self, seconds: float = SESSION_SECONDS) -> None:
        self.seconds = seconds
        self._by_id: dict[str, Session] = {}

    def open(self, token: str) -> tuple[str, Session]:
        self._expire()
        session_id = secrets.token_urlsafe(32)
        session = Session(token, secrets.token_urlsafe(24), time.monotonic() + self.seconds)
        self._by_id[session_id] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        session = self._by_id.get(session_id or "")
        if session is None or session.expires < time.monotonic():
            return None
        return session

    def close(self, session_id: str | None) -> None:
        self._by_id.pop(session_id or "", None)

    def _expire(self) -> None:
        now = time.monotonic()
        for gone in [k for k, s in self._by_id.items() if s.expires < now]:
            del self._by_id[gone]
        while len(self._by_id) >= MAX_SESSIONS:  # the oldest give way
            del self._by_id[next(iter(self._by_id))]


@dataclass(frozen=True, slots=True)
class Caller:
    """The principal of a console request, with its session (None on an open server)."""

    principal: Principal
    session: Session | None
    access: Access

    @property
    def csrf(self) -> str:
        return "" if self.session is None else self.session.csrf

    def can_read(self, namespace: str) -> bool:
        return self.access.can_read(self.principal, namespace)

    def can_write(self, namespace: str) -> bool:
        return self.access.can_write(self.principal, namespace)

    @property
    def admin(self) -> bool:
        return self.access.can_admin(self.principal)

    @property
    def writer(self) -> bool:
        """May change something somewhere (shows the buttons; each action checks again)."""
        return self.admin or any(self.can_write(n) for n in self.principal.namespaces)

    def require_read(self, namespace: str, message: str) -> None:
        """A namespace the caller may not read hides its jobs and runs: not found, with the
        message of something that does not exist."""
        if not self.can_read(namespace):
            raise Hidden(message)

    def require_write(self, namespace: str, action: str) -> None:
        self.require_read(namespace, f"nothing of namespace {namespace!r} here")
        if not self.can_write(namespace):
            raise Forbidden(f"a {self.principal.role} token may not {action}", "authorization")

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden(f"a {self.principal.role} token may not manage apps",
                            "authorization")


class Hidden(NotFound):
    """Something the caller may not see: the same answer as something that does not exist."""


def access_of(request: Request) -> Access:
    access: Access = request.app.state.console_access
    return access


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.console_sessions
    return sessions


async def principal_of(request: Request) -> Caller | None:
    """The caller of a console request, or None when it must log in (again)."""
    access = access_of(request)
    if not access.needs_login:
        return Caller(OpenPrincipal(), None, access)
    session = sessions_of(request).get(request.cookies.get(COOKIE))
    if session is None:
        return None
    address = request.client.host if request.client else None
    principal = await access.authenticate(session.token, address)
    if principal is None:
        return None
    if isinstance(principal, DomainPrincipal):
        request.state.principal = principal  # who the audit trail names for this request
    return Caller(principal, session, access)
