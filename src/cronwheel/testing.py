"""Drive the engine in tests without a server or the wall clock.

`ManualClock` holds time still until the test moves it; `RecordingTransport` records every
delivery at the clock's time and answers as scripted; `running_engine` builds the scheduler,
dispatcher and services over a store with them. A day of schedules runs in milliseconds, and
the same steps always give the same instants.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from cronwheel.api.convert import submission
from cronwheel.api.schemas import JobIn
from cronwheel.clock import ManualClock
from cronwheel.contracts import Clock, Delivery, DeliveryResult, Store
from cronwheel.delivery import Transports
from cronwheel.domain.jobs import Job
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.time import US_PER_S, Micros
from cronwheel.engine.dispatcher import DispatchConfig, Dispatcher
from cronwheel.engine.resolver import Resolver, ResolverConfig, attach
from cronwheel.engine.scheduler import EngineConfig, Scheduler
from cronwheel.ids import new_id
from cronwheel.jobtypes.registry import builtin_job_types
from cronwheel.runtime import Node
from cronwheel.service import Service
from cronwheel.store.memory import MemoryStore

__all__ = [
    "DAYS_CONFIG",
    "DAYS_DISPATCH",
    "TEST_CONFIG",
    "TEST_DISPATCH",
    "TEST_RESOLVER",
    "Delivered",
    "Engine",
    "ManualClock",
    "MemoryStore",
    "RecordingTransport",
    "failed",
    "running_engine",
    "succeeded",
]

TARGET_KINDS = ("http", "grpc", "tcp", "kafka")
# A server claims 2 s ahead and polls runs twice a second; each is a database round trip, and
# a test's engine time is mostly idle, so tests claim 20 s ahead and poll every 10 s. Fire
# instants do not depend on either: they come from the timers, exact on a manual clock.
TEST_CONFIG = EngineConfig(window_us=20 * US_PER_S, run_poll_us=10 * US_PER_S)
TEST_DISPATCH = DispatchConfig()
# For days of engine time: claim two hours ahead, poll hourly, hold leases three hours.
_HOUR = 3_600 * US_PER_S
DAYS_CONFIG = EngineConfig(window_us=2 * _HOUR, job_lease_us=3 * _HOUR, run_poll_us=_HOUR)
DAYS_DISPATCH = DispatchConfig(lease_us=3 * _HOUR)
# The resolver hears of every run that ends; its sweep (expiry, the safety net) runs once an
# hour of engine time in tests, as runs are polled for days of it, so weeks stay quick. A test
# of expiry picks its own (`running_engine(..., resolve=ResolverConfig(sweep_us=...))`).
TEST_RESOLVER = ResolverConfig(sweep_us=_HOUR)


def succeeded(status_code: int = 200) -> DeliveryResult:
    return DeliveryResult(AttemptOutcome.SUCCESS, status_code=status_code)


def failed(status_code: int = 500, retryable: bool = True) -> DeliveryResult:
    return DeliveryResult(AttemptOutcome.FAILURE, retryable, status_code=status_code,
                          error=f"HTTP {status_code}")


@dataclass(frozen=True, slots=True)
class Delivered:
    delivery: Delivery
    at: Micros  # the clock's reading when the transport was called


@dataclass
class RecordingTransport:
    """A Transport that records what it is given and answers from `script`, then `default`."""

    clock: Clock
    script: deque[DeliveryResult] = field(default_factory=deque)
    default: DeliveryResult = field(default_factory=succeeded)
    received: list[Delivered] = field(default_factory=list)

    def answer(self, results: Iterable[DeliveryResult]) -> None:
        """Queue the answers to the next calls, in order."""
        self.script.extend(results)

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        self.received.append(Delivered(delivery, self.clock.now()))
        return self.script.popleft() if self.script else self.default

    async def aclose(self) -> None:
        return None

    def instants(self, key: str | None = None) -> list[Micros]:
        """When each delivery (of job `key`, or of every job) went out."""
        return [d.at for d in self.received if key is None or d.delivery.key == key]


class Engine:
    """A node's engine (scheduler, dispatcher, job services) without the HTTP layer.

    Build one over a store, or wrap the engine of a `Node` given a ManualClock and a
    RecordingTransport (`Engine.of_node`); either way `advance` steps it through time.
    """

    def __init__(
        self,
        store: Store,
        clock: ManualClock,
        transport: RecordingTransport,
        owner: str | None = None,  # fresh by default: a restart does not inherit leases
        config: EngineConfig = TEST_CONFIG,
        dispatch: DispatchConfig = TEST_DISPATCH,
        resolve: ResolverConfig = TEST_RESOLVER,
    ) -> None:
        self.store = store
        self.clock = clock
        self.transport = transport
        self.owner = owner or f"test:{new_id()[-12:]}"
        self.dispatcher = Dispatcher(store, Transports(dict.fromkeys(TARGET_KINDS, transport)),
                                     clock, self.owner, "test", dispatch, on_retry=self._run_due)
        self.scheduler = Scheduler(store, self.dispatcher, clock, self.owner, config)
        self.resolver = Resolver(store, clock, self._run_due, resolve)
        attach(self.resolver, self.scheduler, self.dispatcher)
        self.service = Service(store, clock, self.scheduler)

    @classmethod
    def of_node(cls, node: Node, transport: RecordingTransport) -> Engine:
        """The engine of a node built with a ManualClock; the node starts and stops it."""
        if not isinstance(node.clock, ManualClock):
            raise TypeError("Engine.of_node needs a Node built with clock=ManualClock(...)")
        engine = cls.__new__(cls)
        engine.store, engine.clock, engine.transport = node.store, node.clock, transport
        engine.owner, engine.dispatcher = node.owner, node.dispatcher
        engine.scheduler, engine.service = node.scheduler, node.service
        engine.resolver = node.resolver
        return engine

    def _run_due(self, due_at: Micros) -> None:
        self.scheduler.run_due(due_at)

    def _tasks(self) -> list[asyncio.Task[Any]]:
        loops = [self.scheduler.task, self.resolver.task]
        return [*(t for t in loops if t is not None), *self.dispatcher.tasks()]

    def _quiet(self, task: asyncio.Task[Any]) -> bool:
        """The results loop waits for work rather than time: quiet when it has none."""
        return task.get_name() == "cronwheel-results" and not self.dispatcher.recording

    async def submit(self, body: dict[str, Any]) -> Job:
        """Create a job from the native API's JSON body (as `POST /v1/jobs` would), then let
        the engine take it in."""
        item = submission(JobIn.model_validate(body), self.clock.now(), builtin_job_types())
        [outcome] = await self.service.submit([item])
        await self.settle()
        return outcome.job

    async def start(self) -> None:
        self.dispatcher.start()
        self.scheduler.start()
        self.resolver.start()
        await self.settle()

    async def stop(self) -> None:
        """Stop as a crashed node would: nothing is released, leases lapse on their own."""
        await self.resolver.stop()
        await self.scheduler.stop()
        await self.dispatcher.close(grace=0)

    async def settle(self) -> None:
        """Let every woken task run until the engine waits on the clock again."""
        await self.clock.settle(self._tasks, self._quiet)

    async def advance(self, delta: Micros) -> None:
        """Move engine time forward, waking each timer at its own instant on the way."""
        await self.clock.advance_and_settle(delta, self._tasks, self._quiet)

    async def advance_to(self, instant: Micros) -> None:
        await self.advance(max(0, instant - self.clock.now()))


@contextlib.asynccontextmanager
async def running_engine(
    store: Store,
    clock: ManualClock,
    transport: RecordingTransport | None = None,
    config: EngineConfig = TEST_CONFIG,
    dispatch: DispatchConfig = TEST_DISPATCH,
    resolve: ResolverConfig = TEST_RESOLVER,
) -> AsyncIterator[Engine]:
    """Start `store` and an engine over it; stop both on the way out."""
    await store.start()
    engine = Engine(store, clock, transport or RecordingTransport(clock),
                    config=config, dispatch=dispatch, resolve=resolve)
    try:
        await engine.start()
        yield engine
    finally:
        await engine.stop()
        await store.close()
