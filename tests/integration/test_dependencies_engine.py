"""Dependencies on the manual clock, over the memory store and a SQLite file (the chain on
PostgreSQL too): the chain A -> B -> C (B hourly, C daily over the whole day), each
strategy, a run that expires, a missing upstream, a job run by its upstream alone, and
cycles refused at submit and edit."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cronwheel.api.convert import submission
from cronwheel.api.schemas import JobIn
from cronwheel.domain.errors import Conflict, ItemErrors
from cronwheel.domain.jobs import JobState
from cronwheel.domain.runs import Run, RunState
from cronwheel.domain.time import US_PER_S, Micros, parse_instant, to_iso
from cronwheel.engine.resolver import ResolverConfig
from cronwheel.jobtypes.registry import builtin_job_types
from cronwheel.schedule_service import RerunRequest, Schedules
from cronwheel.store import SqlStore
from cronwheel.store.memory import MemoryStore
from cronwheel.testing import (
    DAYS_CONFIG,
    DAYS_DISPATCH,
    Engine,
    ManualClock,
    RecordingTransport,
    failed,
    running_engine,
    succeeded,
)
from tests.stores import postgres_database

MINUTE = 60 * US_PER_S
HOUR = 60 * MINUTE
START = parse_instant("2026-06-01T00:00:00Z")  # a Monday
BEFORE = START - MINUTE  # jobs are made a minute before the first hour
SWEEP = ResolverConfig(sweep_us=15 * MINUTE)  # the safety net; events do the work
HOURLY = {"kind": "cron", "expr": "0 * * * *"}
DAILY = {"kind": "cron", "expr": "0 0 * * *"}
ONCE_ONLY = {"max_attempts": 1}


def job(key: str, schedule: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"key": key, "schedule": schedule,
            "target": {"kind": "http", "url": "http://127.0.0.1:9/never-called"}, **extra}


def on(upstream: str, strategy: str = "all", window: str = "cd") -> list[dict[str, Any]]:
    return [{"job": upstream, "strategy": strategy, "window": window}]


@pytest.fixture(params=["memory", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(request.param) if request.param == "memory" else f"sqlite:///{tmp_path}/d.db"


@contextlib.asynccontextmanager
async def engine_on(database: str, transport: RecordingTransport | None = None
                    ) -> AsyncIterator[Engine]:
    clock = transport.clock if transport is not None else ManualClock(BEFORE)
    assert isinstance(clock, ManualClock)
    if database == "postgres":
        async with postgres_database() as url, engine_on(url, transport) as engine:
            yield engine
        return
    store = MemoryStore(clock) if database == "memory" else SqlStore(database)
    async with running_engine(store, clock, transport, DAYS_CONFIG, DAYS_DISPATCH,
                              SWEEP) as engine:
        yield engine


async def runs_of(engine: Engine, key: str) -> list[Run]:
    """Oldest first."""
    return list(reversed(await engine.service.runs("default", key, None, 1000)))


def sent(engine: Engine, key: str) -> list[tuple[str, str]]:
    """(planned, sent at) of each delivery of the job, in the order they went out."""
    return [(to_iso(d.delivery.scheduled_at), to_iso(d.at))
            for d in engine.transport.received if d.delivery.key == key]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The chain runs on PostgreSQL too (a database of its own, made by `engine_on`)."""
    return str(request.param) if request.param != "sqlite" else f"sqlite:///{tmp_path}/d.db"


async def test_the_chain_a_b_c_runs_in_order_and_c_waits_for_the_whole_day(
    any_database: str,
) -> None:
    database = any_database
    async with engine_on(database) as engine:
        await engine.submit(job("a", HOURLY))
        await engine.submit(job("b", HOURLY, depends_on=on("a", window="ch")))
        await engine.submit(job("c", DAILY, depends_on=on("b")))  # window cd: all of today
        await engine.advance_to(START + 22 * HOUR + 30 * MINUTE)
        assert sent(engine, "c") == []
        [c_run] = await runs_of(engine, "c")
        assert c_run.state is RunState.WAITING and c_run.scheduled_at == START
        await engine.advance(HOUR)  # b's 23:00 run, the day's last, ends
        order = [d.delivery.key for d in engine.transport.received]
        assert order.count("a") == order.count("b") == 23 + 1
        assert sent(engine, "c") == [("2026-06-01T00:00:00Z", "2026-06-01T23:00:00Z")]
        # each b run went out after the a run of its hour, each at its own hour
        for hour in range(24):
            at = to_iso(START + hour * HOUR)
            a_index = next(i for i, d in enumerate(engine.transport.received)
                           if d.delivery.key == "a" and to_iso(d.delivery.scheduled_at) == at)
            b_index = next(i for i, d in enumerate(engine.transport.received)
                           if d.delivery.key == "b" and to_iso(d.delivery.scheduled_at) == at)
            assert a_index < b_index
        [c_done] = await runs_of(engine, "c")
        assert c_done.state is RunState.SUCCEEDED
        await engine.advance(2 * HOUR)  # the next day's c run waits for that day
        assert [r.state for r in await runs_of(engine, "c")] == [RunState.SUCCEEDED,
                                                                 RunState.WAITING]


