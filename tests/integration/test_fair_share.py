"""Namespaces share the engine fairly: a flood of high-priority jobs in one namespace, whose
receiver hangs, does not hold up another namespace's job; priority orders jobs within a
namespace only.

Real SQLite file, real HTTP receivers on loopback, a manual clock. The scheduler is stepped by
hand (no loop), so which claim and which fire batch takes each job is the same every run; only
the callbacks travel in real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cronwheel.api.convert import submission
from cronwheel.api.schemas import JobIn
from cronwheel.clock import ManualClock
from cronwheel.delivery import Transports
from cronwheel.domain.jobs import Job
from cronwheel.domain.time import US_PER_MS, US_PER_S, parse_instant, to_iso
from cronwheel.engine.dispatcher import DispatchConfig, Dispatcher
from cronwheel.engine.failover import Failover
from cronwheel.engine.scheduler import EngineConfig, Scheduler
from cronwheel.jobtypes.registry import builtin_job_types
from cronwheel.service import Service
from cronwheel.store import SqlStore
from tests.receivers import HttpReceiver, Received
from tests.stores import postgres_database

START = parse_instant("2026-06-01T00:00:00Z")
DUE = START + 5 * US_PER_S
# A small engine: 20 jobs in the window, 10 per claim, 40 deliveries held, 8 under way.
CONFIG = EngineConfig(window_us=20 * US_PER_S, claim_limit=20, claim_batch=10,
                      run_poll_us=10 * US_PER_S)
DISPATCH = DispatchConfig(concurrency=8, per_target=8, per_namespace=4, capacity=40)
FLOOD = 60


@dataclass
class Rig:
    clock: ManualClock
    store: SqlStore
    scheduler: Scheduler
    dispatcher: Dispatcher
    service: Service
    url: str = ""

    async def submit(self, namespace: str, key: str, url: str, at: int,
                     priority: int = 0) -> None:
        body: dict[str, Any] = {"namespace": namespace, "key": key, "priority": priority,
                                "schedule": {"kind": "once", "at": to_iso(at)},
                                "target": {"kind": "http", "url": url}}
        item = submission(JobIn.model_validate(body), self.clock.now(), builtin_job_types())
        await self.service.submit([item])

    async def steps(self, count: int) -> None:
        for _ in range(count):
            await self.scheduler.step()


@pytest.fixture
def dispatch() -> DispatchConfig:
    return DISPATCH


@pytest.fixture
def config() -> EngineConfig:
    return CONFIG


@pytest.fixture
async def rig(tmp_path: Path, dispatch: DispatchConfig, config: EngineConfig
              ) -> AsyncIterator[Rig]:
    clock = ManualClock(START)
    store = SqlStore(f"sqlite:///{tmp_path / 'fair.sqlite'}")
    await store.start()
    dispatcher = Dispatcher(store, Transports(), clock, "fair:1", "fair", dispatch)
    scheduler = Scheduler(store, dispatcher, clock, "fair:1", config)
    dispatcher.start()
    try:
        yield Rig(clock, store, scheduler, dispatcher, Service(store, clock, scheduler))
    finally:
        await dispatcher.close(grace=0.1)  # the hung callbacks are cut off here
        await store.close()


@pytest.fixture
async def cluster_rig(config: EngineConfig) -> AsyncIterator[Rig]:
    """A node of two on PostgreSQL: it claims only its share of the jobs but for those the
    other node (alive, but not claiming) leaves unclaimed near their time."""
    async with postgres_database() as url:
        clock = ManualClock(START)
        store = SqlStore(url)
        await store.start()
        dispatcher = Dispatcher(store, Transports(), clock, "b:1", "b", DISPATCH)
        scheduler = Scheduler(store, dispatcher, clock, "b:1", config)
        liveness = store.liveness("b:1")
        assert liveness is not None
        gate = Failover(liveness, lambda: store.release("b:1"), clock, "b:1", 30 * US_PER_S)
        gate.holding = True  # as its survey of two live nodes, "a:1" and "b:1", leaves it
        gate.share = (1, 2)
        scheduler.gate = gate
        dispatcher.start()
        try:
            yield Rig(clock, store, scheduler, dispatcher, Service(store, clock, scheduler), url)
        finally:
            await dispatcher.close(grace=0.1)
            await store.close()


@dataclass
class HungReceiver(HttpReceiver):
    """Takes each request and answers none until the test is over."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(time.time(), request.path, dict(request.headers), body))
        self._arrived.set()
        await self.gate.wait()
        return web.Response(text="late")


