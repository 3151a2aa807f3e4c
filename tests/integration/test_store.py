"""The store contract, one suite run against every backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event

from cronwheel.contracts import (
    AttemptRecord,
    Fire,
    FiresRecorded,
    JobFilter,
    NodeInfo,
    RunFilter,
    Store,
)
from cronwheel.domain import jobs as rules
from cronwheel.domain.errors import IllegalTransition, ItemErrors, NotFound
from cronwheel.domain.intervals import SimpleTrigger
from cronwheel.domain.jobs import Job, JobSpec, JobState
from cronwheel.domain.misfire import FirePlan, plan
from cronwheel.domain.runs import Attempt, AttemptOutcome, Run, RunKind, RunState
from cronwheel.domain.schedules import OneShot
from cronwheel.domain.targets import HttpTarget
from cronwheel.domain.time import US_PER_S
from cronwheel.ids import new_id
from cronwheel.store.sql import SqlStore
from tests.stores import STORES, open_store

T0 = 1_800_000_000 * US_PER_S
LEASE = 30 * US_PER_S
TARGET = HttpTarget("http://127.0.0.1:9/callback")


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(request.param, tmp_path) as backend:
        yield backend


def make_job(key: str, at: int = T0, payload: object = None, countdown: bool = False) -> Job:
    spec = JobSpec("ns", key, OneShot(at, countdown), TARGET, payload)
    return rules.new_job(new_id(), spec, T0 - US_PER_S)


def fire_of(job: Job, now: int, deliver_now: bool = True) -> Fire:
    assert job.next_fire_at is not None
    decision = plan(job.spec.schedule, job.next_fire_at, now, job.spec.misfire,
                    job.spec.misfire_grace_us)
    return Fire(job, decision, new_id(), deliver_now)


async def test_add_is_idempotent_for_equal_jobs_and_conflicts_otherwise(store: Store) -> None:
    [first] = await store.add_jobs([make_job("a", payload=1)], all_or_nothing=True)
    assert first.created and not first.conflict
    [again] = await store.add_jobs([make_job("a", payload=1)], all_or_nothing=True)
    assert not again.created and not again.conflict and again.job.id == first.job.id
    [other] = await store.add_jobs([make_job("a", payload=2)], all_or_nothing=True)
    assert other.conflict and other.job.spec.payload == 1


async def test_all_or_nothing_batch_writes_nothing_on_one_conflict(store: Store) -> None:
    await store.add_jobs([make_job("taken", payload=1)], all_or_nothing=True)
    batch = [make_job("fresh-1"), make_job("taken", payload=2), make_job("fresh-2")]
    outcomes = await store.add_jobs(batch, all_or_nothing=True)
    assert [o.conflict for o in outcomes] == [False, True, False]
    assert await store.get_job("ns", "fresh-1") is None
    assert await store.get_job("ns", "fresh-2") is None


async def test_a_partial_batch_creates_the_new_keys_and_returns_the_existing_jobs(
    store: Store,
) -> None:
    """Some keys taken, some new, in one call: each outcome says which (SQLite reads back
    the ids it wrote only when some row was skipped)."""
    [taken] = await store.add_jobs([make_job("taken", payload=1)], all_or_nothing=True)
    batch = [make_job("new-1"), make_job("taken", payload=1), make_job("new-2")]
    outcomes = await store.add_jobs(batch, all_or_nothing=False)
    assert [o.created for o in outcomes] == [True, False, True]
    assert outcomes[1].job.id == taken.job.id and not outcomes[1].conflict
    assert [o.job.id for o in outcomes[::2]] == [batch[0].id, batch[2].id]
    for key in ("new-1", "new-2"):
        assert await store.get_job("ns", key) is not None


async def test_concurrent_submits_each_get_their_own_outcome(store: Store) -> None:
    """Submits queued together (which SQL stores insert in one statement): a new key is
    created, a key two of them race for is created once and the other sees it as existing
    (equal) or conflicting (different), and an all-or-nothing call with a conflict writes
    nothing of its own."""
    await store.add_jobs([make_job("old", payload=1)], all_or_nothing=True)
    calls = [
        ([make_job("a1")], True),
        ([make_job("race", payload=1)], True),
        ([make_job("race", payload=1)], True),
        ([make_job("race", payload=2)], True),
        ([make_job("b1"), make_job("old", payload=2), make_job("b2")], True),
        ([make_job("c1"), make_job("old", payload=1)], False),
        # the key of a batch that conflicts (so writes nothing): this one creates it
        ([make_job("b2")], True),
    ]
    results = await asyncio.gather(*(store.add_jobs(new, flag) for new, flag in calls))
    a1, race1, race2, race3, clash, partial, after_clash = results
    assert after_clash[0].created and not after_clash[0].conflict
    assert a1[0].created
    assert [r[0].created for r in (race1, race2, race3)] == [True, False, False]
    assert not race2[0].conflict and race2[0].job.id == race1[0].job.id
    assert race3[0].conflict and race3[0].job.spec.payload == 1
    assert [o.conflict for o in clash] == [False, True, False]
    assert [o.created for o in partial] == [True, False]
    for key, there in (("a1", True), ("b1", False), ("b2", True), ("c1", True)):
        assert (await store.get_job("ns", key) is not None) is there, key


async def test_concurrent_single_submits_share_one_insert(tmp_path: Path) -> None:
    """SQLite: twenty single submits queued together go in as one INSERT of their rows."""
    async with open_store("sqlite", tmp_path) as opened:
        assert isinstance(opened, SqlStore)
        statements: list[str] = []

        def seen(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
            if sql.startswith("INSERT INTO jobs"):
                statements.append(sql)

        engine = opened._db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", seen)
        try:
            outcomes = await asyncio.gather(
                *(opened.add_jobs([make_job(f"s{i}")], True) for i in range(20)))
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert all(o.created for [o] in outcomes)
        assert len(statements) == 1


async def test_claim_leases_each_due_job_to_one_owner(store: Store) -> None:
    await store.add_jobs([make_job(f"j{i}", at=T0 + i) for i in range(10)], True)
    first = await store.acquire_due_jobs("a", T0, T0 + 5, 100, T0 + LEASE)
    assert sorted(j.spec.key for j in first) == [f"j{i}" for i in range(6)]
    second = await store.acquire_due_jobs("b", T0, T0 + 100, 100, T0 + 3 * LEASE)
    assert sorted(j.spec.key for j in second) == [f"j{i}" for i in range(6, 10)]
    # once a's lease lapses, b may take a's jobs
    later = T0 + LEASE + 1
    third = await store.acquire_due_jobs("b", later, later, 100, later + LEASE)
    assert sorted(j.spec.key for j in third) == [f"j{i}" for i in range(6)]


async def test_an_occurrence_fires_at_most_once(store: Store) -> None:
    await store.add_jobs([make_job("once")], True)
    [job] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    runs = (await store.record_fires("a", T0, [fire_of(job, T0)], T0 + LEASE)).started
    assert len(runs) == 1 and runs[0].state is RunState.RUNNING and runs[0].attempts == 1
    # a replay of the same fire (say the commit succeeded but the caller saw a timeout)
    replay = await store.record_fires("a", T0, [fire_of(job, T0)], T0 + LEASE)
    assert replay.started == []
    after = await store.get_job("ns", "once")
    assert after is not None and after.state is JobState.COMPLETED
    assert after.next_fire_at is None and after.last_fire_at == T0
    assert len(await store.list_runs(job.id, None, 10)) == 1


async def test_fire_by_an_owner_that_lost_its_lease_is_dropped(store: Store) -> None:
    await store.add_jobs([make_job("lost")], True)
    [job] = await store.acquire_due_jobs("a", T0 - LEASE, T0, 10, T0 - 1)
    [taken] = await store.acquire_due_jobs("b", T0, T0, 10, T0 + LEASE)
    assert taken.id == job.id
    assert (await store.record_fires("a", T0, [fire_of(job, T0)], T0 + LEASE)).started == []
    recorded = await store.record_fires("b", T0, [fire_of(taken, T0)], T0 + LEASE)
    assert len(recorded.started) == 1


async def test_pause_between_claim_and_fire_stops_the_fire(store: Store) -> None:
    await store.add_jobs([make_job("cd", countdown=True)], True)
    [job] = await store.acquire_due_jobs("a", T0 - 10, T0, 10, T0 + LEASE)
    paused = await store.change_job("ns", "cd", lambda j: rules.pause(j, T0 - 10))
    assert paused.state is JobState.PAUSED and paused.remaining_us == 10
    assert (await store.record_fires("a", T0, [fire_of(job, T0)], T0 + LEASE)).started == []
    resumed = await store.change_job("ns", "cd", lambda j: rules.resume(j, T0 + 1_000))
    assert resumed.next_fire_at == T0 + 1_010


async def test_change_job_reports_missing_and_illegal(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.change_job("ns", "nope", lambda j: rules.pause(j, T0))
    await store.add_jobs([make_job("x")], True)
    await store.change_job("ns", "x", lambda j: rules.cancel(j, T0))
    with pytest.raises(IllegalTransition):
        await store.change_job("ns", "x", lambda j: rules.pause(j, T0))
    job = await store.get_job("ns", "x")
    assert job is not None and job.state is JobState.CANCELLED and job.next_fire_at is None


async def test_pending_runs_wait_for_a_claim_and_retries_come_back(store: Store) -> None:
    await store.add_jobs([make_job("r")], True)
    [job] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    recorded = await store.record_fires("a", T0, [fire_of(job, T0, deliver_now=False)],
                                        T0 + LEASE)
    assert recorded.started == []
    [(run, owner_job)] = await store.acquire_due_runs("a", T0, 10, T0 + LEASE)
    assert run.state is RunState.RUNNING and run.attempts == 1 and owner_job.id == job.id
    failed = Attempt(run.id, 1, T0, T0 + 5, AttemptOutcome.FAILURE, "test-node", 503)
    await store.record_attempts("a", [AttemptRecord(failed, RunState.PENDING, T0 + US_PER_S)])
    assert await store.acquire_due_runs("a", T0 + 10, 10, T0 + LEASE) == []
    [(retry, _)] = await store.acquire_due_runs("a", T0 + US_PER_S, 10, T0 + LEASE)
    assert retry.id == run.id and retry.attempts == 2
    ok = Attempt(run.id, 2, T0 + US_PER_S, T0 + US_PER_S + 5, AttemptOutcome.SUCCESS, "n", 200)
    await store.record_attempts("a", [AttemptRecord(ok, RunState.SUCCEEDED, None)])
    found = await store.get_run(run.id)
    assert found is not None
    final, log = found
    assert final.state is RunState.SUCCEEDED and final.finished_at == T0 + US_PER_S + 5
    assert [(a.number, a.outcome) for a in log] == [
        (1, AttemptOutcome.FAILURE), (2, AttemptOutcome.SUCCESS)]


async def test_expired_run_lease_is_rescued_with_an_abandoned_attempt(store: Store) -> None:
    await store.add_jobs([make_job("dead-node")], True)
    [job] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    [run] = (await store.record_fires("a", T0, [fire_of(job, T0)], T0 + LEASE)).started
    assert await store.acquire_due_runs("b", T0 + LEASE - 1, 10, T0 + 2 * LEASE) == []
    [(rescued, _)] = await store.acquire_due_runs("b", T0 + LEASE + 1, 10, T0 + 2 * LEASE)
    assert rescued.id == run.id and rescued.attempts == 2
    # the dead owner's late report is ignored: the run is b's now
    late = Attempt(run.id, 1, T0, T0 + 1, AttemptOutcome.SUCCESS, "a", 200)
    await store.record_attempts("a", [AttemptRecord(late, RunState.SUCCEEDED, None)])
    found = await store.get_run(run.id)
    assert found is not None
    current, log = found
    assert current.state is RunState.RUNNING
    assert [(a.number, a.outcome) for a in log] == [(1, AttemptOutcome.ABANDONED)]


async def test_renewed_run_lease_is_not_rescued(store: Store) -> None:
    await store.add_jobs([make_job("slow")], True)
    [job] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    [run] = (await store.record_fires("a", T0, [fire_of(job, T0)], T0 + LEASE)).started
    await store.renew_runs("a", [run.id], T0 + 3 * LEASE)
    assert await store.acquire_due_runs("b", T0 + 2 * LEASE, 10, T0 + 4 * LEASE) == []


async def test_release_all_makes_held_work_available_at_once(store: Store) -> None:
    await store.add_jobs([make_job("held"), make_job("in-flight")], True)
    claimed = await store.acquire_due_jobs("old", T0, T0, 10, T0 + LEASE)
    flying = next(j for j in claimed if j.spec.key == "in-flight")
    await store.record_fires("old", T0, [fire_of(flying, T0)], T0 + LEASE)
    await store.release(None)
    [again] = await store.acquire_due_jobs("new", T0 + 1, T0 + 1, 10, T0 + LEASE)
    assert again.spec.key == "held"
    [(run, _)] = await store.acquire_due_runs("new", T0 + 1, 10, T0 + LEASE)
    assert run.job_key == "in-flight" and run.attempts == 2


async def test_missed_occurrence_is_recorded_without_delivery(store: Store) -> None:
    spec = JobSpec("ns", "skip-me", OneShot(T0), TARGET, misfire=rules.MisfirePolicy.SKIP,
                   misfire_grace_us=US_PER_S)
    await store.add_jobs([rules.new_job(new_id(), spec, T0 - US_PER_S)], True)
    late = T0 + 10 * US_PER_S
    [job] = await store.acquire_due_jobs("a", late, late, 10, late + LEASE)
    fire = fire_of(job, late)
    assert fire.plan == FirePlan(False, T0, None)
    assert (await store.record_fires("a", late, [fire], late + LEASE)).started == []
    [run] = await store.list_runs(job.id, None, 10)
    assert run.state is RunState.MISSED
    assert await store.acquire_due_runs("a", late, 10, late + LEASE) == []


async def test_manual_run_and_listing(store: Store) -> None:
    await store.add_jobs([make_job(f"k{i:02}") for i in range(12)], True)
    page1 = await store.list_jobs(JobFilter(namespace="ns"), None, 5)
    last = page1[-1].spec
    page2 = await store.list_jobs(JobFilter(namespace="ns"), (last.namespace, last.key), 100)
    assert len(page1) == 5 and len(page2) == 7
    assert {j.spec.key for j in page1}.isdisjoint({j.spec.key for j in page2})
    prefixed = await store.list_jobs(JobFilter(key_prefix="k1"), None, 100)
    assert sorted(j.spec.key for j in prefixed) == ["k10", "k11"]
    job = page1[0]
    run = await store.add_manual_run(job, new_id(), T0, {"override": True}, True)
    [(claimed, _)] = await store.acquire_due_runs("a", T0, 10, T0 + LEASE)
    assert claimed.id == run.id and claimed.kind is RunKind.MANUAL
    assert claimed.has_override and claimed.payload_override == {"override": True}


async def test_listing_reads_the_claimed_namespaces_in_code_point_order(store: Store) -> None:
    names = [("B", "k"), ("a", "Z"), ("a", "b"), ("a-1", "k"), ("a-é", "k"), ("ab", "k"),
             ("b", "k"), ("é", "k"), ("a😀", "k")]
    await store.add_jobs([rules.new_job(new_id(), JobSpec(ns, key, OneShot(T0), TARGET), T0)
                          for ns, key in names], True)
    walked: list[tuple[str, str]] = []
    after = None
    while page := await store.list_jobs(JobFilter(), after, 2):
        walked += [(j.spec.namespace, j.spec.key) for j in page]
        after = walked[-1]
    assert walked == sorted(names, key=lambda n: (n[0].encode(), n[1].encode()))
    claimed = JobFilter(claims=("a-*", "b", "é*"))
    found = await store.list_jobs(claimed, None, 100)
    assert [j.spec.namespace for j in found] == ["a-1", "a-é", "b", "é"]
    rest = await store.list_jobs(claimed, ("a-é", "k"), 100)
    assert [j.spec.namespace for j in rest] == ["b", "é"]
    assert await store.list_jobs(JobFilter(namespace="ab", claims=("a-*",)), None, 9) == []
    assert await store.listing_bound(claimed, None, 3) == ("b", "k")
    assert await store.listing_bound(claimed, ("a-1", "k"), 3) == ("é", "k")
    assert await store.listing_bound(claimed, ("a-1", "k"), 4) is None
    until = await store.list_jobs(JobFilter(until=("a-é", "k")), ("a", "b"), 9)
    assert [j.spec.namespace for j in until] == ["a-1", "a-é"]


async def _fire_twice(
    store: Store, key: str, policy: rules.ConcurrencyPolicy
) -> tuple[Job, Run, FiresRecorded]:
    """A job due every second under `policy`: its first occurrence fires and stays in
    flight, then its second is due. Returns the job, the first run, and the second's fire."""
    spec = JobSpec("ns", key, SimpleTrigger(T0, US_PER_S), TARGET, concurrency=policy)
    await store.add_jobs([rules.new_job(new_id(), spec, T0 - 1)], True)
    [job] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    [first] = (await store.record_fires("a", T0, [fire_of(job, T0)], T0 + LEASE)).started
    second_at = T0 + US_PER_S
    [job] = await store.acquire_due_jobs("a", second_at, second_at, 10, second_at + LEASE)
    recorded = await store.record_fires("a", second_at, [fire_of(job, second_at)],
                                        second_at + LEASE)
    return job, first, recorded