# The upstream runs hourly from 00:00; the downstream runs at 06:00 over the six hours before
# (window h(6): 00:00 to 06:00) and expires two hours after its time.
@pytest.mark.parametrize(("failing_hour", "strategy", "ends"), [
    (2, "all", RunState.EXPIRED),
    (2, "last", RunState.SUCCEEDED),
    (2, "any", RunState.SUCCEEDED),
    (5, "all", RunState.EXPIRED),
    (5, "last", RunState.EXPIRED),
    (5, "any", RunState.SUCCEEDED),
    (None, "all", RunState.SUCCEEDED),
])
async def test_each_strategy_over_a_window_with_one_failed_run(
    database: str, failing_hour: int | None, strategy: str, ends: RunState,
) -> None:
    clock = ManualClock(BEFORE)
    transport = RecordingTransport(clock)
    answers = [succeeded() for _ in range(6)]
    if failing_hour is not None:
        answers[failing_hour] = failed(500, retryable=False)
    transport.answer(answers)
    async with engine_on(database, transport) as engine:
        await engine.submit(job("up", {**HOURLY, "end": "2026-06-01T05:30:00Z"},
                                retry=ONCE_ONLY))
        await engine.submit(job("down", {"kind": "cron", "expr": "0 6 * * *"}, expiry=2 * 3600,
                                depends_on=on("up", strategy, "h(6)")))
        await engine.advance_to(START + 6 * HOUR)
        [run] = await runs_of(engine, "down")
        if ends is RunState.SUCCEEDED:
            assert sent(engine, "down") == [("2026-06-01T06:00:00Z", "2026-06-01T06:00:00Z")]
        else:
            assert run.state is RunState.WAITING
        await engine.advance(2 * HOUR - 1)
        [run] = await runs_of(engine, "down")
        assert run.state is (ends if ends is RunState.SUCCEEDED else RunState.WAITING)
        await engine.advance(SWEEP.sweep_us + 1)  # the sweep after the expiry
        [run] = await runs_of(engine, "down")
        assert run.state is ends
        if ends is RunState.EXPIRED:
            assert sent(engine, "down") == []
            assert run.finished_at is not None
            assert START + 8 * HOUR <= run.finished_at <= START + 8 * HOUR + SWEEP.sweep_us


async def test_a_run_waiting_for_a_missing_upstream_expires_and_is_never_sent(
    database: str,
) -> None:
    async with engine_on(database) as engine:
        await engine.submit(job("lonely", {"kind": "once", "after": 60}, expiry=3600,
                                depends_on=on("ghost")))
        await engine.advance(HOUR)
        [run] = await runs_of(engine, "lonely")
        assert run.state is RunState.WAITING
        await engine.advance(HOUR)
        [run] = await runs_of(engine, "lonely")
        assert run.state is RunState.EXPIRED and sent(engine, "lonely") == []


async def test_a_job_without_a_time_of_its_own_runs_once_per_completed_upstream_run(
    database: str,
) -> None:
    clock = ManualClock(BEFORE)
    transport = RecordingTransport(clock)
    # in delivery order: up 01:00, after 01:00, up 02:00 (fails), up 03:00, after 03:00
    transport.answer([succeeded(), succeeded(), failed(500, retryable=False)])
    async with engine_on(database, transport) as engine:
        await engine.submit(job("up", {**HOURLY, "start": "2026-06-01T01:00:00Z"},
                                retry=ONCE_ONLY))
        follower = await engine.submit(job("after", {"kind": "dependencies"},
                                           depends_on=on("up", window="ch")))
        assert follower.state.value == "active" and follower.next_fire_at is None
        await engine.advance_to(START + 3 * HOUR + MINUTE)
        # up ran at 01:00 (ok), 02:00 (failed), 03:00 (ok): one follower run per success
        assert sent(engine, "after") == [("2026-06-01T01:00:00Z", "2026-06-01T01:00:00Z"),
                                         ("2026-06-01T03:00:00Z", "2026-06-01T03:00:00Z")]


def _item(body: dict[str, Any], now: Micros) -> Any:
    return submission(JobIn.model_validate(body), now, builtin_job_types())


async def test_a_cycle_is_refused_at_submit_and_at_edit_naming_it(database: str) -> None:
    async with engine_on(database) as engine:
        now = engine.clock.now()
        await engine.submit(job("a", HOURLY))
        await engine.submit(job("b", HOURLY, depends_on=on("a")))
        await engine.submit(job("c", HOURLY, depends_on=on("b")))
        with pytest.raises(ItemErrors) as caught:  # an edit of a closing the loop
            await engine.service.submit([_item(job("a", HOURLY, depends_on=on("c")), now)],
                                        replace=True)
        [(index, error)] = caught.value.items
        assert (index, error.field, error.message) == (
            0, "depends_on", "depends_on: cycle a -> c -> b -> a")
        with pytest.raises(ItemErrors) as caught:  # two new jobs waiting for each other
            await engine.service.submit([_item(job("x", HOURLY, depends_on=on("y")), now),
                                         _item(job("y", HOURLY, depends_on=on("x")), now)])
        assert [(i, e.message) for i, e in caught.value.items] == [
            (0, "depends_on: cycle x -> y -> x"), (1, "depends_on: cycle y -> x -> y")]
        assert await engine.store.get_job("default", "x") is None
        unchanged = await engine.store.get_job("default", "a")
        assert unchanged is not None and unchanged.spec.depends_on == ()
        # a job others depend on can still be edited
        [outcome] = await engine.service.submit(
            [_item(job("a", {"kind": "cron", "expr": "30 * * * *"}), now)], replace=True)
        assert outcome.replaced
        assert [j.spec.key for j in await engine.service.downstream("default", "a")] == [
            "b", "c"]


