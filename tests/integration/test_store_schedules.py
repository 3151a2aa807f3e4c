"""The store contract for several time expressions per job and for backfills, on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cronwheel.contracts import AttemptRecord, Fire, Rerun, Store
from cronwheel.domain import jobs as rules
from cronwheel.domain.job_schedules import add_schedule, remove_schedule, schedules_of
from cronwheel.domain.jobs import Job, JobSpec
from cronwheel.domain.misfire import plan
from cronwheel.domain.runs import Attempt, AttemptOutcome, RunKind, RunState
from cronwheel.domain.schedules import schedule_from_dict
from cronwheel.domain.targets import HttpTarget
from cronwheel.domain.time import US_PER_S
from cronwheel.ids import new_id
from tests.stores import STORES, open_store

T0 = 1_800_000_000 * US_PER_S - (1_800_000_000 * US_PER_S) % (3_600 * US_PER_S)  # on the hour
H = 3_600 * US_PER_S
LEASE = 30 * US_PER_S
TARGET = HttpTarget("http://127.0.0.1:9/callback")


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(request.param, tmp_path) as backend:
        yield backend


def hourly(key: str) -> Job:
    schedule = schedule_from_dict({"kind": "cron", "expr": "0 * * * *"}, T0)
    return rules.new_job(new_id(), JobSpec("ns", key, schedule, TARGET), T0)


async def test_schedules_are_edited_in_place_and_the_next_fire_moves(store: Store) -> None:
    [added] = await store.add_jobs([hourly("multi")], True)
    assert added.job.next_fire_at == T0 + H
    now = T0 + 60 * US_PER_S
    data = {"id": "soon", "kind": "once", "after": 120}
    edited = await store.change_job("ns", "multi", lambda job: add_schedule(job, data, now))
    assert edited.next_fire_at == now + 120 * US_PER_S
    stored = await store.get_job("ns", "multi")
    assert stored is not None and stored.id == added.job.id
    assert schedules_of(stored).ids() == ["1", "soon"]
    assert stored.spec.schedule == edited.spec.schedule
    assert stored.next_fire_at == now + 120 * US_PER_S
    # the engine claims the job at its new instant
    [claimed] = await store.acquire_due_jobs("a", now, now + 120 * US_PER_S, 10, now + LEASE)
    assert claimed.id == added.job.id
    removed = await store.change_job("ns", "multi", lambda job: remove_schedule(job, "soon", now))
    assert removed.next_fire_at == T0 + H
    again = await store.get_job("ns", "multi")
    assert again is not None and schedules_of(again).ids() == ["1"]


async def test_a_backfill_creates_reruns_and_leaves_runs_in_flight(store: Store) -> None:
    [added] = await store.add_jobs([hourly("bf")], True)
    job = added.job
    # the occurrence at T0+1h is fired and succeeds; the one at T0+2h is fired, still running
    fired = []
    for at in (T0 + H, T0 + 2 * H):
        [held] = await store.acquire_due_jobs("a", at, at, 10, at + LEASE)
        assert held.next_fire_at is not None
        decision = plan(held.spec.schedule, held.next_fire_at, at, held.spec.misfire,
                        held.spec.misfire_grace_us)
        [run] = (await store.record_fires("a", at, [Fire(held, decision, new_id(), True)],
                                          at + 10 * H)).started  # a long delivery
        fired.append(run)
    done = fired[0]
    await store.record_attempts("a", [AttemptRecord(
        Attempt(done.id, 1, T0 + H, T0 + H + 1, AttemptOutcome.SUCCESS, "node"),
        RunState.SUCCEEDED, None, job.id)])
    now = T0 + 3 * H + 5
    wanted = [Rerun(job, T0 + k * H, new_id()) for k in (0, 1, 2)]
    outcome = await store.rerun_occurrences(wanted, now)
    assert [r.scheduled_at for r in outcome.created] == [T0]
    assert [r.id for r in outcome.rerun] == [done.id]
    assert [r.id for r in outcome.in_flight] == [fired[1].id]
    new = outcome.created[0]
    assert (new.kind, new.state, new.due_at) == (RunKind.SCHEDULED, RunState.PENDING, now)
    # one run per occurrence, always
    runs = await store.list_runs(job.id, None, 10)
    assert sorted(r.scheduled_at for r in runs) == [T0, T0 + H, T0 + 2 * H]
    # a second backfill over the same range duplicates nothing
    repeat = await store.rerun_occurrences([Rerun(job, T0, new_id())], now)
    assert repeat.created == [] and [r.id for r in repeat.in_flight] == [new.id]
    # the engine claims both due runs; the rerun's attempt comes after the one it had
    claimed = await store.acquire_due_runs("b", now, 10, now + LEASE)
    by_id = {run.id: run for run, _job in claimed}
    assert set(by_id) == {new.id, done.id}
    assert by_id[done.id].attempts == 2 and by_id[new.id].attempts == 1
    found = await store.get_run(done.id)
    assert found is not None and [a.number for a in found[1]] == [1]


async def test_a_backfilled_occurrence_is_not_fired_twice(store: Store) -> None:
    [added] = await store.add_jobs([hourly("twice")], True)
    at = T0 + H
    outcome = await store.rerun_occurrences([Rerun(added.job, at, new_id())], at)
    assert len(outcome.created) == 1
    [held] = await store.acquire_due_jobs("a", at, at, 10, at + LEASE)
    assert held.next_fire_at is not None
    decision = plan(held.spec.schedule, held.next_fire_at, at, held.spec.misfire,
                    held.spec.misfire_grace_us)
    recorded = await store.record_fires("a", at, [Fire(held, decision, new_id(), True)],
                                        at + LEASE)
    assert recorded.started == []
    assert len(await store.list_runs(added.job.id, None, 10)) == 1
    after = await store.get_job("ns", "twice")
    assert after is not None and after.next_fire_at == T0 + 2 * H
