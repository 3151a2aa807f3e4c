"""SQL for workers, tasks and their output. Shares the SqlStore's engines and write queue.

A run handed to workers is leased to WORKERS_OWNER with `due_at = HANDED_OFF`: no node's
rescue takes it; its tasks carry their own leases, renewed by their worker's heartbeats, and
`reap` settles the attempt of tasks whose worker went quiet.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from cronwheel.contracts import ALL_JOBS, HandOff, Settled
from cronwheel.domain.command_types import BUILTIN_TYPES
from cronwheel.domain.errors import Conflict, IllegalTransition, NotFound, UnknownWorker
from cronwheel.domain.jobs import Job
from cronwheel.domain.retry import after_attempt
from cronwheel.domain.routing import Candidate
from cronwheel.domain.runs import Attempt, Run, RunState
from cronwheel.domain.tasks import (
    HANDED_OFF,
    LIVE_STATES,
    WORKERS_OWNER,
    Task,
    TaskEnd,
    TaskState,
    TaskWork,
    WorkerInfo,
    WorkerStatus,
    summarise,
)
from cronwheel.domain.time import Micros
from cronwheel.domain.worker_target import WorkerTarget
from cronwheel.store.alerts import count_outcomes
from cronwheel.store.batches import chunks
from cronwheel.store.connection import Database
from cronwheel.store.pg import RUN_CHANNEL, WORKER_CHANNEL
from cronwheel.store.rows import attempt_values, job_from_row, retry_from_text, run_from_row
from cronwheel.store.tables import (
    attempts,
    jobs,
    runs,
    task_output,
    tasks,
    worker_switches,
    workers,
)

HAND_OFF_CHUNK = 400  # runs per statement: two parameters each, under SQLite's limit
LIVE = [s.value for s in LIVE_STATES]
ERROR_LIMIT = 2_000
NODE_LIMIT = 64  # attempts.node
STREAM_COLUMNS = {"log": tasks.c.log_size, "result": tasks.c.result_size}


def _live() -> ColumnElement[bool]:
    return tasks.c.state.in_(LIVE)


def task_from_row(row: Any) -> Task:
    return Task(
        id=row["id"], run_id=row["run_id"], attempt=row["attempt"], job_id=row["job_id"],
        worker_id=row["worker_id"], worker_name=row["worker_name"], host=row["host"],
        state=TaskState(row["state"]), created_at=row["created_at"],
        started_at=row["started_at"], finished_at=row["finished_at"],
        exit_code=row["exit_code"], error=row["error"], log_size=row["log_size"],
        result_size=row["result_size"], kill_requested=bool(row["kill_requested"]),
    )


def _worker_status(row: Any, busy: int, online_after: Micros) -> WorkerStatus:
    info = WorkerInfo(row["id"], row["name"], row["host"],
                      tuple(g for g in row["groups"].split(",") if g), row["capacity"],
                      row["version"], _types_from_text(row["types"]))
    online = row["stopped_at"] is None and row["heartbeat_at"] >= online_after
    return WorkerStatus(info, row["started_at"], row["heartbeat_at"], row["stopped_at"],
                        online, busy)


async def _groups_of(conn: AsyncConnection, worker_id: str) -> frozenset[str]:
    """The groups a registered, running worker serves; UnknownWorker for any other id."""
    found = (await conn.execute(select(workers.c.groups).where(
        workers.c.id == worker_id, workers.c.stopped_at.is_(None)))).scalar_one_or_none()
    if found is None:
        raise UnknownWorker()
    return frozenset(g for g in str(found).split(",") if g)


# -- the job types a worker accepts (cronwheel worker --types) ------------------------------


def _types_text(types: tuple[str, ...] | None) -> str | None:
    return None if types is None else "," + ",".join(types) + ","


def _types_from_text(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(t for t in text.split(",") if t)


def _accepts(job_type: str) -> ColumnElement[bool]:
    """Workers that take tasks of `job_type`: those listing it, and for a built-in type those
    that list none (they registered before workers declared types)."""
    listed = workers.c.types.contains(f",{job_type},", autoescape=True)  # '_' is literal
    return or_(listed, workers.c.types.is_(None)) if job_type in BUILTIN_TYPES else listed


class SqlWorkerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- registry ------------------------------------------------------------------------

    async def register(self, worker: WorkerInfo, now: Micros) -> None:
        values = {
            "id": worker.id, "name": worker.name, "host": worker.host,
            "groups": "," + ",".join(worker.groups) + ",", "capacity": worker.capacity,
            "version": worker.version, "started_at": now, "heartbeat_at": now,
            "stopped_at": None, "types": _types_text(worker.types),
        }

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(self._db.insert(workers).values(**values))

        await self._db.write(op, urgent=True)

    async def heartbeat(
        self, worker_id: str, running: Sequence[str], now: Micros, lease_until: Micros
    ) -> list[str] | None:
        """Renew the worker and its tasks; None when the worker is unknown or stopped.
        Returns the tasks it must kill. A running task it did not list is not renewed: the
        worker lost it (a lease answer that never arrived), so it lapses and is retried."""

        async def op(conn: AsyncConnection) -> list[str] | None:
            found = await conn.execute(
                update(workers)
                .where(workers.c.id == worker_id, workers.c.stopped_at.is_(None))
                .values(heartbeat_at=now)
            )
            if found.rowcount == 0:
                return None
            mine = and_(tasks.c.worker_id == worker_id, _live())
            held = or_(tasks.c.state == TaskState.ASSIGNED.value, tasks.c.id.in_(list(running)))
            await conn.execute(
                update(tasks).where(mine, held).values(lease_until=lease_until)
            )
            kill = await conn.execute(
                select(tasks.c.id).where(mine, tasks.c.kill_requested.is_(True))
            )
            return list(kill.scalars())

        return await self._db.write(op, urgent=True)

    async def grace(self, until: Micros) -> None:
        """Give every task in hand time to be renewed again (a node starting after an outage
        that kept workers from heartbeating must not declare their tasks lost at once)."""

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(update(tasks).where(_live(), tasks.c.lease_until < until)
                               .values(lease_until=until))

        await self._db.write(op, urgent=True)

    async def stop(self, worker_id: str, now: Micros) -> None:
        """A worker leaving: its unfinished tasks lapse at once and are settled by `reap`."""

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(
                update(workers).where(workers.c.id == worker_id).values(stopped_at=now)
            )
            await conn.execute(
                update(tasks).where(tasks.c.worker_id == worker_id, _live())
                .values(lease_until=0)
            )

        await self._db.write(op, urgent=True)

    async def statuses(
        self, online_after: Micros, include_stopped: bool = False
    ) -> list[WorkerStatus]:
        query = select(workers).order_by(workers.c.name, workers.c.started_at)
        if not include_stopped:
            query = query.where(workers.c.stopped_at.is_(None))
        async with self._db.read() as conn:
            rows = list((await conn.execute(query)).mappings())
            busy = await self._busy(conn)
        return [_worker_status(r, busy.get(r["id"], 0), online_after) for r in rows]

    async def _busy(self, conn: AsyncConnection) -> dict[str, int]:
        found = await conn.execute(
            select(tasks.c.worker_id, func.count()).where(_live()).group_by(tasks.c.worker_id)
        )
        return {worker: int(n) for worker, n in found.all()}

    # -- switches ------------------------------------------------------------------------

    async def switches(self, job_id: str) -> dict[str, bool]:
        """Worker name -> on/off for this job; a job's own switch overrides an all-jobs one."""
        query = select(worker_switches).where(worker_switches.c.job_id.in_([job_id, ALL_JOBS]))
        async with self._db.read() as conn:
            rows = list((await conn.execute(query)).mappings())
        merged = {r["worker_name"]: bool(r["enabled"]) for r in rows if r["job_id"] == ALL_JOBS}
        merged.update({r["worker_name"]: bool(r["enabled"]) for r in rows
                       if r["job_id"] == job_id})
        return merged

    async def set_switches(
        self, job_id: str, group: str | None, changes: dict[str, bool], now: Micros,
        online_after: Micros,
    ) -> None:
        """Switch workers on or off for one job (or every job: `job_id` "*", group None).

        Refused when it would leave a job's group with no online worker switched on: an
        operator restarting machines one by one must not silently stop a job.
        """

        async def op(conn: AsyncConnection) -> None:
            live = await conn.execute(
                select(workers.c.name, workers.c.groups).where(
                    workers.c.stopped_at.is_(None), workers.c.heartbeat_at >= online_after
                )
            )
            online = [(name, groups) for name, groups in live.all()]
            rows = await conn.execute(select(worker_switches))
            current: dict[tuple[str, str], bool] = {
                (j, n): bool(e) for j, n, e, _ in rows.all()
            }
            after = dict(current)
            after.update({(job_id, name): on for name, on in changes.items()})
            if any(not on for on in changes.values()):
                self._refuse_if_empty(job_id, group, online, after, changes)
            if changes:
                stmt = self._db.insert(worker_switches)
                await conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[worker_switches.c.job_id, worker_switches.c.worker_name],
                        set_={"enabled": stmt.excluded.enabled,
                              "updated_at": stmt.excluded.updated_at},
                    ),
                    [{"job_id": job_id, "worker_name": name, "enabled": on, "updated_at": now}
                     for name, on in changes.items()],
                )

        await self._db.write(op)

    @staticmethod
    def _refuse_if_empty(
        job_id: str, group: str | None, online: list[tuple[str, str]],
        after: dict[tuple[str, str], bool], changes: dict[str, bool],
    ) -> None:
        def on(job: str, name: str) -> bool:
            return after.get((job, name), after.get((ALL_JOBS, name), True))

        if group is not None:  # one job: its group must keep a worker on
            members = [n for n, groups in online if f",{group}," in groups]
            if members and not any(on(job_id, n) for n in members):
                raise IllegalTransition("every worker of the job would be off line", "workers")
            return
        touched = {g for n, groups in online if n in changes for g in groups.split(",") if g}
        for g in touched:  # all jobs: no group the workers serve may be left empty
            members = [n for n, groups in online if f",{g}," in groups]
            if not any(on(ALL_JOBS, n) for n in members):
                raise IllegalTransition(
                    f"every worker of group {g!r} would be off line", "workers"
                )

    # -- assignment ----------------------------------------------------------------------

    async def candidates(
        self, group: str, online_after: Micros, job_type: str | None = None
    ) -> list[Candidate]:
        """Online workers of the group that accept the job type (any, when None), with their
        load (the caller applies switches)."""
        query = select(workers).where(
            workers.c.stopped_at.is_(None),
            workers.c.heartbeat_at >= online_after,
            workers.c.groups.like(f"%,{group},%"),
        )
        if job_type is not None:
            query = query.where(_accepts(job_type))
        async with self._db.read() as conn:
            rows = list((await conn.execute(query)).mappings())
            busy = await self._busy(conn)
        return [
            Candidate(r["id"], r["name"], busy.get(r["id"], 0), r["capacity"], r["host"])
            for r in rows
        ]

    async def hand_off(
        self, owner: str, items: Sequence[HandOff], now: Micros, lease_until: Micros
    ) -> set[str]:
        """Hand runs to workers, one task per pick, for the runs this owner still holds at
        that attempt (the others were cancelled or taken meanwhile: nothing is written for
        them). One transaction and two statements for a whole fire batch. Returns the run
        ids handed over."""

        async def op(conn: AsyncConnection) -> set[str]:
            moved: set[str] = set()
            for chunk in chunks(items, HAND_OFF_CHUNK):
                found = await conn.execute(
                    update(runs).where(
                        tuple_(runs.c.id, runs.c.attempts).in_(
                            [(i.run_id, i.attempt) for i in chunk]),
                        runs.c.lease_owner == owner,
                        runs.c.state == RunState.RUNNING.value,
                    ).values(lease_owner=WORKERS_OWNER, lease_until=HANDED_OFF,
                             due_at=HANDED_OFF)
                    .returning(runs.c.id)
                )
                moved.update(found.scalars())
            rows = [
                {"id": task_id, "run_id": i.run_id, "attempt": i.attempt, "job_id": i.job_id,
                 "worker_id": worker_id, "worker_name": name, "host": host,
                 "state": TaskState.ASSIGNED.value, "created_at": now,
                 "lease_until": lease_until, "kill_requested": False, "log_size": 0,
                 "result_size": 0}
                for i in items if i.run_id in moved
                for task_id, worker_id, name, host in i.picks
            ]
            if rows:
                await conn.execute(tasks.insert(), rows)
                for worker_id in sorted({str(r["worker_id"]) for r in rows}):
                    # wake the worker's long-poll on whichever node it waits
                    await self._db.notify(conn, WORKER_CHANNEL, worker_id)
            return moved

        return await self._db.write(op, urgent=True)

    async def lease(
        self, worker_id: str, limit: int, now: Micros, lease_until: Micros
    ) -> list[TaskWork]:
        """Tasks handed to this worker. Its groups are the ones it registered with (never
        what a lease asks for): a task of a job moved to another group is not sent."""

        async def op(conn: AsyncConnection) -> list[TaskWork]:
            groups = await _groups_of(conn, worker_id)
            query = self._db.skip_locked(
                select(tasks.c.id).where(tasks.c.worker_id == worker_id,
                                         tasks.c.state == TaskState.ASSIGNED.value)
                .order_by(tasks.c.created_at).limit(limit)
            )
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return []
            taken = await conn.execute(
                update(tasks).where(tasks.c.id.in_(ids))
                .values(state=TaskState.RUNNING.value, started_at=now, lease_until=lease_until)
                .returning(*tasks.c)
            )
            leased = [task_from_row(r) for r in taken.mappings()]
            work, stale = await self._work(conn, leased, groups)
            for task, state, reason in stale:  # never sent: end them here
                await conn.execute(update(tasks).where(tasks.c.id == task.id).values(
                    state=state.value, finished_at=now, error=reason))
                await self._settle(conn, task.run_id, task.attempt, now)
            return work

        return await self._db.write(op, urgent=True)

    async def _work(
        self, conn: AsyncConnection, leased: list[Task], groups: frozenset[str]
    ) -> tuple[list[TaskWork], list[tuple[Task, TaskState, str]]]:
        """What to send for each leased task; and the tasks not worth sending, with why:
        their run was killed or replaced meanwhile, or the job no longer runs on workers of
        the worker's groups."""
        run_rows = await conn.execute(select(runs).where(runs.c.id.in_([t.run_id for t in leased])))
        by_run = {r["id"]: run_from_row(r) for r in run_rows.mappings()}
        job_rows = await conn.execute(select(jobs).where(jobs.c.id.in_([t.job_id for t in leased])))
        by_job = {r["id"]: job_from_row(r) for r in job_rows.mappings()}
        work, stale = [], []
        for task in sorted(leased, key=lambda t: t.created_at):
            run, job = by_run.get(task.run_id), by_job.get(task.job_id)
            if run is None or job is None or run.state is not RunState.RUNNING \
                    or task.kill_requested:
                stale.append((task, TaskState.KILLED, "the run ended before the task started"))
                continue
            target = job.spec.target
            if not isinstance(target, WorkerTarget):
                stale.append((task, TaskState.ERROR, "the job no longer runs on workers"))
                continue
            if target.group not in groups:
                stale.append((task, TaskState.ERROR,
                              f"the job now runs on group {target.group!r}, not this worker's"))
                continue
            payload = run.payload_override if run.has_override else job.spec.payload
            work.append(TaskWork(task, job.spec.namespace, job.spec.key, target.job_type,
                                 target.spec, target.timeout, payload, run.scheduled_at))
        return work, stale

    # -- output --------------------------------------------------------------------------

    async def append_output(
        self, worker_id: str, task_id: str, stream: str, offset: int, data: bytes
    ) -> int:
        """Store a piece of output at its byte offset; returns the stream's size after it.
        A repeat of a stored piece is ignored, so a worker may resend after a lost answer."""
        size_col = STREAM_COLUMNS[stream]

        async def op(conn: AsyncConnection) -> int:
            found = await conn.execute(
                select(size_col).select_from(tasks.join(workers,
                                                        workers.c.id == tasks.c.worker_id))
                .where(tasks.c.id == task_id, tasks.c.worker_id == worker_id,
                       workers.c.stopped_at.is_(None))
            )
            size = found.scalar_one_or_none()
            if size is None:
                await _groups_of(conn, worker_id)  # a stopped or forgotten worker: register
                raise NotFound(f"no task {task_id!r} of this worker", "task_id")
            if offset > size:
                raise Conflict(f"offset {offset} is past the stored size {size}", "offset")
            tail = data[size - offset:]
            if not tail:
                return int(size)
            await conn.execute(task_output.insert().values(
                task_id=task_id, stream=stream, offset=size, data=tail))
            await conn.execute(
                update(tasks).where(tasks.c.id == task_id).values({size_col: size + len(tail)})
            )
            return int(size + len(tail))

        return await self._db.write(op)

    async def read_output(
        self, task_id: str, stream: str, offset: int, limit: int
    ) -> tuple[bytes, Task]:
        """Up to `limit` bytes from `offset`; reads only the chunks that overlap the range."""
        async with self._db.read() as conn:
            row = (await conn.execute(select(tasks).where(tasks.c.id == task_id))).mappings()
            found = row.first()
            if found is None:
                raise NotFound(f"no task {task_id!r}", "task_id")
            task = task_from_row(found)
            end = offset + limit
            start = (await conn.execute(
                select(func.max(task_output.c.offset)).where(
                    task_output.c.task_id == task_id, task_output.c.stream == stream,
                    task_output.c.offset <= offset)
            )).scalar_one_or_none()
            chunks = await conn.execute(
                select(task_output.c.offset, task_output.c.data).where(
                    task_output.c.task_id == task_id, task_output.c.stream == stream,
                    task_output.c.offset >= (start or 0), task_output.c.offset < end,
                ).order_by(task_output.c.offset)
            )
            pieces = []
            for at, data in chunks.all():
                pieces.append(bytes(data)[max(0, offset - at): max(0, end - at)])
        return b"".join(pieces), task

    # -- outcomes ------------------------------------------------------------------------

    async def finish(
        self, worker_id: str, task_id: str, state: TaskState, exit_code: int | None,
        error: str | None, now: Micros, result: bytes | None = None,
    ) -> Settled | None:
        """Record a task's end; once its attempt's last task ends, settle the run.
        Returns (run id, run state, next due) when the run changed."""

        async def op(conn: AsyncConnection) -> Settled | None:
            found = await conn.execute(
                update(tasks).where(
                    tasks.c.id == task_id, tasks.c.worker_id == worker_id, _live()
                ).values(
                    state=state.value, finished_at=now, exit_code=exit_code,
                    error=None if error is None else error[:ERROR_LIMIT],
                ).returning(tasks.c.run_id, tasks.c.attempt)
            )
            row = found.first()
            if row is None:  # nothing was written
                raise Conflict("the task is no longer held by this worker", "task_id")
            if result:  # the whole result, inline: only if none was uploaded
                stored = await conn.execute(
                    update(tasks).where(tasks.c.id == task_id, tasks.c.result_size == 0)
                    .values(result_size=len(result))
                )
                if stored.rowcount:
                    await conn.execute(task_output.insert().values(
                        task_id=task_id, stream="result", offset=0, data=result))
            return await self._settle(conn, row.run_id, row.attempt, now)

        return await self._db.write(op, urgent=True)

    async def reap(self, now: Micros, limit: int = 500) -> list[Settled]:
        """Tasks whose worker stopped renewing them are lost; settle their attempts."""

        async def op(conn: AsyncConnection) -> list[Settled]:
            query = self._db.skip_locked(
                select(tasks.c.id, tasks.c.run_id, tasks.c.attempt, tasks.c.worker_name)
                .where(_live(), tasks.c.lease_until < now).limit(limit)
            )
            lapsed = (await conn.execute(query)).all()
            if not lapsed:
                return []
            await conn.execute(
                update(tasks).where(tasks.c.id.in_([r.id for r in lapsed]), _live()).values(
                    state=TaskState.LOST.value, finished_at=now,
                    error="its worker stopped heartbeating")
            )
            settled = []
            for run_id, attempt in sorted({(r.run_id, r.attempt) for r in lapsed}):
                changed = await self._settle(conn, run_id, attempt, now)
                if changed is not None:
                    settled.append(changed)
            return settled

        return await self._db.write(op, urgent=True)

    async def _settle(
        self, conn: AsyncConnection, run_id: str, attempt: int, now: Micros
    ) -> Settled | None:
        rows = list((await conn.execute(
            select(tasks).where(tasks.c.run_id == run_id, tasks.c.attempt == attempt)
        )).mappings())
        if any(r["state"] in LIVE for r in rows):
            return None
        held = (await conn.execute(
            select(runs.c.job_id, jobs.c.retry, jobs.c.failures, jobs.c.alert)
            .select_from(runs.join(jobs, jobs.c.id == runs.c.job_id))
            .where(runs.c.id == run_id, runs.c.attempts == attempt,
                   runs.c.lease_owner == WORKERS_OWNER,
                   runs.c.state == RunState.RUNNING.value)
        )).first()
        if held is None:
            return None  # cancelled or settled meanwhile
        ends = [TaskEnd(r["worker_name"], TaskState(r["state"]), r["exit_code"], r["error"])
                for r in sorted(rows, key=lambda r: r["worker_name"])]
        summary = summarise(ends, any(r["kill_requested"] for r in rows))
        state, due = after_attempt(retry_from_text(held.retry), attempt, summary.outcome, True,
                                   now, random.random())
        names = ",".join(e.worker_name for e in ends)
        error = None if summary.error is None else summary.error[:ERROR_LIMIT]
        await conn.execute(self._db.insert(attempts).on_conflict_do_nothing(), [
            attempt_values(Attempt(
                run_id=run_id, number=attempt,
                started_at=min((r["started_at"] or r["created_at"]) for r in rows),
                finished_at=now, outcome=summary.outcome,
                node=names if len(names) <= NODE_LIMIT else names[: NODE_LIMIT - 3] + "...",
                status_code=summary.exit_code, error=error))
        ])
        terminal = state is not RunState.PENDING
        await conn.execute(update(runs).where(runs.c.id == run_id).values(
            state=state.value, due_at=due, finished_at=now if terminal else None,
            last_error=error, lease_owner=None, lease_until=None))
        counts = held.alert is not None and (
            state is RunState.FAILED or (state is RunState.SUCCEEDED and held.failures))
        if counts:
            await count_outcomes(conn, [(held.job_id, run_id, state)], now)
        if due is not None:
            await self._db.notify(conn, RUN_CHANNEL, due)
        return run_id, state, due

    async def kill(self, run_id: str, now: Micros) -> RunState:
        """Stop a run: a waiting one ends killed now; one on workers is killed by them (the
        next heartbeat tells them); one being delivered by a node ends killed and its
        result, when it comes, is dropped."""

        async def op(conn: AsyncConnection) -> RunState:
            row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().first()
            if row is None:
                raise NotFound(f"no run {run_id!r}", "run_id")
            state = RunState(row["state"])
            if state not in (RunState.PENDING, RunState.RUNNING):
                raise IllegalTransition(f"the run is already {state.value}", "run_id")
            if row["lease_owner"] == WORKERS_OWNER:
                await conn.execute(update(tasks).where(
                    tasks.c.run_id == run_id, tasks.c.attempt == row["attempts"], _live()
                ).values(kill_requested=True))
                return state
            await conn.execute(update(runs).where(runs.c.id == run_id).values(
                state=RunState.KILLED.value, due_at=None, lease_owner=None, lease_until=None,
                finished_at=now, last_error="killed on request"))
            return RunState.KILLED

        return await self._db.write(op, urgent=True)

    # -- queries -------------------------------------------------------------------------

    async def tasks_of(self, run_id: str) -> list[Task]:
        query = select(tasks).where(tasks.c.run_id == run_id).order_by(
            tasks.c.attempt, tasks.c.worker_name)
        async with self._db.read() as conn:
            return [task_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def live_on_host(self, host: str) -> list[tuple[Task, Run, Job]]:
        """Tasks assigned or running on a host (by address or worker name), with their runs
        and jobs: three queries however many there are."""
        query = select(tasks).where(
            _live(), or_(tasks.c.host == host, tasks.c.worker_name == host)
        ).order_by(tasks.c.created_at)
        async with self._db.read() as conn:
            found = [task_from_row(r) for r in (await conn.execute(query)).mappings()]
            if not found:
                return []
            run_rows = await conn.execute(
                select(runs).where(runs.c.id.in_({t.run_id for t in found})))
            by_run = {r["id"]: run_from_row(r) for r in run_rows.mappings()}
            job_rows = await conn.execute(
                select(jobs).where(jobs.c.id.in_({t.job_id for t in found})))
            by_job = {r["id"]: job_from_row(r) for r in job_rows.mappings()}
        return [(t, by_run[t.run_id], by_job[t.job_id]) for t in found
                if t.run_id in by_run and t.job_id in by_job]

    async def last_outcome(self, job_ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """Per job: (finished_at, state, started_at) of its latest run that ran and ended."""
        latest = (
            select(runs.c.job_id, func.max(runs.c.finished_at).label("at"))
            .where(runs.c.job_id.in_(list(job_ids)), runs.c.finished_at.is_not(None),
                   runs.c.started_at.is_not(None))  # missed and skipped runs never ran
            .group_by(runs.c.job_id).subquery()
        )
        query = select(runs.c.job_id, runs.c.finished_at, runs.c.state, runs.c.started_at).join(
            latest, and_(runs.c.job_id == latest.c.job_id, runs.c.finished_at == latest.c.at))
        async with self._db.read() as conn:
            return {r[0]: tuple(r[1:]) for r in (await conn.execute(query)).all()}

