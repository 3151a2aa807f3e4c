"""Runs and attempts: fires (the runs of claimed jobs, under their concurrency policy),
manual runs, claims of due runs with the rescue of lapsed ones, results, and reads."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import bindparam, false, func, insert, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.contracts import AttemptRecord, Fire, FiresRecorded, Rerun, RerunOutcome
from cronwheel.domain.errors import IllegalTransition, NotFound
from cronwheel.domain.jobs import ConcurrencyPolicy, Job, JobState
from cronwheel.domain.runs import (
    TERMINAL,
    Attempt,
    AttemptOutcome,
    Run,
    RunKind,
    RunState,
    removed,
)
from cronwheel.domain.time import Micros
from cronwheel.store.alerts import count_outcomes
from cronwheel.store.batches import chunks
from cronwheel.store.connection import Database
from cronwheel.store.new_runs import fired_run, manual_run
from cronwheel.store.pg import RUN_CHANNEL
from cronwheel.store.reruns import sort_reruns
from cronwheel.store.rows import (
    attempt_from_row,
    attempt_values,
    dumps,
    job_from_row,
    run_from_row,
)
from cronwheel.store.tables import attempts, jobs, runs, tasks
from cronwheel.store.workers import LIVE

RECENT_BRANCHES = 200  # jobs per statement: SQLite allows 500 terms of a compound select


class SqlRuns:
    def __init__(self, db: Database, node: str) -> None:
        self._db = db
        self.node = node  # recorded on the runs this node starts
        # built once, like the module's other statements run per fire or attempt
        self._add_attempts = db.insert(attempts).on_conflict_do_nothing()
        # a fired run never overrides its job's payload: no value to convert per row
        self._add_fired = (db.insert(runs).values(has_override=false(), payload=None)
                           .on_conflict_do_nothing())

    async def record_fires(
        self, owner: str, now: Micros, fires: Sequence[Fire], lease_until: Micros
    ) -> FiresRecorded:
        async def op(conn: AsyncConnection) -> FiresRecorded:
            held = await self._held_jobs(conn, owner, fires)
            live = [f for f in fires if held.get(f.job.id) == f.plan.scheduled_at]
            busy, replaced = await self._apply_concurrency(conn, live, now)
            new_runs = [self._new_run(f, owner, now, lease_until, f.job.id in busy)
                        for f in live]
            inserted = await self._insert_fired(conn, [values for _run, values in new_runs])
            advance = [_advance_values(f, now) for f in live]
            await self._db.execute_many(conn, _ADVANCE_JOBS, advance, {"b_now": now})
            started = [run for run, _v in new_runs
                       if run.state is RunState.RUNNING and run.id in inserted]
            waiting = [run for run, _v in new_runs
                       if run.state is RunState.WAITING and run.id in inserted]
            return FiresRecorded(started, replaced, waiting)

        return await self._db.write(op, urgent=True)

    async def _insert_fired(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> set[str]:
        """The ids of the runs really inserted: the unique index drops a run for an occurrence
        that already has one, and only what was inserted may be delivered."""
        for row in rows:
            del row["payload"], row["has_override"]  # the statement's own values
        return await self._db.insert_new(conn, self._add_fired, rows)

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
            query = self._db.for_update(select(jobs.c.id, jobs.c.next_fire_at).where(
                jobs.c.id.in_(chunk), jobs.c.lease_owner == owner
            ))
            for job_id, next_fire_at in (await conn.execute(query)).all():
                held[job_id] = next_fire_at
        return held

    def _new_run(
        self, fire: Fire, owner: str, now: Micros, lease_until: Micros, busy: bool
    ) -> tuple[Run, dict[str, Any]]:
        run, lease = fired_run(fire, self.node, now, lease_until, busy)
        values = run_values(run)
        values["lease_owner"] = owner if lease is not None else None
        values["lease_until"] = lease
        return run, values

    async def add_manual_run(
        self, job: Job, run_id: str, now: Micros, payload: Any, has_override: bool
    ) -> Run:
        run = manual_run(job, run_id, now, payload, has_override)

        async def op(conn: AsyncConnection) -> Run:
            await conn.execute(insert(runs).values(**run_values(run)))
            await self._db.notify(conn, RUN_CHANNEL, now)
            return run

        return await self._db.write(op)

    async def remove_run(self, run_id: str, now: Micros) -> Run:
        async def op(conn: AsyncConnection) -> Run:
            row = (await conn.execute(select(runs).where(runs.c.id == run_id))
                   ).mappings().first()
            if row is None:
                raise NotFound(f"no run {run_id!r}", "run_id")
            run = run_from_row(row)
            if row["lease_owner"] is not None:
                raise IllegalTransition("the run is being delivered: kill it instead", "run_id")
            ended = removed(run, now)
            done = await conn.execute(
                update(runs).where(runs.c.id == run_id, runs.c.state == run.state.value,
                                   runs.c.lease_owner.is_(None))
                .values(state=ended.state.value, due_at=None, finished_at=now,
                        last_error=ended.last_error))
            if not done.rowcount:
                raise IllegalTransition("the run changed meanwhile: ask again", "run_id")
            return ended

        return await self._db.write(op, urgent=True)

    async def acquire_due_runs(
        self, owner: str, now: Micros, limit: int, lease_until: Micros,
        others_than: Collection[str] = (),
    ) -> list[tuple[Run, Job]]:
        async def op(conn: AsyncConnection) -> list[tuple[Run, Job]]:
            picked_query = (
                select(runs.c.id, runs.c.state, runs.c.attempts, runs.c.started_at,
                       runs.c.node)
                .where(runs.c.due_at <= now)
                .order_by(runs.c.due_at)
                .limit(limit)
            )
            if others_than:
                picked_query = picked_query.where(runs.c.namespace.not_in(sorted(others_than)))
            query = self._db.skip_locked(picked_query)
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

        return await self._db.write(op, urgent=True)

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
        await conn.execute(self._db.insert(attempts).on_conflict_do_nothing(), rows)

    async def record_attempts(self, owner: str, records: Sequence[AttemptRecord]) -> None:
        async def op(conn: AsyncConnection) -> None:
            # The runs first, then their attempts: a rescuer locks a run, then writes its
            # abandoned attempt; the other order deadlocks against it.
            await self._db.execute_many(conn, _SETTLE_RUNS, [_attempt_update(r) for r in records],
                                        {"b_owner": owner})
            await self._db.execute_many(conn, self._add_attempts,
                                        [attempt_values(r.attempt) for r in records])
            ended = [(r.job_id, r.attempt.run_id, r.next_state)
                     for r in records if r.alerting and r.next_state is not RunState.PENDING]
            if ended:
                await count_outcomes(conn, ended, records[0].attempt.finished_at)

        await self._db.write(op, urgent=True)

    async def renew_runs(self, owner: str, run_ids: Sequence[str], lease_until: Micros) -> None:
        async def op(conn: AsyncConnection) -> None:
            for chunk in chunks(run_ids):
                await conn.execute(
                    update(runs)
                    .where(runs.c.id.in_(chunk), runs.c.lease_owner == owner,
                           runs.c.state == RunState.RUNNING.value)
                    .values(lease_until=lease_until, due_at=lease_until)
                )

        await self._db.write(op, urgent=True)

    async def list_runs(self, job_id: str, before_id: str | None, limit: int) -> list[Run]:
        query = select(runs).where(runs.c.job_id == job_id).order_by(runs.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(runs.c.id < before_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [run_from_row(row) for row in rows]

    async def recent_runs(self, job_ids: Sequence[str], limit: int) -> dict[str, list[Run]]:
        """Each job's newest `limit` runs in one statement: a branch per job on ix_runs_job."""
        found: dict[str, list[Run]] = {job_id: [] for job_id in job_ids}
        branches = [select(select(runs).where(runs.c.job_id == job_id)
                           .order_by(runs.c.id.desc()).limit(limit).subquery())
                    for job_id in found]
        async with self._db.read() as conn:
            for start in range(0, len(branches), RECENT_BRANCHES):
                query = union_all(*branches[start:start + RECENT_BRANCHES])
                for row in (await conn.execute(query)).mappings().all():
                    found[row["job_id"]].append(run_from_row(row))
        for listed in found.values():
            listed.sort(key=lambda run: run.id, reverse=True)
        return found

    async def get_run(self, run_id: str) -> tuple[Run, list[Attempt]] | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().first()
            if row is None:
                return None
            found = await conn.execute(
                select(attempts).where(attempts.c.run_id == run_id).order_by(attempts.c.number)
            )
            return run_from_row(row), [attempt_from_row(a) for a in found.mappings()]

    async def rerun_occurrences(self, reruns: Sequence[Rerun], now: Micros) -> RerunOutcome:
        async def op(conn: AsyncConnection) -> RerunOutcome:
            have = await _occurrence_runs(self._db, conn, reruns)
            created, again, in_flight = sort_reruns(reruns, have, now)
            inserted: set[str] = set()
            stmt = self._db.insert(runs).on_conflict_do_nothing().returning(runs.c.id)
            for batch in chunks(created):
                result = await conn.execute(stmt, [run_values(run) for run in batch])
                inserted.update(result.scalars())
            await _start_again(conn, again, now)
            await self._db.notify(conn, RUN_CHANNEL, now)
            # a run the engine fired meanwhile for the same occurrence stays the only one
            return RerunOutcome([r for r in created if r.id in inserted], again, in_flight)

        return await self._db.write(op)