async def test_concurrency_forbid_skips_while_a_run_is_in_flight(store: Store) -> None:
    job, first, recorded = await _fire_twice(store, "forbid", rules.ConcurrencyPolicy.FORBID)
    second_at = T0 + US_PER_S
    assert recorded.started == [] and recorded.replaced == []
    # Ids made in one millisecond are not ordered among themselves: tell the runs apart by id.
    listed = await store.list_runs(job.id, None, 10)
    [older] = [r for r in listed if r.id == first.id]
    [newest] = [r for r in listed if r.id != first.id]
    assert older.state is RunState.RUNNING
    assert newest.state is RunState.SKIPPED and newest.scheduled_at == second_at
    after = await store.get_job("ns", "forbid")
    assert after is not None and after.next_fire_at == T0 + 2 * US_PER_S


async def test_concurrency_replace_cancels_the_run_in_flight(store: Store) -> None:
    _job, first, recorded = await _fire_twice(store, "replace", rules.ConcurrencyPolicy.REPLACE)
    second_at = T0 + US_PER_S
    assert recorded.replaced == [first.id] and len(recorded.started) == 1
    found = await store.get_run(first.id)
    assert found is not None and found[0].state is RunState.CANCELLED
    # the replaced run's late report changes nothing
    late = Attempt(first.id, 1, T0, second_at, AttemptOutcome.SUCCESS, "a", 200)
    await store.record_attempts("a", [AttemptRecord(late, RunState.SUCCEEDED, None)])
    found = await store.get_run(first.id)
    assert found is not None and found[0].state is RunState.CANCELLED


