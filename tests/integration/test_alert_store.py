"""Runs of failures and the alerts they raise, on every store the Alerter reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cronwheel.contracts import AttemptRecord
from cronwheel.domain import jobs as rules
from cronwheel.domain.jobs import AlertPolicy, Job, JobSpec
from cronwheel.domain.runs import Attempt, AttemptOutcome, RunState
from cronwheel.domain.schedules import OneShot
from cronwheel.domain.targets import HttpTarget
from cronwheel.domain.time import US_PER_S
from cronwheel.ids import new_id
from cronwheel.store.memory import MemoryStore
from cronwheel.store.sql import SqlStore
from tests.stores import STORES, open_store

T0 = 1_800_000_000 * US_PER_S
LEASE = 30 * US_PER_S
RETRY_AFTER = 30 * US_PER_S
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture(params=STORES)
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SqlStore | MemoryStore]:
    async with open_store(request.param, tmp_path) as backend:
        yield backend


async def watched_job(store: SqlStore | MemoryStore, after: int = 2) -> Job:
    spec = JobSpec("ns", "watched", OneShot(T0 + 3_600 * US_PER_S), HttpTarget(HOOK),
                   alert=AlertPolicy(after, HOOK))
    [added] = await store.add_jobs([rules.new_job(new_id(), spec, T0)], True)
    return added.job


async def run_once(store: SqlStore | MemoryStore, job: Job, now: int, ok: bool) -> str:
    """One manual run of the job, delivered and ended as a success or a failure."""
    await store.add_manual_run(job, new_id(), now, None, False)
    [(run, _job)] = await store.acquire_due_runs("a", now, 10, now + LEASE)
    outcome = AttemptOutcome.SUCCESS if ok else AttemptOutcome.FAILURE
    attempt = Attempt(run.id, 1, now, now + 1, outcome, "n", 200 if ok else 500)
    state = RunState.SUCCEEDED if ok else RunState.FAILED
    await store.record_attempts("a", [AttemptRecord(attempt, state, None, job.id, True)])
    return run.id


async def test_failures_in_a_row_raise_an_alert_and_a_success_ends_them(
    store: SqlStore | MemoryStore,
) -> None:
    job = await watched_job(store)
    await run_once(store, job, T0, ok=False)
    assert await store.alerts.failures(job.id) == 1
    assert await store.alerts.claim(T0 + 10, T0 + RETRY_AFTER) == []
    second = await run_once(store, job, T0 + 10, ok=False)
    [alert] = await store.alerts.claim(T0 + 20, T0 + RETRY_AFTER)
    assert (alert.run_id, alert.failures, alert.webhook) == (second, 2, HOOK)
    assert (alert.namespace, alert.key, alert.state, alert.tries) == ("ns", "watched",
                                                                     "sending", 1)
    await run_once(store, job, T0 + 30, ok=True)
    assert await store.alerts.failures(job.id) == 0


async def test_an_unsent_alert_comes_back_until_it_is_sent(store: SqlStore | MemoryStore) -> None:
    job = await watched_job(store, after=1)
    await run_once(store, job, T0, ok=False)
    [alert] = await store.alerts.claim(T0 + 10, T0 + RETRY_AFTER)
    assert await store.alerts.claim(T0 + 11, T0 + RETRY_AFTER) == []  # being sent
    await store.alerts.settle(alert, "webhook answered 502", T0 + 12)
    [again] = await store.alerts.claim(T0 + RETRY_AFTER, T0 + 2 * RETRY_AFTER)
    assert again.id == alert.id and again.tries == 2
    await store.alerts.settle(again, None, T0 + RETRY_AFTER + 1)
    assert await store.alerts.claim(T0 + 3 * RETRY_AFTER, T0 + 4 * RETRY_AFTER) == []
    [kept] = await store.alerts.of_job(job.id)
    assert kept.state == "sent" and kept.sent_at == T0 + RETRY_AFTER + 1 and kept.error is None
    await store.purge(T0 + 2 * RETRY_AFTER, 100)  # due again then had it not been sent: kept
    assert len(await store.alerts.of_job(job.id)) == 1
    await store.purge(T0 + 2 * RETRY_AFTER + 1, 100)
    assert await store.alerts.of_job(job.id) == []