@pytest.fixture
async def hung() -> AsyncIterator[HungReceiver]:
    receiver = HungReceiver()
    await receiver.start()
    yield receiver
    receiver.gate.set()
    await receiver.stop()


@pytest.fixture
async def quick() -> AsyncIterator[HttpReceiver]:
    receiver = await HttpReceiver().start()
    yield receiver
    await receiver.stop()


def keys(receiver: HttpReceiver) -> list[str]:
    return [r.headers["Cronwheel-Job-Key"] for r in receiver.received]


async def test_a_flood_at_top_priority_with_a_hung_receiver_does_not_hold_up_another_namespace(
    rig: Rig, hung: HungReceiver, quick: HttpReceiver,
) -> None:
    for k in range(FLOOD):
        await rig.submit("flood", f"f{k}", hung.url, DUE, priority=1_000_000)
    await rig.submit("quiet", "q", quick.url, DUE)
    await rig.steps(3)  # claims: the flood fills the window; the quiet job is looked for past it
    rig.clock.set(DUE)
    await rig.steps(1)  # the first fire batch at the instant
    # the flood's receiver has answered nothing, yet the quiet job's callback goes out: the
    # flood holds only its namespace's attempts, not all of the node's
    await quick.wait_for(1)
    assert keys(quick) == ["q"]


async def test_when_the_engine_is_behind_a_quiet_job_is_fired_in_the_first_batch(
    rig: Rig, hung: HungReceiver, quick: HttpReceiver,
) -> None:
    # The flood's backlog is all earlier than the quiet job: earliest first, the quiet job
    # would wait for every batch of it (for ever, with a flood that keeps coming due).
    for k in range(FLOOD):
        await rig.submit("flood", f"f{k}", hung.url, DUE + k * US_PER_MS, priority=1_000_000)
    await rig.submit("quiet", "q", quick.url, DUE + US_PER_S)
    rig.clock.set(DUE + 2 * US_PER_S)  # the node was busy: everything is late
    await rig.steps(1)  # one claim, one fire batch
    await quick.wait_for(1)
    assert keys(quick) == ["q"]


@pytest.mark.parametrize("config", [EngineConfig(window_us=20 * US_PER_S, claim_limit=100,
                                                claim_batch=100, fire_batch=10)])
async def test_a_fire_batch_is_shared_between_the_namespaces_with_jobs_due(
    rig: Rig, hung: HungReceiver, quick: HttpReceiver,
) -> None:
    for k in range(FLOOD):
        await rig.submit("flood", f"f{k}", hung.url, DUE, priority=1_000_000)
    await rig.submit("quiet", "q", quick.url, DUE)
    await rig.steps(1)  # every job claimed into the window
    assert rig.scheduler.holding == FLOOD + 1
    rig.clock.set(DUE)
    await rig.steps(1)  # one fire batch of 10: half of it the flood's, the quiet job in it
    await quick.wait_for(1)
    assert keys(quick) == ["q"]


async def test_a_flood_past_its_share_waits_in_the_database_and_a_later_job_goes_out_at_once(
    rig: Rig, hung: HungReceiver, quick: HttpReceiver,
) -> None:
    for k in range(FLOOD):
        await rig.submit("flood", f"f{k}", hung.url, DUE, priority=1_000_000)
    rig.clock.set(DUE)
    await rig.steps(8)  # every flood job claimed and fired: its runs past its share wait
    await rig.submit("quiet", "late", quick.url, DUE + US_PER_S)
    rig.clock.set(DUE + US_PER_S)
    await rig.steps(2)
    await quick.wait_for(1)
    assert keys(quick) == ["late"]


@pytest.mark.parametrize("dispatch", [DispatchConfig(capacity=2)])
async def test_priority_orders_the_deliveries_within_a_namespace(
    rig: Rig, quick: HttpReceiver,
) -> None:
    for k in range(6):  # the lower the priority, the earlier due, all within one fire lead
        await rig.submit("solo", f"p{k}", quick.url, DUE + k * 10 * US_PER_MS, priority=k)
    rig.clock.set(DUE)
    # one fire batch, with room for a lone namespace's share (half of 2); the others' runs
    # wait in the database (the run claim's room, three quarters of 2 less 1, is none)
    await rig.steps(1)
    rig.clock.set(DUE + 100 * US_PER_MS)  # each delivery goes out on its instant
    await quick.wait_for(1)
    assert keys(quick) == ["p5"]