async def _start_again(conn: AsyncConnection, again: Sequence[Run], now: Micros) -> None:
    """Ended runs pending again, due now; or waiting again (a job with dependencies), their
    expiry counting from now."""
    ended = [state.value for state in TERMINAL]
    waiting = [run.id for run in again if run.state is RunState.WAITING]
    pending = [run.id for run in again if run.state is not RunState.WAITING]
    for ids, values in ((pending, {"state": RunState.PENDING.value, "due_at": now}),
                        (waiting, {"state": RunState.WAITING.value, "due_at": None,
                                   "fired_at": now})):
        for chunk in chunks(ids):
            await conn.execute(
                update(runs).where(runs.c.id.in_(chunk), runs.c.state.in_(ended)).values(
                    finished_at=None, last_error=None, lease_owner=None, lease_until=None,
                    **values))


async def _occurrence_runs(
    db: Database, conn: AsyncConnection, reruns: Sequence[Rerun]
) -> dict[tuple[str, Micros], Run]:
    """The scheduled runs the occurrences already have, locked (PostgreSQL) until the commit."""
    wanted: dict[str, list[Micros]] = {}
    for rerun in reruns:
        wanted.setdefault(rerun.job.id, []).append(rerun.scheduled_at)
    found: dict[tuple[str, Micros], Run] = {}
    for job_id, instants in wanted.items():
        for chunk in chunks(instants):
            query = db.for_update(select(runs).where(
                runs.c.job_id == job_id, runs.c.kind == RunKind.SCHEDULED.value,
                runs.c.scheduled_at.in_(chunk)))
            for row in (await conn.execute(query)).mappings():
                run = run_from_row(row)
                found[(run.job_id, run.scheduled_at)] = run
    return found


def _bind(name: str) -> Any:
    return bindparam(name)


# Statements run once per fire or attempt: module-level, so Database.execute_many compiles
# each once. A fired job moves on to its next occurrence, its lease released.
_ADVANCE_JOBS = (
    update(jobs)
    .where(jobs.c.id == _bind("b_id"))
    .values(next_fire_at=_bind("b_next"), last_fire_at=_bind("b_last"), state=_bind("b_state"),
            lease_owner=None, lease_until=None, updated_at=_bind("b_now"))
)
# An attempt's outcome settles its run, if the run is still this owner's attempt.
_SETTLE_RUNS = (
    update(runs)
    .where(runs.c.id == _bind("b_id"), runs.c.lease_owner == _bind("b_owner"),
           runs.c.attempts == _bind("b_number"), runs.c.state == RunState.RUNNING.value)
    .values(state=_bind("b_state"), due_at=_bind("b_due"), finished_at=_bind("b_finished"),
            last_error=_bind("b_error"), lease_owner=None, lease_until=None)
)


def run_values(run: Run) -> dict[str, Any]:
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

