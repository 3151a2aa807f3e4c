"""The engine on a manual clock over a real SQLite file: exact instants, no sleeping.

Each test steps engine time with `advance`, which wakes every timer at its own instant and
lets the woken work finish, so hours of schedule run in milliseconds and always alike.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cronwheel.delivery import Transports
from cronwheel.domain.errors import IllegalTransition
from cronwheel.domain.jobs import JobState
from cronwheel.domain.runs import Attempt, Run
from cronwheel.domain.time import US_PER_MS, US_PER_S, Micros, parse_instant, to_iso
from cronwheel.engine.dispatcher import DispatchConfig
from cronwheel.engine.scheduler import EngineConfig
from cronwheel.runtime import Node
from cronwheel.settings import Settings
from cronwheel.store import SqlStore
from cronwheel.store.memory import MemoryStore
from cronwheel.testing import (
    DAYS_CONFIG,
    DAYS_DISPATCH,
    TEST_CONFIG,
    TEST_DISPATCH,
    Engine,
    ManualClock,
    RecordingTransport,
    failed,
    running_engine,
)

S = US_PER_S
MINUTE = 60 * S
HOUR = 60 * MINUTE
START = parse_instant("2026-06-01T00:00:00Z")
LEASE = 30 * S  # the engine's default lease on claimed jobs and running runs

Backend = str | MemoryStore  # a SQLite URL, or the in-memory store itself


def job(key: str, schedule: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"key": key, "schedule": schedule, "payload": {"key": key},
            "target": {"kind": "http", "url": "http://127.0.0.1:9/never-called"}, **extra}


def every_minute(key: str, **extra: Any) -> dict[str, Any]:
    start = {"start": "2026-06-01T00:01:00Z"}
    return job(key, {"kind": "simple", "interval": 1, "unit": "minute", "repeat": -1, **start},
               **extra)


@pytest.fixture(params=["memory", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Where the engine keeps its jobs: the in-memory store (one instance, so a restarted
    engine finds what the stopped one left) or a SQLite file."""
    if request.param == "memory":
        return MemoryStore()
    return f"sqlite:///{tmp_path / 'engine.sqlite'}"


@contextlib.asynccontextmanager
async def engine_on(
    database: Backend, clock: ManualClock, transport: RecordingTransport | None = None,
    config: EngineConfig = TEST_CONFIG, dispatch: DispatchConfig = TEST_DISPATCH,
) -> AsyncIterator[Engine]:
    store = database if isinstance(database, MemoryStore) else SqlStore(database)
    async with running_engine(store, clock, transport, config, dispatch) as engine:
        yield engine


async def runs_of(engine: Engine, key: str) -> list[tuple[Run, list[Attempt]]]:
    """Oldest first, each with its attempts."""
    found = []
    for run in reversed(await engine.service.runs("default", key, None, 100)):
        detail = await engine.store.get_run(run.id)
        assert detail is not None
        found.append(detail)
    return found


async def test_a_one_shot_goes_out_on_its_instant_and_not_before(database: Backend) -> None:
    clock = ManualClock(START)
    async with engine_on(database, clock) as engine:
        await engine.submit(job("once", {"kind": "once", "after": 90}))
        await engine.advance(90 * S - 1)
        assert engine.transport.received == []
        await engine.advance(1)
        assert engine.transport.instants() == [START + 90 * S]
        [(run, attempts)] = await runs_of(engine, "once")
        assert run.state.value == "succeeded"
        assert [(a.started_at, a.outcome.value) for a in attempts] == [(START + 90 * S, "success")]


async def test_fires_due_close_together_commit_together_and_go_out_on_their_instants(
    database: Backend,
) -> None:
    # Ten one-shots 5 ms apart: a fire pass takes what falls due within its lead (100 ms) and
    # the gather (20 ms) after it, so they fire in passes a gather apart, not one per instant.
    clock = ManualClock(START)
    due = [START + 10 * S + i * 5 * US_PER_MS for i in range(10)]
    async with engine_on(database, clock) as engine:
        for i, at in enumerate(due):
            await engine.submit(job(f"s{i}", {"kind": "once", "at": to_iso(at)}))
        await engine.advance(11 * S)
        assert sorted(engine.transport.instants()) == due
        fired = [run.fired_at for i in range(10) for run, _ in await runs_of(engine, f"s{i}")]
    lead, gather = 100 * US_PER_MS, 20 * US_PER_MS
    assert fired[0] == due[0] - lead
    assert all(at - lead - gather <= f <= at - lead for f, at in zip(fired, due, strict=True))
    assert len(set(fired)) == 2  # 0-20 ms after the first, then 25-45 ms


