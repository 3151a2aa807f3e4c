"""Failover in about a second: real `cronwheel serve` processes on one PostgreSQL database.

A node SIGKILLed mid-window loses its session, so its session lock: the survivors hand its
claims and its runs in flight on at once, well before its lease (8 s here) would lapse. A node
whose lock session is killed (pg_terminate_backend) while the process lives stops delivering
what it held, since another node may take it. Neither test restarts PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from cronwheel.store.liveness import NODE_LOCK_CLASS
from tests.e2e.test_cluster_crash import (
    ServeProcess,
    check_history,
    cluster,
    delivered_keys,
    fetch,
    held_by_owner,
    once,
    settled,
    sleep_until,
    submit,
    wait_delivered,
)
from tests.receivers import HttpReceiver
from tests.stores import postgres_database
from tests.support import ADMIN_HEADERS

pytestmark = [pytest.mark.postgres, pytest.mark.timing]

LEASE_S = 8.0  # the default: a failover that waited for it would show
FAILOVER_ENV = {"CRONWHEEL_LEASE_SECONDS": str(LEASE_S)}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def test_a_killed_nodes_claims_fire_within_a_second_and_once(tmp_path: Path) -> None:
    count, window = 900, 4.0
    receiver = await HttpReceiver(delay=0.02).start()  # so runs are in flight at the kill
    try:
        async with postgres_database() as url, \
                cluster(url, ["node-a", "node-b", "node-c"], tmp_path, FAILOVER_ENV) as nodes:
            base = time.time() + 8.0  # submitting takes seconds on a busy machine
            keys = [f"job-{i:04}" for i in range(count)]
            due = {k: base + window * i / count for i, k in enumerate(keys)}
            await submit(nodes, [once(k, due[k], receiver.url) for k in keys], batches=3)
            assert time.time() < base, "submitting took longer than the lead"

            await sleep_until(base + 1.0)
            held = await held_by_owner(url)
            victim = nodes[0]
            await victim.kill()
            killed_at = time.time()
            # Claims are spread: every node holds part of the window, not one node all of it.
            assert all(held.get(node.owner, 0) > 0 for node in nodes), held
            assert held[victim.owner] >= 0.1 * sum(held.values()), held
            victim_jobs = {r["job_id"] for r in await fetch(
                url, "SELECT id AS job_id FROM jobs WHERE lease_owner = $1", victim.owner)}

            deadline = base + window + LEASE_S
            await wait_delivered(receiver, set(keys), deadline)
            await settled(url, count, deadline)
            settled_at = time.time()

            first: dict[str, float] = {}
            for request in receiver.received:
                key = request.json()["key"]
                first.setdefault(key, request.at)
            after_kill = [first[k] - due[k] for k in keys if due[k] >= killed_at]
            p99, worst = quantile(after_kill, 0.99), max(after_kill)
            # A job the dead node had claimed (up to a window ahead) and that waited for its
            # lease would be at least lease - window = 6 s late. Found by its free lock, it is
            # late by the check (250 ms), the release and a claim: under 1.5 s on a quiet
            # machine (bench/README.md); the bounds here leave room for a shared, busy one.
            assert p99 < 3.0, (p99, worst)
            assert worst < LEASE_S - 3.0, (p99, worst)
            fired = await fetch(url, "SELECT job_id, node FROM runs WHERE job_id = ANY($1)",
                                sorted(victim_jobs))
            assert victim.name not in {r["node"] for r in fired}
            stats = await check_history(url, receiver, set(keys))  # one run, one key per job
            stats |= {"held_at_kill": {n.name: held.get(n.owner, 0) for n in nodes},
                      "victim_claimed_jobs_left": len(victim_jobs),
                      "lateness_after_kill_p99_s": round(p99, 3),
                      "lateness_after_kill_max_s": round(worst, 3),
                      "settled_after_kill_s": round(settled_at - killed_at, 2)}
            print("failover:", stats)
    finally:
        await receiver.stop()


async def lock_session(url: str, node: ServeProcess) -> int:
    rows = await fetch(url, """
        SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
          AND classid = $1 AND objid = hashtext($2)::oid""", NODE_LOCK_CLASS, node.owner)
    assert len(rows) == 1, rows
    return int(rows[0]["pid"])


async def test_a_node_that_lost_its_lock_session_stops_delivering(tmp_path: Path) -> None:
    count, window, lease = 600, 4.0, 3.0
    receiver = await HttpReceiver(delay=0.02).start()
    try:
        async with postgres_database() as url, \
                cluster(url, ["node-a", "node-b"], tmp_path,
                        {"CRONWHEEL_LEASE_SECONDS": str(lease)}) as nodes:
            fenced, other = nodes
            base = time.time() + 6.0
            keys = [f"job-{i:04}" for i in range(count)]
            await submit(nodes, [once(k, base + window * i / count, receiver.url)
                                 for i, k in enumerate(keys)], batches=2)

            await sleep_until(base + 1.0)
            pid = await lock_session(url, fenced)
            # Kill its lock session and take the lock in its place, so it cannot come back:
            # the process lives, its pool works, but it no longer holds its lock.
            holder = await asyncpg.connect(url)
            try:
                await holder.execute("SELECT pg_terminate_backend($1)", pid)
                cut_at = await holder.fetchval(
                    "SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint")
                await holder.execute("SELECT pg_advisory_lock($1, hashtext($2))",
                                     NODE_LOCK_CLASS, fenced.owner)
                held_jobs = [r["id"] for r in await fetch(
                    url, "SELECT id FROM jobs WHERE lease_owner = $1", fenced.owner)]

                deadline = base + window + lease + 8.0
                await wait_delivered(receiver, set(keys), deadline)
                await settled(url, count, deadline)
                assert fenced.running
                async with httpx.AsyncClient(base_url=fenced.base_url, timeout=10,
                                             headers=ADMIN_HEADERS) as client:
                    assert (await client.get("/healthz")).status_code == 200

                # Nothing started by the fenced node once its lock was gone (50 ms for the
                # notice of the closed session to reach its loop).
                late = await fetch(url, "SELECT run_id, started_at FROM attempts "
                                        "WHERE node = $1 AND started_at > $2",
                                   fenced.name, cut_at + 50_000)
                assert late == [], late[:5]
                fired = await fetch(url, "SELECT node FROM runs WHERE job_id = ANY($1)",
                                    held_jobs)
                assert {r["node"] for r in fired} <= {other.name}
                stats = await check_history(url, receiver, set(keys))
                print("fenced:", stats | {"held_at_cut": len(held_jobs)})
            finally:
                await holder.close()  # its lock is free again: the node takes it back

            # Back in the cluster: it takes its lock again and its share of new claims.
            again = time.time() + 5.0
            more = [f"more-{i:03}" for i in range(100)]
            await submit(nodes, [once(k, again + 0.5 * i / 100, receiver.url)
                                 for i, k in enumerate(more)],
                         batches=2)
            await wait_delivered(receiver, set(more), again + 10.0)
            rows = await fetch(url, "SELECT node, count(*) AS n FROM runs "
                                    "WHERE job_key LIKE 'more-%' GROUP BY node")
            assert {r["node"] for r in rows} == {fenced.name, other.name}, rows
            assert len(delivered_keys(receiver)) == count + len(more)
    finally:
        await receiver.stop()


async def test_claims_spread_over_the_live_nodes(tmp_path: Path) -> None:
    """Each of three nodes fires about its share of a burst (one node took all of it before)."""
    count = 900
    receiver = await HttpReceiver().start()
    try:
        async with postgres_database() as url, \
                cluster(url, ["node-a", "node-b", "node-c"], tmp_path, FAILOVER_ENV) as nodes:
            base = time.time() + 6.0
            keys = [f"job-{i:04}" for i in range(count)]
            await submit(nodes, [once(k, base + 0.5 * i / count, receiver.url)
                                 for i, k in enumerate(keys)],
                         batches=3)
            await wait_delivered(receiver, set(keys), base + 15.0)
            await asyncio.sleep(0.5)
            rows = await fetch(url, "SELECT node, count(*) AS n FROM runs GROUP BY node")
            fired = {r["node"]: r["n"] for r in rows}
            assert set(fired) == {n.name for n in nodes}, fired
            assert min(fired.values()) >= count / 3 * 0.5, fired
    finally:
        await receiver.stop()
