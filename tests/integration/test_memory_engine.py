"""The engine (service, scheduler, dispatcher) over the in-memory store, with no database and no
network: what a user's own tests do. Real time, briefly: jobs are due within a few hundred ms."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from cronwheel.clock import SystemClock
from cronwheel.contracts import Delivery, DeliveryResult
from cronwheel.delivery import Transports
from cronwheel.domain.intervals import SimpleTrigger
from cronwheel.domain.jobs import JobSpec, JobState, RetryPolicy
from cronwheel.domain.runs import AttemptOutcome, Run, RunState
from cronwheel.domain.schedules import OneShot
from cronwheel.domain.targets import HttpTarget
from cronwheel.domain.time import US_PER_MS, US_PER_S
from cronwheel.engine import Dispatcher, EngineConfig, Scheduler
from cronwheel.engine.dispatcher import DispatchConfig
from cronwheel.service import Service, Submission
from cronwheel.store.memory import MemoryStore

TARGET = HttpTarget("http://127.0.0.1:9/never-called")
NO_RETRY = RetryPolicy(max_attempts=1)
QUICK_RETRY = RetryPolicy(max_attempts=3, initial_backoff_us=20 * US_PER_MS,
                          max_backoff_us=50 * US_PER_MS, jitter=0)


class Recorder:
    """A transport that answers from a script (then with success) and keeps every delivery."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.deliveries: list[Delivery] = []
        self._arrived = asyncio.Condition()

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        status = self.script.pop(0) if self.script else 200
        async with self._arrived:
            self.deliveries.append(delivery)
            self._arrived.notify_all()
        if status >= 400:
            return DeliveryResult(AttemptOutcome.FAILURE, True, status, error=f"HTTP {status}")
        return DeliveryResult(AttemptOutcome.SUCCESS, status_code=status)

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.deliveries) >= count), timeout)
        return list(self.deliveries)

    async def aclose(self) -> None:
        return None


@dataclass
class Engine:
    service: Service
    store: MemoryStore
    recorder: Recorder


@contextlib.asynccontextmanager
async def engine(script: list[int] | None = None) -> AsyncIterator[Engine]:
    clock, store, recorder = SystemClock(), MemoryStore(node="n1"), Recorder(script)
    owner = "n1:test"
    dispatcher = Dispatcher(store, Transports({"http": recorder}), clock, owner, "n1",
                            DispatchConfig(lease_us=5 * US_PER_S))
    scheduler = Scheduler(store, dispatcher, clock, owner,
                          EngineConfig(window_us=500 * US_PER_MS, run_poll_us=20 * US_PER_MS,
                                       fire_lead_us=10 * US_PER_MS))
    await store.start()
    dispatcher.start()
    scheduler.start()
    try:
        yield Engine(Service(store, clock, scheduler), store, recorder)
    finally:
        await scheduler.stop()
        await dispatcher.close(grace=1.0)
        await scheduler.release()
        await store.close()


def soon(key: str, after_ms: int = 50, retry: RetryPolicy = NO_RETRY) -> Submission:
    at = time.time_ns() // 1_000 + after_ms * US_PER_MS
    return Submission(JobSpec("ns", key, OneShot(at), TARGET, {"key": key}, retry=retry))


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the store never reached the expected state"
        await asyncio.sleep(0.01)


async def only_run(service: Service, key: str) -> Run:
    [run] = await service.runs("ns", key, None, 10)
    return run


async def test_due_jobs_fire_once_each_and_their_runs_succeed() -> None:
    async with engine() as e:
        await e.service.submit([soon(f"j{i}", 30 + 20 * i) for i in range(4)])
        got = await e.recorder.wait_for(4)
        assert sorted(d.key for d in got) == ["j0", "j1", "j2", "j3"]
        assert all(d.payload == {"key": d.key} and d.attempt == 1 for d in got)

        async def settled() -> bool:
            runs = [await only_run(e.service, f"j{i}") for i in range(4)]
            return all(r.state is RunState.SUCCEEDED for r in runs)

        await until(settled)
        for delivery in got:
            run = await only_run(e.service, delivery.key)
            assert run.id == delivery.idempotency_key
            job = await e.service.get("ns", delivery.key)
            assert job.state is JobState.COMPLETED and job.last_fire_at == delivery.scheduled_at
        assert len(e.recorder.deliveries) == 4


async def test_a_failed_delivery_is_retried_with_the_same_run_id() -> None:
    async with engine(script=[503]) as e:
        await e.service.submit([soon("flaky", retry=QUICK_RETRY)])
        first, second = await e.recorder.wait_for(2)
        assert first.run_id == second.run_id and (first.attempt, second.attempt) == (1, 2)

        async def succeeded() -> bool:
            return (await only_run(e.service, "flaky")).state is RunState.SUCCEEDED

        await until(succeeded)
        _run, log = await e.service.run(first.run_id)
        assert [(a.number, a.outcome, a.status_code) for a in log] == [
            (1, AttemptOutcome.FAILURE, 503), (2, AttemptOutcome.SUCCESS, 200)]


async def test_a_repeating_job_fires_each_occurrence_and_a_trigger_runs_once_more() -> None:
    async with engine() as e:
        start = time.time_ns() // 1_000 + 50 * US_PER_MS
        spec = JobSpec("ns", "tick", SimpleTrigger(start, 60 * US_PER_MS, count=3), TARGET)
        await e.service.submit([Submission(spec)])
        ticks = await e.recorder.wait_for(3)
        assert [d.scheduled_at for d in ticks] == [start + i * 60 * US_PER_MS for i in range(3)]
        manual = await e.service.trigger("ns", "tick", {"extra": True}, override=True)
        got = await e.recorder.wait_for(4)
        assert got[3].run_id == manual.id and got[3].payload == {"extra": True}
        assert len({d.run_id for d in got}) == 4
