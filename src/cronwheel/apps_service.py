"""Apps, namespaces and tokens as use cases: create, list, revoke, authenticate, first start.

A token is shown once, when it is made; only its SHA-256 is kept. `authenticate` reads the
token from the store on every call (never cached), so a revocation or an expiry takes effect
on the next request on every node. Apps and claims, which change rarely, are cached for
`FACTS_TTL_US`: a change made on this node is seen at once (the cache is dropped), one made
on another PostgreSQL node within that second.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
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
    foreign_claims,
    hash_token,
    new_token,
    parse_token,
    principal_for,
    token_matches,
)
from cronwheel.domain.app_keys import (
    CredentialRefused,
    TokenVerdict,
    check_app_key,
    check_app_token,
    new_app_key,
)
from cronwheel.domain.errors import Conflict, InvalidField, NotFound
from cronwheel.domain.time import Micros
from cronwheel.secretbox import SecretBox, SecretKeyError

log = logging.getLogger("cronwheel.apps")
MAX_NOTE = 1_000
FACTS_TTL_US = 1_000_000
SENTINEL_KEY = "sentinel"  # the kind of an app's Sentinel appKey among its sealed secrets
_REFUSALS = {
    TokenVerdict.MALFORMED: "appToken must be 10 digits of unix seconds and 32 lowercase hex "
                            "characters of MD5(appKey + those digits)",
    TokenVerdict.STALE: "appToken is stale: its time is more than 180 s from the server's "
                        "clock",
    TokenVerdict.FORGED: "appToken does not match the app's appKey",
}


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
    def __init__(self, store: AppStore, clock: Clock, box: SecretBox | None = None) -> None:
        self.store = store
        self.clock = clock
        self.box = box  # the server key; the node sets it at first start
        self._facts: _Facts | None = None

    async def _current_facts(self, now: Micros) -> _Facts:
        facts = self._facts
        if facts is None or not 0 <= now - facts.read_at < FACTS_TTL_US:
            apps = {app.name: app for app in await self.store.list_apps()}
            facts = _Facts(now, apps, await self.store.claims())
            self._facts = facts
        return facts

    def _changed(self) -> None:
        self._facts = None

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

    # -- Sentinel appKeys --------------------------------------------------------------------

    def _box(self) -> SecretBox:
        if self.box is None:
            raise RuntimeError("the server key is not loaded yet (the node loads it at start)")
        return self.box

    async def set_sentinel_key(self, app: str, key: str | None = None) -> str:
        """Give the app a Sentinel appKey (a new random one unless `key` is given), stored
        sealed under the server key; the key is returned to be shown once."""
        await self.get_app(app)
        chosen = new_app_key() if key is None else check_app_key(key)
        sealed = self._box().seal(chosen, _context(app, SENTINEL_KEY))
        await self.store.set_secret(app, SENTINEL_KEY, sealed, self.clock.now())
        return chosen

    async def remove_sentinel_key(self, app: str) -> None:
        await self.get_app(app)
        if not await self.store.remove_secret(app, SENTINEL_KEY):
            raise NotFound(f"app {app!r} has no Sentinel appKey", "app")

    async def has_sentinel_key(self, app: str) -> bool:
        return await self.store.get_secret(app, SENTINEL_KEY) is not None

    async def sentinel_principal(
        self, app_name: str, app_token: str, user: str | None = None,
        address: str | None = None,
    ) -> Principal:
        """The app (as an operator) whose appKey made `app_token` within 180 s of now;
        CredentialRefused (field `appName` or `appToken`) otherwise."""
        now = self.clock.now()
        facts = await self._current_facts(now)
        app = facts.apps.get(app_name)
        if app is None:  # made on another node within the second, or unknown
            self._changed()
            facts = await self._current_facts(now)
            app = facts.apps.get(app_name)
        sealed = None if app is None else await self.store.get_secret(app_name, SENTINEL_KEY)
        if app is None or sealed is None:
            raise CredentialRefused(f"no app {app_name!r} with a Sentinel appKey", "appName")
        try:
            key = self._box().open(sealed, _context(app_name, SENTINEL_KEY))
        except SecretKeyError:
            log.exception("apps.sentinel_key_unreadable", extra={"app": app_name})
            raise
        verdict = check_app_token(app_token, key, now)
        if verdict is not TokenVerdict.OK:
            raise CredentialRefused(_REFUSALS[verdict], "appToken")
        return Principal(
            app=app.name, role=Role.OPERATOR, token_prefix=f"sentinel:{app.name}",
            namespaces=app.namespaces, foreign=foreign_claims(app.name, facts.claims),
            job_types=app.grants.job_types, user=user, address=address, limits=app.limits,
        )

    async def reseal_secrets(self) -> int:
        """Re-seal every secret not under the current server key (after a rotation: the
        old key is in CRONWHEEL_PREVIOUS_SECRET_KEYS); how many were re-sealed."""
        box = self._box()
        count = 0
        for app, kind, sealed in await self.store.sealed_secrets():
            if box.current(sealed):
                continue
            context = _context(app, kind)
            try:
                opened = box.open(sealed, context)
            except SecretKeyError as exc:  # this node lacks the key: it still schedules
                log.error("apps.secret_unreadable: %s", exc, extra={"app": app, "kind": kind})
                continue
            await self.store.set_secret(app, kind, box.seal(opened, context), self.clock.now())
            count += 1
        if count:
            log.warning("apps.secrets_resealed", extra={"count": count, "key": box.key_id})
        return count

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


def _context(app: str, kind: str) -> str:
    """What a sealed secret is bound to: it opens only as this app's secret of this kind."""
    return f"cronwheel app secret\0{app}\0{kind}"


def _note(note: str) -> str:
    if len(note) > MAX_NOTE:
        raise InvalidField(f"a note is at most {MAX_NOTE} characters", "note")
    return note


def system_claims(default: str, delayjob: str, dispatch_prefix: str,
                  qschedule_apps: Iterable[str]) -> list[str]:
    """The namespaces the built-in dialects write today, all given to the `system` app."""
    return sorted({default, delayjob, f"{dispatch_prefix}*", *qschedule_apps})
