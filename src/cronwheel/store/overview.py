"""Reads for an operator's overview (the console): runs across jobs and what fires next.
Each is one bounded query on an index or the primary key, newest or soonest first.
"""

from __future__ import annotations

from sqlalchemy import func, select

from cronwheel.contracts import RunFilter
from cronwheel.domain.jobs import Job, JobState
from cronwheel.domain.runs import Run
from cronwheel.store.connection import Database
from cronwheel.store.rows import job_from_row, run_from_row
from cronwheel.store.tables import jobs, runs


class SqlOverview:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def find_runs(self, where: RunFilter, before_id: str | None, limit: int) -> list[Run]:
        query = select(runs).order_by(runs.c.id.desc()).limit(limit)
        if where.namespace is not None:
            query = query.where(runs.c.namespace == where.namespace)
        if where.state is not None:
            query = query.where(runs.c.state == where.state.value)
        if where.fired_from is not None:
            query = query.where(runs.c.fired_at >= where.fired_from)
        if where.fired_to is not None:
            query = query.where(runs.c.fired_at < where.fired_to)
        if where.finished_from is not None:
            query = query.where(runs.c.finished_at >= where.finished_from)
        if before_id is not None:
            query = query.where(runs.c.id < before_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [run_from_row(row) for row in rows]

    async def upcoming_jobs(self, limit: int) -> list[Job]:
        query = (select(jobs).where(jobs.c.next_fire_at.is_not(None))
                 .order_by(jobs.c.next_fire_at, jobs.c.id).limit(limit))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [job_from_row(row) for row in rows]

    async def count_held_jobs(self) -> dict[str, int]:
        held = (JobState.ACTIVE.value, JobState.PAUSED.value)
        query = (select(jobs.c.namespace, func.count()).where(jobs.c.state.in_(held))
                 .group_by(jobs.c.namespace))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return {namespace: count for namespace, count in rows}