async def test_heartbeats_list_nodes_with_what_they_hold(store: Store) -> None:
    a = NodeInfo("a:1", "a", "http://a", "1", T0)
    b = NodeInfo("b:1", "b", "http://b", "1", T0)
    await store.heartbeat(a, T0)
    await store.heartbeat(b, T0)
    await store.heartbeat(a, T0 + 5)
    await store.add_jobs([make_job("held-1"), make_job("held-2")], True)
    await store.acquire_due_jobs("a:1", T0, T0, 10, T0 + LEASE)
    await store.heartbeat(b, T0 + 6, stopped=True)
    listed = {s.info.owner: s for s in await store.list_nodes()}
    assert listed["a:1"].heartbeat_at == T0 + 5 and listed["a:1"].jobs_held == 2
    assert listed["b:1"].stopped_at == T0 + 6 and listed["b:1"].jobs_held == 0
    assert abs(await store.db_now() - time.time_ns() // 1_000) < 5 * US_PER_S


async def test_purge_deletes_old_finished_runs_and_their_attempts(store: Store) -> None:
    await store.add_jobs([make_job("old")], True)
    [job] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    [run] = (await store.record_fires("a", T0, [fire_of(job, T0)], T0 + LEASE)).started
    done = Attempt(run.id, 1, T0, T0 + 10, AttemptOutcome.SUCCESS, "n", 200)
    await store.record_attempts("a", [AttemptRecord(done, RunState.SUCCEEDED, None)])
    assert await store.purge(T0 + 10, 100) == 0  # finished exactly then: kept
    assert await store.purge(T0 + 11, 100) == 1
    assert await store.get_run(run.id) is None
    assert await store.list_runs(job.id, None, 10) == []


async def test_replace_brings_back_a_cancelled_job_with_the_same_definition(
    store: Store,
) -> None:
    await store.add_jobs([make_job("again", at=T0 + US_PER_S)], True)
    await store.change_job("ns", "again", lambda j: rules.cancel(j, T0))
    [kept] = await store.add_jobs([make_job("again", at=T0 + US_PER_S)], True)
    assert not kept.conflict and kept.job.state is JobState.CANCELLED  # no replace: untouched
    [back] = await store.add_jobs([make_job("again", at=T0 + US_PER_S)], True, replace=True)
    assert back.replaced and back.job.state is JobState.ACTIVE
    assert back.job.next_fire_at == T0 + US_PER_S and back.job.id == kept.job.id


async def test_a_fire_twice_in_one_batch_starts_one_run(store: Store) -> None:
    # The same job in one batch twice (retried after an error and claimed again): the unique
    # index keeps one run, and only that run may be handed out for delivery.
    await store.add_jobs([make_job("twice")], True)
    [job] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    recorded = await store.record_fires("a", T0, [fire_of(job, T0), fire_of(job, T0)],
                                        T0 + LEASE)
    [started] = recorded.started
    [stored] = await store.list_runs(job.id, None, 10)
    assert started.id == stored.id


async def test_claims_go_earliest_first_then_highest_priority(store: Store) -> None:
    specs = [JobSpec("ns", "low", OneShot(T0), TARGET, priority=0),
             JobSpec("ns", "high", OneShot(T0), TARGET, priority=5),
             JobSpec("ns", "early", OneShot(T0 - 1), TARGET, priority=-5)]
    await store.add_jobs([rules.new_job(new_id(), s, T0 - US_PER_S) for s in specs], True)
    first = await store.acquire_due_jobs("a", T0, T0, 2, T0 + LEASE)
    assert sorted(j.spec.key for j in first) == ["early", "high"]
    [rest] = await store.acquire_due_jobs("a", T0, T0, 2, T0 + LEASE)
    assert rest.spec.key == "low"


async def test_a_claim_can_look_past_namespaces_crowding_the_window(store: Store) -> None:
    flood = [JobSpec("flood", f"f{i}", OneShot(T0 - 10 + i), TARGET, priority=9)
             for i in range(5)]
    quiet = [JobSpec("quiet", "q", OneShot(T0), TARGET), JobSpec("other", "o", OneShot(T0), TARGET)]
    await store.add_jobs([rules.new_job(new_id(), s, T0 - US_PER_S) for s in flood + quiet], True)
    others = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE, others_than={"flood"})
    assert sorted(j.spec.key for j in others) == ["o", "q"]
    rest = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    assert sorted(j.spec.key for j in rest) == [f"f{i}" for i in range(5)]


