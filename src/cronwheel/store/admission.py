"""SQL for the dialects' network rules and the qschedule applications (`AdmissionStore`).

Shares the node's `Database`. A qschedule Q-Server-Token is stored only as its hash, looked
up by that hash on every request (no cache), so removing an application takes effect on the
next request on every node. Rules are read whole; the service caches them for a second.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    String,
    Table,
    Text,
    column,
    delete,
    insert,
    select,
    table,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.domain.admission import AdmissionRule, QscheduleApp
from cronwheel.domain.errors import Conflict, NotFound
from cronwheel.store.connection import Database
from cronwheel.store.tables import metadata

admission_rules = Table(
    "admission_rules",
    metadata,
    Column("dialect", String(32), primary_key=True),
    Column("network", String(64), primary_key=True),  # canonical CIDR
    Column("app", String(63), nullable=False),
    Column("namespace", String(256), nullable=False),  # a prefix for dispatchserver
    Column("token", Boolean, nullable=False),  # a token of the app is required too
    Column("note", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_admission_rules_app", admission_rules.c.app)

qschedule_apps = Table(
    "qschedule_apps",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),  # the qschedule numeric app id
    Column("name", String(256), nullable=False, unique=True),  # its namespace
    Column("app", String(63), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("note", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_qschedule_apps_app", qschedule_apps.c.app)
_apps = table("apps", column("name"))  # store.apps' table, named without importing it


def _rule_from_row(row: Any) -> AdmissionRule:
    return AdmissionRule(dialect=row["dialect"], network=row["network"], app=row["app"],
                         namespace=row["namespace"], token=bool(row["token"]),
                         note=row["note"], created_at=row["created_at"])


def _qschedule_from_row(row: Any) -> QscheduleApp:
    return QscheduleApp(id=row["id"], name=row["name"], app=row["app"],
                        token_hash=row["token_hash"], created_at=row["created_at"],
                        note=row["note"])


async def _app_exists(conn: AsyncConnection, name: str) -> bool:
    found = await conn.execute(select(_apps.c.name).where(_apps.c.name == name).limit(1))
    return found.first() is not None


class SqlAdmissionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_rule(self, rule: AdmissionRule) -> None:
        async def op(conn: AsyncConnection) -> None:
            if not await _app_exists(conn, rule.app):
                raise NotFound(f"no app {rule.app!r}", "app")
            key = ((admission_rules.c.dialect == rule.dialect)
                   & (admission_rules.c.network == rule.network))
            holder = (await conn.execute(select(admission_rules.c.app).where(key))).scalar()
            if holder is not None:
                raise Conflict(f"{rule.dialect} clients of {rule.network} are already "
                               f"admitted as app {holder!r}", "network")
            await conn.execute(insert(admission_rules).values(
                dialect=rule.dialect, network=rule.network, app=rule.app,
                namespace=rule.namespace, token=rule.token, note=rule.note,
                created_at=rule.created_at))

        await self._db.write(op)

    async def remove_rule(self, app: str, dialect: str, network: str) -> None:
        async def op(conn: AsyncConnection) -> None:
            mine = ((admission_rules.c.dialect == dialect)
                    & (admission_rules.c.network == network) & (admission_rules.c.app == app))
            if (await conn.execute(select(admission_rules.c.app).where(mine))).first() is None:
                raise NotFound(f"app {app!r} has no {dialect} rule for {network}", "network")
            await conn.execute(delete(admission_rules).where(mine))

        await self._db.write(op)

    async def rules(self) -> list[AdmissionRule]:
        query = select(admission_rules).order_by(admission_rules.c.dialect,
                                                 admission_rules.c.network)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_rule_from_row(row) for row in rows]

    async def add_qschedule(self, record: QscheduleApp, if_absent: bool = False) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            if not await _app_exists(conn, record.app):
                raise NotFound(f"no app {record.app!r}", "app")
            taken = (qschedule_apps.c.id == record.id) | (qschedule_apps.c.name == record.name) \
                | (qschedule_apps.c.token_hash == record.token_hash)
            rows = (await conn.execute(select(qschedule_apps).where(taken))).mappings().all()
            for row in rows:
                found = _qschedule_from_row(row)
                same = (found.id, found.name, found.app, found.token_hash) == \
                    (record.id, record.name, record.app, record.token_hash)
                if same and if_absent:
                    return False
                what = ("id" if found.id == record.id else
                        "name" if found.name == record.name else "token")
                raise Conflict(f"qschedule app {found.id} ({found.name!r}) has this {what}",
                               what)
            await conn.execute(insert(qschedule_apps).values(
                id=record.id, name=record.name, app=record.app, token_hash=record.token_hash,
                note=record.note, created_at=record.created_at))
            return True

        return await self._db.write(op)

    async def remove_qschedule(self, app: str, qid: int) -> None:
        async def op(conn: AsyncConnection) -> None:
            mine = (qschedule_apps.c.id == qid) & (qschedule_apps.c.app == app)
            if (await conn.execute(select(qschedule_apps.c.id).where(mine))).first() is None:
                raise NotFound(f"app {app!r} has no qschedule app {qid}", "id")
            await conn.execute(delete(qschedule_apps).where(mine))

        await self._db.write(op)

    async def qschedule_apps(self, app: str | None = None) -> list[QscheduleApp]:
        query = select(qschedule_apps).order_by(qschedule_apps.c.id)
        if app is not None:
            query = query.where(qschedule_apps.c.app == app)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_qschedule_from_row(row) for row in rows]

    async def qschedule_by_hash(self, token_hash: str) -> QscheduleApp | None:
        query = select(qschedule_apps).where(qschedule_apps.c.token_hash == token_hash)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _qschedule_from_row(row)


async def remove_app_admission(conn: AsyncConnection, app: str) -> None:
    """What goes with a removed app: its rules and its qschedule apps (same transaction)."""
    await conn.execute(delete(admission_rules).where(admission_rules.c.app == app))
    await conn.execute(delete(qschedule_apps).where(qschedule_apps.c.app == app))
