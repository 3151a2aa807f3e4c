"""Apps, namespaces and tokens as use cases: create, list, revoke, authenticate, first start.

A token is shown once, when it is made; only its SHA-256 is kept. With several nodes
(PostgreSQL), `authenticate` reads the token from the store on every call, so a revocation
takes effect on the next request on every node. The one node of a SQLite file keeps the live
tokens it has read (`single_node`): every revocation or removal passes through this object,
which drops them, so it too refuses a revoked token on the next request, without a query per
request. Expiry is checked on every call either way. Apps and claims, which change rarely,
are cached for `FACTS_TTL_US`: a change made on this node is seen at once (the cache is
dropped), one made on another PostgreSQL node within that second.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from cronwheel import tokenfile
from cronwheel.contracts import AdmissionStore, AppStore, Clock
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
from cronwheel.domain.admission import (
    AdmissionRule,
    NotAdmitted,
    QscheduleApp,
    admitted_principal,
    check_dialect,
    check_qschedule,
    check_qschedule_token,
    check_rule_owned,
    choose,
    client_address,
    new_rule,
    owns_namespace,
    parse_network,
    qschedule_token_hash,
    rule_owned,
    rules_by_dialect,
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
MAX_CACHED_TOKENS = 10_000  # live tokens kept by a single node; beyond, the cache starts over
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
    rules: dict[str, tuple[AdmissionRule, ...]] = field(default_factory=dict)  # by dialect
    foreign: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by app, as computed

    def foreign_of(self, app: str) -> tuple[str, ...]:
        """Other apps' claims carved out of `app`'s, computed once per read of the facts."""
        found = self.foreign.get(app)
        if found is None:
            found = self.foreign[app] = foreign_claims(app, self.claims)
        return found


@dataclass(frozen=True, slots=True)
class Admitted:
    """A dialect request the policy admitted: the rule that did, and who the client is."""

    rule: AdmissionRule
    principal: Principal

    @property
    def namespace(self) -> str:
        return self.rule.namespace


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
    def __init__(self, store: AppStore, clock: Clock,
                 admission: AdmissionStore | None = None, box: SecretBox | None = None,
                 single_node: bool = False) -> None:
        self.store = store
        self.clock = clock
        self.admission = admission
        self.box = box  # the server key; the node sets it at first start
        self._facts: _Facts | None = None
        # live tokens by id, on a single node only (see the module's doc); `_generation`
        # counts drops, so a read that raced a revocation is not kept
        self._tokens: dict[str, TokenRecord] | None = {} if single_node else None
        self._generation = 0
        self._reading = asyncio.Lock()
        # told when an app or claim changed on this node (the per-app limits re-read them)
        self.on_change: Callable[[], None] | None = None

    async def _current_facts(self, now: Micros) -> _Facts:
        facts = self._facts
        if facts is not None and 0 <= now - facts.read_at < FACTS_TTL_US:
            return facts
        async with self._reading:  # one read for every request that found the cache stale
            facts = self._facts
            if facts is not None and 0 <= now - facts.read_at < FACTS_TTL_US:
                return facts
            generation = self._generation
            apps = {app.name: app for app in await self.store.list_apps()}
            rules = [] if self.admission is None else await self.admission.rules()
            facts = _Facts(now, apps, await self.store.claims(), rules_by_dialect(rules))
            if generation == self._generation:  # else a change landed while reading
                self._facts = facts
            return facts

    def _changed(self) -> None:
        self._facts = None
        self._forget_tokens()
        if self.on_change is not None:
            self.on_change()

    async def warm(self) -> None:
        """Read the facts now (at start), so the first request does not wait for them."""
        await self._current_facts(self.clock.now())

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

    async def token_ids(self, app: str) -> frozenset[str]:
        """The ids of every token the app holds, revoked and expired ones included (one
        query): a worker's id names its registering token (domain/worker_ids.py), so these
        tell which workers are the app's. A removed app's tokens are gone with it."""
        return frozenset(record.id for record in await self.store.list_tokens(app))

    async def revoke_token(self, app: str, token: str) -> TokenRecord:
        """Revoke by id (`abcd1234`) or prefix (`cw_abcd1234`)."""
        try:
            return await self.store.revoke_token(app, token.removeprefix("cw_"),
                                                 self.clock.now())
        finally:
            self._forget_tokens()

    def _forget_tokens(self) -> None:
        self._generation += 1
        if self._tokens:
            self._tokens.clear()

    async def _token(self, token_id: str) -> TokenRecord | None:
        """The stored token, from this node's cache when it keeps one (live ones only)."""
        cache = self._tokens
        if cache is None:
            return await self.store.get_token(token_id)
        record = cache.get(token_id)
        if record is not None:
            return record
        generation = self._generation
        record = await self.store.get_token(token_id)
        if record is not None and record.revoked_at is None and generation == self._generation:
            if len(cache) >= MAX_CACHED_TOKENS:
                cache.clear()
            cache[token_id] = record
        return record

    async def authenticate(self, raw: str, address: str | None = None) -> Principal | None:
        """The principal a presented token stands for; None if it is malformed, unknown,
        wrong, expired or revoked (the caller cannot tell which)."""
        parts = parse_token(raw)
        if parts is None:
            return None
        record = await self._token(parts.id)
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

    # -- dialect admission (docs/auth.md, "Dialects") ----------------------------------------

    async def admit(
        self, dialect: str, host: str | None, defaults: Sequence[AdmissionRule],
        bearer: str | None = None, user: str | None = None,
    ) -> Admitted:
        """Judge one dialect request by its client's address (and token, where its rule asks
        for one). Rules and apps come from the cache (a second old at most): an admitted
        request without a token costs no query. Raises NotAdmitted."""
        now = self.clock.now()
        facts = await self._current_facts(now)
        rule = choose(facts.rules.get(dialect) or defaults, client_address(host))
        if rule is None:
            raise NotAdmitted(403, f"clients from {host or 'an unknown address'} are not "
                                   f"admitted to the {dialect} dialect")
        app = facts.apps.get(rule.app)
        if app is None and rule.builtin:  # before the first start made it
            app = App(name=rule.app, created_at=0)
        if app is None or not (rule.builtin or rule_owned(rule, facts.claims)):
            raise NotAdmitted(403, f"the {dialect} rule for {rule.network} names app "
                                   f"{rule.app!r}, which does not own {rule.namespace!r} now")
        prefix = ""
        if rule.token:
            prefix = await self._rule_token(rule, bearer, host)
        return Admitted(rule, admitted_principal(app, facts.claims, host, user, prefix,
                                                 facts.foreign_of(app.name)))

    async def _rule_token(self, rule: AdmissionRule, bearer: str | None,
                          host: str | None) -> str:
        needed = f"'Authorization: Bearer <an operator token of app {rule.app}>'"
        if bearer is None:
            raise NotAdmitted(401, f"clients from {rule.network} must send {needed}")
        principal = await self.authenticate(bearer, host)
        if principal is None:
            raise NotAdmitted(401, "the token is unknown, expired or revoked")
        if principal.app != rule.app or principal.role not in (Role.ADMIN, Role.OPERATOR):
            raise NotAdmitted(403, f"clients from {rule.network} must send {needed}; this "
                                   f"is a {principal.role.value} token of app "
                                   f"{principal.app!r}")
        return principal.token_prefix

    def _admission_store(self) -> AdmissionStore:
        if self.admission is None:
            raise RuntimeError("this node's store keeps no admission rules")
        return self.admission

    async def add_rule(self, app: str, dialect: str, network: str, namespace: str,
                       token: bool = False, note: str = "") -> AdmissionRule:
        """Admit `dialect` clients of `network` as `app`, writing `namespace` (which the app
        must own; a prefix it owns entirely for dispatchserver)."""
        await self.get_app(app)
        rule = new_rule(dialect, network, app, namespace, token, note, self.clock.now())
        check_rule_owned(rule, await self.store.claims())
        await self._admission_store().add_rule(rule)
        self._changed()
        log.info("admission.rule_added", extra={"app": app, "dialect": dialect,
                                                "network": rule.network})
        return rule

    async def list_rules(self, app: str | None = None) -> list[AdmissionRule]:
        if app is not None:
            await self.get_app(app)
        rules = [] if self.admission is None else await self.admission.rules()
        return [r for r in rules if app is None or r.app == app]

    async def remove_rule(self, app: str, dialect: str, network: str) -> None:
        check_dialect(dialect)
        await self._admission_store().remove_rule(app, dialect, str(parse_network(network)))
        self._changed()

    # -- qschedule applications --------------------------------------------------------------

    async def add_qschedule(
        self, app: str, qid: int, name: str, token: str | None = None, note: str = "",
    ) -> tuple[str, QscheduleApp]:
        """A qschedule application of `app` (its jobs are in namespace `name`, which the app
        must own). Its Q-Server-Token is `token`, or a new random one; returned once."""
        await self.get_app(app)
        check_qschedule(qid, name)
        raw = secrets.token_urlsafe(24) if token is None else check_qschedule_token(token)
        if not owns_namespace(app, name, await self.store.claims()):
            raise InvalidField(f"app {app!r} does not own namespace {name!r}: give it the "
                               "claim first", "name")
        record = QscheduleApp(qid, name, app, qschedule_token_hash(raw.encode()),
                              self.clock.now(), _note(note))
        await self._admission_store().add_qschedule(record)
        return raw, record

    async def list_qschedule(self, app: str | None = None) -> list[QscheduleApp]:
        if app is not None:
            await self.get_app(app)
        return [] if self.admission is None else await self.admission.qschedule_apps(app)

    async def remove_qschedule(self, app: str, qid: int) -> None:
        await self._admission_store().remove_qschedule(app, qid)

    async def app_principal(self, name: str, address: str | None,
                            user: str | None = None) -> Principal | None:
        """An operator of app `name` (from the cache), for a dialect that found the app by
        its own credential; None if the app is gone."""
        facts = await self._current_facts(self.clock.now())
        app = facts.apps.get(name)
        if app is None:
            return None
        return admitted_principal(app, facts.claims, address, user,
                                  foreign=facts.foreign_of(name))

    async def qschedule_app(self, token: bytes) -> QscheduleApp | None:
        """The qschedule application whose Q-Server-Token this is (read on every request)."""
        if self.admission is None:
            return None
        return await self.admission.qschedule_by_hash(qschedule_token_hash(token))

    async def import_qschedule(self, entries: Iterable[tuple[int, str, str]]) -> int:
        """Bring CRONWHEEL_QSCHEDULE_APPS (id, name, token) into app data, idempotently: an
        entry already imported is skipped; one that clashes with app data is logged and
        left out (the app data wins). Each goes to the app owning its namespace (`system`
        when none does). Returns how many were imported now."""
        if self.admission is None:
            return 0
        claims = await self.store.claims()
        imported = 0
        for qid, name, token in entries:
            owner = next((a for a in {*claims.values(), SYSTEM_APP}
                          if owns_namespace(a, name, claims)), SYSTEM_APP)
            record = QscheduleApp(qid, name, owner, qschedule_token_hash(token.encode()),
                                  self.clock.now(), "imported from CRONWHEEL_QSCHEDULE_APPS")
            try:
                added = await self.admission.add_qschedule(record, if_absent=True)
            except (Conflict, NotFound) as exc:
                log.warning("qschedule app %s (%s) in CRONWHEEL_QSCHEDULE_APPS not imported: "
                            "%s; the app data is kept", qid, name, exc.message)
                continue
            if added:
                imported += 1
                log.warning("qschedule app %s (%s) imported from CRONWHEEL_QSCHEDULE_APPS into "
                            "app %r; its token is now kept as a hash (the setting can go)",
                            qid, name, owner)
        return imported

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
                  qschedule_apps: Iterable[str], kubernetes: str | None = None) -> list[str]:
    """The namespaces the built-in dialects write today, all given to the `system` app."""
    extra = () if kubernetes is None else (kubernetes,)
    return sorted({default, delayjob, f"{dispatch_prefix}*", *qschedule_apps, *extra})