async def test_a_run_claim_can_look_past_namespaces_crowding_the_deliveries(
    store: Store,
) -> None:
    flood = [JobSpec("flood", f"f{i}", OneShot(T0 - 10 + i), TARGET, priority=9)
             for i in range(5)]
    quiet = [JobSpec("quiet", "q", OneShot(T0), TARGET)]
    await store.add_jobs([rules.new_job(new_id(), s, T0 - US_PER_S) for s in flood + quiet], True)
    jobs = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    await store.record_fires("a", T0, [fire_of(j, T0, deliver_now=False) for j in jobs],
                             T0 + LEASE)
    others = await store.acquire_due_runs("a", T0, 10, T0 + LEASE, others_than={"flood"})
    assert [job.spec.key for _run, job in others] == ["q"]
    rest = await store.acquire_due_runs("a", T0, 10, T0 + LEASE)
    assert sorted(job.spec.key for _run, job in rest) == [f"f{i}" for i in range(5)]


async def test_listing_filters_by_state_and_takes_a_prefix_literally(store: Store) -> None:
    await store.add_jobs([make_job("a_b"), make_job("axb"), make_job("a%c")], True)
    await store.change_job("ns", "axb", lambda j: rules.cancel(j, T0))
    cancelled = await store.list_jobs(JobFilter(state=JobState.CANCELLED), None, 10)
    assert [j.spec.key for j in cancelled] == ["axb"]
    assert [j.spec.key for j in await store.list_jobs(JobFilter(key_prefix="a_"), None, 10)] \
        == ["a_b"]
    assert [j.spec.key for j in await store.list_jobs(JobFilter(key_prefix="a%"), None, 10)] \
        == ["a%c"]
    assert await store.list_jobs(JobFilter(namespace="other"), None, 10) == []