async def test_retries_go_out_at_their_backoff_instants(database: Backend) -> None:
    clock = ManualClock(START)
    transport = RecordingTransport(clock)
    transport.answer([failed(500), failed(503), failed(502)])
    retry = {"max_attempts": 4, "initial_backoff": 2, "max_backoff": 5, "multiplier": 2,
             "jitter": 0}
    async with engine_on(database, clock, transport) as engine:
        await engine.submit(job("flaky", {"kind": "once", "after": 10}, retry=retry))
        await engine.advance(MINUTE)
        fired = START + 10 * S
        # backoffs 2 s, 4 s, then 8 s capped at 5 s, each from the previous attempt's end
        assert transport.instants() == [fired, fired + 2 * S, fired + 6 * S, fired + 11 * S]
        assert len({d.delivery.idempotency_key for d in transport.received}) == 1
        assert [d.delivery.attempt for d in transport.received] == [1, 2, 3, 4]
        [(run, attempts)] = await runs_of(engine, "flaky")
        assert run.state.value == "succeeded"
        assert [(a.number, a.status_code) for a in attempts] == [
            (1, 500), (2, 503), (3, 502), (4, 200)]


async def test_retries_stop_at_max_attempts_and_the_run_fails(database: Backend) -> None:
    clock = ManualClock(START)
    transport = RecordingTransport(clock, default=failed(500))
    retry = {"max_attempts": 2, "initial_backoff": 1, "jitter": 0}
    async with engine_on(database, clock, transport) as engine:
        await engine.submit(job("down", {"kind": "once", "after": 1}, retry=retry))
        await engine.advance(MINUTE)
        assert transport.instants() == [START + S, START + 2 * S]
        [(run, _)] = await runs_of(engine, "down")
        assert run.state.value == "failed" and run.attempts == 2


async def test_a_client_error_is_not_retried(database: Backend) -> None:
    clock = ManualClock(START)
    transport = RecordingTransport(clock, default=failed(404, retryable=False))
    async with engine_on(database, clock, transport) as engine:
        await engine.submit(job("gone", {"kind": "once", "after": 1}, retry={"max_attempts": 5}))
        await engine.advance(5 * MINUTE)  # four retries would be over in a minute
        assert transport.instants() == [START + S]
        [(run, _)] = await runs_of(engine, "gone")
        assert run.state.value == "failed" and run.last_error == "HTTP 404"


async def test_a_cancelled_job_never_fires_and_cannot_be_resumed(database: Backend) -> None:
    clock = ManualClock(START)
    async with engine_on(database, clock) as engine:
        await engine.submit(job("stop", {"kind": "once", "after": 5}))
        await engine.advance(4 * S)  # claimed: inside the look-ahead window
        cancelled = await engine.service.cancel("default", "stop")
        assert cancelled.state is JobState.CANCELLED
        await engine.advance(MINUTE)
        assert engine.transport.received == []
        with pytest.raises(IllegalTransition):
            await engine.service.resume("default", "stop")


async def test_a_job_due_soon_wakes_the_sleeping_loop(database: Backend) -> None:
    clock = ManualClock(START)
    async with engine_on(database, clock) as engine:
        await engine.submit(job("far", {"kind": "once", "after": 15}))  # claimed; loop asleep
        await engine.advance(S)
        await engine.submit(job("near", {"kind": "once", "after": 0.05}))
        await engine.advance(MINUTE)
        # on its instant: not at the next claim, nor after the far job
        assert engine.transport.instants("near") == [START + S + 50 * US_PER_MS]
        assert engine.transport.instants("far") == [START + 15 * S]


async def test_a_paused_repeating_job_fires_nothing_then_one_run_for_what_it_missed(
    database: Backend,
) -> None:
    clock = ManualClock(START)
    async with engine_on(database, clock) as engine:
        await engine.submit(every_minute("sw"))
        await engine.advance(150 * S)
        paused = await engine.service.pause("default", "sw")
        assert paused.state is JobState.PAUSED
        await engine.advance(10 * MINUTE)
        assert engine.transport.instants() == [START + MINUTE, START + 2 * MINUTE]
        resumed_at = clock.now()
        await engine.service.resume("default", "sw")
        await engine.advance(MINUTE)
        # the ten missed occurrences (beyond the 60 s grace) collapse into one run at once
        assert engine.transport.instants() == [START + MINUTE, START + 2 * MINUTE, resumed_at,
                                               START + 13 * MINUTE]
        runs = [run for run, _ in await runs_of(engine, "sw")]
        assert runs[2].scheduled_at == START + 3 * MINUTE


