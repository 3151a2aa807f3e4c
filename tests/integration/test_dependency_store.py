"""The store's dependency promises, one suite over memory, SQLite and PostgreSQL: waiting
runs are never claimed, leave `waiting` once (released or expired), and the reverse lookup
and window histories answer from what was written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from cronwheel.contracts import Fire, Store
from cronwheel.domain import jobs as rules
from cronwheel.domain.dependencies import Dependency, Strategy
from cronwheel.domain.jobs import Job, JobSpec, JobState
from cronwheel.domain.misfire import plan
from cronwheel.domain.runs import RunKind, RunState
from cronwheel.domain.schedules import AfterUpstream, OneShot
from cronwheel.domain.targets import HttpTarget
from cronwheel.domain.time import US_PER_S
from cronwheel.domain.windows import Window
from cronwheel.ids import new_id
from tests.stores import STORES, open_store

T0 = 1_800_000_000 * US_PER_S
HOUR = 3_600 * US_PER_S
LEASE = 30 * US_PER_S
TARGET = HttpTarget("http://127.0.0.1:9/callback")
ON_A = (Dependency("ns", "a", Strategy.ALL, Window("d")),)


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(request.param, tmp_path) as backend:
        yield backend


def make_job(key: str, at: int = T0, depends_on: tuple[Dependency, ...] = (),
             expiry_us: int = rules.DEFAULT_EXPIRY_US) -> Job:
    spec = JobSpec("ns", key, OneShot(at), TARGET, depends_on=depends_on, expiry_us=expiry_us)
    return rules.new_job(new_id(), spec, T0 - US_PER_S)


async def fire(store: Store, *wanted: Job, now: int = T0) -> list[str]:
    """Fire the jobs' occurrences; the ids of the runs left waiting, in the jobs' order."""
    claimed = await store.acquire_due_jobs("a", now, now + HOUR, 10, now + LEASE)
    assert sorted(j.id for j in claimed) == sorted(j.id for j in wanted)
    fires = []
    for job in claimed:
        assert job.next_fire_at is not None
        decision = plan(job.spec.schedule, job.next_fire_at, now, job.spec.misfire,
                        job.spec.misfire_grace_us)
        fires.append(Fire(job, decision, new_id(), True))
    recorded = await store.record_fires("a", now, fires, now + LEASE)
    assert recorded.started == []  # never handed to the dispatcher while waiting
    by_job = {run.job_id: run.id for run in recorded.waiting}
    return [by_job[job.id] for job in wanted]


async def test_a_run_with_dependencies_is_created_waiting_and_never_claimed(
    store: Store,
) -> None:
    job = make_job("b", depends_on=ON_A)
    await store.add_jobs([job], True)
    [run_id] = await fire(store, job)
    assert await store.acquire_due_runs("a", T0 + 10 * HOUR, 10, T0 + 11 * HOUR) == []
    [waiting] = await store.waiting_runs(None, 10)
    assert (waiting.id, waiting.state, waiting.due_at) == (run_id, RunState.WAITING, None)
    assert await store.waiting_runs(["other"], 10) == []
    assert [r.id for r in await store.waiting_runs([job.id], 10)] == [run_id]


async def test_the_reverse_lookup_follows_the_definition(store: Store) -> None:
    b, c = make_job("b", depends_on=ON_A), make_job("c", depends_on=ON_A)
    await store.add_jobs([make_job("a"), c, b], True)
    assert [j.spec.key for j in await store.dependents_of("ns", "a")] == ["b", "c"]
    assert await store.dependents_of("ns", "b") == []
    changed = replace(make_job("c"), id=new_id())
    [outcome] = await store.add_jobs([changed], True, replace=True)
    assert outcome.replaced
    assert [j.spec.key for j in await store.dependents_of("ns", "a")] == ["b"]
    [found] = await store.dependents_of("ns", "a")
    assert found.spec.depends_on == ON_A  # the definition round-trips


async def test_upstream_ids_are_the_existing_jobs_something_waits_for(store: Store) -> None:
    """What lets the resolver pass over the ends of every other run without a query."""
    assert await store.upstream_ids() == set()
    a, b, lone = make_job("a"), make_job("b", depends_on=ON_A), make_job("lone")
    await store.add_jobs([b], True)
    assert await store.upstream_ids() == set()  # "a" is named but does not exist yet
    await store.add_jobs([a, lone], True)
    assert await store.upstream_ids() == {a.id}
    [outcome] = await store.add_jobs([replace(make_job("b"), id=new_id())], True, replace=True)
    assert outcome.replaced
    assert await store.upstream_ids() == set()  # b no longer waits for a


async def test_a_waiting_run_is_released_once_and_due_not_before_its_time(store: Store) -> None:
    job = make_job("b", depends_on=ON_A)
    await store.add_jobs([job], True)
    [run_id] = await fire(store, job, now=T0 - 50)  # fired a moment early (the fire lead)
    [released] = await store.release_waiting([run_id], T0 - 40)
    assert released.state is RunState.PENDING and released.due_at == T0
    assert await store.release_waiting([run_id], T0) == []
    assert await store.acquire_due_runs("a", T0 - 1, 10, T0 + LEASE) == []
    [(claimed, _job)] = await store.acquire_due_runs("a", T0, 10, T0 + LEASE)
    assert claimed.id == run_id and claimed.attempts == 1


async def test_two_releases_at_once_move_a_run_once(store: Store) -> None:
    job = make_job("b", depends_on=ON_A)
    await store.add_jobs([job], True)
    [run_id] = await fire(store, job)
    results = await asyncio.gather(*(store.release_waiting([run_id], T0) for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]


async def test_a_run_still_waiting_past_its_expiry_ends_expired(store: Store) -> None:
    quick = make_job("b", depends_on=ON_A, expiry_us=HOUR)
    slow = make_job("c", depends_on=ON_A)  # the default: 24 h
    await store.add_jobs([quick, slow], True)
    quick_run, slow_run = await fire(store, quick, slow)
    assert await store.expire_waiting(T0 + HOUR - 1, 100) == []
    [expired] = await store.expire_waiting(T0 + HOUR, 100)
    assert (expired.id, expired.state, expired.finished_at) == (
        quick_run, RunState.EXPIRED, T0 + HOUR)
    assert await store.release_waiting([quick_run], T0 + HOUR) == []
    [still] = await store.waiting_runs(None, 10)
    assert still.id == slow_run
    assert [r.id for r in await store.expire_waiting(T0 + 24 * HOUR, 100)] == [slow_run]
    found = await store.get_run(quick_run)
    assert found is not None and found[0].state is RunState.EXPIRED


async def test_the_history_of_a_window_holds_scheduled_runs_in_order(store: Store) -> None:
    up = make_job("a")
    down = rules.new_job(new_id(), JobSpec("ns", "d", AfterUpstream(), TARGET,
                                           depends_on=ON_A), T0)
    await store.add_jobs([up, down], True)
    made = [await store.add_waiting_run(up, new_id(), T0 + h * HOUR, T0) for h in (2, 0, 1, 5)]
    assert all(run is not None for run in made)
    assert await store.add_waiting_run(up, new_id(), T0, T0) is None  # one run per occurrence
    await store.add_manual_run(up, new_id(), T0 + HOUR, None, False)
    history = await store.upstream_history(up.id, T0, T0 + 3 * HOUR)
    assert [(r.scheduled_at, r.kind) for r in history] == [
        (T0 + h * HOUR, RunKind.SCHEDULED) for h in (0, 1, 2)]


async def test_cancelling_a_job_cancels_its_waiting_runs(store: Store) -> None:
    job = make_job("b", depends_on=ON_A)
    await store.add_jobs([job], True)
    [run_id] = await fire(store, job)
    # a one-shot is completed once fired; a cancel with its runs is what matters here
    await store.change_job("ns", "b", lambda j: replace(j, state=JobState.CANCELLED,
                                                        updated_at=T0 + 1), cancel_runs=True)
    found = await store.get_run(run_id)
    assert found is not None and found[0].state is RunState.CANCELLED
    assert await store.release_waiting([run_id], T0 + 2) == []


async def test_followers_are_the_active_jobs_run_by_their_upstreams_alone(store: Store) -> None:
    def follower(key: str) -> Job:
        spec = JobSpec("ns", key, AfterUpstream(), TARGET, depends_on=ON_A)
        return rules.new_job(new_id(), spec, T0)

    first, second, third = follower("f1"), follower("f2"), follower("f3")
    await store.add_jobs([make_job("a"), make_job("b", depends_on=ON_A), first, second, third],
                         True)
    await store.change_job("ns", "f2", lambda j: rules.pause(j, T0 + 1))
    page = await store.followers(None, 1)
    assert [j.spec.key for j in page] == ["f1"]
    rest = await store.followers(page[-1].id, 10)
    assert [j.spec.key for j in rest] == ["f3"]  # a paused follower is left alone