async def test_runs_are_listed_newest_first_in_pages(store: Store) -> None:
    [added] = await store.add_jobs([make_job("paged", at=T0 + LEASE)], True)
    made = [(await store.add_manual_run(added.job, new_id(), T0 + i, None, False)).id
            for i in range(5)]
    newest_first = sorted(made, reverse=True)
    page1 = await store.list_runs(added.job.id, None, 2)
    page2 = await store.list_runs(added.job.id, page1[-1].id, 2)
    page3 = await store.list_runs(added.job.id, page2[-1].id, 2)
    assert [r.id for r in page1 + page2 + page3] == newest_first


async def test_a_pages_runs_are_read_at_once_newest_first_per_job(store: Store) -> None:
    added = await store.add_jobs([make_job(k, at=T0 + LEASE) for k in ("a", "b", "c")], True)
    made = {o.job.id: [(await store.add_manual_run(o.job, new_id(), T0 + i, None, False)).id
                       for i in range(n)] for o, n in zip(added, (4, 1, 0), strict=True)}
    recent = await store.recent_runs(list(made), 3)
    assert {job_id: [r.id for r in runs] for job_id, runs in recent.items()} == {
        job_id: sorted(ids, reverse=True)[:3] for job_id, ids in made.items()}
    assert await store.recent_runs([], 3) == {}


