"""Repeating schedules through a real node: occurrences, concurrency, priority.

Pause and resume of a repeating job and the misfire policies run on the manual clock, in
test_engine_clock.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server
from tests.support import wait_until


def every(
    key: str, url: str, interval_ms: int, repeat: int = -1, start_in: float = 0.2, **extra: Any
) -> dict[str, Any]:
    start = time.time() + start_in
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


async def completed(server: RunningServer, key: str) -> dict[str, Any] | None:
    """The job once it has fired its last occurrence, else None."""
    job: dict[str, Any] = (await server.client.get(f"/v1/jobs/{key}")).json()
    return job if job["state"] == "completed" else None


async def final_states(server: RunningServer, key: str) -> list[str] | None:
    """The states of the job's runs once none is still pending or running, else None."""
    states = [r["state"] for r in await runs_of(server, key)]
    return None if not states or {"pending", "running"} & set(states) else states


async def test_simple_trigger_fires_each_occurrence_once_then_completes(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    await server.client.post("/v1/jobs", json=every("tick", receiver.url, 150, repeat=3))
    got = await receiver.wait_for(4)
    scheduled = [r.headers["Cronwheel-Scheduled-At"] for r in got]
    assert len(set(scheduled)) == 4 and scheduled == sorted(scheduled)
    job = await wait_until(lambda: completed(server, "tick"))  # nothing can fire after it
    assert job["next_fire_at"] is None
    assert len(receiver.received) == 4


async def test_forbid_skips_occurrences_while_the_previous_run_is_in_flight(
    server: RunningServer,
) -> None:
    slow = await HttpReceiver(delay=0.5).start()
    try:
        body = every("busy", slow.url, 100, repeat=5, concurrency="forbid")
        await server.client.post("/v1/jobs", json=body)
        await wait_until(lambda: completed(server, "busy"))
        states = await wait_until(lambda: final_states(server, "busy"))
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
        await wait_until(lambda: completed(server, "fresh"))
        await wait_until(lambda: final_states(server, "fresh"))
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
    first = every("swap", receiver.url, 60_000, start_in=60)  # not due while it is replaced
    assert (await server.client.post("/v1/jobs", json=first)).status_code == 201
    second = every("swap", receiver.url, 100, repeat=0) | {"payload": {"v": 2}}
    assert (await server.client.post("/v1/jobs", json=second)).status_code == 409
    replaced = await server.client.post("/v1/jobs", params={"replace": "true"}, json=second)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["payload"] == {"v": 2}
    [got] = await receiver.wait_for(1)
    assert got.json() == {"v": 2}
