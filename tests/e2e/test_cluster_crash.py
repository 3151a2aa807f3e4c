"""Several `cronwheel serve` processes on one PostgreSQL database, under real faults.

Each node is a real subprocess on its own loopback port; the receivers are real HTTP servers in
the test's loop; the checks read the receivers' logs and PostgreSQL itself. The faults: a node
killed with SIGKILL mid-window and another restarted, PostgreSQL restarted under load, and a
receiver that hangs or refuses connections. After each, the history must hold: every job
delivered at least once, exactly one run per occurrence, every repeat of a delivery carrying
the same idempotency key, nothing left pending or running.

The PostgreSQL test stops the server that every other test shares: it runs only where this
process may manage it with pg_ctlcluster (as in CI, as root), and otherwise is skipped (a failure
under CRONWHEEL_REQUIRE_SERVICES=1). Don't run it beside other users of that server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.receivers import HttpReceiver
from tests.stores import PG_ADMIN_DB, PG_HOST, PG_PORT, PG_USER, pg_url, postgres_database
from tests.support import ADMIN_HEADERS, free_port, port_open, service_missing

pytestmark = [pytest.mark.postgres, pytest.mark.timing]

LEASE_S = 3.0  # short, so a dead node's work moves within the test
NODE_ENV = {
    "CRONWHEEL_LEASE_SECONDS": str(LEASE_S),
    "CRONWHEEL_HEARTBEAT_SECONDS": "0.3",
    "CRONWHEEL_UPKEEP_SECONDS": "1",
    "CRONWHEEL_LOG_LEVEL": "warning",
}


# -- nodes as real processes ---------------------------------------------------------------------


@dataclass
class ServeProcess:
    """One `cronwheel serve`; its stderr goes to a file, which cannot fill up and block it."""

    name: str
    database_url: str
    log: Path
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None
    owner: str = ""  # this life's owner id, as the node reports it
    env: dict[str, str] = field(default_factory=dict)  # settings over NODE_ENV

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        env = os.environ | NODE_ENV | self.env | {
            "CRONWHEEL_DATABASE_URL": self.database_url,
            "CRONWHEEL_PORT": str(self.port),
            "CRONWHEEL_NODE_NAME": self.name,
        }
        with self.log.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cronwheel", "serve", env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=err,
            )
        await self._wait_healthy()
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10,
                                     headers=ADMIN_HEADERS) as client:
            view = (await client.get("/v1/cluster")).json()
            self.owner = view.get("engine") or view["node"]  # who claims: maybe a child

    async def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 120  # three nodes starting at once on a busy machine
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if not self.running:
                    raise AssertionError(f"{self.name} exited: {self.stderr_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base_url}/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} did not become healthy: {self.stderr_tail()}")

    async def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it does not end."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 15)
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    def stderr_tail(self, chars: int = 4_000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-chars:]

    def error_lines(self) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if " ERROR " in line or " WARNING " in line]


async def migrate(url: str) -> None:
    """Once, before the nodes start: several nodes migrating one fresh database would race."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cronwheel", "migrate", "--database-url", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


@contextlib.asynccontextmanager
async def cluster(url: str, names: Sequence[str], logs: Path,
                  env: dict[str, str] | None = None) -> AsyncIterator[list[ServeProcess]]:
    nodes = [ServeProcess(name, url, logs / f"{name}.log", env=env or {}) for name in names]
    try:
        await migrate(url)
        started = await asyncio.gather(*(n.start() for n in nodes), return_exceptions=True)
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        yield nodes
    except BaseException:
        for node in nodes:
            print(f"--- stderr of {node.name} (tail) ---\n{node.stderr_tail()}")
        raise
    finally:
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)


# -- jobs, receivers and the database ------------------------------------------------------------


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def once(key: str, due: float, url: str, **extra: Any) -> dict[str, Any]:
    target = {"kind": "http", "url": url, **extra.pop("target", {})}
    return {"key": key, "schedule": {"kind": "once", "at": iso(due)}, "target": target,
            "payload": {"key": key, "due": due}, **extra}


