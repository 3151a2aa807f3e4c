"""Apps, namespaces and tokens as use cases: create, list, revoke, authenticate, first start.

A token is shown once, when it is made; only its SHA-256 is kept. `authenticate` reads the
token from the store on every call (never cached), so a revocation or an expiry takes effect
on the next request on every node. Apps and claims, which change rarely, are cached for
`FACTS_TTL_US`: a change made on this node is seen at once (the cache is dropped), one made
on another PostgreSQL node within that second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cronwheel import tokenfile
from cronwheel.contracts import AppStore, Clock
from cronwheel.domain.access import (
    SYSTEM_APP,
    App,
    AppLimits,
    Grants,
    Principal,
    Role,
    TokenRecord,
    check_app_name,
    check_claim,
    check_token_fields,
    hash_token,
    new_token,
    parse_token,
    principal_for,
    token_matches,
)
from cronwheel.domain.errors import Conflict, InvalidField, NotFound
from cronwheel.domain.time import Micros

log = logging.getLogger("cronwheel.apps")
MAX_NOTE = 1_000
FACTS_TTL_US = 1_000_000


@dataclass(frozen=True, slots=True)
class _Facts:
    """Every app and claim as read at `read_at` (by this node's clock)."""

    read_at: Micros
    apps: dict[str, App]
    claims: dict[str, str]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: `token` is shown to its maker once and never stored."""

    token: str
    record: TokenRecord


@dataclass(frozen=True, slots=True)
class FirstStart:
    """What the first start did about the admin token."""

    created: bool  # a token was made or provisioned now
    token_id: str | None = None
    path: Path | None = None  # where a made token was written


class AppService:
    def __init__(self, store: AppStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._facts: _Facts | None = None
        # told when an app or claim changed on this node (the per-app limits re-read them)
        self.on_change: Callable[[], None] | None = None

    async def _current_facts(self, now: Micros) -> _Facts:
        facts = self._facts
        if facts is None or not 0 <= now - facts.read_at < FACTS_TTL_US:
            apps = {app.name: app for app in await self.store.list_apps()}
            facts = _Facts(now, apps, await self.store.claims())
            self._facts = facts
        return facts

    def _changed(self) -> None:
        self._facts = None
        if self.on_change is not None:
            self.on_change()

    # -- apps --------------------------------------------------------------------------------

    async def create_app(
        self, name: str, namespaces: Iterable[str] = (), grants: Grants | None = None,
        limits: AppLimits | None = None, note: str = "",
    ) -> App:
        check_app_name(name)
        claims = tuple(sorted({check_claim(c, "namespaces") for c in namespaces}))
        app = App(name=name, created_at=self.clock.now(), grants=grants or Grants(),
                  limits=limits or AppLimits(), note=_note(note), namespaces=claims)
        await self.store.create_app(app)
        self._changed()
        return app

    async def get_app(self, name: str) -> App:
        app = await self.store.get_app(name)
        if app is None:
            raise NotFound(f"no app {name!r}", "app")
        return app

    async def list_apps(self) -> list[App]:
        return await self.store.list_apps()

    async def update_app(
        self, name: str, grants: Grants | None = None, limits: AppLimits | None = None,
        note: str | None = None,
    ) -> App:
        app = await self.get_app(name)
        changed = replace(app, grants=grants or app.grants, limits=limits or app.limits,
                          note=app.note if note is None else _note(note))
        await self.store.update_app(changed)
        self._changed()
        return changed

    async def remove_app(self, name: str, by: Principal | None = None) -> None:
        """Remove an app with its claims and tokens; its jobs stay, reachable by admins."""
        if by is not None and by.app == name:
            raise Conflict("an app cannot remove itself: use another app's admin token", "app")
        await self.store.remove_app(name)
        self._changed()

    async def add_namespace(self, app: str, claim: str) -> App:
        await self.store.add_namespace(app, check_claim(claim), self.clock.now())
        self._changed()
        return await self.get_app(app)

    async def remove_namespace(self, app: str, claim: str) -> App:
        await self.store.remove_namespace(app, claim)
        self._changed()
        return await self.get_app(app)

    # -- tokens ------------------------------------------------------------------------------

    async def create_token(
        self, app: str, role: Role, groups: Iterable[str] = (), label: str = "",
        expires_at: Micros | None = None,
    ) -> IssuedToken:
        now = self.clock.now()
        names = check_token_fields(role, groups, label, expires_at, now)
        raw, parts = new_token()
        record = TokenRecord(id=parts.id, app=app, role=role, hash=hash_token(raw),
                             created_at=now, groups=names, label=label, expires_at=expires_at)
        await self.store.add_token(record)
        return IssuedToken(raw, record)

    async def list_tokens(self, app: str) -> list[TokenRecord]:
        await self.get_app(app)
        return await self.store.list_tokens(app)

    async def revoke_token(self, app: str, token: str) -> TokenRecord:
        """Revoke by id (`abcd1234`) or prefix (`cw_abcd1234`)."""
        return await self.store.revoke_token(app, token.removeprefix("cw_"), self.clock.now())

    async def authenticate(self, raw: str, address: str | None = None) -> Principal | None:
        """The principal a presented token stands for; None if it is malformed, unknown,
        wrong, expired or revoked (the caller cannot tell which)."""
        parts = parse_token(raw)
        if parts is None:
            return None
        record = await self.store.get_token(parts.id)
        if record is None or not token_matches(raw, record.hash):
            return None
        now = self.clock.now()
        if not record.live(now):
            return None
        facts = await self._current_facts(now)
        app = facts.apps.get(record.app)
        if app is None:  # removed, or made on another node within the second
            self._changed()
            facts = await self._current_facts(now)
            app = facts.apps.get(record.app)
        if app is None:
            return None
        return principal_for(record, app, facts.claims, address)

    # -- first start -------------------------------------------------------------------------

    async def first_start(
        self, claims: Sequence[str], path: Path, provisioned: str | None = None
    ) -> FirstStart:
        """Make sure someone can administer this server.

        With `provisioned` (the CRONWHEEL_ADMIN_TOKEN setting), that token is the `system`
        app's admin token: stored hashed if it is new. Otherwise, when no live admin token
        exists, a new one is made and written to `path` (0600), and nowhere else.
        """
        now = self.clock.now()
        system = App(name=SYSTEM_APP, created_at=now,
                     note="made at first start; owns the namespaces of the built-in dialects")
        if provisioned is not None:
            return await self._provision(system, claims, provisioned, now)
        raw, parts = new_token()
        record = TokenRecord(id=parts.id, app=SYSTEM_APP, role=Role.ADMIN,
                             hash=hash_token(raw), created_at=now, label="first start")
        try:
            staged = tokenfile.stage(path, raw)
        except OSError as exc:
            raise RuntimeError(
                f"cannot write the first admin token to {path} ({exc.strerror}); set "
                "CRONWHEEL_ADMIN_TOKEN_FILE to a writable path or provision a token with "
                "CRONWHEEL_ADMIN_TOKEN") from None
        try:
            created = await self.store.bootstrap(system, claims, record, now)
            self._changed()
        except BaseException:
            tokenfile.discard(staged)
            raise
        if not created:
            tokenfile.discard(staged)
            return FirstStart(False)
        tokenfile.publish(staged, path)
        log.warning("first start: admin token %s written to %s (readable by this user only); "
                    "the cronwheel CLI on this machine finds it there", record.prefix, path)
        return FirstStart(True, parts.id, path)

    async def _provision(
        self, system: App, claims: Sequence[str], raw: str, now: Micros
    ) -> FirstStart:
        parts = parse_token(raw)
        if parts is None:
            raise InvalidField("CRONWHEEL_ADMIN_TOKEN is not a cronwheel token "
                               "(cw_<8 lowercase letters or digits>_<32+ characters>)",
                               "admin_token")
        existing = await self.store.get_token(parts.id)
        if existing is not None:
            if not token_matches(raw, existing.hash) or existing.role is not Role.ADMIN:
                raise Conflict("CRONWHEEL_ADMIN_TOKEN has the id of another token", "admin_token")
            return FirstStart(False, parts.id)
        record = TokenRecord(id=parts.id, app=SYSTEM_APP, role=Role.ADMIN, hash=hash_token(raw),
                             created_at=now, label="CRONWHEEL_ADMIN_TOKEN")
        created = await self.store.bootstrap(system, claims, record, now, only_if_no_admin=False)
        self._changed()
        return FirstStart(created, parts.id)


def _note(note: str) -> str:
    if len(note) > MAX_NOTE:
        raise InvalidField(f"a note is at most {MAX_NOTE} characters", "note")
    return note


def system_claims(default: str, delayjob: str, dispatch_prefix: str,
                  qschedule_apps: Iterable[str]) -> list[str]:
    """The namespaces the built-in dialects write today, all given to the `system` app."""
    return sorted({default, delayjob, f"{dispatch_prefix}*", *qschedule_apps})