async def fired(rig: Rig, namespace: str, keys: range) -> int:
    """How many runs the jobs `<namespace>/f<k>` have in the database."""
    prefix = namespace[0]
    return sum([len(await rig.service.runs(namespace, f"{prefix}{k}", None, 10)) for k in keys])


# A pass beside another namespace takes 5 fires (its time budget is all but nothing).
SLICED = EngineConfig(window_us=20 * US_PER_S, claim_limit=100, claim_batch=100,
                      run_poll_us=10 * US_PER_S, fire_pass_us=1, fire_pass_floor=5)


@pytest.mark.parametrize("config", [SLICED])
async def test_beside_another_namespace_a_flood_fires_in_short_passes(
    rig: Rig, hung: HungReceiver, quick: HttpReceiver,
) -> None:
    # The flood's fires are all due; the quiet job comes due a moment later. A pass of all
    # 60 of the flood's would be one transaction the quiet fire must wait for.
    for k in range(FLOOD):
        await rig.submit("flood", f"f{k}", hung.url, DUE, priority=1_000_000)
    await rig.submit("quiet", "q", quick.url, DUE + US_PER_S)
    rig.clock.set(DUE)
    await rig.steps(1)  # the claim, and one pass of the flood alone due
    assert await fired(rig, "flood", range(FLOOD)) == 5
    rig.clock.set(DUE + US_PER_S)
    await rig.steps(1)  # the quiet fire's pass: all of it, and the flood's next slice
    await quick.wait_for(1)
    assert keys(quick) == ["q"]
    assert await fired(rig, "flood", range(FLOOD)) == 9  # 5, then 4 beside the quiet fire


@pytest.mark.parametrize("config", [SLICED])
async def test_alone_in_the_window_a_namespace_fires_all_it_has_due_in_one_pass(
    rig: Rig, hung: HungReceiver,
) -> None:
    for k in range(FLOOD):
        await rig.submit("flood", f"f{k}", hung.url, DUE, priority=1_000_000)
    rig.clock.set(DUE)
    await rig.steps(1)
    assert await fired(rig, "flood", range(FLOOD)) == FLOOD


async def test_a_flood_of_waiting_runs_does_not_take_the_room_another_namespaces_run_needs(
    rig: Rig, hung: HungReceiver, quick: HttpReceiver,
) -> None:
    # The flood's fires past its share of the deliveries wait in the database as runs, all
    # due before the quiet namespace's run: earliest first, they would fill the room.
    for k in range(FLOOD):
        await rig.submit("flood", f"f{k}", hung.url, DUE, priority=1_000_000)
    await rig.submit("quiet", "q", quick.url, DUE + 3_600 * US_PER_S)
    rig.clock.set(DUE)
    await rig.steps(8)  # every flood job fired; its runs past its share wait
    rig.clock.set(DUE + US_PER_S)
    await rig.service.trigger("quiet", "q")  # a run due now, after all of the flood's
    await rig.steps(1)
    await quick.wait_for(1)
    assert keys(quick) == ["q"]


@pytest.fixture
async def slow() -> AsyncIterator[HttpReceiver]:
    receiver = await HttpReceiver(delay=0.2).start()
    yield receiver
    await receiver.stop()


@pytest.mark.parametrize("dispatch", [DispatchConfig(concurrency=8, per_target=2,
                                                     per_namespace=8, capacity=40)])
async def test_a_receiver_shared_with_a_flood_serves_another_namespace_at_the_next_free_slot(
    rig: Rig, slow: HttpReceiver,
) -> None:
    for k in range(20):  # 2 under way at a time, 0.2 s each: 2 s for all of them
        await rig.submit("flood", f"f{k}", slow.url, DUE, priority=1_000_000)
    await rig.submit("quiet", "q", slow.url, DUE + US_PER_S)
    rig.clock.set(DUE)
    await rig.steps(1)  # the flood's 20 deliveries: 2 under way, 18 waiting for the receiver
    rig.clock.set(DUE + US_PER_S)
    await rig.steps(1)
    # first come, first served, the quiet delivery would be the 21st: it takes the first
    # slot the flood frees
    await slow.wait_for(4)
    assert "q" in keys(slow)[2:4]