async def test_kind_pages_number_one_namespaces_jobs_of_a_payload_kind(store: Store) -> None:
    jobs = [make_job(f"k{i}", payload={"kind": "once_job" if i % 3 else "cron_job"})
            for i in range(10)]
    jobs.append(rules.new_job(new_id(), JobSpec("other", "k1", OneShot(T0), TARGET,
                                                payload={"kind": "once_job"}), T0))
    jobs.append(make_job("plain", payload=[1, 2]))
    await store.add_jobs(jobs, True)
    walked: list[str] = []
    for offset in range(0, 9, 3):
        page, total = await store.kind_page("ns", "once_job", offset, 3)
        assert total == 6
        walked += [j.spec.key for j in page]
    assert walked == ["k1", "k2", "k4", "k5", "k7", "k8"]
    assert await store.kind_page("ns", "cron_job", 1, 9) == (
        [j for j in await store.list_jobs(JobFilter(namespace="ns"), None, 20)
         if j.spec.key in ("k3", "k6", "k9")], 4)


async def test_cancelling_a_job_with_its_runs_stops_the_pending_ones(store: Store) -> None:
    spec = JobSpec("ns", "every", SimpleTrigger(T0, US_PER_S), TARGET)
    await store.add_jobs([rules.new_job(new_id(), spec, T0 - 1)], True)
    [job] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    [running] = (await store.record_fires("a", T0, [fire_of(job, T0)], T0 + LEASE)).started
    pending = await store.add_manual_run(job, new_id(), T0 + 1, None, False)
    await store.change_job("ns", "every", lambda j: rules.cancel(j, T0 + 2), cancel_runs=True)
    now = {r.id: r for r in await store.list_runs(job.id, None, 10)}
    assert now[pending.id].state is RunState.CANCELLED and now[pending.id].due_at is None
    assert now[pending.id].finished_at == T0 + 2
    assert now[running.id].state is RunState.RUNNING  # under way: its outcome still counts
    assert await store.acquire_due_runs("b", T0 + 3, 10, T0 + LEASE) == []


async def test_replacing_a_changed_definition_keeps_the_id_and_drops_the_claim(
    store: Store,
) -> None:
    [first] = await store.add_jobs([make_job("redo", payload=1)], True)
    [claimed] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    [redone] = await store.add_jobs([make_job("redo", at=T0 + 1, payload=2)], True, replace=True)
    assert redone.replaced and not redone.created and redone.job.id == first.job.id
    assert (await store.record_fires("a", T0, [fire_of(claimed, T0)], T0 + LEASE)).started == []
    [again] = await store.acquire_due_jobs("b", T0, T0 + 1, 10, T0 + LEASE)
    assert again.id == first.job.id and again.spec.payload == 2 and again.next_fire_at == T0 + 1


async def test_only_the_holder_renews_or_releases_its_leases(store: Store) -> None:
    await store.add_jobs([make_job("mine"), make_job("theirs", at=T0 + 1)], True)
    [mine] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    [theirs] = await store.acquire_due_jobs("b", T0, T0 + 1, 10, T0 + LEASE)
    [run] = (await store.record_fires("a", T0, [fire_of(mine, T0)], T0 + LEASE)).started
    await store.renew_runs("b", [run.id], T0 + 5 * LEASE)  # not b's run: no effect
    await store.release("b")
    [again] = await store.acquire_due_jobs("c", T0 + 1, T0 + 1, 10, T0 + LEASE)
    assert again.id == theirs.id
    assert await store.acquire_due_runs("c", T0 + 1, 10, T0 + 2 * LEASE) == []  # a's, still
    [(rescued, _)] = await store.acquire_due_runs("c", T0 + LEASE + 1, 10, T0 + 2 * LEASE)
    assert rescued.id == run.id


async def test_a_report_of_another_attempt_number_leaves_the_run_alone(store: Store) -> None:
    await store.add_jobs([make_job("numbered")], True)
    [job] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    [run] = (await store.record_fires("a", T0, [fire_of(job, T0)], T0 + LEASE)).started
    stale = Attempt(run.id, 2, T0, T0 + 1, AttemptOutcome.SUCCESS, "n", 200)
    await store.record_attempts("a", [AttemptRecord(stale, RunState.SUCCEEDED, None)])
    found = await store.get_run(run.id)
    assert found is not None and found[0].state is RunState.RUNNING


async def test_purge_keeps_to_its_limit_and_forgets_silent_nodes(store: Store) -> None:
    await store.add_jobs([make_job(f"p{i}") for i in range(3)], True)
    claimed = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    fired = await store.record_fires("a", T0, [fire_of(j, T0) for j in claimed], T0 + LEASE)
    await store.record_attempts("a", [
        AttemptRecord(Attempt(r.id, 1, T0, T0 + 10, AttemptOutcome.SUCCESS, "n", 200),
                      RunState.SUCCEEDED, None)
        for r in fired.started])
    await store.heartbeat(NodeInfo("gone:1", "gone", "http://gone", "1", T0), T0)
    await store.heartbeat(NodeInfo("here:1", "here", "http://here", "1", T0), T0 + 11)
    assert await store.purge(T0 + 11, 2) == 2
    assert [n.info.owner for n in await store.list_nodes()] == ["here:1"]
    assert await store.purge(T0 + 11, 2) == 1
    assert await store.purge(T0 + 11, 2) == 0


async def test_a_second_server_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    # SQLite only, outside the suite: the lock guards a database file, which memory has not.
    url = f"sqlite:///{tmp_path / 'one.db'}"
    first = SqlStore(url)
    await first.start()
    second = SqlStore(url)
    try:
        with pytest.raises(RuntimeError, match="another cronwheel server"):
            await second.start()
    finally:
        await second.close()
        await first.close()
    third = SqlStore(url)  # the lock went with the first server
    await third.start()
    await third.close()


