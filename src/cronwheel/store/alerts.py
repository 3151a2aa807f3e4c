"""Consecutive-failure counts of jobs with an alert policy, and the alerts they raise, kept
until delivered.

An alert row is written in the transaction that records the failing run, so an alert is
never lost to a crash between the failure and the webhook call; `Alerter` sends them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.contracts import Alert
from cronwheel.domain.jobs import AlertPolicy
from cronwheel.domain.runs import RunState
from cronwheel.domain.time import Micros
from cronwheel.ids import new_id
from cronwheel.store.connection import Database
from cronwheel.store.tables import alerts, jobs

MAX_TRIES = 5
UNSENT = ("pending", "sending")  # a send whose node died is due again at its `created_at`
STREAK_ENDERS = (RunState.SUCCEEDED,)
FAILURES = (RunState.FAILED,)


def _alert(row: Any) -> Alert:
    return Alert(row["id"], row["job_id"], row["run_id"], row["failures"], row["webhook"],
                 row["created_at"], row["state"], row["tries"], row["sent_at"], row["error"])


async def count_outcomes(
    conn: AsyncConnection,
    finished: Sequence[tuple[str, str, RunState]], now: Micros,
) -> None:
    """Update each job's run of failures from runs that just ended: a success resets it,
    a failure extends it and raises an alert when the job's policy says so."""
    ok = sorted({job for job, _run, state in finished if state in STREAK_ENDERS})
    if ok:
        await conn.execute(update(jobs).where(jobs.c.id.in_(ok), jobs.c.failures > 0)
                           .values(failures=0))
    for job_id, run_id, state in finished:
        if state not in FAILURES:
            continue
        counted = await conn.execute(
            update(jobs).where(jobs.c.id == job_id).values(failures=jobs.c.failures + 1)
            .returning(jobs.c.failures, jobs.c.alert)
        )
        row = counted.first()
        if row is None or row.alert is None:
            continue
        policy = AlertPolicy(*orjson.loads(row.alert))
        if policy.due(row.failures):
            await conn.execute(alerts.insert().values(
                id=new_id(), job_id=job_id, run_id=run_id, failures=row.failures,
                webhook=policy.webhook, created_at=now, state="pending", tries=0))


class SqlAlertStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, now: Micros, retry_after: Micros, limit: int = 50) -> list[Alert]:
        """Alerts to send now, marked as being sent and due again at `retry_after` in case
        this send never reports (a failed send is retried then too, up to MAX_TRIES)."""

        async def op(conn: AsyncConnection) -> list[Alert]:
            query = self._db.skip_locked(
                select(alerts.c.id).where(alerts.c.state.in_(UNSENT),
                                          alerts.c.created_at <= now)
                .order_by(alerts.c.created_at).limit(limit)
            )
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return []
            taken = await conn.execute(
                update(alerts).where(alerts.c.id.in_(ids))
                .values(state="sending", tries=alerts.c.tries + 1,
                        created_at=retry_after)  # when it is due again if this send is lost
                .returning(*alerts.c)
            )
            claimed = [_alert(r) for r in taken.mappings()]
            found = await conn.execute(
                select(jobs.c.id, jobs.c.namespace, jobs.c.key)
                .where(jobs.c.id.in_([a.job_id for a in claimed]))
            )
            names = {r.id: (r.namespace, r.key) for r in found.all()}
            return [_with_names(a, names) for a in claimed]

        return await self._db.write(op)

    async def settle(self, alert: Alert, error: str | None, now: Micros) -> None:
        if error is None:
            values: dict[str, Any] = {"state": "sent", "sent_at": now, "error": None}
        elif alert.tries >= MAX_TRIES:
            values = {"state": "failed", "error": error[:2_000]}
        else:
            values = {"state": "pending", "error": error[:2_000]}

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(update(alerts).where(alerts.c.id == alert.id).values(**values))

        await self._db.write(op)

    async def of_job(self, job_id: str, limit: int = 100) -> list[Alert]:
        query = (select(alerts).where(alerts.c.job_id == job_id)
                 .order_by(alerts.c.id.desc()).limit(limit))
        async with self._db.read() as conn:
            return [_alert(r) for r in (await conn.execute(query)).mappings()]

    async def failures(self, job_id: str) -> int:
        async with self._db.read() as conn:
            found = await conn.execute(select(jobs.c.failures).where(jobs.c.id == job_id))
            return int(found.scalar_one_or_none() or 0)


def _with_names(alert: Alert, names: dict[str, tuple[str, str]]) -> Alert:
    namespace, key = names.get(alert.job_id, ("", ""))
    return replace(alert, namespace=namespace, key=key)