async def in_share_of_a(rig: Rig, url: str) -> str:
    """Submit quiet jobs until one falls in the other node's share (0 of 2); its key."""
    import asyncpg

    conn = await asyncpg.connect(rig.url)
    try:
        for k in range(64):
            key = f"q{k}"
            await rig.submit("quiet", key, url, DUE)
            job = await rig.service.get("quiet", key)
            if await conn.fetchval("SELECT (hashtext($1) & 2147483647) % 2", job.id) == 0:
                return key
            await rig.service.delete("quiet", key, delete_runs=True)
    finally:
        await conn.close()
    raise AssertionError("no job id hashed to share 0 in 64 tries")


async def test_a_node_taking_a_gone_nodes_jobs_looks_past_a_flood_there_too(
    cluster_rig: Rig, hung: HungReceiver, quick: HttpReceiver,
) -> None:
    rig = cluster_rig
    for k in range(FLOOD):  # about half in each node's share
        await rig.submit("flood", f"f{k}", hung.url, DUE, priority=1_000_000)
    key = await in_share_of_a(rig, quick.url)
    rig.clock.set(DUE + US_PER_S)  # behind: everything is late, the other node never claimed
    # One claim: a batch of the flood's from this node's share, all late, so a look past the
    # flood; the quiet job is not in this node's share, so only a look into the other's
    # (past the flood's occurrences there too, all before it by priority) finds it.
    await rig.steps(1)
    await quick.wait_for(1)
    assert keys(quick) == [key]


@dataclass
class RenewalsSeen:
    sizes: list[int] = field(default_factory=list)


@pytest.mark.parametrize("dispatch", [DispatchConfig(concurrency=8, per_target=8,
                                                     per_namespace=4, capacity=40,
                                                     renew_slice=8)])
async def test_a_floods_held_runs_are_renewed_a_slice_per_write(
    rig: Rig, hung: HungReceiver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One write renewing thousands of a flood's held runs would hold up every fire queued
    # behind it in the writer; slices let the others' fires in between.
    seen = RenewalsSeen()
    renew_runs = rig.store.renew_runs

    async def counted(owner: str, run_ids: Sequence[str], lease_until: int) -> None:
        seen.sizes.append(len(run_ids))
        await renew_runs(owner, run_ids, lease_until)

    monkeypatch.setattr(rig.store, "renew_runs", counted)
    for k in range(FLOOD):
        await rig.submit("flood", f"f{k}", hung.url, DUE, priority=1_000_000)
    rig.clock.set(DUE)
    await rig.steps(8)  # 20 of the flood's deliveries held (its share of 40), hung
    rig.clock.set(DUE + 4 * US_PER_S)  # before the renewal loop's own turn (a third of 30 s)
    await rig.dispatcher.renew()
    assert seen.sizes == [8, 8, 4]
    runs = [run for k in range(FLOOD)
            for run in await rig.service.runs("flood", f"f{k}", None, 10)]
    running = [run for run in runs if run.due_at is not None and run.started_at is not None]
    assert len(running) == 20
    assert all(run.due_at == DUE + 4 * US_PER_S + DISPATCH.lease_us for run in running)


@pytest.mark.parametrize("config", [EngineConfig(
    window_us=20 * US_PER_S, claim_limit=40, claim_batch=40, run_poll_us=10 * US_PER_S,
    fire_pass_us=1, fire_pass_floor=5)])
async def test_beside_another_namespace_the_window_is_topped_up_a_quarter_batch_at_a_time(
    rig: Rig, hung: HungReceiver, quick: HttpReceiver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Short passes free a few places each; claiming them one pass at a time would read past
    # the whole window (the flood's leased jobs) for every few fires.
    limits: list[int] = []
    acquire = rig.store.acquire_due_jobs

    async def counted(owner: str, now: int, horizon: int, limit: int, lease_until: int,
                      share: tuple[int, int] | None = None,
                      others_than: Collection[str] = ()) -> list[Job]:
        if not others_than:
            limits.append(limit)
        return await acquire(owner, now, horizon, limit, lease_until, share, others_than)

    monkeypatch.setattr(rig.store, "acquire_due_jobs", counted)
    for k in range(100):
        await rig.submit("flood", f"f{k}", hung.url, DUE, priority=1_000_000)
    await rig.submit("quiet", "q", quick.url, DUE + 10 * US_PER_S)
    rig.clock.set(DUE)
    await rig.steps(6)  # 5 fires a pass; the window claimed again once 10 places are free
    # the first claim takes a whole batch, each later one waits for a quarter batch of room:
    # never the 4 or 5 places a single pass frees
    assert limits[0] == 40 and len(limits) >= 3 and min(limits[1:]) >= 10, limits
