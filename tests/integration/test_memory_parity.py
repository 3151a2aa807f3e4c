"""MemoryStore against SqlStore on SQLite: the same random operations, the same answers.

The contract suite checks chosen cases; this drives both stores through seeded sequences of
claims, fires, reports, rescues, changes and purges, and compares every answer and, every few
steps, everything stored. Limits stay above the number of rows, so the SQL store's unordered
ties never decide which rows a call takes.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cronwheel.contracts import AttemptRecord, Fire, JobFilter, Store
from cronwheel.domain import jobs as rules
from cronwheel.domain.errors import DomainError
from cronwheel.domain.intervals import SimpleTrigger
from cronwheel.domain.jobs import AlertPolicy, ConcurrencyPolicy, Job, JobSpec, MisfirePolicy
from cronwheel.domain.misfire import plan
from cronwheel.domain.runs import Attempt, AttemptOutcome, Run, RunState
from cronwheel.domain.schedules import OneShot, Schedule
from cronwheel.domain.targets import HttpTarget
from cronwheel.domain.time import US_PER_S
from cronwheel.ids import new_id
from cronwheel.store.memory import MemoryStore
from cronwheel.store.sql import SqlStore

T0 = 1_800_000_000 * US_PER_S
STEP = US_PER_S
LEASE = 10 * STEP
KEYS = [f"k{i}" for i in range(6)]
OWNERS = ["a", "b"]
TARGET = HttpTarget("http://127.0.0.1:9/callback")
ALERT = AlertPolicy(2, "http://127.0.0.1:9/alerts")
STEPS = 150


@dataclass
class Pair:
    memory: MemoryStore
    sql: SqlStore
    rng: random.Random
    now: int = T0
    held_jobs: dict[str, list[Job]] = field(default_factory=dict)
    held_runs: dict[str, list[Run]] = field(default_factory=dict)

    async def both(self, call: Callable[[Store], Awaitable[Any]]) -> Any:
        """Ask both stores; they must answer alike (or fail alike). Returns the answer."""
        mine, theirs = await _outcome(call, self.memory), await _outcome(call, self.sql)
        assert mine == theirs
        return mine[1]


async def _outcome(call: Callable[[Store], Awaitable[Any]], store: Store) -> tuple[str, Any]:
    try:
        return "ok", await call(store)
    except DomainError as exc:
        return type(exc).__name__, str(exc)


def _schedule(p: Pair) -> Schedule:
    at = p.now + p.rng.randint(0, 5) * STEP
    if p.rng.random() < 0.5:
        return OneShot(at)
    return SimpleTrigger(at, STEP * p.rng.randint(1, 3), count=p.rng.randint(1, 4))


def _job(p: Pair, key: str) -> Job:
    spec = JobSpec("ns", key, _schedule(p), TARGET, {"v": p.rng.randint(1, 2)},
                   priority=p.rng.randint(0, 1),
                   concurrency=p.rng.choice(list(ConcurrencyPolicy)),
                   alert=p.rng.choice([None, ALERT]),
                   misfire=p.rng.choice(list(MisfirePolicy)),
                   misfire_grace_us=p.rng.randint(0, 2) * STEP)
    return rules.new_job(new_id(), spec, p.now)


async def add(p: Pair) -> None:
    jobs = [_job(p, key) for key in p.rng.sample(KEYS, p.rng.randint(1, 3))]
    whole, replace = p.rng.random() < 0.5, p.rng.random() < 0.3
    await p.both(lambda s: s.add_jobs(jobs, whole, replace))


async def change(p: Pair) -> None:
    key, now = p.rng.choice(KEYS), p.now
    rule = p.rng.choice([rules.pause, rules.resume, rules.cancel])
    await p.both(lambda s: s.change_job("ns", key, lambda j: rule(j, now),
                                        cancel_runs=rule is rules.cancel))


async def claim(p: Pair) -> None:
    owner, now = p.rng.choice(OWNERS), p.now
    horizon = now + p.rng.randint(0, 3) * STEP

    async def call(s: Store) -> list[Job]:
        return sorted(await s.acquire_due_jobs(owner, now, horizon, 100, now + LEASE),
                      key=lambda j: j.id)

    p.held_jobs[owner] = await p.both(call)


async def fire(p: Pair) -> None:
    owner, now = p.rng.choice(OWNERS), p.now
    due = [j for j in p.held_jobs.pop(owner, []) if (j.next_fire_at or now + 1) <= now]
    fires = [Fire(j, plan(j.spec.schedule, j.next_fire_at or now, now, j.spec.misfire,
                          j.spec.misfire_grace_us), new_id(), p.rng.random() < 0.7)
             for j in due]

    async def call(s: Store) -> tuple[list[Run], list[str]]:
        recorded = await s.record_fires(owner, now, fires, now + LEASE)
        return recorded.started, sorted(recorded.replaced)

    started, _replaced = await p.both(call)
    p.held_runs.setdefault(owner, []).extend(started)


async def manual(p: Pair) -> None:
    job = await p.memory.get_job("ns", p.rng.choice(KEYS))
    if job is not None:
        run_id, payload, override = new_id(), {"m": p.rng.randint(1, 2)}, p.rng.random() < 0.5
        await p.both(lambda s: s.add_manual_run(job, run_id, p.now, payload, override))


async def claim_runs(p: Pair) -> None:
    owner, now = p.rng.choice(OWNERS), p.now

    async def call(s: Store) -> list[tuple[Run, Job]]:
        return sorted(await s.acquire_due_runs(owner, now, 1_000, now + LEASE),
                      key=lambda pair: pair[0].id)

    claimed = await p.both(call)
    p.held_runs.setdefault(owner, []).extend(run for run, _job in claimed)


async def report(p: Pair) -> None:
    owner = p.rng.choice(OWNERS)
    held = p.held_runs.get(owner, [])
    done, p.held_runs[owner] = held[:3], held[3:]
    records = [_record(p, run) for run in done]
    if records:
        await p.both(lambda s: s.record_attempts(owner, records))


def _record(p: Pair, run: Run) -> AttemptRecord:
    state = p.rng.choice([RunState.SUCCEEDED, RunState.FAILED, RunState.PENDING])
    outcome = AttemptOutcome.SUCCESS if state is RunState.SUCCEEDED else AttemptOutcome.FAILURE
    attempt = Attempt(run.id, run.attempts, p.now, p.now + 1, outcome, "n", 200, None, "e")
    due = p.now + STEP if state is RunState.PENDING else None
    return AttemptRecord(attempt, state, due, run.job_id, True)


async def renew(p: Pair) -> None:
    owner = p.rng.choice(OWNERS)
    ids, until = [r.id for r in p.held_runs.get(owner, [])], p.now + LEASE
    await p.both(lambda s: s.renew_runs(owner, ids, until))


async def release(p: Pair) -> None:
    owner = p.rng.choice([*OWNERS, None])
    for holder in OWNERS if owner is None else [owner]:
        p.held_jobs.pop(holder, None)  # runs they hold stay: their late reports are tried
    await p.both(lambda s: s.release(owner))


async def purge(p: Pair) -> None:
    before = p.now - 5 * STEP
    await p.both(lambda s: s.purge(before, 1_000))


async def tick(p: Pair) -> None:
    p.now += p.rng.randint(0, 4) * STEP


OPERATIONS = [add, add, change, claim, claim, claim, fire, fire, fire, fire, manual, claim_runs,
              claim_runs, report, report, report, renew, release, purge, tick, tick]


async def same_state(p: Pair) -> None:
    """Everything either store holds, read through the contract, is the same."""
    await p.both(lambda s: s.list_jobs(JobFilter(), None, 100))
    for key in KEYS:
        await _same_job(p, key)


async def _same_job(p: Pair, key: str) -> None:
    job = await p.both(lambda s: s.get_job("ns", key))
    if job is None:
        return
    runs = await p.both(lambda s: s.list_runs(job.id, None, 1_000))
    for run in runs:
        await _same_run(p, run.id)
    assert await _alerts(p.memory, job.id) == await _alerts(p.sql, job.id)


async def _same_run(p: Pair, run_id: str) -> None:
    await p.both(lambda s: s.get_run(run_id))


async def _alerts(store: MemoryStore | SqlStore, job_id: str) -> tuple[int, list[Any]]:
    """A job's count of failures and its alerts (their ids are each store's own)."""
    raised = await store.alerts.of_job(job_id)
    return (await store.alerts.failures(job_id),
            sorted((a.run_id, a.failures, a.state, a.tries) for a in raised))


@pytest.mark.parametrize("seed", range(6))
async def test_memory_answers_as_sqlite_does(seed: int, tmp_path: Path) -> None:
    sql = SqlStore(f"sqlite:///{tmp_path / 'parity.db'}", node="test-node")
    await sql.start()
    try:
        pair = Pair(MemoryStore(node="test-node"), sql, random.Random(seed))
        for step in range(STEPS):
            await pair.rng.choice(OPERATIONS)(pair)
            if step % 10 == 9:
                await same_state(pair)
        await same_state(pair)
    finally:
        await sql.close()