async def _stop_and_restart(
    database: Backend, policy: str, stop_at: Micros, restart_at: Micros
) -> list[Run]:
    """Run an every-minute job until `stop_at`, crash, come back at `restart_at`."""
    clock = ManualClock(START)
    transport = RecordingTransport(clock)
    body = every_minute("m", misfire={"policy": policy, "grace": 30})
    async with engine_on(database, clock, transport) as engine:
        await engine.submit(body)
        await engine.advance(stop_at - START)
    assert transport.instants() == [START + MINUTE, START + 2 * MINUTE]
    clock.set(restart_at)  # nothing runs meanwhile
    async with engine_on(database, clock, transport) as engine:
        await engine.advance(S)
        runs = [run for run, _ in await runs_of(engine, "m")]
        job_now = await engine.service.get("default", "m")
        assert job_now.next_fire_at == START + 8 * MINUTE  # the next one still to come
    return runs


async def test_misfire_fire_all_delivers_every_missed_occurrence(database: Backend) -> None:
    runs = await _stop_and_restart(database, "fire_all", START + 150 * S, START + 450 * S)
    # occurrences at 3, 4, 5, 6 and 7 minutes came due while down: each fires at restart
    assert [r.scheduled_at for r in runs] == [START + m * MINUTE for m in range(1, 8)]
    assert [r.fired_at for r in runs[2:]] == [START + 450 * S] * 5
    assert {r.state.value for r in runs} == {"succeeded"}


async def test_misfire_fire_once_delivers_one_run_for_all_missed(database: Backend) -> None:
    runs = await _stop_and_restart(database, "fire_once", START + 150 * S, START + 450 * S)
    assert [r.scheduled_at for r in runs] == [START + m * MINUTE for m in (1, 2, 3)]
    assert runs[2].fired_at == START + 450 * S and runs[2].state.value == "succeeded"


async def test_misfire_skip_records_a_late_occurrence_as_missed(database: Backend) -> None:
    runs = await _stop_and_restart(database, "skip", START + 150 * S, START + 450 * S)
    assert [r.state.value for r in runs] == ["succeeded", "succeeded", "missed"]
    assert runs[2].scheduled_at == START + 3 * MINUTE


async def test_misfire_skip_still_fires_within_its_grace(database: Backend) -> None:
    clock = ManualClock(START)
    transport = RecordingTransport(clock)
    body = every_minute("g", misfire={"policy": "skip", "grace": 30})
    async with engine_on(database, clock, transport) as engine:
        await engine.submit(body)
        await engine.advance(150 * S)
    clock.set(START + 3 * MINUTE + 25 * S)  # 25 s late, within the 30 s grace
    async with engine_on(database, clock, transport) as engine:
        await engine.advance(S)
        runs = [run for run, _ in await runs_of(engine, "g")]
    assert [r.state.value for r in runs] == ["succeeded"] * 3
    assert transport.instants()[2] == START + 3 * MINUTE + 25 * S


async def test_a_lapsed_run_lease_is_rescued_with_the_same_idempotency_key(
    database: Backend,
) -> None:
    clock = ManualClock(START)
    first = RecordingTransport(clock)
    fire_at = START + 10 * S
    async with engine_on(database, clock, first) as engine:
        await engine.submit(job("lost", {"kind": "once", "after": 10}))
        # The fire commits 100 ms early (the fire lead); the node dies before the instant.
        await engine.advance(10 * S - 50 * US_PER_MS)
        [(run, _)] = await runs_of(engine, "lost")
        assert run.state.value == "running"
    assert first.received == []
    lease_until = fire_at - 100 * US_PER_MS + LEASE
    second = RecordingTransport(clock)
    async with engine_on(database, clock, second) as engine:
        await engine.advance(lease_until - clock.now() - 1)
        assert second.received == []  # the dead node's lease still holds
        await engine.advance(TEST_CONFIG.run_poll_us)
        [rescued] = second.received
        assert lease_until <= rescued.at <= lease_until + TEST_CONFIG.run_poll_us
        assert rescued.delivery.idempotency_key == run.id and rescued.delivery.attempt == 2
        [(after, attempts)] = await runs_of(engine, "lost")
        assert after.state.value == "succeeded"
        assert [a.outcome.value for a in attempts] == ["abandoned", "success"]


