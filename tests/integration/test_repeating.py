"""Repeating schedules through a real node: occurrences, concurrency, priority, misfires."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server


def every(key: str, url: str, interval_ms: int, repeat: int = -1, **extra: Any) -> dict[str, Any]:
    start = time.time() + 0.2
    return {
        "key": key,
        "schedule": {"kind": "simple", "interval": interval_ms, "unit": "millisecond",
                     "repeat": repeat, "start": _iso(start)},
        "target": {"kind": "http", "url": url},
        "payload": {"key": key},
        **extra,
    }


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()


async def runs_of(server: RunningServer, key: str) -> list[dict[str, Any]]:
    page = await server.client.get(f"/v1/jobs/{key}/runs", params={"limit": 1000})
    runs: list[dict[str, Any]] = page.json()["runs"]
    return runs


async def test_simple_trigger_fires_each_occurrence_once_then_completes(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    await server.client.post("/v1/jobs", json=every("tick", receiver.url, 150, repeat=3))
    got = await receiver.wait_for(4)
    scheduled = [r.headers["Cronwheel-Scheduled-At"] for r in got]
    assert len(set(scheduled)) == 4 and scheduled == sorted(scheduled)
    await asyncio.sleep(0.4)
    assert len(receiver.received) == 4
    job = (await server.client.get("/v1/jobs/tick")).json()
    assert job["state"] == "completed" and job["next_fire_at"] is None


async def test_forbid_skips_occurrences_while_the_previous_run_is_in_flight(
    server: RunningServer,
) -> None:
    slow = await HttpReceiver(delay=0.5).start()
    try:
        body = every("busy", slow.url, 100, repeat=5, concurrency="forbid")
        await server.client.post("/v1/jobs", json=body)
        await asyncio.sleep(1.5)
        states = [r["state"] for r in await runs_of(server, "busy")]
        assert len(states) == 6
        assert states.count("skipped") >= 3 and "succeeded" in states
        assert len(slow.received) == 6 - states.count("skipped")
    finally:
        await slow.stop()


async def test_replace_cancels_the_run_in_flight(server: RunningServer) -> None:
    slow = await HttpReceiver(delay=0.6).start()
    try:
        body = every("fresh", slow.url, 200, repeat=1, concurrency="replace")
        await server.client.post("/v1/jobs", json=body)
        await asyncio.sleep(1.2)
        runs = await runs_of(server, "fresh")
        assert [r["state"] for r in runs] == ["succeeded", "cancelled"]
        assert "replaced" in runs[1]["last_error"]
    finally:
        await slow.stop()


async def test_higher_priority_goes_first_when_more_are_due_than_can_go_at_once(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    async with running_server(tmp_path / "p.sqlite", delivery_concurrency=1,
                              delivery_per_target=1) as server:
        at = _iso(time.time() + 0.5)
        jobs = [{"key": f"p{p}", "schedule": {"kind": "once", "at": at},
                 "target": {"kind": "http", "url": receiver.url}, "payload": p, "priority": p}
                for p in (3, 9, 1, 7, 5, 8, 2, 6, 4, 0)]
        assert (await server.client.post("/v1/jobs/batch", json={"jobs": jobs})).is_success
        got = await receiver.wait_for(10)
        assert [r.json() for r in got] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]


async def test_replace_flag_overwrites_a_different_definition(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    first = every("swap", receiver.url, 60_000)
    assert (await server.client.post("/v1/jobs", json=first)).status_code == 201
    second = every("swap", receiver.url, 100, repeat=0) | {"payload": {"v": 2}}
    assert (await server.client.post("/v1/jobs", json=second)).status_code == 409
    replaced = await server.client.post("/v1/jobs", params={"replace": "true"}, json=second)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["payload"] == {"v": 2}
    [got] = await receiver.wait_for(1)
    assert got.json() == {"v": 2}


async def test_disabled_job_fires_nothing_until_enabled(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    await server.client.post("/v1/jobs", json=every("sw", receiver.url, 100, repeat=-1))
    await receiver.wait_for(1)
    disabled = await server.client.post("/v1/jobs/sw/disable")
    assert disabled.json()["state"] == "paused"
    await asyncio.sleep(0.15)
    count = len(receiver.received)
    await asyncio.sleep(0.5)
    assert len(receiver.received) == count
    enabled = await server.client.post("/v1/jobs/sw/enable")
    assert enabled.json()["state"] == "active"
    await receiver.wait_for(count + 2)
    # the half second of missed occurrences collapsed into one run (fire_once, on time grace 60s)
    await server.client.post("/v1/jobs/sw/cancel")


async def _misfire_runs(tmp_path: Path, url: str, policy: str) -> list[str]:
    database = tmp_path / f"{policy}.sqlite"
    body = every("m", url, 200, misfire={"policy": policy, "grace": 0.05})
    async with running_server(database) as server:
        assert (await server.client.post("/v1/jobs", json=body)).is_success
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)  # about five occurrences pass while nothing runs
    async with running_server(database) as server:
        await asyncio.sleep(0.3)
        await server.client.post("/v1/jobs/m/cancel")
        return [r["state"] for r in await runs_of(server, "m")]


async def test_misfire_policies_after_a_stop(tmp_path: Path, receiver: HttpReceiver) -> None:
    fire_all = await _misfire_runs(tmp_path, receiver.url, "fire_all")
    fire_once = await _misfire_runs(tmp_path, receiver.url, "fire_once")
    skip = await _misfire_runs(tmp_path, receiver.url, "skip")
    # fire_all delivers every missed occurrence; fire_once one for all of them; skip none
    assert fire_all.count("missed") == 0 and len(fire_all) >= 7
    assert fire_once.count("missed") == 0 and len(fire_once) <= len(fire_all) - 3
    assert skip.count("missed") >= 1 and len(skip) >= len(fire_once)
