"""Jobs: adding (idempotent, or replacing), reading, changing, and claiming the due ones."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.contracts import AddOutcome, JobFilter
from cronwheel.domain.errors import NotFound
from cronwheel.domain.jobs import Job, JobState
from cronwheel.domain.paging import JobPosition, namespace_spans
from cronwheel.domain.runs import RunState
from cronwheel.domain.time import Micros
from cronwheel.store import bulk
from cronwheel.store.batches import chunks
from cronwheel.store.connection import Database
from cronwheel.store.listing import JobListing
from cronwheel.store.pg import DUE_CHANNEL
from cronwheel.store.rows import dependency_rows, job_from_row, job_values
from cronwheel.store.tables import (
    alerts,
    attempts,
    job_dependencies,
    jobs,
    runs,
    task_output,
    tasks,
    worker_switches,
)
from cronwheel.store.writer import Prelude


class _NewJobs(Prelude):
    """The rows of one `add_jobs` call: inserted in one statement with those of the calls
    queued right beside it (single submits, a write group of them), before the first runs."""

    def __init__(self, new: Sequence[Job],
                 insert: Callable[[AsyncConnection, Sequence[Job]], Awaitable[set[str]]]) -> None:
        self.new = new
        self.insert = insert
        self.created: set[str] = set()

    @classmethod
    async def run_all(cls, conn: AsyncConnection, preludes: list[_NewJobs]) -> None:
        created = await preludes[0].insert(conn, [job for p in preludes for job in p.new])
        for prelude in preludes:
            prelude.created = {job.id for job in prelude.new if job.id in created}
            prelude.done = True


class SqlJobs:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._listing = JobListing(db.is_sqlite)
        self._add = db.insert(jobs).on_conflict_do_nothing()  # compiled once: execute_many

    async def add_jobs(
        self, new: Sequence[Job], all_or_nothing: bool, replace: bool = False,
        revive: bool = False,
    ) -> list[AddOutcome]:
        rows = _NewJobs(new, self._insert)

        async def op(conn: AsyncConnection) -> list[AddOutcome]:
            if not rows.done:
                await _NewJobs.run_all(conn, [rows])
            created = rows.created
            await _write_edges(conn, [job for job in new if job.id in created])
            rewrite = replace or revive
            outcomes = await self._outcomes(conn, new, created, lock=rewrite)
            # A cancelled job is revived, never a conflict; a live one conflicts unless replaced.
            refused = all_or_nothing and any(
                o.conflict and o.job.state is not JobState.CANCELLED for o in outcomes)
            if replace or (revive and not refused):
                outcomes = await self._replace(conn, new, outcomes, overwrite=replace)
            due = [o.job.next_fire_at for o in outcomes if o.created or o.replaced]
            await self._db.notify(conn, DUE_CHANNEL, min((d for d in due if d is not None),
                                                      default=None))
            if all_or_nothing and any(o.conflict for o in outcomes) and created:
                for ids in chunks(sorted(created)):
                    await conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
                    await conn.execute(delete(job_dependencies)
                                       .where(job_dependencies.c.downstream_id.in_(ids)))
            return outcomes

        return await self._db.write(op, prelude=rows)

    async def _insert(self, conn: AsyncConnection, new: Sequence[Job]) -> set[str]:
        """The ids of the jobs of `new` written; the others' keys exist."""
        return await self._db.insert_new(conn, self._add, [job_values(job) for job in new])

    async def _outcomes(
        self, conn: AsyncConnection, new: Sequence[Job], created: set[str], lock: bool = False
    ) -> list[AddOutcome]:
        """What became of each job; with `lock`, the existing rows stay locked (PostgreSQL)
        until the commit, as they are about to be rewritten on what is read here."""
        others = [job for job in new if job.id not in created]
        existing: dict[tuple[str, str], Job] = {}
        for chunk in chunks(others):
            names = [(job.spec.namespace, job.spec.key) for job in chunk]
            query = select(jobs).where(tuple_(jobs.c.namespace, jobs.c.key).in_(names))
            rows = await conn.execute(self._db.for_update(query) if lock else query)
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
        self, conn: AsyncConnection, new: Sequence[Job], outcomes: list[AddOutcome],
        overwrite: bool,
    ) -> list[AddOutcome]:
        """Bring each cancelled job back with its new definition, and (with `overwrite`)
        overwrite each conflicting one: same id, same run history. `outcomes` were read in
        this transaction, so the decision is taken on the rows as they are now."""
        replaced: list[AddOutcome] = []
        for job, outcome in zip(new, outcomes, strict=True):
            fresh = bulk.rewrite_of(job, outcome, overwrite)
            if fresh is None:
                replaced.append(outcome)
                continue
            await _rewrite_job(conn, fresh)
            await conn.execute(delete(job_dependencies)
                               .where(job_dependencies.c.downstream_id == fresh.id))
            await _write_edges(conn, [fresh])
            replaced.append(AddOutcome(fresh, created=False, replaced=True))
        return replaced

    async def change_jobs(
        self, namespace: str, keys: Sequence[str], change: Callable[[Job], Job]
    ) -> list[Job]:
        """All or nothing: every failure is raised (ItemErrors) before anything is written."""

        async def op(conn: AsyncConnection) -> list[Job]:
            found = await bulk.read_for_change(conn, namespace, keys, not self._db.is_sqlite)
            changed = bulk.apply_change(namespace, keys, found, change)
            written = [job for job in changed if job is not found[job.spec.key]]
            for job in written:
                await _rewrite_job(conn, job)
            due = [job.next_fire_at for job in written if job.next_fire_at is not None]
            await self._db.notify(conn, DUE_CHANNEL, min(due, default=None))
            return changed

        return await self._db.write(op)

    async def get_job(self, namespace: str, key: str) -> Job | None:
        query = select(jobs).where(jobs.c.namespace == namespace, jobs.c.key == key)
        return await self._one_job(query)

    async def get_job_by_id(self, job_id: str) -> Job | None:
        return await self._one_job(select(jobs).where(jobs.c.id == job_id))

    async def _one_job(self, query: Select[Any]) -> Job | None:
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return job_from_row(row) if row is not None else None

    async def list_jobs(
        self, where: JobFilter, after: JobPosition | None, limit: int
    ) -> list[Job]:
        found: list[Job] = []
        async with self._db.read() as conn:
            for span in namespace_spans(where.namespace, where.claims):
                if after is not None and span.before(after):
                    continue
                query = self._listing.page(span, where, after, limit - len(found))
                rows = (await conn.execute(query)).mappings().all()
                found.extend(job_from_row(row) for row in rows)
                if len(found) >= limit:
                    break
        return found

    async def kind_page(
        self, namespace: str, kind: str, offset: int, limit: int
    ) -> tuple[list[Job], int]:
        page, count = self._listing.of_kind(namespace, kind, offset, limit)
        async with self._db.read() as conn:
            rows = (await conn.execute(page)).mappings().all()
            total = int((await conn.execute(count)).scalar_one())
        return [job_from_row(row) for row in rows], total

    async def listing_bound(
        self, where: JobFilter, after: JobPosition | None, scan: int
    ) -> JobPosition | None:
        left = scan
        async with self._db.read() as conn:
            for span in namespace_spans(where.namespace, where.claims):
                if after is not None and span.before(after):
                    continue
                counted = await conn.execute(self._listing.count(span, after, left))
                have = int(counted.scalar_one())
                if have == left:
                    row = (await conn.execute(self._listing.nth(span, after, left))).one()
                    return str(row[0]), str(row[1])
                left -= have
        return None

    async def change_job(
        self, namespace: str, key: str, change: Callable[[Job], Job], cancel_runs: bool = False
    ) -> Job:
        async def op(conn: AsyncConnection) -> Job:
            query = select(jobs).where(jobs.c.namespace == namespace, jobs.c.key == key)
            query = self._db.for_update(query)
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                raise NotFound(f"no job {key!r} in namespace {namespace!r}", "key")
            job = change(job_from_row(row))
            await _rewrite_job(conn, job)
            await self._db.notify(conn, DUE_CHANNEL, job.next_fire_at)
            if cancel_runs:
                await conn.execute(
                    update(runs)
                    .where(runs.c.job_id == job.id,
                           runs.c.state.in_([RunState.PENDING.value, RunState.WAITING.value]))
                    .values(state=RunState.CANCELLED.value, due_at=None,
                            finished_at=job.updated_at)
                )
            return job

        return await self._db.write(op)

    async def acquire_due_jobs(
        self, owner: str, now: Micros, horizon: Micros, limit: int, lease_until: Micros,
        share: tuple[int, int] | None = None, others_than: Collection[str] = (),
    ) -> list[Job]:
        async def op(conn: AsyncConnection) -> list[Job]:
            picked = (
                select(jobs.c.id)
                .where(
                    jobs.c.next_fire_at <= horizon,
                    (jobs.c.lease_until.is_(None)) | (jobs.c.lease_until < now),
                )
                .order_by(jobs.c.next_fire_at, jobs.c.priority.desc())
                .limit(limit)
            )
            if share is not None and not self._db.is_sqlite:
                index, nodes = share
                hashed = func.hashtext(jobs.c.id).op("&")(0x7FFFFFFF)
                picked = picked.where(hashed.op("%")(nodes) == index)
            if others_than:
                picked = picked.where(jobs.c.namespace.not_in(sorted(others_than)))
            due = self._db.skip_locked(picked)
            stmt = (
                update(jobs)
                .where(jobs.c.id.in_(due.scalar_subquery()))
                .values(lease_owner=owner, lease_until=lease_until)
                .returning(*jobs.c)
            )
            rows = (await conn.execute(stmt)).mappings().all()
            return [job_from_row(row) for row in rows]

        return await self._db.write(op, urgent=True)

    async def delete_job(
        self, namespace: str, key: str, now: Micros, delete_runs: bool = False
    ) -> Job:
        async def op(conn: AsyncConnection) -> Job:
            query = select(jobs).where(jobs.c.namespace == namespace, jobs.c.key == key)
            row = (await conn.execute(self._db.for_update(query))).mappings().first()
            if row is None:
                raise NotFound(f"no job {key!r} in namespace {namespace!r}", "key")
            job = job_from_row(row)
            await conn.execute(delete(worker_switches)
                               .where(worker_switches.c.job_id == job.id))
            if delete_runs:
                await _delete_history(conn, job.id)
            else:  # kept until retention, but none is delivered again
                await conn.execute(
                    update(runs)
                    .where(runs.c.job_id == job.id, or_(
                        runs.c.due_at.is_not(None), runs.c.state == RunState.WAITING.value))
                    .values(state=RunState.CANCELLED.value, due_at=None, lease_owner=None,
                            lease_until=None, finished_at=now)
                )
            await conn.execute(delete(job_dependencies)
                               .where(job_dependencies.c.downstream_id == job.id))
            await conn.execute(delete(jobs).where(jobs.c.id == job.id))
            return job

        return await self._db.write(op)


