"""SQL for the Sentinel dialect's numeric ids (`SentinelStore`): a jobId per job it created,
with the fields Sentinel keeps beside a job, and a taskId per run it has shown.

A job made through the dialect has the key `str(jobId)` in its app's namespace; its row here
holds the rest (name, department, bizGroups, what was sent). A run gets its taskId the first
time the dialect shows it (unique on the run id: two nodes showing it at once agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.domain.errors import NotFound
from cronwheel.domain.sentinel import SentinelJob
from cronwheel.store.connection import Database
from cronwheel.store.tables import metadata

sentinel_jobs = Table(
    "sentinel_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the jobId
    Column("app", String(63), nullable=False),
    Column("namespace", String(255), nullable=False),
    Column("name", Text, nullable=False),
    Column("department", String(255), nullable=False),
    Column("biz_groups", Text, nullable=False),  # ",1,2,", as sent
    Column("info", Text, nullable=False),  # JSON: the other Sentinel fields, as last set
    Column("created_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,  # a jobId is never given twice, even after a drop
)
Index("ix_sentinel_jobs_app", sentinel_jobs.c.app, sentinel_jobs.c.department)

sentinel_tasks = Table(
    "sentinel_tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the taskId
    Column("run_id", String(36), nullable=False, unique=True),
    Column("job_id", Integer, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_sentinel_tasks_job", sentinel_tasks.c.job_id)


def _job(row: Any) -> SentinelJob:
    return SentinelJob(id=row["id"], app=row["app"], namespace=row["namespace"],
                       name=row["name"], department=row["department"],
                       biz_groups=row["biz_groups"], info=orjson.loads(row["info"]),
                       created_at=row["created_at"])


class SqlSentinelStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_job(self, job: SentinelJob) -> SentinelJob:
        """Store the job's row; its `id` is ignored: the answer carries the new jobId."""
        values = _values(job) | {"app": job.app, "namespace": job.namespace,
                                 "created_at": job.created_at}

        async def op(conn: AsyncConnection) -> int:
            result = await conn.execute(insert(sentinel_jobs).values(values)
                                        .returning(sentinel_jobs.c.id))
            return int(result.scalar_one())

        new_id = await self._db.write(op)
        return SentinelJob(new_id, job.app, job.namespace, job.name, job.department,
                           job.biz_groups, job.info, job.created_at)

    async def update_job(self, job: SentinelJob) -> None:
        async def op(conn: AsyncConnection) -> None:
            result = await conn.execute(update(sentinel_jobs)
                                        .where(sentinel_jobs.c.id == job.id)
                                        .values(_values(job)))
            if not result.rowcount:
                raise NotFound(f"no job {job.id}", "jobId")

        await self._db.write(op)

    async def drop_job(self, job_id: int) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(delete(sentinel_jobs).where(sentinel_jobs.c.id == job_id))

        await self._db.write(op)

    async def get_job(self, job_id: int) -> SentinelJob | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(sentinel_jobs)
                                      .where(sentinel_jobs.c.id == job_id))).mappings().first()
        return None if row is None else _job(row)

    async def list_jobs(self, app: str, department: str | None, biz_group: str | None,
                        after_id: int, limit: int) -> list[SentinelJob]:
        query = select(sentinel_jobs).where(sentinel_jobs.c.app == app,
                                            sentinel_jobs.c.id > after_id)
        if department is not None:
            query = query.where(sentinel_jobs.c.department == department)
        if biz_group is not None:
            query = query.where(sentinel_jobs.c.biz_groups.contains(f",{biz_group},"))
        async with self._db.read() as conn:
            rows = (await conn.execute(query.order_by(sentinel_jobs.c.id).limit(limit))
                    ).mappings().all()
        return [_job(row) for row in rows]

    async def task_ids(self, job_id: int, run_ids: Sequence[str]) -> dict[str, int]:
        """The taskId of each run, given now to those that have none."""
        if not run_ids:
            return {}

        async def op(conn: AsyncConnection) -> dict[str, int]:
            for run_id in run_ids:
                await conn.execute(self._db.insert(sentinel_tasks)
                                   .values(run_id=run_id, job_id=job_id)
                                   .on_conflict_do_nothing(index_elements=["run_id"]))
            rows = await conn.execute(select(sentinel_tasks.c.run_id, sentinel_tasks.c.id)
                                      .where(sentinel_tasks.c.run_id.in_(list(run_ids))))
            return {run_id: task_id for run_id, task_id in rows.all()}

        return await self._db.write(op)

    async def task(self, task_id: int) -> tuple[str, int] | None:
        """(run id, jobId) of a taskId."""
        async with self._db.read() as conn:
            row = (await conn.execute(select(sentinel_tasks.c.run_id, sentinel_tasks.c.job_id)
                                      .where(sentinel_tasks.c.id == task_id))).first()
        return None if row is None else (row[0], row[1])


def _values(job: SentinelJob) -> dict[str, Any]:
    return {"name": job.name, "department": job.department, "biz_groups": job.biz_groups,
            "info": orjson.dumps(dict(job.info), option=orjson.OPT_SORT_KEYS).decode()}


__all__ = ["SqlSentinelStore", "sentinel_jobs", "sentinel_tasks"]