@pytest.mark.parametrize("pause_after_s", [20.0, 59.5])  # before, and inside, the claimed window
async def test_a_paused_countdown_keeps_its_remaining_time(
    database: str, pause_after_s: float
) -> None:
    clock = ManualClock(START)
    async with engine_on(database, clock) as engine:
        await engine.submit(job("cd", {"kind": "once", "after": 60, "countdown": True}))
        await engine.advance(round(pause_after_s * S))
        paused = await engine.service.pause("default", "cd")
        remaining = 60 * S - round(pause_after_s * S)
        assert paused.state is JobState.PAUSED and paused.remaining_us == remaining
        await engine.advance(2 * MINUTE)
        assert engine.transport.received == []
        resumed_at = clock.now()
        await engine.service.resume("default", "cd")
        await engine.advance(remaining + MINUTE)
        assert engine.transport.instants() == [resumed_at + remaining]


async def _cron_instants(database: Backend, expr: str, since: str, until: str) -> list[str]:
    """The UTC instants a New York cron job is delivered at, run through on the engine."""
    clock = ManualClock(parse_instant(since))
    async with engine_on(database, clock, config=DAYS_CONFIG, dispatch=DAYS_DISPATCH) as engine:
        await engine.submit(job("dst", {"kind": "cron", "expr": expr, "tz": "America/New_York"}))
        await engine.advance_to(parse_instant(until))
        return [to_iso(at) for at in engine.transport.instants()]


async def test_a_daily_job_over_spring_forward_moves_by_the_gap(database: Backend) -> None:
    # 02:30 does not exist on 2026-03-08 in New York: it fires at 03:30 EDT, once.
    got = await _cron_instants(database, "30 2 * * *", "2026-03-07T00:00:00Z",
                               "2026-03-10T00:00:00Z")
    assert got == ["2026-03-07T07:30:00Z",  # 02:30 EST
                   "2026-03-08T07:30:00Z",  # 03:30 EDT
                   "2026-03-09T06:30:00Z"]  # 02:30 EDT


async def test_an_hourly_job_over_spring_forward_fires_once_an_hour(database: Backend) -> None:
    got = await _cron_instants(database, "0 * * * *", "2026-03-08T04:30:00Z",  # 23:30 EST
                               "2026-03-08T09:30:00Z")
    # 00:00, 01:00 EST; 02:00 is moved to 03:00 EDT and fires once; then 04:00, 05:00 EDT
    assert got == ["2026-03-08T05:00:00Z", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z",
                   "2026-03-08T08:00:00Z", "2026-03-08T09:00:00Z"]


async def test_a_daily_job_over_fall_back_fires_at_the_first_pass_only(database: Backend) -> None:
    # 01:30 happens twice on 2026-11-01 in New York: it fires at 01:30 EDT, not again at EST.
    got = await _cron_instants(database, "30 1 * * *", "2026-10-31T00:00:00Z",
                               "2026-11-03T00:00:00Z")
    assert got == ["2026-10-31T05:30:00Z",  # 01:30 EDT
                   "2026-11-01T05:30:00Z",  # 01:30 EDT, the first pass
                   "2026-11-02T06:30:00Z"]  # 01:30 EST


async def test_an_hourly_job_over_fall_back_skips_the_repeated_hour(database: Backend) -> None:
    got = await _cron_instants(database, "0 * * * *", "2026-11-01T03:30:00Z",  # 23:30 EDT
                               "2026-11-01T08:30:00Z")
    # 00:00, 01:00 EDT; the second 01:00 (EST) names nothing new; then 02:00, 03:00 EST
    assert got == ["2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z",
                   "2026-11-01T08:00:00Z"]


async def test_a_node_runs_on_an_injected_clock_and_transport(tmp_path: Path) -> None:
    clock = ManualClock(START)
    transport = RecordingTransport(clock)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'node.sqlite'}")
    node = Node(settings, clock=clock, transports=Transports({"http": transport}))
    await node.start()
    try:
        engine = Engine.of_node(node, transport)
        await engine.submit(job("n", {"kind": "once", "after": 30}))
        await engine.advance(30 * S - 1)
        assert transport.received == []
        await engine.advance(1)
        [sent] = transport.received
        assert sent.at == START + 30 * S and sent.delivery.payload == {"key": "n"}
    finally:
        await node.stop()


def test_the_readme_example_prints_what_the_readme_says() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Testing jobs without waiting", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.splitlines() == ["2026-03-07T07:30:00Z attempt 1",
                                        "2026-03-07T07:30:10Z attempt 2",
                                        "2026-03-08T07:30:00Z attempt 1"]
