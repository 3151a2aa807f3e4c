"""SQL for apps, their namespace claims and their tokens (`AppStore` over SQLite or PostgreSQL).

Shares the node's `Database`, so on SQLite these writes join the one writer.
Tokens are stored as their SHA-256 only. Reads go to the database every time (no cache): a
revoked token is refused on the next request on every node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.contracts import AppStore, NodeStore
from cronwheel.domain.access import App, AppLimits, Grants, Role, TokenRecord
from cronwheel.domain.errors import Conflict, NotFound
from cronwheel.domain.time import Micros
from cronwheel.store.admission import remove_app_admission
from cronwheel.store.connection import Database
from cronwheel.store.tables import metadata

BOOTSTRAP_LOCK = 0x61707073  # "apps": nodes starting together bootstrap one at a time

apps = Table(
    "apps",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("grants", Text, nullable=False),  # JSON: {"job_types": [...]}
    Column("limits", Text, nullable=False),  # JSON: overrides of the server's limits
    Column("note", Text, nullable=False),
)

app_namespaces = Table(
    "app_namespaces",
    metadata,
    Column("claim", String(256), primary_key=True),  # a name, or a prefix ending in '*'
    Column("app", String(63), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_app_namespaces_app", app_namespaces.c.app)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(16), primary_key=True),  # the public part: cw_<id>_...
    Column("app", String(63), nullable=False),
    Column("role", String(16), nullable=False),
    Column("groups", Text, nullable=False),  # JSON list, worker tokens only
    Column("label", Text, nullable=False),
    Column("hash", String(64), nullable=False),  # hex SHA-256 of the whole token
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)
Index("ix_tokens_app", tokens.c.app)

# Secrets the server must read back (a Sentinel appKey), sealed under the server key: never
# in clear (0009).
app_secrets = Table(
    "app_secrets",
    metadata,
    Column("app", String(63), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("sealed", Text, nullable=False),  # <key id>:<base64 nonce + AES-GCM ciphertext>
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("app", "kind", name="pk_app_secrets"),
)


def _app_from_row(row: Any, claims: Sequence[str]) -> App:
    return App(
        name=row["name"], created_at=row["created_at"],
        grants=Grants.from_json(orjson.loads(row["grants"])),
        limits=AppLimits.from_json(orjson.loads(row["limits"])),
        note=row["note"], namespaces=tuple(sorted(claims)),
    )


def _app_values(app: App) -> dict[str, Any]:
    return {"name": app.name, "created_at": app.created_at,
            "grants": orjson.dumps(app.grants.to_json()).decode(),
            "limits": orjson.dumps(app.limits.to_json()).decode(), "note": app.note}


def _token_from_row(row: Any) -> TokenRecord:
    return TokenRecord(
        id=row["id"], app=row["app"], role=Role(row["role"]), hash=row["hash"],
        created_at=row["created_at"], groups=tuple(orjson.loads(row["groups"])),
        label=row["label"], expires_at=row["expires_at"], revoked_at=row["revoked_at"],
    )


def _token_values(record: TokenRecord) -> dict[str, Any]:
    return {"id": record.id, "app": record.app, "role": record.role.value,
            "groups": orjson.dumps(list(record.groups)).decode(), "label": record.label,
            "hash": record.hash, "created_at": record.created_at,
            "expires_at": record.expires_at, "revoked_at": record.revoked_at}


class SqlAppStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def of(store: NodeStore) -> AppStore:
        """The app store of a node's store; a SqlStore's shares its connections and is
        migrated by its start."""
        return store.apps

    # -- apps --------------------------------------------------------------------------------

    async def create_app(self, app: App) -> None:
        async def op(conn: AsyncConnection) -> None:
            if await _exists(conn, apps.c.name, app.name):
                raise Conflict(f"app {app.name!r} exists", "name")
            for claim in app.namespaces:
                holder = (await conn.execute(select(app_namespaces.c.app)
                                             .where(app_namespaces.c.claim == claim))).scalar()
                if holder is not None:
                    raise Conflict(f"namespace {claim!r} belongs to app {holder!r}",
                                   "namespaces")
            await conn.execute(insert(apps).values(_app_values(app)))
            for claim in app.namespaces:
                await conn.execute(insert(app_namespaces).values(
                    claim=claim, app=app.name, created_at=app.created_at))

        await self._db.write(op)

    async def get_app(self, name: str) -> App | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(apps).where(apps.c.name == name))).mappings().first()
            if row is None:
                return None
            claims = (await conn.execute(select(app_namespaces.c.claim)
                                         .where(app_namespaces.c.app == name))).scalars().all()
        return _app_from_row(row, claims)

    async def list_apps(self) -> list[App]:
        async with self._db.read() as conn:
            rows = (await conn.execute(select(apps).order_by(apps.c.name))).mappings().all()
            pairs = (await conn.execute(select(app_namespaces.c.claim,
                                               app_namespaces.c.app))).all()
        by_app: dict[str, list[str]] = {}
        for claim, owner in pairs:
            by_app.setdefault(owner, []).append(claim)
        return [_app_from_row(row, by_app.get(row["name"], [])) for row in rows]

    async def update_app(self, app: App) -> None:
        async def op(conn: AsyncConnection) -> None:
            if not await _exists(conn, apps.c.name, app.name):
                raise NotFound(f"no app {app.name!r}", "app")
            values = _app_values(app)
            del values["name"], values["created_at"]
            await conn.execute(update(apps).where(apps.c.name == app.name).values(values))

        await self._db.write(op)

    async def remove_app(self, name: str) -> None:
        async def op(conn: AsyncConnection) -> None:
            if not await _exists(conn, apps.c.name, name):
                raise NotFound(f"no app {name!r}", "app")
            await conn.execute(delete(tokens).where(tokens.c.app == name))
            await remove_app_admission(conn, name)
            await conn.execute(delete(app_secrets).where(app_secrets.c.app == name))
            await conn.execute(delete(app_namespaces).where(app_namespaces.c.app == name))
            await conn.execute(delete(apps).where(apps.c.name == name))

        await self._db.write(op)

    # -- namespaces --------------------------------------------------------------------------

    async def add_namespace(self, app: str, claim: str, now: Micros) -> None:
        async def op(conn: AsyncConnection) -> None:
            if not await _exists(conn, apps.c.name, app):
                raise NotFound(f"no app {app!r}", "app")
            holder = (await conn.execute(select(app_namespaces.c.app)
                                         .where(app_namespaces.c.claim == claim))).scalar()
            if holder == app:
                return
            if holder is not None:
                raise Conflict(f"namespace {claim!r} belongs to app {holder!r}", "namespace")
            await conn.execute(insert(app_namespaces).values(claim=claim, app=app,
                                                             created_at=now))

        await self._db.write(op)

    async def remove_namespace(self, app: str, claim: str) -> None:
        async def op(conn: AsyncConnection) -> None:
            holder = (await conn.execute(select(app_namespaces.c.app)
                                         .where(app_namespaces.c.claim == claim))).scalar()
            if holder != app:
                raise NotFound(f"app {app!r} has no namespace {claim!r}", "namespace")
            await conn.execute(delete(app_namespaces).where(app_namespaces.c.claim == claim))

        await self._db.write(op)

    async def claims(self) -> dict[str, str]:
        async with self._db.read() as conn:
            rows = (await conn.execute(select(app_namespaces.c.claim,
                                              app_namespaces.c.app))).all()
        return {claim: owner for claim, owner in rows}

    # -- tokens ------------------------------------------------------------------------------

    async def add_token(self, record: TokenRecord) -> None:
        async def op(conn: AsyncConnection) -> None:
            if not await _exists(conn, apps.c.name, record.app):
                raise NotFound(f"no app {record.app!r}", "app")
            if await _exists(conn, tokens.c.id, record.id):
                raise Conflict(f"token id {record.id!r} is taken", "id")
            await conn.execute(insert(tokens).values(_token_values(record)))

        await self._db.write(op)

    async def get_token(self, token_id: str) -> TokenRecord | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(tokens).where(tokens.c.id == token_id))
                   ).mappings().first()
        return None if row is None else _token_from_row(row)

    async def list_tokens(self, app: str) -> list[TokenRecord]:
        query = select(tokens).where(tokens.c.app == app).order_by(tokens.c.created_at,
                                                                   tokens.c.id)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_token_from_row(row) for row in rows]

    async def revoke_token(self, app: str, token_id: str, now: Micros) -> TokenRecord:
        async def op(conn: AsyncConnection) -> TokenRecord:
            mine = (tokens.c.id == token_id) & (tokens.c.app == app)
            row = (await conn.execute(select(tokens).where(mine))).mappings().first()
            if row is None:
                raise NotFound(f"app {app!r} has no token {token_id!r}", "token")
            record = _token_from_row(row)
            if record.revoked_at is not None:
                return record
            await conn.execute(update(tokens).where(mine).values(revoked_at=now))
            return replace(record, revoked_at=now)

        return await self._db.write(op)

    async def bootstrap(self, app: App, claims: Sequence[str], record: TokenRecord,
                        now: Micros, only_if_no_admin: bool = True) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            if not self._db.is_sqlite:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                   {"k": BOOTSTRAP_LOCK})
            if only_if_no_admin and await _live_admin(conn, now):
                return False
            if await _exists(conn, tokens.c.id, record.id):
                return False
            if not await _exists(conn, apps.c.name, app.name):
                await conn.execute(insert(apps).values(_app_values(app)))
            held = set((await conn.execute(select(app_namespaces.c.claim))).scalars())
            for claim in claims:
                if claim not in held:
                    await conn.execute(insert(app_namespaces).values(
                        claim=claim, app=app.name, created_at=now))
                    held.add(claim)
            await conn.execute(insert(tokens).values(_token_values(record) | {"app": app.name}))
            return True

        return await self._db.write(op)

    # -- sealed secrets ----------------------------------------------------------------------

    async def set_secret(self, app: str, kind: str, sealed: str, now: Micros) -> None:
        async def op(conn: AsyncConnection) -> None:
            if not await _exists(conn, apps.c.name, app):
                raise NotFound(f"no app {app!r}", "app")
            mine = (app_secrets.c.app == app) & (app_secrets.c.kind == kind)
            await conn.execute(delete(app_secrets).where(mine))
            await conn.execute(insert(app_secrets).values(app=app, kind=kind, sealed=sealed,
                                                          updated_at=now))

        await self._db.write(op)

    async def get_secret(self, app: str, kind: str) -> str | None:
        mine = (app_secrets.c.app == app) & (app_secrets.c.kind == kind)
        async with self._db.read() as conn:
            found: str | None = (await conn.execute(select(app_secrets.c.sealed).where(mine))
                                 ).scalar()
        return found

    async def remove_secret(self, app: str, kind: str) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            mine = (app_secrets.c.app == app) & (app_secrets.c.kind == kind)
            return bool((await conn.execute(delete(app_secrets).where(mine))).rowcount)

        return await self._db.write(op)

    async def sealed_secrets(self) -> list[tuple[str, str, str]]:
        query = select(app_secrets.c.app, app_secrets.c.kind, app_secrets.c.sealed)
        async with self._db.read() as conn:
            rows = (await conn.execute(query.order_by(app_secrets.c.app,
                                                      app_secrets.c.kind))).all()
        return [(app, kind, sealed) for app, kind, sealed in rows]


async def _exists(conn: AsyncConnection, column: Any, value: str) -> bool:
    return (await conn.execute(select(column).where(column == value).limit(1))).first() is not None


async def _live_admin(conn: AsyncConnection, now: Micros) -> bool:
    query = select(tokens.c.id).where(
        tokens.c.role == Role.ADMIN.value, tokens.c.revoked_at.is_(None),
        tokens.c.expires_at.is_(None) | (tokens.c.expires_at > now),
    ).limit(1)
    return (await conn.execute(query)).first() is not None
