"""Several time expressions per job, and backfills, on the manual clock (memory and SQLite)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.jobs import Job
from cronwheel.domain.runs import Attempt, Run, RunState
from cronwheel.domain.time import US_PER_S, parse_instant
from cronwheel.schedule_service import RerunRequest, Schedules
from cronwheel.store import SqlStore
from cronwheel.store.memory import MemoryStore
from cronwheel.testing import DAYS_CONFIG, DAYS_DISPATCH, Engine, ManualClock, running_engine

S = US_PER_S
MINUTE = 60 * S
HOUR = 60 * MINUTE
DAY = 24 * HOUR
START = parse_instant("2026-06-01T00:00:00Z")

Backend = str | MemoryStore


def job(key: str, schedule: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "schedule": schedule, "payload": {"key": key},
            "target": {"kind": "http", "url": "http://127.0.0.1:9/never-called"}}


@pytest.fixture(params=["memory", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "memory":
        return MemoryStore()
    return f"sqlite:///{tmp_path / 'engine.sqlite'}"


@contextlib.asynccontextmanager
async def engine_on(database: Backend, clock: ManualClock) -> AsyncIterator[Engine]:
    store = database if isinstance(database, MemoryStore) else SqlStore(database)
    async with running_engine(store, clock, config=DAYS_CONFIG,
                              dispatch=DAYS_DISPATCH) as engine:
        yield engine


async def runs_of(engine: Engine, key: str) -> list[tuple[Run, list[Attempt]]]:
    found = []
    for run in reversed(await engine.service.runs("default", key, None, 1000)):
        detail = await engine.store.get_run(run.id)
        assert detail is not None
        found.append(detail)
    return found


async def test_two_expressions_fire_at_their_union_once_per_instant(database: Backend) -> None:
    clock = ManualClock(START)
    schedule = {"kind": "union", "items": [
        {"id": "hourly", "kind": "cron", "expr": "0 * * * *"},
        {"id": "ninety", "kind": "rate", "every": "90m", "start": "2026-06-01T00:00:00Z"},
    ]}
    async with engine_on(database, clock) as engine:
        await engine.submit(job("u", schedule))
        await engine.advance(3 * HOUR)
        # 00:00, 01:00, 01:30, 02:00, 03:00 (both expressions: one delivery)
        assert engine.transport.instants() == [
            START, START + HOUR, START + 90 * MINUTE, START + 2 * HOUR, START + 3 * HOUR]
        runs = [run for run, _ in await runs_of(engine, "u")]
        assert [run.scheduled_at for run in runs] == engine.transport.instants()


async def test_an_expression_added_later_fires_and_a_removed_one_stops(
    database: Backend,
) -> None:
    clock = ManualClock(START)
    async with engine_on(database, clock) as engine:
        await engine.submit(job("edit", {"kind": "cron", "expr": "0 0 * * *"}))  # daily
        schedules = Schedules(engine.service)
        await engine.advance(MINUTE)
        job_now, item = await schedules.add("default", "edit", {"kind": "rate", "every": "1h"})
        assert item.id == "2" and job_now.next_fire_at == START + MINUTE + HOUR
        await engine.advance(2 * HOUR)
        hourly = [START + MINUTE + HOUR, START + MINUTE + 2 * HOUR]
        assert engine.transport.instants() == hourly
        removed = await schedules.remove("default", "edit", "2")
        assert removed.next_fire_at == START + DAY
        await engine.advance(DAY - 2 * HOUR)
        assert engine.transport.instants() == [*hourly, START + DAY]


async def test_a_backfill_over_three_days_is_delivered_one_run_per_occurrence(
    database: Backend,
) -> None:
    clock = ManualClock(START + 3 * DAY + 10 * HOUR)
    async with engine_on(database, clock) as engine:
        created = await engine.submit(job("daily", {"kind": "cron", "expr": "0 2 * * *"}))
        assert created.next_fire_at == START + 4 * DAY + 2 * HOUR
        schedules = Schedules(engine.service)
        wanted = RerunRequest(START, START + 3 * DAY - 1)  # 06-01, 06-02, 06-03 at 02:00
        outcome = await schedules.rerun("default", "daily", wanted)
        assert (len(outcome.created), len(outcome.rerun), len(outcome.in_flight)) == (3, 0, 0)
        await engine.advance(MINUTE)
        planned = [START + 2 * HOUR + k * DAY for k in range(3)]
        delivered = sorted(d.delivery.scheduled_at for d in engine.transport.received)
        assert delivered == planned
        runs = await runs_of(engine, "daily")
        assert sorted(run.scheduled_at for run, _ in runs) == planned
        assert {run.state for run, _ in runs} == {RunState.SUCCEEDED}
        assert {run.kind.value for run, _ in runs} == {"scheduled"}
        # the same range again: each ended run gets a second attempt, no new run
        again = await schedules.rerun("default", "daily", wanted)
        assert (len(again.created), len(again.rerun)) == (0, 3)
        await engine.advance(MINUTE)
        runs = await runs_of(engine, "daily")
        assert len(runs) == 3
        assert [[a.number for a in attempts] for _, attempts in runs] == [[1, 2]] * 3
        assert len(engine.transport.received) == 6
        # the schedule itself did not move
        assert (await engine.service.get("default", "daily")).next_fire_at == created.next_fire_at


async def test_downstream_reruns_use_the_seam_in_its_order(database: Backend) -> None:
    clock = ManualClock(START + 2 * DAY)
    async with engine_on(database, clock) as engine:
        await engine.submit(job("up", {"kind": "cron", "expr": "0 * * * *"}))
        down = await engine.submit(job("down", {"kind": "cron", "expr": "30 1 * * *"}))

        async def downstream_of(of: Job) -> Sequence[Job]:
            return [down] if of.spec.key == "up" else []

        engine.service.downstream_of = downstream_of
        schedules = Schedules(engine.service)
        wanted = RerunRequest(START, START + 3 * HOUR, downstream=True)
        outcome = await schedules.rerun("default", "up", wanted)
        assert sorted((r.job_key, r.scheduled_at) for r in outcome.created) == [
            ("down", START + 90 * MINUTE),
            *(("up", START + k * HOUR) for k in range(4))]
        await engine.advance(MINUTE)
        assert len(engine.transport.received) == 5
        # the downstream job alone, once its run has ended: a new attempt of that run
        alone = await schedules.rerun("default", "down", RerunRequest(START, START + DAY))
        assert (alone.created, [r.job_key for r in alone.rerun]) == ([], ["down"])
        await engine.advance(MINUTE)
        assert len(engine.transport.received) == 6


@pytest.mark.parametrize(("start", "end", "field"), [
    (None, START, "from"),
    (START, None, "to"),
    (START + HOUR, START, "to"),
    (START, START + 10 * DAY, "to"),  # in the future
    (START - 2 * DAY, START + DAY, "to"),  # 72 hourly instants: over a limit of 50
])
async def test_a_rerun_is_refused_naming_the_field(
    database: Backend, start: int | None, end: int | None, field: str,
) -> None:
    clock = ManualClock(START + 2 * DAY)
    async with engine_on(database, clock) as engine:
        await engine.submit(job("h", {"kind": "cron", "expr": "0 * * * *"}))
        engine.service.limits = type(engine.service.limits)(max_backfill=50)
        with pytest.raises(InvalidField) as caught:
            await Schedules(engine.service).rerun("default", "h", RerunRequest(start, end))
        assert caught.value.field == field
        assert await engine.service.runs("default", "h", None, 10) == []