# -- many jobs at once, and reviving a cancelled job --------------------------------------------


async def _states(store: SqlStore, keys: list[str]) -> list[tuple[JobState, int]]:
    found = [await store.get_job("ns", key) for key in keys]
    return [(job.state, job.updated_at) for job in found if job is not None]


async def test_change_jobs_changes_none_when_the_third_fails(store: SqlStore) -> None:
    await store.add_jobs([make_job(k, at=T0 + US_PER_S) for k in ("a", "b", "c")], True)
    await store.change_job("ns", "c", lambda j: rules.cancel(j, T0))
    before = await _states(store, ["a", "b"])
    with pytest.raises(ItemErrors) as refused:
        await store.change_jobs("ns", ["a", "b", "c"], lambda j: rules.pause(j, T0 + 5))
    [(index, error)] = refused.value.items
    assert index == 2 and isinstance(error, IllegalTransition)
    assert await _states(store, ["a", "b"]) == before  # the first two are untouched

    with pytest.raises(ItemErrors) as missing:
        await store.change_jobs("ns", ["a", "b", "gone", "c"], lambda j: rules.pause(j, T0 + 5))
    assert [(i, type(e)) for i, e in missing.value.items] == [(2, NotFound),
                                                               (3, IllegalTransition)]
    assert await _states(store, ["a", "b"]) == before


async def test_change_jobs_changes_all_in_order_and_skips_unchanged(store: SqlStore) -> None:
    await store.add_jobs([make_job(k, at=T0 + US_PER_S) for k in ("a", "b")], True)
    await store.change_job("ns", "b", lambda j: rules.pause(j, T0))
    changed = await store.change_jobs("ns", ["b", "a"], lambda j: rules.disable(j, T0 + 5))
    assert [(j.spec.key, j.state) for j in changed] == [("b", JobState.PAUSED),
                                                       ("a", JobState.PAUSED)]
    # b was already paused: left as it was, not rewritten
    assert await _states(store, ["a", "b"]) == [(JobState.PAUSED, T0 + 5),
                                               (JobState.PAUSED, T0)]


async def test_revive_brings_back_only_a_cancelled_job(store: SqlStore) -> None:
    [live] = await store.add_jobs([make_job("live", payload=1)], True)
    await store.add_jobs([make_job("gone", payload=1)], True)
    await store.change_job("ns", "gone", lambda j: rules.cancel(j, T0))
    [back] = await store.add_jobs([make_job("gone", payload=2)], True, revive=True)
    assert back.replaced and not back.conflict
    assert back.job.state is JobState.ACTIVE and back.job.spec.payload == 2
    [clash] = await store.add_jobs([make_job("live", payload=2)], True, revive=True)
    assert clash.conflict and not clash.replaced  # a live job is not overwritten
    [same] = await store.add_jobs([make_job("live", payload=1)], True, revive=True)
    assert not (same.created or same.conflict or same.replaced) and same.job.id == live.job.id
    got = await store.get_job("ns", "live")
    assert got is not None and got.spec.payload == 1


async def test_revive_in_a_refused_batch_revives_nothing(store: SqlStore) -> None:
    await store.add_jobs([make_job("live", payload=1), make_job("gone", payload=1)], True)
    await store.change_job("ns", "gone", lambda j: rules.cancel(j, T0))
    batch = [make_job("gone", payload=2), make_job("live", payload=2)]
    outcomes = await store.add_jobs(batch, all_or_nothing=True, revive=True)
    assert outcomes[1].conflict
    got = await store.get_job("ns", "gone")
    assert got is not None and got.state is JobState.CANCELLED and got.spec.payload == 1


async def test_revive_decides_on_the_row_in_its_own_transaction(store: SqlStore) -> None:
    """A cancel queued just before the re-add is what the re-add sees: it revives the job.
    (Reading the row first and deciding in a second transaction would have seen it live.)"""
    await store.add_jobs([make_job("racy", at=T0 + US_PER_S)], True)
    cancelled, [outcome] = await asyncio.gather(
        store.change_job("ns", "racy", lambda j: rules.cancel(j, T0)),
        store.add_jobs([make_job("racy", at=T0 + US_PER_S)], True, revive=True),
    )
    assert cancelled.state is JobState.CANCELLED
    assert outcome.replaced and outcome.job.state is JobState.ACTIVE
    got = await store.get_job("ns", "racy")
    assert got is not None and got.state is JobState.ACTIVE and got.id == cancelled.id
    # the other order: the re-add finds the job live (nothing to revive), the cancel wins
    [kept], cancelled_again = await asyncio.gather(
        store.add_jobs([make_job("racy", at=T0 + US_PER_S)], True, revive=True),
        store.change_job("ns", "racy", lambda j: rules.cancel(j, T0)),
    )
    assert not (kept.replaced or kept.conflict) and kept.job.state is JobState.ACTIVE
    assert cancelled_again.state is JobState.CANCELLED


async def _job_with_history(store: Store, key: str) -> tuple[Job, Run, Run]:
    """A job every second with a finished run and a pending one."""
    spec = JobSpec("ns", key, SimpleTrigger(T0, US_PER_S), TARGET)
    await store.add_jobs([rules.new_job(new_id(), spec, T0 - 1)], True)
    [job] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    [done] = (await store.record_fires("a", T0, [fire_of(job, T0)], T0 + LEASE)).started
    attempt = Attempt(done.id, 1, T0, T0 + 5, AttemptOutcome.SUCCESS, "a", 200, "ok", None)
    await store.record_attempts("a", [AttemptRecord(attempt, RunState.SUCCEEDED, None)])
    pending = await store.add_manual_run(job, new_id(), T0 + 10, None, False)
    return job, done, pending