async def _delete_history(conn: AsyncConnection, job_id: str) -> None:
    """A job's runs with their attempts, tasks, output and alerts."""
    run_ids = select(runs.c.id).where(runs.c.job_id == job_id).scalar_subquery()
    task_ids = select(tasks.c.id).where(tasks.c.job_id == job_id).scalar_subquery()
    await conn.execute(delete(task_output).where(task_output.c.task_id.in_(task_ids)))
    await conn.execute(delete(tasks).where(tasks.c.job_id == job_id))
    await conn.execute(delete(attempts).where(attempts.c.run_id.in_(run_ids)))
    await conn.execute(delete(alerts).where(alerts.c.job_id == job_id))
    await conn.execute(delete(runs).where(runs.c.job_id == job_id))


async def _rewrite_job(conn: AsyncConnection, job: Job) -> None:
    """Store a job's new definition and state; its identity and creation time never change.
    Writing the row drops any lease, so a fire claimed before the change is not made."""
    values = job_values(job)
    for fixed in ("id", "namespace", "key", "created_at"):
        values.pop(fixed)
    await conn.execute(update(jobs).where(jobs.c.id == job.id).values(**values))


async def _write_edges(conn: AsyncConnection, new: Sequence[Job]) -> None:
    """The dependency edges of jobs just written, for the reverse lookup."""
    rows = [row for job in new for row in dependency_rows(job)]
    for chunk in chunks(rows):
        await conn.execute(insert(job_dependencies), list(chunk))
