"""Dependency chains on three `cronwheel serve` processes sharing PostgreSQL, with one node
killed (SIGKILL) while chains are mid-way. Afterwards: every job of every chain delivered,
each downstream only after its upstream, one run per occurrence, one idempotency key per
job, no run left waiting, pending or running."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cluster_crash import (
    LEASE_S,
    busiest,
    cluster,
    fetch,
    iso,
    sleep_until,
    submit,
    wait_delivered,
)
from tests.receivers import HttpReceiver
from tests.stores import postgres_database

pytestmark = [pytest.mark.postgres, pytest.mark.timing]

CHAINS = 150
SPREAD_S = 3.0  # chains start over this long
STEP_S = 0.3  # b is planned this long after a, c as long after b
SWEEP_S = 5.0  # the resolver's safety net on a server: a lost event waits at most this


def chain(i: int, start: float, url: str) -> list[dict[str, Any]]:
    """a_i, then b_i waiting for it, then c_i waiting for b_i (window: last hour and this)."""
    def job(name: str, at: float, upstream: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "key": f"{name}-{i:03}", "schedule": {"kind": "once", "at": iso(at)},
            "target": {"kind": "http", "url": url}, "payload": {"key": f"{name}-{i:03}"},
        }
        if upstream is not None:
            body["depends_on"] = [{"job": f"{upstream}-{i:03}", "window": "h(1,2)"}]
        return body

    return [job("a", start, None), job("b", start + STEP_S, "a"),
            job("c", start + 2 * STEP_S, "b")]


async def settled(url: str, expected: int, deadline: float) -> None:
    sql = """SELECT (SELECT count(*) FROM runs) AS runs,
                    (SELECT count(*) FROM runs WHERE due_at IS NOT NULL
                                                  OR state = 'waiting') AS live"""
    while True:
        [row] = await fetch(url, sql)
        if row["runs"] == expected and row["live"] == 0:
            return
        assert time.time() < deadline, f"not settled: {dict(row)}, expected {expected} runs"
        await sleep_until(time.time() + 0.1)


async def test_chains_survive_a_node_killed_mid_chain(tmp_path: Path) -> None:
    receiver = await HttpReceiver(delay=0.02).start()
    try:
        async with postgres_database() as url, \
                cluster(url, ["node-a", "node-b", "node-c"], tmp_path) as nodes:
            base = time.time() + 2.0
            jobs = [job for i in range(CHAINS)
                    for job in chain(i, base + SPREAD_S * i / CHAINS, receiver.url)]
            await submit(nodes, jobs, batches=3)
            assert time.time() < base, "submitting took longer than the lead"

            await sleep_until(base + SPREAD_S / 2)
            victim = await busiest(url, [nodes[0], nodes[2]])
            await victim.kill()
            killed_at = time.time()
            mid = await fetch(url, "SELECT count(*) AS n FROM runs WHERE state = 'waiting'")
            keys = {job["key"] for job in jobs}
            deadline = max(base + SPREAD_S + 2 * STEP_S, killed_at + LEASE_S) + SWEEP_S + 15
            await wait_delivered(receiver, keys, deadline)
            await settled(url, len(keys), deadline)

            first: dict[str, float] = {}
            ids: dict[str, set[str]] = defaultdict(set)
            for index, request in enumerate(receiver.received):
                key = request.json()["key"]
                first.setdefault(key, index)
                ids[key].add(request.headers["Idempotency-Key"])
            assert {k for k, v in ids.items() if len(v) > 1} == set()  # one run per job
            late = [i for i in range(CHAINS)
                    if not first[f"a-{i:03}"] < first[f"b-{i:03}"] < first[f"c-{i:03}"]]
            assert late == []  # each downstream went out after its upstream
            runs = await fetch(url, "SELECT job_key, state, count(*) AS n FROM runs "
                                    "GROUP BY job_key, state")
            assert {(r["state"], r["n"]) for r in runs} == {("succeeded", 1)}
            assert len(runs) == len(keys)
            print({"chains": CHAINS, "waiting_at_kill": mid[0]["n"], "victim": victim.name,
                   "deliveries": len(receiver.received)})
    finally:
        await receiver.stop()
