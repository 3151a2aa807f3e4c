"""Several nodes on one PostgreSQL database, in process: wake-ups, liveness, clock, upkeep."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pytest

from cronwheel.store import SqlStore
from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server
from tests.stores import PG_ADMIN_DB, PG_HOST, PG_PORT, PG_USER, postgres_database
from tests.support import wait_until

FAST: dict[str, Any] = {"heartbeat_seconds": 0.2, "upkeep_seconds": 0.2, "lease_seconds": 3}


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with postgres_database() as url:
        yield url


def at(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds_from_now, UTC).isoformat()


def job(key: str, url: str, when: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "schedule": {"kind": "once", "at": when},
            "target": {"kind": "http", "url": url}, "payload": {"key": key}, **extra}


def idle(server: RunningServer) -> bool:
    """No delivery held and every result written."""
    dispatcher = server.node.dispatcher
    return len(dispatcher.tasks()) == 2 and not dispatcher.recording  # its two loops only


async def cluster_with(server: RunningServer, alive: int) -> dict[str, Any] | None:
    """The cluster view once exactly `alive` nodes are alive, else None."""
    view: dict[str, Any] = (await server.client.get("/v1/cluster")).json()
    live = [n for n in view["nodes"] if n["alive"]]
    return view if len(live) == alive else None


async def finished_runs(server: RunningServer, key: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = (await server.client.get(f"/v1/jobs/{key}/runs")).json()["runs"]
    return [r for r in runs if r["finished_at"] is not None]


async def no_runs(server: RunningServer, key: str) -> bool:
    runs: list[dict[str, Any]] = (await server.client.get(f"/v1/jobs/{key}/runs")).json()["runs"]
    return runs == []


async def test_two_nodes_fire_every_job_once(pg_url: str, receiver: HttpReceiver) -> None:
    async with running_server(pg_url, **FAST) as a, running_server(pg_url, **FAST) as b:
        when = at(1.0)
        for server, half in ((a, range(0, 300)), (b, range(300, 600))):
            jobs = [job(f"j{i:03}", receiver.url, when) for i in half]
            assert (await server.client.post("/v1/jobs/batch", json={"jobs": jobs})).is_success
        got = await receiver.wait_for(600, timeout=20)
        await wait_until(lambda: idle(a) and idle(b))  # every result recorded
        keys = [r.json()["key"] for r in receiver.received]
        assert sorted(keys) == [f"j{i:03}" for i in range(600)]  # each once, none twice
        nodes = {r.headers["Idempotency-Key"] for r in got}
        assert len(nodes) == 600
        runs = (await a.client.get("/v1/jobs/j000/runs")).json()["runs"]
        assert len(runs) == 1


async def test_a_job_submitted_on_another_node_wakes_the_one_holding_the_window(
    pg_url: str, receiver: HttpReceiver
) -> None:
    # The engine node refreshes its window only every 10 s; only a NOTIFY can wake it sooner.
    async with running_server(pg_url, window_ms=20_000, **FAST) as engine, \
            running_server(pg_url, run_engine=False, **FAST) as api_only:
        far = job("far", receiver.url, at(15))
        assert (await engine.client.post("/v1/jobs", json=far)).is_success
        await wait_until(lambda: engine.node.scheduler.holding == 1)  # asleep toward it
        due = time.time() + 0.3
        near = job("near", receiver.url, datetime.fromtimestamp(due, UTC).isoformat())
        assert (await api_only.client.post("/v1/jobs", json=near)).is_success
        [got] = await receiver.wait_for(1, timeout=5)
        assert got.json() == {"key": "near"}
        assert due <= got.at < due + 1.0


async def test_a_node_with_a_skewed_clock_fires_on_the_database_clock(
    pg_url: str, receiver: HttpReceiver
) -> None:
    async with running_server(pg_url, clock_offset_ms=300_000, **FAST) as skewed:
        assert abs(skewed.node.db_clock.offset_us + 300_000_000) < 1_000_000  # measured
        due = time.time() + 1.0
        body = job("on-time", receiver.url, datetime.fromtimestamp(due, UTC).isoformat())
        assert (await skewed.client.post("/v1/jobs", json=body)).is_success
        [got] = await receiver.wait_for(1, timeout=5)
        assert due <= got.at < due + 1.0  # not five minutes early, i.e. at once


async def test_cluster_lists_live_nodes_and_one_leader_that_hands_over(pg_url: str) -> None:
    async with running_server(pg_url, **FAST) as a:
        async with running_server(pg_url, **FAST) as b:
            view = await wait_until(lambda: cluster_with(a, 2))
            owners = {n["owner"]: n for n in view["nodes"]}
            assert set(owners) == {a.node.owner, b.node.owner}
            assert all(n["alive"] for n in owners.values())
            assert [a.node.duties.leader, b.node.duties.leader].count(True) == 1
            first_leader = a if a.node.duties.leader else b
        # b has stopped: it says so, and a leads (if it did not already)
        view = await wait_until(lambda: cluster_with(a, 1))
        gone = next(n for n in view["nodes"] if n["owner"] == b.node.owner)
        assert gone["stopped_at"] is not None and not gone["alive"]
        await wait_until(lambda: a.node.duties.leader)
        assert first_leader in (a, b)


async def test_upkeep_purges_runs_past_retention(pg_url: str, receiver: HttpReceiver) -> None:
    async with running_server(pg_url, retention_days=1.5 / 86_400, **FAST) as server:
        body = job("old", receiver.url, at(0.1))
        assert (await server.client.post("/v1/jobs", json=body)).is_success
        await receiver.wait_for(1)
        finished = await wait_until(lambda: finished_runs(server, "old"))
        assert len(finished) == 1
        # purged once older than 1.5 s: upkeep runs every 0.2 s
        await wait_until(lambda: no_runs(server, "old"), timeout=10)


async def test_healthz_reports_the_database(pg_url: str) -> None:
    async with running_server(pg_url, **FAST) as server:
        assert (await server.client.get("/healthz")).json()["status"] == "ok"
        store = cast(SqlStore, server.node.store)  # drop its pooled connections
        await store.engine.dispose()
        await store.read_engine.dispose()
        # a dropped database cannot be reached: the node says so instead of "ok"
        admin = await asyncpg.connect(user=PG_USER, host=PG_HOST, port=PG_PORT,
                                      database=PG_ADMIN_DB)
        name = pg_url.rsplit("/", 1)[1]
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
        resp = await server.client.get("/healthz")
        assert resp.status_code == 503 and resp.json()["status"] == "unavailable"
