"""SQL for runs on Kubernetes. Shares the SqlStore's engines and write queue.

A run handed to a cluster is leased to KUBE_OWNER with `due_at = HANDED_OFF`: no node's
rescue re-delivers it. Its row in `kube_runs` holds the Job's manifest and who follows it;
a follower's lease lapses when its node dies and another node's follower claims the row,
creates the Job if it was never made (AlreadyExists is adopted) and goes on following.

Each pod is a task of the run's attempt (worker "kubernetes:<cluster>", the pod's name as
worker name), so pod logs land in `task_output` and are read like a worker's output.
"""

from __future__ import annotations

import random
import uuid
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
    and_,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.contracts import KUBE_ACTIVE, KUBE_CREATING, KUBE_ENDED, KubeRun, PodRecord
from cronwheel.domain.jobs import RetryPolicy
from cronwheel.domain.kubernetes import KUBE_OWNER
from cronwheel.domain.retry import after_attempt
from cronwheel.domain.runs import Attempt, AttemptOutcome, RunState
from cronwheel.domain.tasks import HANDED_OFF, TaskState
from cronwheel.domain.time import Micros
from cronwheel.store.alerts import count_outcomes
from cronwheel.store.batches import chunks
from cronwheel.store.connection import Database
from cronwheel.store.rows import attempt_values, retry_from_text
from cronwheel.store.tables import attempts, jobs, metadata, runs, task_output, tasks

