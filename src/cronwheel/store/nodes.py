"""Nodes: heartbeats, the cluster's clock, who holds what, and giving leases up."""

from __future__ import annotations

import time

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from cronwheel.contracts import NodeInfo, NodeStatus
from cronwheel.domain.kubernetes import KUBE_OWNER
from cronwheel.domain.runs import RunState
from cronwheel.domain.tasks import WORKERS_OWNER
from cronwheel.domain.time import Micros
from cronwheel.store.connection import Database
from cronwheel.store.pg import DUE_CHANNEL, RUN_CHANNEL
from cronwheel.store.tables import jobs, nodes, runs


class SqlNodes:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def db_now(self) -> Micros:
        if self._db.is_sqlite:  # one node on one machine: its clock is the database's
            return time.time_ns() // 1_000
        query = text("SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint")
        async with self._db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def heartbeat(self, node: NodeInfo, now: Micros, stopped: bool = False) -> None:
        values = {"owner": node.owner, "name": node.name, "address": node.address,
                  "version": node.version, "started_at": node.started_at,
                  "heartbeat_at": now, "stopped_at": now if stopped else None}

        async def op(conn: AsyncConnection) -> None:
            stmt = self._db.insert(nodes).values(**values)
            changes = {"heartbeat_at": now, "stopped_at": values["stopped_at"]}
            await conn.execute(stmt.on_conflict_do_update(index_elements=[nodes.c.owner],
                                                          set_=changes))

        await self._db.write(op, urgent=True)

    async def list_nodes(self) -> list[NodeStatus]:
        held_jobs = (select(jobs.c.lease_owner, func.count().label("n"))
                     .where(jobs.c.lease_owner.is_not(None)).group_by(jobs.c.lease_owner))
        held_runs = (select(runs.c.lease_owner, func.count().label("n"))
                     .where(runs.c.lease_owner.is_not(None)).group_by(runs.c.lease_owner))
        async with self._db.read() as conn:
            rows = (await conn.execute(select(nodes).order_by(nodes.c.started_at))).mappings()
            listed = list(rows)
            job_counts = {o: int(n) for o, n in (await conn.execute(held_jobs)).all()}
            run_counts = {o: int(n) for o, n in (await conn.execute(held_runs)).all()}
        return [
            NodeStatus(
                NodeInfo(r["owner"], r["name"], r["address"], r["version"], r["started_at"]),
                r["heartbeat_at"], r["stopped_at"],
                job_counts.get(r["owner"], 0), run_counts.get(r["owner"], 0),
            )
            for r in listed
        ]

    async def release(self, owner: str | None) -> None:
        """Drop job leases; make held runs due now so they are re-delivered at once."""

        async def op(conn: AsyncConnection) -> None:
            await release_leases(conn, owner)
            await self._db.notify(conn, DUE_CHANNEL, 0)  # other nodes take them at once
            await self._db.notify(conn, RUN_CHANNEL, 0)

        await self._db.write(op, urgent=True)


async def release_leases(conn: AsyncConnection, owner: str | None) -> None:
    """The job leases `owner` holds (every owner's when None) dropped, and the runs it was
    delivering made due now: whoever polls next delivers them again, under the same key."""
    job_cond: ColumnElement[bool] = jobs.c.lease_owner.is_not(None)
    run_cond: ColumnElement[bool] = and_(
        runs.c.state == RunState.RUNNING.value,
        runs.c.lease_owner.not_in((WORKERS_OWNER, KUBE_OWNER)),  # held by workers, clusters
    )
    if owner is not None:
        job_cond = and_(job_cond, jobs.c.lease_owner == owner)
        run_cond = and_(run_cond, runs.c.lease_owner == owner)
    await conn.execute(update(jobs).where(job_cond).values(lease_owner=None, lease_until=None))
    await conn.execute(update(runs).where(run_cond).values(lease_until=0, due_at=0))
