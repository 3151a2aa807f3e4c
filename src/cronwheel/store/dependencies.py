"""Runs waiting for their dependencies: the reverse lookup of dependents, upstream
histories in a window, and the conditional moves out of `waiting` (released or expired).

Each move is one UPDATE guarded by `state = 'waiting'`, so when two nodes release or expire
the same run only one of them sees it change; a released run is then delivered through the
ordinary claim of due runs, which leases it to one node.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, case, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.domain.jobs import DEFAULT_EXPIRY_US, Job, JobState
from cronwheel.domain.runs import Run, RunKind, RunState
from cronwheel.domain.time import Micros
from cronwheel.store.batches import chunks
from cronwheel.store.connection import Database
from cronwheel.store.pg import RUN_CHANNEL
from cronwheel.store.rows import job_from_row, run_from_row
from cronwheel.store.runs import run_values
from cronwheel.store.tables import FOLLOWER_SCHEDULE, job_dependencies, jobs, runs

EXPIRED = "expired: its dependencies did not hold before the job's expiry"
WAITING = RunState.WAITING.value
# Literals, not parameters, where a partial index must match (ix_runs_waiting,
# ix_jobs_followers): a planner cannot prove a bound value equal to the index's condition.
IS_WAITING = runs.c.state == literal_column("'waiting'")
IS_FOLLOWER = jobs.c.schedule == literal_column("'" + FOLLOWER_SCHEDULE + "'")


class SqlDependencies:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def dependents_of(self, namespace: str, key: str) -> list[Job]:
        query = (select(jobs).join(job_dependencies,
                                   job_dependencies.c.downstream_id == jobs.c.id)
                 .where(job_dependencies.c.upstream_namespace == namespace,
                        job_dependencies.c.upstream_key == key)
                 .order_by(jobs.c.namespace, jobs.c.key))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [job_from_row(row) for row in rows]

    async def upstream_ids(self) -> set[str]:
        query = (select(jobs.c.id).distinct()
                 .join(job_dependencies,
                       (job_dependencies.c.upstream_namespace == jobs.c.namespace)
                       & (job_dependencies.c.upstream_key == jobs.c.key)))
        async with self._db.read() as conn:
            return set((await conn.execute(query)).scalars())

    async def upstream_history(self, job_id: str, start: Micros, end: Micros) -> list[Run]:
        query = (select(runs)
                 .where(runs.c.job_id == job_id, runs.c.kind == RunKind.SCHEDULED.value,
                        runs.c.scheduled_at >= start, runs.c.scheduled_at < end)
                 .order_by(runs.c.scheduled_at, runs.c.id))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [run_from_row(row) for row in rows]

    async def waiting_runs(self, job_ids: Sequence[str] | None, limit: int) -> list[Run]:
        query = (select(runs).where(IS_WAITING)
                 .order_by(runs.c.scheduled_at, runs.c.id).limit(limit))
        if job_ids is not None:
            if not job_ids:
                return []
            query = query.where(runs.c.job_id.in_(list(job_ids)))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [run_from_row(row) for row in rows]

    async def release_waiting(self, run_ids: Sequence[str], now: Micros) -> list[Run]:
        async def op(conn: AsyncConnection) -> list[Run]:
            released: list[Run] = []
            due = case((runs.c.scheduled_at > now, runs.c.scheduled_at), else_=now)
            for chunk in chunks(run_ids):
                stmt = (update(runs).where(runs.c.id.in_(chunk), runs.c.state == WAITING)
                        .values(state=RunState.PENDING.value, due_at=due)
                        .returning(*runs.c))
                released.extend(run_from_row(r) for r in (await conn.execute(stmt)).mappings())
            if released:
                await self._db.notify(conn, RUN_CHANNEL, now)
            return released

        return await self._db.write(op, urgent=True)

    async def expire_waiting(self, now: Micros, limit: int) -> list[Run]:
        async def op(conn: AsyncConnection) -> list[Run]:
            expiry = case((jobs.c.expiry_us.is_(None), DEFAULT_EXPIRY_US),
                          else_=jobs.c.expiry_us)
            found = await conn.execute(
                select(runs.c.id).join(jobs, jobs.c.id == runs.c.job_id)
                .where(and_(IS_WAITING, runs.c.scheduled_at + expiry <= now,
                            runs.c.fired_at + expiry <= now))
                .order_by(runs.c.scheduled_at).limit(limit))
            ids = list(found.scalars())
            expired: list[Run] = []
            for chunk in chunks(ids):
                stmt = (update(runs).where(runs.c.id.in_(chunk), runs.c.state == WAITING)
                        .values(state=RunState.EXPIRED.value, finished_at=now,
                                last_error=EXPIRED)
                        .returning(*runs.c))
                expired.extend(run_from_row(r) for r in (await conn.execute(stmt)).mappings())
            return expired

        return await self._db.write(op)

    async def add_waiting_run(
        self, job: Job, run_id: str, scheduled_at: Micros, now: Micros
    ) -> Run | None:
        run = Run(id=run_id, job_id=job.id, namespace=job.spec.namespace,
                  job_key=job.spec.key, kind=RunKind.SCHEDULED, state=RunState.WAITING,
                  scheduled_at=scheduled_at, fired_at=now)

        async def op(conn: AsyncConnection) -> Run | None:
            stmt = (self._db.insert(runs).on_conflict_do_nothing().returning(runs.c.id)
                    .values(**run_values(run)))
            inserted = (await conn.execute(stmt)).scalar_one_or_none()
            return run if inserted is not None else None

        return await self._db.write(op)

    async def followers(self, after_id: str | None, limit: int) -> list[Job]:
        query = (select(jobs).where(IS_FOLLOWER, jobs.c.state == JobState.ACTIVE.value)
                 .order_by(jobs.c.id).limit(limit))
        if after_id is not None:
            query = query.where(jobs.c.id > after_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [job_from_row(row) for row in rows]