kube_runs = Table(
    "kube_runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("job_id", String(36), nullable=False),
    Column("cluster", String(63), nullable=False),
    Column("namespace", String(63), nullable=False),
    Column("job_name", String(63), nullable=False),
    Column("manifest", Text, nullable=False),
    Column("logs", String(8), nullable=False),  # failure | always
    Column("phase", String(16), nullable=False),  # creating | active | ended
    Column("follower", String(64), nullable=True),
    Column("follow_until", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    Column("outcome", String(16), nullable=True),  # the run's end: succeeded | failed | killed
    Column("reason", Text, nullable=True),
    Column("callback_url", Text, nullable=True),
    Column("callback_state", String(8), nullable=False),  # none | pending | sent | failed
    Column("callback_tries", Integer, nullable=False),
    Column("callback_due", BigInteger, nullable=True),
)
Index("ix_kube_runs_follow", kube_runs.c.phase, kube_runs.c.follow_until)
Index("ix_kube_runs_follower", kube_runs.c.follower, kube_runs.c.phase)
Index("ix_kube_runs_job", kube_runs.c.job_id, kube_runs.c.outcome, kube_runs.c.ended_at)

CREATING, ACTIVE, ENDED = KUBE_CREATING, KUBE_ACTIVE, KUBE_ENDED
LOG_CHUNK = 65_536  # bytes per task_output row
ERROR_LIMIT = 2_000


def _kube_run(row: Any) -> KubeRun:
    return KubeRun(row["run_id"], row["attempt"], row["job_id"], row["cluster"],
                   row["namespace"], row["job_name"], orjson.loads(row["manifest"]),
                   row["logs"], row["phase"], row["created_at"], row["outcome"],
                   row["reason"], row["callback_url"], row["callback_state"],
                   row["callback_tries"])


def pod_task_id(run_id: str, attempt: int, pod: str) -> str:
    """The same task for a pod whichever node records it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cronwheel:{run_id}:{attempt}:{pod}"))


class KubeStore:
    """The KubeRunStore over the SQL store's database (its engines and write queue)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def hand_off(
        self, owner: str, run: KubeRun, now: Micros, follow_until: Micros
    ) -> bool:
        """Move a run this owner is delivering to the cluster's followers, with the Job to
        create. False when the run was cancelled or taken meanwhile (nothing is written)."""

        async def op(conn: AsyncConnection) -> bool:
            moved = await conn.execute(
                update(runs).where(
                    runs.c.id == run.run_id, runs.c.attempts == run.attempt,
                    runs.c.lease_owner == owner, runs.c.state == RunState.RUNNING.value,
                ).values(lease_owner=KUBE_OWNER, lease_until=HANDED_OFF, due_at=HANDED_OFF)
            )
            if moved.rowcount == 0:
                return False
            values = {
                "attempt": run.attempt, "job_id": run.job_id, "cluster": run.cluster,
                "namespace": run.namespace, "job_name": run.job_name,
                "manifest": orjson.dumps(run.manifest).decode(), "logs": run.logs,
                "phase": CREATING, "follower": owner, "follow_until": follow_until,
                "created_at": now, "ended_at": None, "outcome": None, "reason": None,
                "callback_url": run.callback_url, "callback_state": "none",
                "callback_tries": 0, "callback_due": None,
            }
            stmt = self._db.insert(kube_runs).values(run_id=run.run_id, **values)
            await conn.execute(stmt.on_conflict_do_update(
                index_elements=[kube_runs.c.run_id], set_=values))
            return True

        return await self._db.write(op, urgent=True)

    async def claim(
        self, owner: str, now: Micros, follow_until: Micros, limit: int = 500
    ) -> list[KubeRun]:
        """The runs this owner follows, all renewed: its own, and up to `limit` whose
        follower went quiet (a dead node's). Ended runs still owing a callback too."""
        owing = or_(kube_runs.c.phase != ENDED, kube_runs.c.callback_state == "pending")

        async def op(conn: AsyncConnection) -> list[KubeRun]:
            await conn.execute(update(kube_runs).where(kube_runs.c.follower == owner, owing)
                               .values(follow_until=follow_until))
            lapsed = self._db.skip_locked(
                select(kube_runs.c.run_id).where(
                    owing, kube_runs.c.follow_until < now,
                    kube_runs.c.follower.is_distinct_from(owner))
                .order_by(kube_runs.c.created_at).limit(limit))
            ids = list((await conn.execute(lapsed)).scalars())
            if ids:
                await conn.execute(update(kube_runs).where(
                    kube_runs.c.run_id.in_(ids), owing, kube_runs.c.follow_until < now)
                    .values(follower=owner, follow_until=follow_until))
            held = await conn.execute(select(kube_runs).where(
                kube_runs.c.follower == owner, owing).order_by(kube_runs.c.created_at))
            return [_kube_run(r) for r in held.mappings()]

        return await self._db.write(op, urgent=True)

    async def created(self, run_id: str) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(update(kube_runs).where(
                kube_runs.c.run_id == run_id, kube_runs.c.phase == CREATING).values(phase=ACTIVE))

        await self._db.write(op)

    async def run_states(self, run_ids: Sequence[str]) -> dict[str, RunState]:
        """The runs' states: a killed or cancelled run's Job is deleted by its follower."""
        if not run_ids:
            return {}
        states: dict[str, RunState] = {}
        async with self._db.read() as conn:
            for chunk in chunks(list(run_ids)):
                found = await conn.execute(
                    select(runs.c.id, runs.c.state).where(runs.c.id.in_(chunk)))
                states.update((row.id, RunState(row.state)) for row in found)
        return states

    async def get(self, run_id: str) -> KubeRun | None:
        async with self._db.read() as conn:
            row = (await conn.execute(
                select(kube_runs).where(kube_runs.c.run_id == run_id))).mappings().first()
        return None if row is None else _kube_run(row)

    async def record_pods(
        self, run: KubeRun, pods: Sequence[PodRecord], now: Micros
    ) -> dict[str, str]:
        """Make or update each pod's task; returns pod name -> task id."""
        ids = {p.name: pod_task_id(run.run_id, run.attempt, p.name) for p in pods}

        async def op(conn: AsyncConnection) -> None:
            for pod in pods:
                ended = pod.state not in (TaskState.ASSIGNED, TaskState.RUNNING)
                values = {"state": pod.state.value, "exit_code": pod.exit_code,
                          "error": None if pod.error is None else pod.error[:ERROR_LIMIT],
                          "host": pod.node or run.cluster}
                stmt = self._db.insert(tasks).values(
                    id=ids[pod.name], run_id=run.run_id, attempt=run.attempt,
                    job_id=run.job_id, worker_id=f"kubernetes:{run.cluster}",
                    worker_name=pod.name, created_at=now, started_at=now,
                    finished_at=now if ended else None, lease_until=HANDED_OFF,
                    kill_requested=False, log_size=0, result_size=0, **values)
                # a pod's end is kept once recorded: a later stale read does not undo it
                still = tasks.c.finished_at.is_(None)
                update_values = values | {"finished_at": now if ended else None}
                await conn.execute(stmt.on_conflict_do_update(
                    index_elements=[tasks.c.id], set_=update_values, where=still))

        if pods:
            await self._db.write(op)
        return ids

    async def append_log(self, task_id: str, offset: int, data: bytes) -> int:
        """Store the part of a pod's log from `offset` that is not stored yet, in chunks;
        returns the stored size. Collecting the whole log after streaming part of it, or
        two nodes collecting the same pod, keeps one copy."""

        async def op(conn: AsyncConnection) -> int:
            size = (await conn.execute(
                select(tasks.c.log_size).where(tasks.c.id == task_id))).scalar_one_or_none()
            if size is None or offset > size:
                return 0 if size is None else int(size)
            tail = data[size - offset:]
            at = int(size)
            for start in range(0, len(tail), LOG_CHUNK):
                piece = tail[start:start + LOG_CHUNK]
                await conn.execute(task_output.insert().values(
                    task_id=task_id, stream="log", offset=at, data=piece))
                at += len(piece)
            if at != size:
                await conn.execute(update(tasks).where(tasks.c.id == task_id)
                                   .values(log_size=at))
            return at

        return await self._db.write(op)

    async def settle(
        self, owner: str, run: KubeRun, state: RunState, reason: str | None, now: Micros
    ) -> bool:
        """End the run (succeeded, failed or killed) with one attempt, its pods' tasks and
        the callback owed; one transaction. False when this owner no longer follows it."""

        async def op(conn: AsyncConnection) -> bool:
            mine = await conn.execute(update(kube_runs).where(
                kube_runs.c.run_id == run.run_id, kube_runs.c.follower == owner,
                kube_runs.c.phase != ENDED,
            ).values(phase=ENDED, ended_at=now, outcome=state.value,
                     reason=None if reason is None else reason[:ERROR_LIMIT],
                     callback_state="pending" if run.callback_url else "none",
                     callback_due=now if run.callback_url else None))
            if mine.rowcount == 0:
                return False
            await conn.execute(update(tasks).where(
                tasks.c.run_id == run.run_id, tasks.c.finished_at.is_(None)).values(
                state=TaskState.KILLED.value if state is RunState.KILLED
                else TaskState.LOST.value, finished_at=now))
            await self._end_run(conn, run, state, reason, now)
            return True

        return await self._db.write(op, urgent=True)

    async def _end_run(
        self, conn: AsyncConnection, run: KubeRun, state: RunState, reason: str | None,
        now: Micros,
    ) -> None:
        held = (await conn.execute(
            select(runs.c.job_id, jobs.c.failures, jobs.c.alert)
            .select_from(runs.join(jobs, jobs.c.id == runs.c.job_id))
            .where(runs.c.id == run.run_id, runs.c.attempts == run.attempt,
                   runs.c.lease_owner == KUBE_OWNER, runs.c.state == RunState.RUNNING.value)
        )).first()
        if held is None:
            return  # killed or cancelled meanwhile: the run already says so
        outcome = {RunState.SUCCEEDED: AttemptOutcome.SUCCESS,
                   RunState.KILLED: AttemptOutcome.KILLED}.get(state, AttemptOutcome.FAILURE)
        error = None if reason is None else reason[:ERROR_LIMIT]
        await conn.execute(self._db.insert(attempts).on_conflict_do_nothing(), [
            attempt_values(Attempt(run.run_id, run.attempt, run.created_at, now, outcome,
                                   f"kubernetes:{run.cluster}", None, None, error))])
        await conn.execute(update(runs).where(runs.c.id == run.run_id).values(
            state=state.value, due_at=None, finished_at=now, last_error=error,
            lease_owner=None, lease_until=None))
        if held.alert is not None and (state is RunState.FAILED or (
                state is RunState.SUCCEEDED and held.failures)):
            await count_outcomes(conn, [(held.job_id, run.run_id, state)], now)

    async def ended_jobs(
        self, job_id: str, outcome: RunState, skip: int
    ) -> list[tuple[str, str]]:
        """(namespace, Job name) of the job's runs that ended so, newest first, past the
        first `skip`: the Jobs a history limit removes."""
        query = (select(kube_runs.c.namespace, kube_runs.c.job_name)
                 .where(kube_runs.c.job_id == job_id, kube_runs.c.phase == ENDED,
                        kube_runs.c.outcome == outcome.value)
                 .order_by(kube_runs.c.ended_at.desc(), kube_runs.c.run_id.desc())
                 .offset(skip).limit(1_000))
        async with self._db.read() as conn:
            return [(r.namespace, r.job_name) for r in await conn.execute(query)]

    async def purge(self, ended_before: Micros, limit: int = 1_000) -> int:
        """Forget up to `limit` runs that ended (callback settled) before the instant, as
        runs themselves are forgotten after the retention period."""

        async def op(conn: AsyncConnection) -> int:
            found = await conn.execute(select(kube_runs.c.run_id).where(
                kube_runs.c.phase == ENDED, kube_runs.c.callback_state != "pending",
                kube_runs.c.ended_at < ended_before).limit(limit))
            ids = list(found.scalars())
            if ids:
                await conn.execute(delete(kube_runs).where(kube_runs.c.run_id.in_(ids)))
            return len(ids)

        return await self._db.write(op)

    # -- callbacks ----------------------------------------------------------------------

    async def callback_policy(self, run: KubeRun) -> RetryPolicy | None:
        async with self._db.read() as conn:
            text = (await conn.execute(select(jobs.c.retry).where(
                jobs.c.id == run.job_id))).scalar_one_or_none()
        return retry_from_text(text) if text is not None else None

    async def due_callbacks(self, owner: str, now: Micros) -> list[KubeRun]:
        query = select(kube_runs).where(
            kube_runs.c.follower == owner, kube_runs.c.callback_state == "pending",
            kube_runs.c.callback_due <= now).order_by(kube_runs.c.callback_due).limit(100)
        async with self._db.read() as conn:
            return [_kube_run(r) for r in (await conn.execute(query)).mappings()]

    async def callback_sent(
        self, run: KubeRun, ok: bool, retryable: bool, now: Micros
    ) -> str:
        """Record one try of a run's callback; the next is due per the job's retry policy.
        Returns the callback's state after it."""
        tries = run.callback_tries + 1
        policy = await self.callback_policy(run)
        state, due = "sent", None
        if not ok:
            outcome = AttemptOutcome.FAILURE
            next_state, due = (RunState.FAILED, None) if policy is None else after_attempt(
                policy, tries, outcome, retryable, now, random.random())
            state = "pending" if next_state is RunState.PENDING else "failed"

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(update(kube_runs).where(and_(
                kube_runs.c.run_id == run.run_id, kube_runs.c.callback_state == "pending"))
                .values(callback_state=state, callback_tries=tries, callback_due=due))

        await self._db.write(op)
        return state