async def test_deleting_a_job_keeps_its_runs_until_retention(store: Store) -> None:
    job, done, pending = await _job_with_history(store, "gone")
    deleted = await store.delete_job("ns", "gone", T0 + 20)
    assert deleted.id == job.id
    assert await store.get_job("ns", "gone") is None
    assert await store.list_jobs(JobFilter(namespace="ns"), None, 10) == []
    assert await store.acquire_due_jobs("b", T0 + 60 * US_PER_S, T0 + 60 * US_PER_S, 10,
                                        T0 + LEASE) == []
    kept = await store.get_run(done.id)
    assert kept is not None and kept[0].state is RunState.SUCCEEDED and len(kept[1]) == 1
    stopped = await store.get_run(pending.id)
    assert stopped is not None and stopped[0].state is RunState.CANCELLED
    assert stopped[0].finished_at == T0 + 20
    assert await store.acquire_due_runs("b", T0 + 30, 10, T0 + LEASE) == []
    # the key is free for a new job at once
    [again] = await store.add_jobs([make_job("gone")], True)
    assert again.created and again.job.id != job.id


async def test_deleting_a_job_with_its_runs_leaves_nothing(store: Store) -> None:
    job, done, pending = await _job_with_history(store, "gone")
    await store.delete_job("ns", "gone", T0 + 20, delete_runs=True)
    assert await store.get_run(done.id) is None and await store.get_run(pending.id) is None
    assert await store.list_runs(job.id, None, 10) == []
    with pytest.raises(NotFound):
        await store.delete_job("ns", "gone", T0 + 30)

async def test_overview_reads_runs_across_jobs_and_jobs_by_next_fire(store: Store) -> None:
    early, late = make_job("early", at=T0), make_job("late", at=T0 + 60 * US_PER_S)
    other = rules.new_job(new_id(), JobSpec("elsewhere", "x", OneShot(T0 + US_PER_S), TARGET),
                          T0 - US_PER_S)
    await store.add_jobs([late, early, other], all_or_nothing=True)
    assert [j.spec.key for j in await store.upcoming_jobs(2)] == ["early", "x"]
    ids = sorted(new_id() for _ in range(3))  # one millisecond's ids are not ordered
    made = [await store.add_manual_run(job, ids[i], T0 + i * US_PER_S, None, False)
            for i, job in enumerate([early, late, other])]
    newest_first = [r.id for r in reversed(made)]
    assert [r.id for r in await store.find_runs(RunFilter(), None, 10)] == newest_first
    page = await store.find_runs(RunFilter(), None, 2)
    assert [r.id for r in await store.find_runs(RunFilter(), page[-1].id, 2)] == [made[0].id]
    assert [r.id for r in await store.find_runs(RunFilter(namespace="ns"), None, 10)] == [
        made[1].id, made[0].id]
    window = RunFilter(fired_from=T0 + US_PER_S, fired_to=T0 + 2 * US_PER_S)
    assert [r.id for r in await store.find_runs(window, None, 10)] == [made[1].id]
    assert await store.find_runs(RunFilter(state=RunState.FAILED), None, 10) == []
    assert await store.find_runs(RunFilter(finished_from=T0), None, 10) == []  # none ended


async def test_a_run_not_started_is_removed_and_kept_one_started_is_not(store: Store) -> None:
    await store.add_jobs([make_job("rm")], True)
    [job] = await store.acquire_due_jobs("a", T0, T0, 10, T0 + LEASE)
    await store.record_fires("a", T0, [fire_of(job, T0, deliver_now=False)], T0 + LEASE)
    [waiting] = await store.list_runs(job.id, None, 10)
    assert waiting.state is RunState.PENDING
    other = await store.add_manual_run(job, new_id(), T0, None, False)
    [(started, _job)] = await store.acquire_due_runs("a", T0, 1, T0 + LEASE)
    not_started = other if started.id == waiting.id else waiting
    removed = await store.remove_run(not_started.id, T0 + 7)
    assert (removed.state, removed.finished_at, removed.last_error) == (
        RunState.CANCELLED, T0 + 7, "removed on request")
    found = await store.get_run(not_started.id)
    assert found is not None and found[0].state is RunState.CANCELLED  # kept, listed
    with pytest.raises(IllegalTransition):
        await store.remove_run(not_started.id, T0 + 8)  # already ended
    with pytest.raises(IllegalTransition):
        await store.remove_run(started.id, T0 + 8)  # being delivered: kill it instead
    with pytest.raises(NotFound):
        await store.remove_run(new_id(), T0)


async def test_held_jobs_are_counted_per_namespace_without_ended_ones(store: Store) -> None:
    """The count the per-app max_jobs limit reads: active and paused jobs only."""
    jobs = [make_job(k) for k in ("a", "b", "c", "d")]
    other = rules.new_job(new_id(), JobSpec("other", "x", OneShot(T0), TARGET), T0 - US_PER_S)
    await store.add_jobs([*jobs, other], True)
    await store.change_job("ns", "b", lambda job: rules.pause(job, T0 - US_PER_S))
    await store.change_job("ns", "c", lambda job: rules.cancel(job, T0 - US_PER_S))
    assert await store.count_held_jobs() == {"ns": 3, "other": 1}
