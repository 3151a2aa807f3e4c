"""Upkeep: what retention deletes (old runs with everything hanging off them, quiet nodes and
workers, settled alerts) and the output of old tasks."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.domain.time import Micros
from cronwheel.store.batches import chunks
from cronwheel.store.connection import Database
from cronwheel.store.tables import alerts, attempts, nodes, runs, task_output, tasks, workers


class SqlUpkeep:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def purge(self, finished_before: Micros, limit: int) -> int:
        async def op(conn: AsyncConnection) -> int:
            found = await conn.execute(
                select(runs.c.id).where(runs.c.finished_at < finished_before).limit(limit)
            )
            ids = list(found.scalars())
            for chunk in chunks(ids):
                await conn.execute(delete(attempts).where(attempts.c.run_id.in_(chunk)))
                await self._purge_tasks(conn, chunk)
                await conn.execute(delete(runs).where(runs.c.id.in_(chunk)))
            await conn.execute(delete(nodes).where(nodes.c.heartbeat_at < finished_before))
            await conn.execute(delete(workers).where(workers.c.heartbeat_at < finished_before))
            await conn.execute(delete(alerts).where(alerts.c.created_at < finished_before,
                                                    alerts.c.state.in_(("sent", "failed"))))
            return len(ids)

        return await self._db.write(op)


    async def _purge_tasks(self, conn: AsyncConnection, run_ids: Sequence[str]) -> None:
        """A run's tasks and their output go with it (the output dominates the database)."""
        found = await conn.execute(select(tasks.c.id).where(tasks.c.run_id.in_(run_ids)))
        task_ids = list(found.scalars())
        if task_ids:
            await conn.execute(delete(task_output).where(task_output.c.task_id.in_(task_ids)))
            await conn.execute(delete(tasks).where(tasks.c.id.in_(task_ids)))

    async def purge_output(self, finished_before: Micros, limit: int) -> int:
        async def op(conn: AsyncConnection) -> int:
            found = await conn.execute(
                select(tasks.c.id).where(
                    tasks.c.finished_at < finished_before,
                    or_(tasks.c.log_size > 0, tasks.c.result_size > 0),
                ).limit(limit)
            )
            ids = list(found.scalars())
            if ids:
                await conn.execute(delete(task_output).where(task_output.c.task_id.in_(ids)))
                await conn.execute(update(tasks).where(tasks.c.id.in_(ids))
                                   .values(log_size=0, result_size=0))
            return len(ids)

        return await self._db.write(op)