async def test_the_sweep_makes_a_follower_run_whose_event_was_lost(database: str) -> None:
    async with engine_on(database) as engine:
        engine.dispatcher.on_recorded = None  # as if the node died after recording up's end
        await engine.submit(job("up", {"kind": "once", "at": "2026-06-01T00:00:00Z"}))
        await engine.submit(job("after", {"kind": "dependencies"},
                                depends_on=on("up", window="ch")))
        await engine.advance_to(START + MINUTE)
        assert sent(engine, "up") != [] and await runs_of(engine, "after") == []
        await engine.advance(SWEEP.sweep_us)
        first_sweep = BEFORE + SWEEP.sweep_us  # the engine started at BEFORE
        assert sent(engine, "after") == [("2026-06-01T00:00:00Z", to_iso(first_sweep))]


DAY = 24 * HOUR


async def test_a_backfill_with_downstream_reruns_dependents_after_their_upstream(
    database: str,
) -> None:
    async with engine_on(database) as engine:
        await engine.submit(job("a", DAILY))
        await engine.submit(job("b", {"kind": "cron", "expr": "0 1 * * *"},
                                depends_on=on("a")))  # today's a run, in b's day
        await engine.advance_to(START + 2 * DAY + 2 * HOUR)
        done = len(engine.transport.received)
        # the day before the jobs existed (new runs) and the two days they ran (reruns)
        wanted = RerunRequest(START - DAY, START + DAY + 2 * HOUR, downstream=True)
        outcome = await Schedules(engine.service).rerun("default", "a", wanted)
        assert [r.job_key for r in outcome.created] == ["a", "b"]
        assert [r.job_key for r in outcome.rerun] == ["a", "a", "b", "b"]
        b_runs = sorted((r for r in await runs_of(engine, "b")
                         if r.scheduled_at < START + 2 * DAY), key=lambda r: r.scheduled_at)
        assert [(to_iso(r.scheduled_at), r.state) for r in b_runs] == [
            (to_iso(START - DAY + HOUR), RunState.WAITING),
            (to_iso(START + HOUR), RunState.WAITING),
            (to_iso(START + DAY + HOUR), RunState.WAITING)]
        await engine.advance(MINUTE)
        again = [(d.delivery.key, to_iso(d.delivery.scheduled_at))
                 for d in engine.transport.received[done:]]
        assert sorted(again) == sorted([("a", to_iso(START + k * DAY)) for k in (-1, 0, 1)]
                                       + [("b", to_iso(START + k * DAY + HOUR))
                                          for k in (-1, 0, 1)])
        for k in (-1, 0, 1):  # each b run went out after the a run of its day
            assert (again.index(("a", to_iso(START + k * DAY)))
                    < again.index(("b", to_iso(START + k * DAY + HOUR))))
        assert {r.state for r in await runs_of(engine, "b")} == {RunState.SUCCEEDED}


async def test_removing_the_last_expression_of_a_job_with_depends_on_leaves_it_to_its_upstream(
    database: str,
) -> None:
    async with engine_on(database) as engine:
        await engine.submit(job("up", HOURLY))
        await engine.submit(job("down", {"kind": "cron", "expr": "30 * * * *"},
                                depends_on=on("up", window="ch")))
        await engine.advance_to(START + 45 * MINUTE)
        schedules = Schedules(engine.service)
        changed = await schedules.remove("default", "down", "1")
        assert changed.spec.schedule.to_dict() == {"kind": "dependencies"}
        assert (changed.state, changed.next_fire_at) == (JobState.ACTIVE, None)
        assert await schedules.list("default", "down") == []
        await engine.advance_to(START + 2 * HOUR + MINUTE)
        # 00:30 by its cron; then one run per up run, at its time
        assert [p for p, _ in sent(engine, "down")] == [
            "2026-06-01T00:30:00Z", "2026-06-01T01:00:00Z", "2026-06-01T02:00:00Z"]
        # and a time expression added back makes it a union of that one again
        added, item = await schedules.add("default", "down", {"kind": "cron",
                                                              "expr": "15 * * * *"})
        assert (item.id, added.spec.schedule.to_dict()["kind"]) == ("1", "union")
        without = await engine.submit(job("alone", HOURLY))
        with pytest.raises(Conflict):
            await schedules.remove("default", without.spec.key, "1")
