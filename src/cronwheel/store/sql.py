"""The one place that builds SQL. The engine and the services ask; they never write queries."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace as replace_fields
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    delete,
    event,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import ColumnElement

from cronwheel.contracts import (
    AddOutcome,
    AttemptRecord,
    Fire,
    FiresRecorded,
    JobFilter,
    NodeInfo,
    NodeStatus,
)
from cronwheel.domain.errors import NotFound
from cronwheel.domain.jobs import ConcurrencyPolicy, Job, JobState
from cronwheel.domain.kubernetes import KUBE_OWNER
from cronwheel.domain.runs import Attempt, AttemptOutcome, Run, RunKind, RunState
from cronwheel.domain.tasks import WORKERS_OWNER
from cronwheel.domain.time import Micros
from cronwheel.store.alerts import AlertStore, count_outcomes
from cronwheel.store.batches import chunks
from cronwheel.store.pg import DUE_CHANNEL, RUN_CHANNEL
from cronwheel.store.rows import (
    attempt_from_row,
    attempt_values,
    dumps,
    job_from_row,
    job_values,
    run_from_row,
)
from cronwheel.store.tables import (
    alerts,
    attempts,
    jobs,
    nodes,
    runs,
    task_output,
    tasks,
    workers,
)
from cronwheel.store.workers import LIVE, WorkerStore
from cronwheel.store.writer import WriteQueue


def async_url(url: str) -> str:
    """Map the URLs users write (sqlite:///x.db, postgresql://...) to the async drivers."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
              "postgres": "postgresql+asyncpg"}.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _sqlite_pragmas(engine: AsyncEngine, immediate: bool) -> None:
    # pysqlite's own transaction handling breaks savepoints: take control of BEGIN ourselves.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000",
                       "temp_store=MEMORY", "cache_size=-16000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class SqlStore:
    """Store over SQLite (one writer, group commit) or PostgreSQL (row locks, SKIP LOCKED)."""

    def __init__(self, url: str, node: str = "node") -> None:
        self.url = async_url(url)
        self.node = node
        self.is_sqlite = self.url.startswith("sqlite")
        self._lock_fd: int | None = None  # held open for the node's life: the flock lives on it
        if self.is_sqlite:
            self.engine = create_async_engine(self.url, pool_size=1, max_overflow=0)
            self.read_engine = create_async_engine(self.url, pool_size=4, max_overflow=4)
            _sqlite_pragmas(self.engine, immediate=True)
            _sqlite_pragmas(self.read_engine, immediate=False)
        else:
            self.engine = create_async_engine(self.url, pool_size=8, max_overflow=8)
            self.read_engine = self.engine
        self.writes = WriteQueue(self.engine)
        self.workers = WorkerStore(self)
        self.alerts = AlertStore(self)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, migrate: bool = True) -> None:
        if self.is_sqlite:
            self._lock_sqlite_file()
        if migrate:
            from cronwheel.store.migrate import upgrade

            await upgrade(self.engine)
        self.writes.start()

    async def close(self) -> None:
        await self.writes.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _lock_sqlite_file(self) -> None:
        """One server per SQLite file: a second would break the one-writer promise."""
        database = make_url(self.url).database
        if not database or database == ":memory:":
            return
        fd = os.open(f"{os.path.abspath(database)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(
                f"another cronwheel server is using {database}; SQLite allows one node "
                "(use PostgreSQL for several)"
            ) from None
        self._lock_fd = fd

    async def _notify(self, conn: AsyncConnection, channel: str, at: Micros | None) -> None:
        """Tell every node (at commit) that work became due: they wake if it is in their
        window. SQLite has one node, woken in process."""
        if at is not None and not self.is_sqlite:
            await conn.execute(text("SELECT pg_notify(:c, :v)"), {"c": channel, "v": str(at)})

    async def notify_run_due(self, conn: AsyncConnection, at: Micros) -> None:
        await self._notify(conn, RUN_CHANNEL, at)

    def _insert(self, table: Any) -> Any:
        return (sqlite.insert if self.is_sqlite else postgresql.insert)(table)

    def _locking(self, query: Select[Any]) -> Select[Any]:
        return query if self.is_sqlite else query.with_for_update(skip_locked=True)

    # -- jobs --------------------------------------------------------------------------------

    async def add_jobs(
        self, new: Sequence[Job], all_or_nothing: bool, replace: bool = False
    ) -> list[AddOutcome]:
        async def op(conn: AsyncConnection) -> list[AddOutcome]:
            stmt = self._insert(jobs).on_conflict_do_nothing().returning(jobs.c.id)
            created: set[str] = set()
            for chunk in chunks(new):
                result = await conn.execute(stmt, [job_values(job) for job in chunk])
                created.update(result.scalars())
            outcomes = await self._outcomes(conn, new, created)
            if replace:
                outcomes = await self._replace(conn, new, outcomes)
            due = [o.job.next_fire_at for o in outcomes if o.created or o.replaced]
            await self._notify(conn, DUE_CHANNEL, min((d for d in due if d is not None),
                                                      default=None))
            if all_or_nothing and any(o.conflict for o in outcomes) and created:
                for ids in chunks(sorted(created)):
                    await conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
            return outcomes

        return await self.writes.run(op)

    async def _outcomes(
        self, conn: AsyncConnection, new: Sequence[Job], created: set[str]
    ) -> list[AddOutcome]:
        others = [job for job in new if job.id not in created]
        existing: dict[tuple[str, str], Job] = {}
        for chunk in chunks(others):
            names = [(job.spec.namespace, job.spec.key) for job in chunk]
            rows = await conn.execute(
                select(jobs).where(tuple_(jobs.c.namespace, jobs.c.key).in_(names))
            )
            for row in rows.mappings():
                existing[(row["namespace"], row["key"])] = job_from_row(row)
        outcomes = []
        for job in new:
            if job.id in created:
                outcomes.append(AddOutcome(job, created=True))
                continue
            have = existing[(job.spec.namespace, job.spec.key)]
            outcomes.append(
                AddOutcome(have, created=False, conflict=have.fingerprint != job.fingerprint)
            )
        return outcomes

    async def _replace(
        self, conn: AsyncConnection, new: Sequence[Job], outcomes: list[AddOutcome]
    ) -> list[AddOutcome]:
        """Overwrite each conflicting job's definition in place: same id, same run history.

        A cancelled job is brought back even with an unchanged definition: replacing is how a
        deleted job is added again."""
        replaced: list[AddOutcome] = []
        for job, outcome in zip(new, outcomes, strict=True):
            revive = not outcome.created and outcome.job.state is JobState.CANCELLED
            if not (outcome.conflict or revive):
                replaced.append(outcome)
                continue
            fresh = replace_fields(job, id=outcome.job.id, created_at=outcome.job.created_at)
            await _rewrite_job(conn, fresh)
            replaced.append(AddOutcome(fresh, created=False, replaced=True))
        return replaced

    async def get_job(self, namespace: str, key: str) -> Job | None:
        query = select(jobs).where(jobs.c.namespace == namespace, jobs.c.key == key)
        return await self._one_job(query)

    async def get_job_by_id(self, job_id: str) -> Job | None:
        return await self._one_job(select(jobs).where(jobs.c.id == job_id))

    async def _one_job(self, query: Select[Any]) -> Job | None:
        async with self.read_engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return job_from_row(row) if row is not None else None

    async def list_jobs(self, where: JobFilter, after_id: str | None, limit: int) -> list[Job]:
        query = select(jobs).order_by(jobs.c.id).limit(limit)
        if where.namespace is not None:
            query = query.where(jobs.c.namespace == where.namespace)
        if where.state is not None:
            query = query.where(jobs.c.state == where.state.value)
        if where.key_prefix:
            escaped = where.key_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(jobs.c.key.like(f"{escaped}%", escape="\\"))
        if after_id is not None:
            query = query.where(jobs.c.id > after_id)
        async with self.read_engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [job_from_row(row) for row in rows]

    async def change_job(
        self, namespace: str, key: str, change: Callable[[Job], Job], cancel_runs: bool = False
    ) -> Job:
        async def op(conn: AsyncConnection) -> Job:
            query = select(jobs).where(jobs.c.namespace == namespace, jobs.c.key == key)
            if not self.is_sqlite:
                query = query.with_for_update()
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                raise NotFound(f"no job {key!r} in namespace {namespace!r}", "key")
            job = change(job_from_row(row))
            await _rewrite_job(conn, job)
            await self._notify(conn, DUE_CHANNEL, job.next_fire_at)
            if cancel_runs:
                await conn.execute(
                    update(runs)
                    .where(runs.c.job_id == job.id, runs.c.state == RunState.PENDING.value)
                    .values(state=RunState.CANCELLED.value, due_at=None,
                            finished_at=job.updated_at)
                )
            return job

        return await self.writes.run(op)

    async def acquire_due_jobs(
        self, owner: str, now: Micros, horizon: Micros, limit: int, lease_until: Micros
    ) -> list[Job]:
        async def op(conn: AsyncConnection) -> list[Job]:
            due = self._locking(
                select(jobs.c.id)
                .where(
                    jobs.c.next_fire_at <= horizon,
                    (jobs.c.lease_until.is_(None)) | (jobs.c.lease_until < now),
                )
                .order_by(jobs.c.next_fire_at, jobs.c.priority.desc())
                .limit(limit)
            )
            stmt = (
                update(jobs)
                .where(jobs.c.id.in_(due.scalar_subquery()))
                .values(lease_owner=owner, lease_until=lease_until)
                .returning(*jobs.c)
            )
            rows = (await conn.execute(stmt)).mappings().all()
            return [job_from_row(row) for row in rows]

        return await self.writes.run(op, urgent=True)

    async def record_fires(
        self, owner: str, now: Micros, fires: Sequence[Fire], lease_until: Micros
    ) -> FiresRecorded:
        async def op(conn: AsyncConnection) -> FiresRecorded:
            held = await self._held_jobs(conn, owner, fires)
            live = [f for f in fires if held.get(f.job.id) == f.plan.scheduled_at]
            busy, replaced = await self._apply_concurrency(conn, live, now)
            new_runs = [self._new_run(f, owner, now, lease_until, f.job.id in busy)
                        for f in live]
            inserted: set[str] = set()
            if new_runs:
                # The unique index drops a run for an occurrence that already has one: only
                # what was really inserted may be delivered.
                stmt = self._insert(runs).on_conflict_do_nothing().returning(runs.c.id)
                for chunk in chunks(new_runs):
                    result = await conn.execute(stmt, [values for _run, values in chunk])
                    inserted.update(result.scalars())
            advance = [_advance_values(f, now) for f in live]
            if advance:
                stmt = (
                    update(jobs)
                    .where(jobs.c.id == _bind("b_id"))
                    .values(
                        next_fire_at=_bind("b_next"),
                        last_fire_at=_bind("b_last"),
                        state=_bind("b_state"),
                        lease_owner=None,
                        lease_until=None,
                        updated_at=now,
                    )
                )
                await conn.execute(stmt, advance)
            started = [run for run, _v in new_runs
                       if run.state is RunState.RUNNING and run.id in inserted]
            return FiresRecorded(started, replaced)

        return await self.writes.run(op, urgent=True)

    async def _apply_concurrency(
        self, conn: AsyncConnection, fires: Sequence[Fire], now: Micros
    ) -> tuple[set[str], list[str]]:
        """Jobs whose occurrence must be skipped (forbid), and the runs it replaced (replace)."""
        policed = {f.job.id: f.job.spec.concurrency for f in fires
                   if f.plan.fire and f.job.spec.concurrency is not ConcurrencyPolicy.ALLOW}
        if not policed:
            return set(), []
        in_flight: list[tuple[str, str]] = []
        for chunk in chunks(sorted(policed)):
            found = await conn.execute(
                select(runs.c.job_id, runs.c.id).where(
                    runs.c.job_id.in_(chunk), runs.c.due_at.is_not(None)
                )
            )
            in_flight.extend((job_id, run_id) for job_id, run_id in found.all())
        busy = {job for job, _run in in_flight if policed[job] is ConcurrencyPolicy.FORBID}
        replaced = [run for job, run in in_flight if policed[job] is ConcurrencyPolicy.REPLACE]
        for chunk in chunks(replaced):
            await conn.execute(
                update(runs).where(runs.c.id.in_(chunk), runs.c.due_at.is_not(None)).values(
                    state=RunState.CANCELLED.value, due_at=None, lease_owner=None,
                    lease_until=None, finished_at=now,
                    last_error="replaced by a newer occurrence (concurrency: replace)",
                )
            )
            await conn.execute(update(tasks).where(tasks.c.run_id.in_(chunk),
                                                   tasks.c.state.in_(LIVE))
                               .values(kill_requested=True))
        return busy, replaced

    async def _held_jobs(
        self, conn: AsyncConnection, owner: str, fires: Sequence[Fire]
    ) -> dict[str, Micros | None]:
        held: dict[str, Micros | None] = {}
        for chunk in chunks([f.job.id for f in fires]):
            query = select(jobs.c.id, jobs.c.next_fire_at).where(
                jobs.c.id.in_(chunk), jobs.c.lease_owner == owner
            )
            if not self.is_sqlite:
                query = query.with_for_update()
            for job_id, next_fire_at in (await conn.execute(query)).all():
                held[job_id] = next_fire_at
        return held

    def _new_run(
        self, fire: Fire, owner: str, now: Micros, lease_until: Micros, busy: bool
    ) -> tuple[Run, dict[str, Any]]:
        job = fire.job
        if not fire.plan.fire:
            state, due, lease, attempts_ = RunState.MISSED, None, None, 0
        elif busy:
            state, due, lease, attempts_ = RunState.SKIPPED, None, None, 0
        elif fire.deliver_now:
            state, due, lease, attempts_ = RunState.RUNNING, lease_until, lease_until, 1
        else:
            state, due, lease, attempts_ = RunState.PENDING, now, None, 0
        run = Run(
            id=fire.run_id,
            job_id=job.id,
            namespace=job.spec.namespace,
            job_key=job.spec.key,
            kind=RunKind.SCHEDULED,
            state=state,
            scheduled_at=fire.plan.scheduled_at,
            fired_at=now,
            attempts=attempts_,
            due_at=due,
            started_at=now if state is RunState.RUNNING else None,
            finished_at=now if state in (RunState.MISSED, RunState.SKIPPED) else None,
            node=self.node if state is RunState.RUNNING else None,
            last_error="the previous run was still in flight (concurrency: forbid)"
            if busy else None,
        )
        values = _run_values(run)
        values["lease_owner"] = owner if lease is not None else None
        values["lease_until"] = lease
        return run, values

    async def add_manual_run(
        self, job: Job, run_id: str, now: Micros, payload: Any, has_override: bool
    ) -> Run:
        run = Run(
            id=run_id,
            job_id=job.id,
            namespace=job.spec.namespace,
            job_key=job.spec.key,
            kind=RunKind.MANUAL,
            state=RunState.PENDING,
            scheduled_at=now,
            fired_at=now,
            due_at=now,
            payload_override=payload if has_override else None,
            has_override=has_override,
        )

        async def op(conn: AsyncConnection) -> Run:
            await conn.execute(insert(runs).values(**_run_values(run)))
            await self._notify(conn, RUN_CHANNEL, now)
            return run

        return await self.writes.run(op)

    # -- runs and attempts -------------------------------------------------------------------

    async def acquire_due_runs(
        self, owner: str, now: Micros, limit: int, lease_until: Micros
    ) -> list[tuple[Run, Job]]:
        async def op(conn: AsyncConnection) -> list[tuple[Run, Job]]:
            query = self._locking(
                select(runs.c.id, runs.c.state, runs.c.attempts, runs.c.started_at,
                       runs.c.node)
                .where(runs.c.due_at <= now)
                .order_by(runs.c.due_at)
                .limit(limit)
            )
            picked = (await conn.execute(query)).mappings().all()
            if not picked:
                return []
            await self._abandon(conn, [r for r in picked if r["state"] == "running"], now)
            ids = [r["id"] for r in picked]
            stmt = (
                update(runs)
                .where(runs.c.id.in_(ids))
                .values(
                    state=RunState.RUNNING.value,
                    attempts=runs.c.attempts + 1,
                    lease_owner=owner,
                    lease_until=lease_until,
                    due_at=lease_until,
                    started_at=func.coalesce(runs.c.started_at, now),
                    node=self.node,
                )
                .returning(*runs.c)
            )
            claimed = [run_from_row(row) for row in (await conn.execute(stmt)).mappings()]
            job_ids = sorted({run.job_id for run in claimed})
            found = await conn.execute(select(jobs).where(jobs.c.id.in_(job_ids)))
            by_id = {row["id"]: job_from_row(row) for row in found.mappings()}
            return [(run, by_id[run.job_id]) for run in claimed]

        return await self.writes.run(op, urgent=True)

    async def _abandon(self, conn: AsyncConnection, lost: Sequence[Any], now: Micros) -> None:
        """A lease lapsed mid-attempt: the node died or stalled, so the outcome is unknown."""
        if not lost:
            return
        rows = [
            attempt_values(
                Attempt(
                    run_id=r["id"],
                    number=r["attempts"],
                    started_at=r["started_at"] or now,
                    finished_at=now,
                    outcome=AttemptOutcome.ABANDONED,
                    node=r["node"] or "unknown",
                    error="lease expired before the attempt reported an outcome",
                )
            )
            for r in lost
        ]
        await conn.execute(self._insert(attempts).on_conflict_do_nothing(), rows)

    async def record_attempts(self, owner: str, records: Sequence[AttemptRecord]) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(
                self._insert(attempts).on_conflict_do_nothing(),
                [attempt_values(r.attempt) for r in records],
            )
            stmt = (
                update(runs)
                .where(
                    runs.c.id == _bind("b_id"),
                    runs.c.lease_owner == owner,
                    runs.c.attempts == _bind("b_number"),
                    runs.c.state == RunState.RUNNING.value,
                )
                .values(
                    state=_bind("b_state"),
                    due_at=_bind("b_due"),
                    finished_at=_bind("b_finished"),
                    last_error=_bind("b_error"),
                    lease_owner=None,
                    lease_until=None,
                )
            )
            await conn.execute(stmt, [_attempt_update(r) for r in records])
            ended = [(r.job_id, r.attempt.run_id, r.next_state)
                     for r in records if r.alerting and r.next_state is not RunState.PENDING]
            if ended:
                await count_outcomes(conn, ended, records[0].attempt.finished_at)

        await self.writes.run(op, urgent=True)

    async def renew_runs(self, owner: str, run_ids: Sequence[str], lease_until: Micros) -> None:
        async def op(conn: AsyncConnection) -> None:
            for chunk in chunks(run_ids):
                await conn.execute(
                    update(runs)
                    .where(runs.c.id.in_(chunk), runs.c.lease_owner == owner,
                           runs.c.state == RunState.RUNNING.value)
                    .values(lease_until=lease_until, due_at=lease_until)
                )

        await self.writes.run(op, urgent=True)

    async def release(self, owner: str | None) -> None:
        """Drop job leases; make held runs due now so they are re-delivered at once."""

        async def op(conn: AsyncConnection) -> None:
            job_cond: ColumnElement[bool] = jobs.c.lease_owner.is_not(None)
            run_cond: ColumnElement[bool] = and_(
                runs.c.state == RunState.RUNNING.value,
                runs.c.lease_owner.not_in((WORKERS_OWNER, KUBE_OWNER)),  # held by workers, clusters
            )
            if owner is not None:
                job_cond = and_(job_cond, jobs.c.lease_owner == owner)
                run_cond = and_(run_cond, runs.c.lease_owner == owner)
            await conn.execute(update(jobs).where(job_cond).values(lease_owner=None,
                                                                   lease_until=None))
            await conn.execute(update(runs).where(run_cond).values(lease_until=0, due_at=0))

        await self.writes.run(op, urgent=True)

    async def ping(self) -> None:
        """Raises unless the database answers a query."""
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def db_now(self) -> Micros:
        if self.is_sqlite:  # one node on one machine: its clock is the database's
            return time.time_ns() // 1_000
        query = text("SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint")
        async with self.read_engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def heartbeat(self, node: NodeInfo, now: Micros, stopped: bool = False) -> None:
        values = {"owner": node.owner, "name": node.name, "address": node.address,
                  "version": node.version, "started_at": node.started_at,
                  "heartbeat_at": now, "stopped_at": now if stopped else None}

        async def op(conn: AsyncConnection) -> None:
            stmt = self._insert(nodes).values(**values)
            changes = {"heartbeat_at": now, "stopped_at": values["stopped_at"]}
            await conn.execute(stmt.on_conflict_do_update(index_elements=[nodes.c.owner],
                                                          set_=changes))

        await self.writes.run(op, urgent=True)

    async def list_nodes(self) -> list[NodeStatus]:
        held_jobs = (select(jobs.c.lease_owner, func.count().label("n"))
                     .where(jobs.c.lease_owner.is_not(None)).group_by(jobs.c.lease_owner))
        held_runs = (select(runs.c.lease_owner, func.count().label("n"))
                     .where(runs.c.lease_owner.is_not(None)).group_by(runs.c.lease_owner))
        async with self.read_engine.connect() as conn:
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

        return await self.writes.run(op)

    async def purge_output(self, finished_before: Micros, limit: int) -> int:
        return await self.workers.purge_output(finished_before, limit)

    async def _purge_tasks(self, conn: AsyncConnection, run_ids: Sequence[str]) -> None:
        """A run's tasks and their output go with it (the output dominates the database)."""
        found = await conn.execute(select(tasks.c.id).where(tasks.c.run_id.in_(run_ids)))
        task_ids = list(found.scalars())
        if task_ids:
            await conn.execute(delete(task_output).where(task_output.c.task_id.in_(task_ids)))
            await conn.execute(delete(tasks).where(tasks.c.id.in_(task_ids)))

    async def list_runs(self, job_id: str, before_id: str | None, limit: int) -> list[Run]:
        query = select(runs).where(runs.c.job_id == job_id).order_by(runs.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(runs.c.id < before_id)
        async with self.read_engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [run_from_row(row) for row in rows]

    async def get_run(self, run_id: str) -> tuple[Run, list[Attempt]] | None:
        async with self.read_engine.connect() as conn:
            row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().first()
            if row is None:
                return None
            found = await conn.execute(
                select(attempts).where(attempts.c.run_id == run_id).order_by(attempts.c.number)
            )
            return run_from_row(row), [attempt_from_row(a) for a in found.mappings()]



async def _rewrite_job(conn: AsyncConnection, job: Job) -> None:
    """Store a job's new definition and state; its identity and creation time never change.
    Writing the row drops any lease, so a fire claimed before the change is not made."""
    values = job_values(job)
    for fixed in ("id", "namespace", "key", "created_at"):
        values.pop(fixed)
    await conn.execute(update(jobs).where(jobs.c.id == job.id).values(**values))


def _bind(name: str) -> Any:
    return bindparam(name)


def _run_values(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "job_id": run.job_id,
        "namespace": run.namespace,
        "job_key": run.job_key,
        "kind": run.kind.value,
        "state": run.state.value,
        "scheduled_at": run.scheduled_at,
        "fired_at": run.fired_at,
        "attempts": run.attempts,
        "due_at": run.due_at,
        "lease_owner": None,
        "lease_until": None,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "node": run.node,
        "payload": dumps(run.payload_override) if run.has_override else None,
        "has_override": run.has_override,
        "last_error": run.last_error,
    }


def _advance_values(fire: Fire, now: Micros) -> dict[str, Any]:
    upcoming = fire.plan.next_fire_at
    state = JobState.ACTIVE if upcoming is not None else JobState.COMPLETED
    return {
        "b_id": fire.job.id,
        "b_next": upcoming,
        "b_last": fire.plan.scheduled_at,
        "b_state": state.value,
    }


def _attempt_update(record: AttemptRecord) -> dict[str, Any]:
    terminal = record.next_state is not RunState.PENDING
    return {
        "b_id": record.attempt.run_id,
        "b_number": record.attempt.number,
        "b_state": record.next_state.value,
        "b_due": record.due_at,
        "b_finished": record.attempt.finished_at if terminal else None,
        "b_error": record.attempt.error,
    }


def make_store(url: str, node: str = "node") -> SqlStore:
    return SqlStore(url, node=node)
