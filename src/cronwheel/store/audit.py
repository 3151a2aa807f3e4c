"""SQL for the audit trail (`AuditStore` over SQLite or PostgreSQL).

A change's own entry is written by `Database.write` inside the change's transaction; this
module writes the entries with no change to ride on (refusals, failures) and reads pages.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.domain.audit import AuditCursor, AuditEntry, AuditFilter
from cronwheel.domain.time import Micros
from cronwheel.store.batches import chunks
from cronwheel.store.connection import Database
from cronwheel.store.rows import audit_from_row, audit_values
from cronwheel.store.tables import audit


class SqlAuditStore:
    transactional = True

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return

        async def op(conn: AsyncConnection) -> None:
            for chunk in chunks(entries, 200):
                await conn.execute(insert(audit), [audit_values(entry) for entry in chunk])

        await self._db.writes.run(op)  # never a change's write: it carries no entry of its own

    async def find(
        self, where: AuditFilter, after: AuditCursor | None, limit: int
    ) -> list[AuditEntry]:
        query = select(audit).order_by(audit.c.at.desc(), audit.c.id.desc()).limit(limit)
        for column, value in ((audit.c.app, where.app), (audit.c.namespace, where.namespace),
                              (audit.c.action, where.action), (audit.c.outcome, where.outcome),
                              (audit.c.token_prefix, where.token_prefix)):
            if value is not None:
                query = query.where(column == value)
        if where.since is not None:
            query = query.where(audit.c.at >= where.since)
        if where.until is not None:
            query = query.where(audit.c.at < where.until)
        if after is not None:
            query = query.where(or_(audit.c.at < after.at,
                                    and_(audit.c.at == after.at, audit.c.id < after.id)))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [audit_from_row(row) for row in rows]

    async def purge(self, before: Micros, limit: int) -> int:
        async def op(conn: AsyncConnection) -> int:
            found = await conn.execute(
                select(audit.c.id).where(audit.c.at < before).order_by(audit.c.at).limit(limit))
            ids = list(found.scalars())
            for chunk in chunks(ids):
                await conn.execute(delete(audit).where(audit.c.id.in_(chunk)))
            return len(ids)

        return await self._db.writes.run(op)
