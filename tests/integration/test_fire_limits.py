"""Fires per second per app, in a node's engine on a manual clock over a real SQLite file:
an app over its rate has its fires delayed to the rate's slots (none dropped, none failed)
while another app's fires stay on time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cronwheel.delivery import Transports
from cronwheel.domain.access import AppLimits
from cronwheel.domain.runs import RunState
from cronwheel.domain.time import US_PER_S, parse_instant
from cronwheel.runtime import Node
from cronwheel.settings import Settings
from cronwheel.testing import Engine, ManualClock, RecordingTransport

S = US_PER_S
START = parse_instant("2026-06-01T00:00:00Z")
DUE = START + 10 * S


def once(namespace: str, key: str, **extra: Any) -> dict[str, Any]:
    return {"namespace": namespace, "key": key, "schedule": {"kind": "once", "after": 10},
            "target": {"kind": "http", "url": "http://127.0.0.1:9/never-called"}, **extra}


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Node, Engine]]:
    clock = ManualClock(START)
    transport = RecordingTransport(clock)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'node.sqlite'}")
    node = Node(settings, clock=clock, transports=Transports({"http": transport}))
    await node.start()
    try:
        await node.apps.create_app("slow", ["slow"], limits=AppLimits(fires_per_second=2.0))
        await node.apps.create_app("quick", ["quick"])
        yield node, Engine.of_node(node, transport)
    finally:
        await node.stop()


async def test_an_app_over_its_rate_fires_its_burst_over_the_right_span(
    node: tuple[Node, Engine],
) -> None:
    _node, engine = node
    for k in range(10):
        await engine.submit(once("slow", f"s{k}"))
        await engine.submit(once("quick", f"q{k}"))
    await engine.advance_to(DUE + 10 * S)
    got = engine.transport.received
    quick = sorted(d.at for d in got if d.delivery.namespace == "quick")
    slow = sorted(d.at for d in got if d.delivery.namespace == "slow")
    assert quick == [DUE] * 10  # the other app's fires are on time
    # a burst of 2 (one second's worth), then one every half second: 10 fires over 4 s
    assert slow == [DUE, DUE] + [DUE + k * S // 2 for k in range(1, 9)]
    runs = [r for d in got for r in [await engine.store.get_run(d.delivery.run_id)] if r]
    assert all(run.state is RunState.SUCCEEDED for run, _attempts in runs)
    # each delayed run keeps its occurrence's scheduled time: delayed, not re-planned
    assert {run.scheduled_at for run, _attempts in runs} == {DUE}


async def test_a_delayed_fire_is_not_dropped_by_a_skip_misfire_policy(
    node: tuple[Node, Engine],
) -> None:
    _node, engine = node
    for k in range(6):  # grace 1 s; the sixth fire waits 2 s for its slot
        await engine.submit(once("slow", f"s{k}", misfire={"policy": "skip", "grace": 1}))
    await engine.advance_to(DUE + 5 * S)
    slow = sorted(d.at for d in engine.transport.received)
    assert slow == [DUE, DUE] + [DUE + k * S // 2 for k in range(1, 5)]


async def test_an_apps_new_rate_takes_effect_at_once(node: tuple[Node, Engine]) -> None:
    node_, engine = node
    app = await node_.apps.get_app("slow")
    await node_.apps.update_app(app.name, limits=AppLimits(fires_per_second=10.0))
    for k in range(10):
        await engine.submit(once("slow", f"s{k}"))
    await engine.advance_to(DUE + 5 * S)
    assert sorted(d.at for d in engine.transport.received) == [DUE] * 10
