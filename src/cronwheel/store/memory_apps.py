"""An `AppStore` in process memory, the twin of `store.apps.SqlAppStore` for tests.

No method awaits anything, so on one event loop each is atomic, as a transaction is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cronwheel.domain.access import App, Role, TokenRecord
from cronwheel.domain.errors import Conflict, NotFound
from cronwheel.domain.time import Micros


class MemoryAppStore:
    def __init__(self) -> None:
        self._apps: dict[str, App] = {}  # without their claims: those live in `_claims`
        self._claims: dict[str, str] = {}
        self._tokens: dict[str, TokenRecord] = {}
        self._secrets: dict[tuple[str, str], str] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _with_claims(self, app: App) -> App:
        mine = tuple(sorted(c for c, owner in self._claims.items() if owner == app.name))
        return replace(app, namespaces=mine)

    async def create_app(self, app: App) -> None:
        if app.name in self._apps:
            raise Conflict(f"app {app.name!r} exists", "name")
        for claim in app.namespaces:
            holder = self._claims.get(claim)
            if holder is not None:
                raise Conflict(f"namespace {claim!r} belongs to app {holder!r}", "namespaces")
        self._apps[app.name] = replace(app, namespaces=())
        for claim in app.namespaces:
            self._claims[claim] = app.name

    async def get_app(self, name: str) -> App | None:
        app = self._apps.get(name)
        return None if app is None else self._with_claims(app)

    async def list_apps(self) -> list[App]:
        return [self._with_claims(self._apps[name]) for name in sorted(self._apps)]

    async def update_app(self, app: App) -> None:
        old = self._require(app.name)
        self._apps[app.name] = replace(old, grants=app.grants, limits=app.limits, note=app.note)

    async def remove_app(self, name: str) -> None:
        self._require(name)
        del self._apps[name]
        self._claims = {c: owner for c, owner in self._claims.items() if owner != name}
        self._tokens = {i: t for i, t in self._tokens.items() if t.app != name}
        self._secrets = {k: v for k, v in self._secrets.items() if k[0] != name}

    def _require(self, name: str) -> App:
        app = self._apps.get(name)
        if app is None:
            raise NotFound(f"no app {name!r}", "app")
        return app

    async def add_namespace(self, app: str, claim: str, now: Micros) -> None:
        self._require(app)
        holder = self._claims.get(claim)
        if holder is not None and holder != app:
            raise Conflict(f"namespace {claim!r} belongs to app {holder!r}", "namespace")
        self._claims[claim] = app

    async def remove_namespace(self, app: str, claim: str) -> None:
        if self._claims.get(claim) != app:
            raise NotFound(f"app {app!r} has no namespace {claim!r}", "namespace")
        del self._claims[claim]

    async def claims(self) -> dict[str, str]:
        return dict(self._claims)

    async def add_token(self, record: TokenRecord) -> None:
        self._require(record.app)
        if record.id in self._tokens:
            raise Conflict(f"token id {record.id!r} is taken", "id")
        self._tokens[record.id] = record

    async def get_token(self, token_id: str) -> TokenRecord | None:
        return self._tokens.get(token_id)

    async def list_tokens(self, app: str) -> list[TokenRecord]:
        return sorted((t for t in self._tokens.values() if t.app == app),
                      key=lambda t: (t.created_at, t.id))

    async def revoke_token(self, app: str, token_id: str, now: Micros) -> TokenRecord:
        record = self._tokens.get(token_id)
        if record is None or record.app != app:
            raise NotFound(f"app {app!r} has no token {token_id!r}", "token")
        if record.revoked_at is None:
            record = replace(record, revoked_at=now)
            self._tokens[token_id] = record
        return record

    async def bootstrap(self, app: App, claims: Sequence[str], record: TokenRecord,
                        now: Micros, only_if_no_admin: bool = True) -> bool:
        if only_if_no_admin and any(t.role is Role.ADMIN and t.live(now)
                                    for t in self._tokens.values()):
            return False
        if record.id in self._tokens:
            return False
        if app.name not in self._apps:
            self._apps[app.name] = replace(app, namespaces=())
        for claim in claims:
            self._claims.setdefault(claim, app.name)
        self._tokens[record.id] = replace(record, app=app.name)
        return True

    async def set_secret(self, app: str, kind: str, sealed: str, now: Micros) -> None:
        self._require(app)
        self._secrets[(app, kind)] = sealed

    async def get_secret(self, app: str, kind: str) -> str | None:
        return self._secrets.get((app, kind))

    async def remove_secret(self, app: str, kind: str) -> bool:
        return self._secrets.pop((app, kind), None) is not None

    async def sealed_secrets(self) -> list[tuple[str, str, str]]:
        return [(app, kind, sealed) for (app, kind), sealed in sorted(self._secrets.items())]