async def submit(nodes: Sequence[ServeProcess], jobs: list[dict[str, Any]], batches: int) -> None:
    """The jobs in `batches` batches, spread over the nodes' batch endpoints, all at once."""
    size = -(-len(jobs) // batches)

    async def post(node: ServeProcess, chunk: list[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(base_url=node.base_url, timeout=30,
                                     headers=ADMIN_HEADERS) as client:
            answer = await client.post("/v1/jobs/batch", json={"jobs": chunk})
        assert answer.status_code == 201, answer.text
        assert answer.json()["created"] == len(chunk)

    await asyncio.gather(*(
        post(nodes[i % len(nodes)], jobs[start:start + size])
        for i, start in enumerate(range(0, len(jobs), size))
    ))


async def sleep_until(epoch: float) -> None:
    await asyncio.sleep(max(0.0, epoch - time.time()))


def delivered_keys(receiver: HttpReceiver) -> set[str]:
    return {request.json()["key"] for request in receiver.received}


async def wait_delivered(receiver: HttpReceiver, keys: set[str], deadline: float) -> None:
    while not keys <= (got := delivered_keys(receiver)):
        if time.time() > deadline:
            missing = sorted(keys - got)
            raise AssertionError(f"{len(missing)} of {len(keys)} never delivered: {missing[:5]}")
        await asyncio.sleep(0.1)


async def fetch(url: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def settled(url: str, expected_runs: int, deadline: float) -> None:
    """Every job fired, `expected_runs` runs, none pending or running."""
    sql = """SELECT (SELECT count(*) FROM runs) AS runs,
                    (SELECT count(*) FROM runs WHERE due_at IS NOT NULL) AS live,
                    (SELECT count(*) FROM jobs WHERE next_fire_at IS NOT NULL) AS waiting"""
    while True:
        [row] = await fetch(url, sql)
        if row["runs"] == expected_runs and row["live"] == 0 and row["waiting"] == 0:
            return
        if time.time() > deadline:
            raise AssertionError(f"not settled: {dict(row)} (expected {expected_runs} runs)")
        await asyncio.sleep(0.1)


async def check_history(url: str, receiver: HttpReceiver, keys: set[str]) -> dict[str, Any]:
    """The promises, from the receiver's log and the database; returns counts to print."""
    delivery_keys: dict[str, set[str]] = defaultdict(set)
    deliveries: Counter[str] = Counter()
    for request in receiver.received:
        key = request.json()["key"]
        delivery_keys[key].add(request.headers["Idempotency-Key"])
        deliveries[key] += 1
    assert set(delivery_keys) == keys  # every accepted job delivered at least once
    orphans = await fetch(url, "SELECT a.run_id, a.node FROM attempts a "
                               "LEFT JOIN runs r ON r.id = a.run_id WHERE r.id IS NULL")
    split = {key: sorted(ids) for key, ids in delivery_keys.items() if len(ids) > 1}
    # Repeats share the key: a second key means a second run went out for one occurrence.
    assert not split, (f"{len(split)} jobs delivered under several idempotency keys, e.g. "
                       f"{sorted(split.items())[:3]}; attempts of runs that do not exist: "
                       f"{len(orphans)}")
    assert not orphans, orphans[:5]
    per_job = await fetch(url, "SELECT job_id, count(*) AS n FROM runs "
                               "WHERE kind = 'scheduled' GROUP BY job_id")
    assert len(per_job) == len(keys)
    assert {row["n"] for row in per_job} == {1}  # exactly one run per occurrence
    runs = await fetch(url, "SELECT id, job_key, state, node FROM runs")
    assert {row["job_key"]: {row["id"]} for row in runs} == delivery_keys  # key is the run id
    assert Counter(row["state"] for row in runs) == {"succeeded": len(keys)}
    outcomes = await fetch(url, "SELECT outcome, count(*) AS n FROM attempts GROUP BY outcome")
    return {
        "jobs": len(keys),
        "deliveries": sum(deliveries.values()),
        "jobs_delivered_more_than_once": sum(1 for n in deliveries.values() if n > 1),
        "attempts_by_outcome": {row["outcome"]: row["n"] for row in outcomes},
        "runs_by_node": dict(Counter(row["node"] for row in runs)),
    }


async def cluster_view(node: ServeProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=node.base_url, timeout=10,
                                 headers=ADMIN_HEADERS) as client:
        answer = await client.get("/v1/cluster")
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()
    return view


# -- 1. a node killed, another restarted, mid-window ---------------------------------------------


async def held_by_owner(url: str) -> dict[str, int]:
    """Claimed jobs and running runs per lease owner, now."""
    rows = await fetch(url, """
        SELECT lease_owner, count(*) AS n FROM (
            SELECT lease_owner FROM jobs WHERE lease_owner IS NOT NULL
            UNION ALL
            SELECT lease_owner FROM runs WHERE lease_owner IS NOT NULL AND state = 'running'
        ) AS held GROUP BY lease_owner""")
    return {row["lease_owner"]: row["n"] for row in rows}


async def busiest(url: str, candidates: Sequence[ServeProcess]) -> ServeProcess:
    """The candidate holding the most claimed jobs and running runs right now."""
    held = await held_by_owner(url)
    return max(candidates, key=lambda node: held.get(node.owner, 0))


async def test_sigkill_and_restart_of_nodes_mid_window(tmp_path: Path) -> None:
    count, window = 2_000, 4.0
    receiver = await HttpReceiver(delay=0.02).start()  # so runs are in flight at the kill
    try:
        async with postgres_database() as url, \
                cluster(url, ["node-a", "node-b", "node-c"], tmp_path) as nodes:
            a, b, c = nodes
            base = time.time() + 2.0
            keys = [f"job-{i:04}" for i in range(count)]
            await submit(nodes, [once(k, base + window * i / count, receiver.url)
                                 for i, k in enumerate(keys)], batches=4)
            assert time.time() < base, "submitting took longer than the lead"

            await sleep_until(base + 1.2)
            victim = await busiest(url, [a, c])
            survivor = c if victim is a else a
            # What it holds as it dies, read just before: survivors now release a dead node's
            # claims within a lock survey (a quarter second), so a read after the kill may
            # find them gone already. What it fired in between is its own, checked below.
            held_jobs = [r["id"] for r in await fetch(
                url, "SELECT id FROM jobs WHERE lease_owner = $1", victim.owner)]
            held_runs = [r["id"] for r in await fetch(
                url, "SELECT id FROM runs WHERE lease_owner = $1 AND state = 'running'",
                victim.owner)]
            await victim.kill()
            killed_at = time.time()
            await asyncio.sleep(0.2)  # a commit already sent when it died lands, or not
            delivered_at_kill = len(delivered_keys(receiver))
            assert 0 < delivered_at_kill < count, "the kill should land mid-window"
            assert held_jobs or held_runs, "the killed node held nothing"

            await sleep_until(base + 1.8)
            old_b = b.owner
            restart_began = time.time()
            await b.stop()  # SIGTERM: a graceful stop hands its window back
            await b.start()  # again, on the same port
            restart_took = time.time() - restart_began

            deadline = max(base + window, killed_at + LEASE_S) + 8.0
            await wait_delivered(receiver, set(keys), deadline)
            await settled(url, count, deadline)
            settled_at = time.time()

            # Rescue: the dead node's claimed jobs were fired by others ...
            # (once each; the few it fired in the last moment before dying are its own) ...
            fired = await fetch(url, "SELECT job_id, node FROM runs WHERE job_id = ANY($1)",
                                held_jobs)
            assert sorted(r["job_id"] for r in fired) == sorted(held_jobs)
            rescued = [r["job_id"] for r in fired if r["node"] != victim.name]
            # ... and its runs in flight were recorded abandoned and delivered again by others
            # (unless it finished them itself before it died).
            lost = await fetch(url, "SELECT run_id, outcome, node FROM attempts "
                                    "WHERE run_id = ANY($1)", held_runs)
            abandoned = {r["run_id"] for r in lost
                         if r["outcome"] == "abandoned" and r["node"] == victim.name}
            succeeded = {r["run_id"] for r in lost
                         if r["outcome"] == "success" and r["node"] != victim.name}
            own = {r["run_id"] for r in lost
                   if r["outcome"] == "success" and r["node"] == victim.name}
            assert abandoned == succeeded and abandoned | own == set(held_runs)
            assert rescued or abandoned, "nothing the dead node held was rescued"

            # The cluster view, a lease after the kill: the dead node is not alive.
            await sleep_until(killed_at + LEASE_S + 0.5)
            view = {n["owner"]: n for n in (await cluster_view(survivor))["nodes"]}
            assert not view[victim.owner]["alive"]
            assert view[victim.owner]["stopped_at"] is None  # it never said goodbye
            assert view[old_b]["stopped_at"] is not None and not view[old_b]["alive"]
            assert view[b.owner]["alive"] and view[survivor.owner]["alive"]

            stats = await check_history(url, receiver, set(keys))
            stats |= {
                "killed": victim.name, "killed_held_jobs": len(held_jobs),
                "killed_held_runs": len(held_runs), "delivered_at_kill": delivered_at_kill,
                "node_restart_took_s": round(restart_took, 2),
                "settled_after_kill_s": round(settled_at - killed_at, 2),
            }
            print("sigkill+restart:", stats)
    finally:
        await receiver.stop()


# -- 2. PostgreSQL restarted under load ----------------------------------------------------------


@dataclass(frozen=True)
class PgCluster:
    version: str
    name: str


def local_pg_cluster() -> PgCluster:
    """The Debian-managed cluster serving PG_HOST:PG_PORT, if this process may restart it."""
    if PG_HOST not in ("127.0.0.1", "localhost", "::1"):
        service_missing("a local PostgreSQL", f"{PG_HOST} is not loopback")
    lister = shutil.which("pg_lsclusters")
    if shutil.which("pg_ctlcluster") is None or lister is None:
        service_missing("pg_ctlcluster", "postgresql-common is not installed")
    import subprocess

    listed = subprocess.run([lister, "--no-header"], capture_output=True, text=True, check=False)
    for line in listed.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[2] == str(PG_PORT) and fields[3].startswith("online"):
            me = pwd.getpwuid(os.geteuid()).pw_name
            if me not in ("root", fields[4]):
                service_missing("pg_ctlcluster", f"{me} may not restart a cluster of {fields[4]}")
            return PgCluster(fields[0], fields[1])
    service_missing("pg_ctlcluster", f"no online cluster on port {PG_PORT}: {listed.stdout!r}")


async def pg_ctlcluster(pg: PgCluster, action: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "pg_ctlcluster", "--skip-systemctl-redirect", pg.version, pg.name, action,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    if proc.returncode != 0:
        message = f"{action} failed ({proc.returncode}): {out.decode()}"
        if action == "start":  # never leave the server down quietly
            raise AssertionError(f"PostgreSQL {message}")
        service_missing("pg_ctlcluster", message)


async def restart_postgres(pg: PgCluster, down_s: float) -> None:
    """`restart` (down for a moment), or stop, stay down `down_s` seconds, start."""
    if not down_s:
        await pg_ctlcluster(pg, "restart")
        return
    await pg_ctlcluster(pg, "stop")
    try:
        await asyncio.sleep(down_s)
    finally:
        await pg_ctlcluster(pg, "start")


async def admin(sql: str, timeout: float = 20.0) -> None:
    """One statement on the admin database, retried while the server (re)starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(user=PG_USER, host=PG_HOST, port=PG_PORT,
                                         database=PG_ADMIN_DB)
            try:
                await conn.execute(sql)
                return
            finally:
                await conn.close()
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def restart_proof_database() -> AsyncIterator[str]:
    """Like postgres_database(), but keeps no admin connection open across the restart."""
    if not port_open(PG_HOST, PG_PORT):
        service_missing("PostgreSQL", f"nothing listens on {PG_HOST}:{PG_PORT}")
    name = f"cw_test_{uuid.uuid4().hex[:12]}"
    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def wait_side_channels(url: str, listeners: int, deadline: float) -> dict[str, int]:
    """Every node's processes LISTEN again, and one holds the singleton advisory lock."""
    while True:
        [row] = await fetch(url, """
            SELECT (SELECT count(*) FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid()
                      AND application_name <> 'cronwheel-liveness'
                      AND (query LIKE 'LISTEN %' OR query LIKE '%pg_try_advisory_lock%'))
                       AS channels,
                   (SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                      AND d.datname = current_database()) AS leaders""")
        if row["channels"] == listeners and row["leaders"] == 1:
            return dict(row)
        if time.time() > deadline:
            raise AssertionError(f"side channels not back: {dict(row)}")
        await asyncio.sleep(0.2)


@pytest.mark.serial  # restarts PostgreSQL: runs alone, after the parallel part (Makefile)
@pytest.mark.parametrize("down_s", [0.0, 4.0], ids=["restart", "down-4s"])
async def test_nodes_carry_on_when_postgresql_restarts(tmp_path: Path, down_s: float) -> None:
    pg = local_pg_cluster()
    count, window = 500, 5.0
    receiver = await HttpReceiver(delay=0.02).start()
    try:
        async with restart_proof_database() as url, \
                cluster(url, ["node-a", "node-b"], tmp_path) as nodes:
            base = time.time() + 1.5
            keys = [f"job-{i:03}" for i in range(count)]
            await submit(nodes, [once(k, base + window * i / count, receiver.url)
                                 for i, k in enumerate(keys)], batches=2)
            assert time.time() < base

            await sleep_until(base + 1.5)
            delivered_before = len(delivered_keys(receiver))
            began = time.time()
            await restart_postgres(pg, down_s)
            back = time.time()
            delivered_during = len(delivered_keys(receiver)) - delivered_before

            deadline = max(base + window, back) + LEASE_S + 8.0
            await wait_delivered(receiver, set(keys), deadline)
            await settled(url, count, deadline)
            settled_at = time.time()
            assert all(node.running for node in nodes), "a node died with the database"
            # every process listens: a node's API process and its engine process (the layout
            # `serve` starts by default)
            channels = await wait_side_channels(url, 2 * len(nodes), time.time() + 5.0)
            for node in nodes:
                view = {n["owner"]: n for n in (await cluster_view(node))["nodes"]}
                assert all(view[n.owner]["alive"] for n in nodes)

            stats = await check_history(url, receiver, set(keys))
            stats |= {
                "delivered_before_restart": delivered_before,
                "delivered_until_back": delivered_during,
                "restart_took_s": round(back - began, 2),
                "settled_after_restart_s": round(settled_at - back, 2),
                "side_channels": channels,
                "log_lines": {n.name: len(n.error_lines()) for n in nodes},
            }
            print("postgres restart:", stats)
            for node in nodes:
                print(f"--- {node.name}: first logged problems ---")
                print("\n".join(node.error_lines()[:8]))
    finally:
        await receiver.stop()


# -- 3. a receiver that hangs, one that refuses ---------------------------------------------------


EARLY_TOLERANCE_S = 0.05
# A node imports its HTTP transport (aiohttp) on its first delivery, which blocks its loop for
# 0.15-0.6 s (two CPUs, several nodes starting at once); so lateness is measured from the
# second second on, after every node has delivered something.
WARM_UP_S = 1.0


def in_flight_at(moment: float, starts: Sequence[float], timeout: float) -> int:
    """Attempts at the hung receiver still open at `moment` (each is held `timeout` s)."""
    return sum(1 for start in starts if start <= moment < start + timeout)


async def test_a_hung_or_refusing_receiver_does_not_delay_other_jobs(tmp_path: Path) -> None:
    timeout, healthy_count = 2.0, 500
    healthy = await HttpReceiver().start()
    hung = await HttpReceiver(delay=timeout + 1.0).start()  # answers only after the timeout
    refused = f"http://127.0.0.1:{free_port()}/callback"  # nothing listens there
    try:
        async with postgres_database() as url, \
                cluster(url, ["node-a", "node-b"], tmp_path) as nodes:
            base = time.time() + 1.5
            faults = base + WARM_UP_S
            jobs = [
                *(once(f"ok-{i:03}", base + 5.0 * i / healthy_count, healthy.url)
                  for i in range(healthy_count)),
                *(once(f"hung-{i:03}", faults + 0.5 * i / 200, hung.url,
                       target={"timeout": timeout}, retry={"max_attempts": 1})
                  for i in range(200)),
                *(once(f"refused-{i:03}", faults + 0.5 * i / 100, refused,
                       target={"timeout": timeout}, retry={"initial_backoff": 0.5})
                  for i in range(100)),
            ]
            await submit(nodes, jobs, batches=2)
            assert time.time() < base

            deadline = base + 15.0
            await wait_delivered(healthy, {f"ok-{i:03}" for i in range(healthy_count)}, deadline)
            await wait_delivered(hung, {f"hung-{i:03}" for i in range(200)}, deadline)
            await settled(url, healthy_count + 300, deadline)
            assert len(healthy.received) == healthy_count and len(hung.received) == 200

            starts = [r.at for r in hung.received]
            warm = sorted(r.at - r.json()["due"] for r in healthy.received
                          if r.json()["due"] < faults)
            late = sorted(r.at - r.json()["due"] for r in healthy.received
                          if r.json()["due"] >= faults)
            beside = [in_flight_at(r.at, starts, timeout) for r in healthy.received
                      if r.json()["due"] >= faults]
            # On time while the hung receiver holds its whole allowance. Never early, but for
            # the node's estimate of the database clock (re-read every heartbeat from one
            # round trip), seen up to ~15 ms ahead under load: allowed here, not hidden.
            assert late[0] > -EARLY_TOLERANCE_S and late[-1] < 1.0, (late[:3], late[-5:])
            assert warm[0] > -EARLY_TOLERANCE_S
            assert max(beside) >= 128  # the per-receiver allowance (delivery_per_target)
            assert sum(1 for n in beside if n >= 100) >= 100

            rows = await fetch(url, """
                SELECT split_part(r.job_key, '-', 1) AS grp, r.state, a.outcome,
                       count(*) AS n
                FROM runs r JOIN attempts a ON a.run_id = r.id GROUP BY 1, 2, 3""")
            summary = {(r["grp"], r["state"], r["outcome"]): r["n"] for r in rows}
            assert summary == {("hung", "failed", "timeout"): 200,
                               ("refused", "failed", "error"): 300,
                               ("ok", "succeeded", "success"): healthy_count}
            print("hung/refused receivers:", {
                "healthy_lateness_ms_beside_faults": {
                    "n": len(late),
                    "min": round(late[0] * 1e3, 1),
                    "p50": round(statistics.median(late) * 1e3, 1),
                    "p99": round(late[int(len(late) * 0.99) - 1] * 1e3, 1),
                    "max": round(late[-1] * 1e3, 1)},
                "healthy_lateness_ms_warm_up_max": round(warm[-1] * 1e3, 1),
                "hung_in_flight_beside_healthy": {"max": max(beside),
                                                  "median": statistics.median(beside)},
                "healthy_deliveries_beside_100_plus_hung": sum(1 for n in beside if n >= 100),
                "attempts": {"/".join(k): v for k, v in summary.items()},
            })
    finally:
        await healthy.stop()
        await hung.stop()
