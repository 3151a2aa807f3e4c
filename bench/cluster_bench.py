"""cronwheel cluster benchmark: the same workload on SQLite (1 node) and PostgreSQL (1-3 nodes).

For each configuration and each run, a fresh database (a new SQLite file, or a new PostgreSQL
database dropped afterwards) and fresh `cronwheel serve` nodes, each on its own loopback port
with its own CRONWHEEL_NODE_NAME. One receiver process (bench/receiver.py) takes every
callback. Two scenarios:

* throughput: `--throughput-jobs` jobs due within `--throughput-span` seconds (far above what
  the cluster can fire), submitted in batches spread round-robin over the nodes' APIs before
  the first one is due. Reported: callbacks/s at the receiver between first and last arrival.
* lateness: `--rate` fires/s for `--duration` seconds; every `--tick` a batch of jobs due
  `--lead` seconds later goes to the next node's API. Reported: lateness p50/p99/max.
* failover (2+ nodes): `--failover-jobs` jobs due in `--failover-bursts` bursts (all of a
  burst at one instant, `--failover-gap` s apart); `--failover-kill` s after the first burst the
  node holding the most claims is SIGKILLed. Reported: lateness p50/p99/max over every job (the
  dead node's claims included), claims held per node at the kill, duplicates.

Both check for duplicates twice: at the receiver (the same run id delivered again is a
redelivery; two run ids for one job is a DUPLICATE RUN) and in the database (one scheduled run
per job), and count missing callbacks. CPU of every node, PostgreSQL, the receiver and this
driver is read from /proc for each measured phase.

    .venv/bin/python bench/cluster_bench.py                          # all four, once
    .venv/bin/python bench/cluster_bench.py --repeat 2 --name cluster-x2
    .venv/bin/python bench/cluster_bench.py --layout pg-1 --layout pg-3 --only throughput
    .venv/bin/python bench/cluster_bench.py --set FIRE_LEAD_MS=50   # a server setting

Results: one table on stdout (also as Markdown) and bench/results/<name>.json.
See bench/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import aiohttp
import orjson
import typer
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fire_bench lives next to this file
import fire_bench as fb

console = fb.console
DUPLICATE_EXAMPLES = 10  # duplicate runs listed in detail (run ids, nodes) per run
NODE_STOP_GRACE_S = 20.0


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


class Scenario(StrEnum):
    THROUGHPUT = "throughput"
    LATENESS = "lateness"
    FAILOVER = "failover"


@dataclass(frozen=True)
class Layout:
    """One configuration: a backend and a number of nodes."""

    name: str
    backend: Backend
    nodes: int


LAYOUTS = {
    layout.name: layout
    for layout in (
        Layout("sqlite-1", Backend.SQLITE, 1),
        Layout("pg-1", Backend.POSTGRES, 1),
        Layout("pg-2", Backend.POSTGRES, 2),
        Layout("pg-3", Backend.POSTGRES, 3),
    )
}


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    admin_db: str

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    repeat: int
    layouts: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    throughput_jobs: int
    throughput_span: float
    throughput_lead: float
    rate: int
    duration: float
    lead: float
    tick: float
    batch_size: int
    batch_concurrency: int  # per node
    drain_timeout: float
    failover_jobs: int
    failover_bursts: int
    failover_gap: float
    failover_kill: float
    receiver_impl: str
    server_env: dict[str, str]
    quiet_wait: float
    keep: bool
    postgres: Postgres


# -- the database ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_database(pg: Postgres, backend: Backend,
                         workdir: Path) -> AsyncIterator[str]:
    """A new SQLite file in `workdir`, or a new PostgreSQL database dropped afterwards."""
    if backend is Backend.SQLITE:
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    import asyncpg

    name = f"cw_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(user=pg.user, host=pg.host, port=pg.port,
                                  database=pg.admin_db, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield pg.url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _sqlite_rows(path: str, sql: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return [tuple(row) for row in connection.execute(sql).fetchall()]
    finally:
        connection.close()


async def db_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one read-only query on the cluster's database (either backend)."""
    if url.startswith("sqlite:///"):
        return await asyncio.to_thread(_sqlite_rows, url.removeprefix("sqlite:///"), sql)
    import asyncpg

    connection = await asyncpg.connect(dsn=url, timeout=10)
    try:
        return [tuple(row) for row in await connection.fetch(sql, timeout=120)]
    finally:
        await connection.close()


async def postgres_settings(pg: Postgres) -> dict[str, str]:
    """The server settings that bear on write throughput, for the record."""
    import asyncpg

    with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
        connection = await asyncpg.connect(user=pg.user, host=pg.host, port=pg.port,
                                           database=pg.admin_db, timeout=10)
        try:
            rows = await connection.fetch(
                "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
                ["server_version", "fsync", "synchronous_commit", "shared_buffers",
                 "max_connections", "wal_level", "commit_delay"])
            return {str(r["name"]): str(r["setting"]) for r in rows}
        finally:
            await connection.close()
    return {}


# -- the nodes -------------------------------------------------------------------------------


@dataclass
class Cluster:
    layout: Layout
    nodes: list[fb.Child]
    names: list[str]  # CRONWHEEL_NODE_NAME of each node
    database_url: str
    workdir: Path

    def check_alive(self) -> None:
        for node in self.nodes:
            node.check_alive()

    def base(self, index: int) -> str:
        """The API of node `index` modulo the node count: round-robin submission."""
        return self.nodes[index % len(self.nodes)].base_url


def stop_all(children: list[fb.Child], grace: float = NODE_STOP_GRACE_S) -> None:
    """SIGTERM every child at once, then wait for each (killing any still up at the end)."""
    for child in children:
        if child.proc.poll() is None:
            child.proc.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait(5)


async def migrate(url: str, workdir: Path, timeout: float = 120.0) -> None:
    """`cronwheel migrate` once, so the nodes do not queue on the migration lock at start."""
    log = workdir / "migrate.log"
    with log.open("wb") as handle:
        proc = await asyncio.create_subprocess_exec(
            *fb.cronwheel_argv("migrate", "--database-url", url),
            stdout=handle, stderr=asyncio.subprocess.STDOUT, cwd=workdir)
        try:
            code = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"cronwheel migrate took over {timeout:g}s") from None
    if code != 0:
        raise RuntimeError(f"cronwheel migrate exited with {code}:\n{fb.tail(log)}")


def start_node(cfg: ClusterConfig, url: str, workdir: Path, name: str) -> fb.Child:
    port = fb.free_port()
    env = fb.settings_env({**cfg.server_env, "NODE_NAME": name})
    return fb.spawn(name, fb.serve_argv(port, url), env, workdir / f"{name}.log", port)


@contextlib.asynccontextmanager
async def running_cluster(cfg: ClusterConfig, layout: Layout, session: aiohttp.ClientSession,
                          label: str) -> AsyncIterator[Cluster]:
    """A fresh database and `layout.nodes` nodes on it; all stopped and dropped afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=f"cw-cluster-{layout.name}-{label}-"))
    nodes: list[fb.Child] = []
    names = [f"bench-{layout.name}-n{i + 1}" for i in range(layout.nodes)]
    try:
        async with fresh_database(cfg.postgres, layout.backend, workdir) as url:
            try:
                if layout.backend is Backend.POSTGRES:
                    await migrate(url, workdir)
                nodes.extend(start_node(cfg, url, workdir, name) for name in names)
                await asyncio.gather(*(fb.wait_ready(n, session, "/healthz") for n in nodes))
                yield Cluster(layout, nodes, names, url, workdir)
            finally:
                await asyncio.to_thread(stop_all, nodes)
    finally:
        if cfg.keep:
            console.print(f"[dim]kept {workdir}[/dim]")
        else:
            fb.remove_dir(workdir)


# -- CPU of every process involved -----------------------------------------------------------


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes (postmaster, backends, background workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


def cpu_of(pids: list[int]) -> dict[int, float]:
    return {pid: cpu for pid in pids if math.isfinite(cpu := fb.server_cpu_seconds(pid))}


@dataclass
class Meter:
    """CPU (% of one core) of each node, PostgreSQL, the receiver and this driver over one
    phase; `other_cpu_pct` is everything else on the machine, `idle_pct` what was left."""

    processes: dict[str, int]  # label -> pid
    start_wall: float = field(default_factory=time.monotonic)
    start: dict[int, float] = field(default_factory=dict)
    start_pg: dict[int, float] = field(default_factory=dict)
    start_self: float = 0.0
    start_machine: float = 0.0

    def __post_init__(self) -> None:
        self.start = cpu_of(list(self.processes.values()))
        self.start_pg = cpu_of(postgres_pids())
        self.start_self = time.process_time()
        self.start_machine = fb.machine_busy()

    def read(self) -> dict[str, float]:
        wall = time.monotonic() - self.start_wall
        if wall <= 0:
            return {}
        out: dict[str, float] = {}
        for label, pid in self.processes.items():
            used = fb.server_cpu_seconds(pid) - self.start.get(pid, math.nan)
            out[f"cpu_{label}_pct"] = fb.rounded(100 * used / wall, 1)
        # backends that started during the phase count in full; ones that exited are lost
        postgres = sum(cpu - self.start_pg.get(pid, 0.0)
                       for pid, cpu in cpu_of(postgres_pids()).items())
        out["cpu_postgres_pct"] = fb.rounded(100 * postgres / wall, 1)
        out["cpu_driver_pct"] = fb.rounded(100 * (time.process_time() - self.start_self) / wall,
                                           1)
        machine = 100 * (fb.machine_busy() - self.start_machine) / wall
        known = sum(v for v in out.values() if math.isfinite(v))
        out["cpu_nodes_pct"] = fb.rounded(sum(v for k, v in out.items()
                                              if k.startswith("cpu_node") and math.isfinite(v)),
                                          1)
        out["machine_cpu_pct"] = fb.rounded(machine, 1)
        out["other_cpu_pct"] = fb.rounded(max(0.0, machine - known), 1)
        out["idle_pct"] = fb.rounded(max(0.0, 100 * len(os.sched_getaffinity(0)) - machine), 1)
        out["phase_wall_s"] = fb.rounded(wall, 2)
        return out


# -- checking for duplicates and missing callbacks -------------------------------------------


def receiver_audit(rows: list[list[Any]]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """From every callback record: redeliveries (one run id received again) and keys that
    arrived under two or more run ids (DUPLICATE RUNS), with those run ids."""
    run_ids_by_key: dict[str, set[str]] = defaultdict(set)
    deliveries: Counter[str] = Counter()
    for _received, _scheduled, run_id, key, _attempt in rows:
        run_ids_by_key[key].add(run_id)
        deliveries[run_id] += 1
    duplicated = {key: sorted(ids) for key, ids in run_ids_by_key.items() if len(ids) > 1}
    return {
        "rx_callbacks": len(rows),
        "rx_keys": len(run_ids_by_key),
        "rx_redelivered_runs": sum(1 for n in deliveries.values() if n > 1),
        "rx_redeliveries": sum(n - 1 for n in deliveries.values() if n > 1),
        "rx_duplicate_run_jobs": len(duplicated),
    }, duplicated


def like(prefix: str) -> str:
    if not prefix.replace("-", "").isalnum():
        raise ValueError(f"unsafe key prefix {prefix!r}")
    return f"'{prefix}-%'"


async def database_audit(cluster: Cluster, prefix: str, expected: int) -> dict[str, Any]:
    """One scheduled run per job, straight from the runs table; and who fired what."""
    url, pattern = cluster.database_url, like(prefix)
    runs = f"FROM runs WHERE job_key LIKE {pattern}"
    by_kind = dict(await db_rows(url, f"SELECT kind, count(*) {runs} GROUP BY kind"))
    scheduled = f"{runs} AND kind = 'scheduled'"
    fired_jobs = (await db_rows(url, f"SELECT count(DISTINCT job_id) {scheduled}"))[0][0]
    dup_jobs = await db_rows(url, f"SELECT job_id, job_key, count(*) {scheduled} "
                                  "GROUP BY job_id, job_key HAVING count(*) > 1")
    states = await db_rows(url, f"SELECT state, count(*) {scheduled} GROUP BY state")
    retried = (await db_rows(url, f"SELECT count(*) {scheduled} AND attempts > 1"))[0][0]
    per_node = dict(await db_rows(url, f"SELECT node, count(*) {scheduled} GROUP BY node"))
    out: dict[str, Any] = {
        "db_scheduled_runs": int(by_kind.get("scheduled", 0)),
        "db_other_runs": int(sum(n for k, n in by_kind.items() if k != "scheduled")),
        "db_jobs_fired": int(fired_jobs),
        "db_jobs_unfired": max(0, expected - int(fired_jobs)),
        "db_duplicate_run_jobs": len(dup_jobs),
        "db_runs_retried": int(retried),
        "db_run_states": {str(s): int(n) for s, n in states},
    }
    for index, name in enumerate(cluster.names):
        out[f"fired_node{index + 1}"] = int(per_node.get(name, 0))
    if dup_jobs:
        out["db_duplicate_details"] = await duplicate_details(
            url, [str(row[0]) for row in dup_jobs[:DUPLICATE_EXAMPLES]])
    return out


async def duplicate_details(url: str, job_ids: list[str]) -> list[dict[str, Any]]:
    """Every run and attempt of the given jobs: run ids, kinds, states and node names."""
    ids = ", ".join(f"'{job_id}'" for job_id in job_ids if job_id.replace("-", "").isalnum())
    if not ids:
        return []
    runs = await db_rows(url, "SELECT id, job_id, job_key, kind, state, scheduled_at, fired_at, "
                              f"attempts, node, lease_owner FROM runs WHERE job_id IN ({ids}) "
                              "ORDER BY job_id, fired_at")
    attempts = await db_rows(url, "SELECT a.run_id, a.number, a.node, a.outcome, a.started_at "
                                  "FROM attempts a JOIN runs r ON r.id = a.run_id "
                                  f"WHERE r.job_id IN ({ids}) ORDER BY a.run_id, a.number")
    fields = ("run_id", "job_id", "key", "kind", "state", "scheduled_at", "fired_at",
              "attempts", "node", "lease_owner")
    details = [dict(zip(fields, row, strict=True)) for row in runs]
    for detail in details:
        detail["attempt_log"] = [
            {"number": a[1], "node": a[2], "outcome": a[3], "started_at": a[4]}
            for a in attempts if a[0] == detail["run_id"]]
    return details


# -- scenarios -------------------------------------------------------------------------------


async def submit_spread(session: aiohttp.ClientSession, cluster: Cluster, total: int, size: int,
                        per_node: int, make: Callable[[int], dict[str, Any]]) -> fb.Requests:
    """`total` jobs in batches of `size`, batch i to node i mod n, `per_node` × n at a time."""
    outcome = fb.Requests()

    async def one(index: int) -> None:
        jobs = [make(i) for i in range(index * size, min(total, (index + 1) * size))]
        await fb.post_jobs(session, cluster.base(index), jobs, outcome)

    await fb.run_pool(math.ceil(total / size), per_node * len(cluster.nodes), one)
    return outcome


async def cluster_buckets(session: aiohttp.ClientSession,
                          cluster: Cluster) -> list[tuple[float, float]]:
    """The nodes' fire-lateness histograms (at dispatch), summed bucket by bucket."""
    total: dict[float, float] = defaultdict(float)
    for node in cluster.nodes:
        for le, count in await fb.server_lateness_buckets(session, node):
            total[le] += count
    return sorted(total.items())


@dataclass
class ClusterBench:
    cfg: ClusterConfig
    session: aiohttp.ClientSession
    receiver: fb.Child

    @property
    def url(self) -> str:
        return f"{self.receiver.base_url}/callback"

    def meter(self, cluster: Cluster) -> Meter:
        processes = {f"node{i + 1}": node.pid for i, node in enumerate(cluster.nodes)}
        return Meter({**processes, "receiver": self.receiver.pid})

    async def warm(self, cluster: Cluster, per_node: int = 200) -> None:
        """Fire jobs through every node before measuring: connection pools, first claims."""
        await fb.receiver_call(self.session, self.receiver, "POST", "reset")
        count = per_node * len(cluster.nodes)
        first_us = round((time.time() + 1.0) * 1e6)
        spacing_us = round(2e6 / count)  # over 2 s: every node's claim loop gets a turn
        warm = await submit_spread(
            self.session, cluster, count, per_node, 1,
            lambda i: fb.job(f"warm-{i}", first_us + i * spacing_us, self.url))
        await fb.wait_callbacks(self.session, self.receiver, warm.jobs, time.time() + 20, cluster)
        await fb.receiver_call(self.session, self.receiver, "POST", "reset")

    async def drained(self, cluster: Cluster, expected: int, deadline: float,
                      meter: Meter) -> dict[str, Any]:
        """Wait for the callbacks, read the CPU, then give late duplicates a second."""
        await fb.wait_callbacks(self.session, self.receiver, expected, deadline, cluster,
                                settle=0.0)
        cpu = meter.read()
        await asyncio.sleep(1.0)
        return cpu

    async def audit(self, cluster: Cluster, prefix: str, expected: int) -> dict[str, Any]:
        """Receiver records and the database, each checked for duplicate runs."""
        path = cluster.workdir / f"{prefix}-records.json"
        await fb.receiver_call(self.session, self.receiver, "POST",
                               f"dump?path={quote(str(path))}")
        try:
            rows = orjson.loads(path.read_bytes())["rows"]
        finally:
            path.unlink(missing_ok=True)
        out, duplicated = receiver_audit(rows)
        if duplicated:
            out["rx_duplicate_examples"] = dict(list(duplicated.items())[:DUPLICATE_EXAMPLES])
        return {**out, **await database_audit(cluster, prefix, expected)}

    async def throughput(self, cluster: Cluster) -> dict[str, Any]:
        cfg = self.cfg
        await self.warm(cluster)
        count = cfg.throughput_jobs
        t0_us = round((time.time() + cfg.throughput_lead) * 1e6)
        spacing_us = cfg.throughput_span * 1e6 / count
        started = time.monotonic()
        loaded = await submit_spread(
            self.session, cluster, count, cfg.batch_size, cfg.batch_concurrency,
            lambda i: fb.job(f"tp-{i}", t0_us + round(i * spacing_us), self.url))
        submit_wall = time.monotonic() - started
        overlap = time.time() > t0_us / 1e6
        if overlap:
            console.print("[yellow]throughput: submission ran past the first fire; "
                          "raise --throughput-lead[/yellow]")
        await asyncio.sleep(max(0.0, t0_us / 1e6 - time.time()))
        buckets = await cluster_buckets(self.session, cluster)
        meter = self.meter(cluster)
        cpu = await self.drained(cluster, loaded.jobs,
                                 t0_us / 1e6 + cfg.throughput_span + cfg.drain_timeout, meter)
        stats = await fb.receiver_call(self.session, self.receiver, "GET", "stats")
        per_second = stats.get("per_second", [])
        return {
            "jobs": loaded.jobs,
            "submit_errors": loaded.errors,
            "offered_per_s": fb.rounded(count / cfg.throughput_span, 0),
            "submit_jobs_per_s": fb.rounded(loaded.jobs / submit_wall, 1),
            "submit_overlapped_firing": overlap,
            "callbacks_per_s": fb.rounded(float(stats.get("per_s", math.nan)), 1),
            "arrival_span_s": fb.rounded(float(stats.get("span_s", math.nan)), 2),
            "best_second": max(per_second) if per_second else 0,
            "arrivals_per_second": per_second,
            **fb.callback_summary(stats, loaded.jobs, "lateness"),
            **fb.bucket_quantiles(buckets, await cluster_buckets(self.session, cluster)),
            **cpu,
            "nodes_cpu_us_per_callback": fb.rounded(
                1e4 * cpu.get("cpu_nodes_pct", math.nan) * cpu.get("phase_wall_s", math.nan)
                / max(1, int(stats.get("count", 0))), 1),
            **await self.audit(cluster, "tp", loaded.jobs),
        }

    async def lateness(self, cluster: Cluster) -> dict[str, Any]:
        cfg = self.cfg
        await self.warm(cluster)
        buckets = await cluster_buckets(self.session, cluster)
        meter = self.meter(cluster)
        submitted, t0, ticks = await fb.submit_at_rate(
            self.session, cluster.base, self.url, "lat",
            (cfg.rate, cfg.tick, cfg.duration, cfg.lead))
        last_due = t0 + ticks * cfg.tick + cfg.lead
        cpu = await self.drained(cluster, submitted.jobs, last_due + cfg.drain_timeout, meter)
        stats = await fb.receiver_call(self.session, self.receiver, "GET", "stats")
        return {
            "fires_per_s": cfg.rate,
            "fire_seconds": cfg.duration,
            "lead_s": cfg.lead,
            "submit_errors": submitted.errors,
            "submit_req_p99_ms": fb.rounded(1000 * fb.quantile(sorted(submitted.latencies),
                                                               0.99)),
            **fb.callback_summary(stats, submitted.jobs, "lateness"),
            **fb.bucket_quantiles(buckets, await cluster_buckets(self.session, cluster)),
            **cpu,
            **await self.audit(cluster, "lat", submitted.jobs),
        }

    async def failover(self, cluster: Cluster) -> dict[str, Any]:
        """Bursts of due jobs, and the node holding the most claims SIGKILLed between them."""
        cfg = self.cfg
        await self.warm(cluster)
        per_burst = max(1, cfg.failover_jobs // cfg.failover_bursts)
        count = per_burst * cfg.failover_bursts
        first = time.time() + cfg.lead + 2.0  # submitting 3,000 takes about a second
        gap_us = round(cfg.failover_gap * 1e6)
        first_us = round(first * 1e6)
        loaded = await submit_spread(
            self.session, cluster, count, cfg.batch_size, cfg.batch_concurrency,
            lambda i: fb.job(f"fo-{i}", first_us + (i // per_burst) * gap_us, self.url))
        if time.time() > first:
            console.print("[yellow]failover: submission ran past the first burst[/yellow]")
        meter = self.meter(cluster)
        await asyncio.sleep(max(0.0, first + cfg.failover_kill - time.time()))
        held = await claims_by_node(cluster)
        victim = max(range(len(cluster.nodes)), key=lambda i: held.get(cluster.names[i], 0))
        cluster.nodes[victim].proc.kill()
        killed_at = time.time()
        await asyncio.to_thread(cluster.nodes[victim].proc.wait, 10)
        survivors = Survivors([n for i, n in enumerate(cluster.nodes) if i != victim])
        last_due = first + (cfg.failover_bursts - 1) * cfg.failover_gap
        await fb.wait_callbacks(self.session, self.receiver, loaded.jobs,
                                last_due + cfg.drain_timeout, survivors, settle=0.0)
        cpu = meter.read()
        settled_after = time.time() - killed_at
        await asyncio.sleep(1.0)  # late duplicates
        stats = await fb.receiver_call(self.session, self.receiver, "GET", "stats")
        return {
            "jobs": loaded.jobs,
            "submit_errors": loaded.errors,
            "bursts": cfg.failover_bursts,
            "kill_after_first_burst_s": cfg.failover_kill,
            "killed": cluster.names[victim],
            **{f"held_at_kill_node{i + 1}": held.get(name, 0)
               for i, name in enumerate(cluster.names)},
            "callbacks_settled_after_kill_s": fb.rounded(settled_after, 2),
            **fb.callback_summary(stats, loaded.jobs, "lateness"),
            **cpu,
            **await self.audit(cluster, "fo", loaded.jobs),
        }

    async def run(self, layout: Layout, scenario: Scenario) -> dict[str, Any]:
        steps = {Scenario.THROUGHPUT: self.throughput, Scenario.LATENESS: self.lateness,
                 Scenario.FAILOVER: self.failover}
        async with running_cluster(self.cfg, layout, self.session, scenario.value) as cluster:
            result = await steps[scenario](cluster)
            result["node_names"] = cluster.names
            return result


@dataclass
class Survivors:
    """The nodes left after a kill, watched while waiting for callbacks."""

    nodes: list[fb.Child]

    def check_alive(self) -> None:
        for node in self.nodes:
            node.check_alive()


async def claims_by_node(cluster: Cluster) -> dict[str, int]:
    """Claimed jobs and running runs held by each node name, right now."""
    rows = await db_rows(cluster.database_url, """
        SELECT lease_owner, count(*) FROM (
            SELECT lease_owner FROM jobs WHERE lease_owner IS NOT NULL
            UNION ALL
            SELECT lease_owner FROM runs WHERE lease_owner IS NOT NULL AND state = 'running'
        ) AS held GROUP BY lease_owner""")
    out: dict[str, int] = defaultdict(int)
    for owner, n in rows:
        out[str(owner).rsplit(":", 1)[0]] += int(n)  # owner ids are <node name>:<random>
    return dict(out)


# -- reporting -------------------------------------------------------------------------------


def duplicate_runs(run: dict[str, Any]) -> int:
    """Jobs with two or more run ids, by the receiver or by the database (the larger)."""
    return max(int(run.get("rx_duplicate_run_jobs", 0)), int(run.get("db_duplicate_run_jobs", 0)))


def cell(runs: list[dict[str, Any]], median: dict[str, Any], key: str) -> str:
    """The median, and each run's value when there are several (`*`: disturbed run)."""
    value = fb.fmt(median.get(key, math.nan), 0)
    if len(runs) < 2:
        return value
    each = " / ".join(fb.fmt(r.get(key), 0) + ("*" if r.get("disturbed") else "") for r in runs)
    return f"{value} ({each})"


def pct(median: dict[str, Any], key: str) -> str:
    value = median.get(key)
    return f"{value:.0f}" if isinstance(value, int | float) else "-"


def cpu_cell(median: dict[str, Any], nodes: int) -> str:
    """Median CPU (% of one core): each node, PostgreSQL, the receiver, and what was idle."""
    parts = "+".join(pct(median, f"cpu_node{i + 1}_pct") for i in range(nodes))
    return (f"{parts} / {pct(median, 'cpu_postgres_pct')} / {pct(median, 'cpu_receiver_pct')}"
            f" / {pct(median, 'idle_pct')}")


def total(runs: list[dict[str, Any]], key: str) -> int:
    return sum(int(r.get(key, 0) or 0) for r in runs)


COLUMNS = ("config", "nodes", "fires/s", "best 1 s", "fire CPU % nodes / pg / rx / idle",
           "p50 ms", "p99 ms", "max ms", "1k/s CPU % nodes / pg / rx / idle",
           "redelivered", "DUPLICATE RUNS", "missing")


def table_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for name, by_scenario in results.items():
        layout = LAYOUTS[name]
        tp = by_scenario.get(Scenario.THROUGHPUT.value, {"runs": [], "median": {}})
        lat = by_scenario.get(Scenario.LATENESS.value, {"runs": [], "median": {}})
        every = tp["runs"] + lat["runs"]
        if not every:
            continue
        rows.append([
            name, str(layout.nodes),
            cell(tp["runs"], tp["median"], "callbacks_per_s"),
            cell(tp["runs"], tp["median"], "best_second"),
            cpu_cell(tp["median"], layout.nodes),
            cell(lat["runs"], lat["median"], "lateness_p50_ms"),
            cell(lat["runs"], lat["median"], "lateness_p99_ms"),
            cell(lat["runs"], lat["median"], "lateness_max_ms"),
            cpu_cell(lat["median"], layout.nodes),
            fb.fmt(total(every, "rx_redeliveries")),
            fb.fmt(sum(duplicate_runs(r) for r in every)),
            fb.fmt(total(every, "missing")),
        ])
    return rows


def verdicts(results: dict[str, dict[str, Any]]) -> list[str]:
    every = [r for s in results.values() for v in s.values() for r in v["runs"]]
    dups = sum(duplicate_runs(r) for r in every)
    lines = [f"no duplicate runs ever: {'yes' if dups == 0 else f'NO ({dups})'} "
             f"over {len(every)} runs, {fb.fmt(total(every, 'rx_callbacks'))} callbacks"]
    pg1 = results.get("pg-1", {}).get(Scenario.THROUGHPUT.value)
    if pg1:
        value = float(pg1["median"].get("callbacks_per_s", math.nan))
        lines.append(f">= 2,000 fires/s on one PostgreSQL node: "
                     f"{'yes' if value >= 2_000 else 'no'} ({fb.fmt(value)})")
    for name, by_scenario in results.items():
        lat = by_scenario.get(Scenario.LATENESS.value)
        if lat:
            value = float(lat["median"].get("lateness_p99_ms", math.nan))
            lines.append(f"p99 < 50 ms at 1,000 fires/s, {name}: "
                         f"{'yes' if value < 50 else 'no'} ({fb.fmt(value)} ms)")
    return lines


FAILOVER_COLUMNS = ("config", "held at kill (per node)", "p50 ms", "p99 ms", "max ms",
                    "idle CPU %", "redelivered", "DUPLICATE RUNS", "missing")


def failover_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for name, by_scenario in results.items():
        fo = by_scenario.get(Scenario.FAILOVER.value)
        if not fo:
            continue
        runs, median = fo["runs"], fo["median"]
        held = " / ".join(fb.fmt(median.get(f"held_at_kill_node{i + 1}", math.nan))
                          for i in range(LAYOUTS[name].nodes))
        rows.append([name, held, cell(runs, median, "lateness_p50_ms"),
                     cell(runs, median, "lateness_p99_ms"), cell(runs, median, "lateness_max_ms"),
                     cell(runs, median, "idle_pct"), fb.fmt(total(runs, "rx_redeliveries")),
                     fb.fmt(sum(duplicate_runs(r) for r in runs)), fb.fmt(total(runs, "missing"))])
    return rows


def report(env: dict[str, Any], results: dict[str, dict[str, Any]]) -> None:
    console.print(f"[bold]environment[/bold]: {env['nproc']} CPUs ({env['cpu']}), "
                  f"{env['mem_total_gb']} GB, Python {env['python']}, SQLite {env['sqlite']}, "
                  f"PostgreSQL {env['postgres'].get('server_version', '?')}, {env['platform']}")
    table = Table(title="cronwheel cluster benchmark (medians; each run in parentheses)")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "config" else "right")
    rows = table_rows(results)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for line in verdicts(results):
        console.print(f"  {line}")
    console.print("\nMarkdown:\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    failover = failover_rows(results)
    if failover:
        print("\n| " + " | ".join(FAILOVER_COLUMNS) + " |")
        print("|" + "---|" * len(FAILOVER_COLUMNS))
        for row in failover:
            print("| " + " | ".join(row) + " |")
    for run in (r for s in results.values() for v in s.values() for r in v["runs"]):
        if duplicate_runs(run):
            console.print(f"[bold red]DUPLICATE RUNS in {run['layout']} {run['scenario']} run "
                          f"{run['run']}[/bold red]")
            console.print(orjson.dumps({k: v for k, v in run.items() if "duplicate" in k},
                                       option=orjson.OPT_INDENT_2).decode())


# -- the CLI ---------------------------------------------------------------------------------


async def environment(cfg: ClusterConfig) -> dict[str, Any]:
    env = fb.machine_environment()
    with contextlib.suppress(metadata.PackageNotFoundError):
        env["packages"]["asyncpg"] = metadata.version("asyncpg")
    env["postgres"] = await postgres_settings(cfg.postgres)
    env["server_env"] = {k: v for k, v in fb.settings_env(cfg.server_env).items()
                         if k.startswith("CRONWHEEL_") and k not in fb.TOKEN_SETTINGS}
    env["receiver"] = cfg.receiver_impl
    return env


async def measure(cfg: ClusterConfig, bench: ClusterBench) -> dict[str, dict[str, Any]]:
    """Every layout and scenario, `repeat` times, interleaved so drift hits all alike."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {s.value: [] for s in cfg.scenarios} for name in cfg.layouts}
    for index in range(cfg.repeat):
        for name in cfg.layouts:
            for scenario in cfg.scenarios:
                if scenario is Scenario.FAILOVER and LAYOUTS[name].nodes < 2:
                    continue  # nobody to fail over to
                console.print(f"[cyan]{name} {scenario.value} run {index + 1}/{cfg.repeat}"
                              "[/cyan]")
                quiet = await fb.wait_quiet(cfg.quiet_wait)
                started = time.monotonic()
                result = await bench.run(LAYOUTS[name], scenario)
                result |= {"layout": name, "scenario": scenario.value, "run": index + 1,
                           "load_before_pct": fb.rounded(quiet, 1),
                           "disturbed": fb.disturbed(result),
                           "scenario_wall_s": fb.rounded(time.monotonic() - started, 1)}
                brief = {k: v for k, v in result.items() if not isinstance(v, list | dict)}
                console.print(f"  [dim]{orjson.dumps(brief).decode()}[/dim]")
                runs[name][scenario.value].append(result)
    return {name: {s: fb.summarize(r) for s, r in by.items() if r} for name, by in runs.items()}


async def run_all(cfg: ClusterConfig) -> int:
    env = await environment(cfg)
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=0)
    async with (
        aiohttp.ClientSession(connector=connector, headers=fb.AUTH) as session,
        fb.running_receiver(cfg.receiver_impl, session) as receiver,
    ):
        results = await measure(cfg, ClusterBench(cfg, session, receiver))
    env["loadavg_end"] = os.getloadavg()
    report(env, results)
    fb.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = fb.RESULTS_DIR / f"{cfg.name}.json"
    path.write_bytes(orjson.dumps({"environment": env, "config": asdict(cfg),
                                   "results": results, "verdicts": verdicts(results)},
                                  option=orjson.OPT_INDENT_2, default=str))
    console.print(f"results: {path}")
    every = [r for s in results.values() for v in s.values() for r in v["runs"]]
    return 2 if any(duplicate_runs(r) for r in every) else 0


def main(
    layout: Annotated[list[str] | None, typer.Option(
        help=f"configurations to run (repeatable): {', '.join(LAYOUTS)}")] = None,
    only: Annotated[list[Scenario] | None, typer.Option(help="scenarios (repeatable)")] = None,
    name: Annotated[str, typer.Option(help="results go to bench/results/NAME.json")] = "",
    repeat: Annotated[int, typer.Option(min=1, max=20, help="runs per configuration")] = 1,
    throughput_jobs: Annotated[int, typer.Option(min=1, max=1_000_000)] = 30_000,
    throughput_span: Annotated[float, typer.Option(
        min=0.1, max=600, help="seconds the throughput jobs are due over")] = 3.0,
    throughput_lead: Annotated[float, typer.Option(
        min=1.0, max=600, help="seconds from the start of submission to the first fire")] = 30.0,
    rate: Annotated[int, typer.Option(min=1, max=100_000, help="fires/s (lateness)")] = 1_000,
    duration: Annotated[float, typer.Option(min=0.1, max=3600, help="seconds of firing")] = 15.0,
    lead: Annotated[float, typer.Option(min=0.0, max=600,
                                        help="seconds between submit and fire")] = 3.0,
    tick: Annotated[float, typer.Option(min=0.01, max=10, help="seconds between submits")] = 0.1,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 1_000,
    batch_concurrency: Annotated[int, typer.Option(
        min=1, max=64, help="batch requests under way per node")] = 2,
    drain_timeout: Annotated[float, typer.Option(
        min=1.0, max=3600, help="seconds to wait for callbacks after the last due time")] = 60.0,
    failover_jobs: Annotated[int, typer.Option(min=4, max=1_000_000)] = 3_000,
    failover_bursts: Annotated[int, typer.Option(min=1, max=100)] = 4,
    failover_gap: Annotated[float, typer.Option(
        min=0.1, max=60, help="seconds between failover bursts")] = 1.0,
    failover_kill: Annotated[float, typer.Option(
        min=0.0, max=60, help="seconds after the first burst the busiest node is killed")] = 1.5,
    receiver: Annotated[str, typer.Option(help="receiver implementation: raw or aiohttp")
                        ] = "raw",
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="node setting NAME=VALUE, as CRONWHEEL_NAME (repeatable)")] = None,
    quiet_wait: Annotated[float, typer.Option(
        min=0, max=3600, help="before each run, wait up to this many seconds for the machine's "
        "other load to drop below 25% of a core")] = 60.0,
    keep: Annotated[bool, typer.Option(help="keep each run's temp dir (logs, SQLite file)")
                    ] = False,
    pg_host: Annotated[str, typer.Option(help="PostgreSQL host (loopback only)")] = "127.0.0.1",
    pg_port: Annotated[int, typer.Option()] = 5432,
    pg_user: Annotated[str, typer.Option()] = "postgres",
    pg_admin_db: Annotated[str, typer.Option(help="database to connect to for CREATE/DROP")
                           ] = "test",
) -> None:
    """Run the cluster benchmark and print one table."""
    unknown = [n for n in layout or [] if n not in LAYOUTS]
    if unknown:
        raise typer.BadParameter(f"unknown {unknown}; choose from {list(LAYOUTS)}",
                                 param_hint="--layout")
    if receiver not in ("raw", "aiohttp"):
        raise typer.BadParameter("raw or aiohttp", param_hint="--receiver")
    if pg_host not in ("127.0.0.1", "localhost"):
        raise typer.BadParameter("the benchmark only uses a loopback database",
                                 param_hint="--pg-host")
    settings = fb.parse_settings(set_ or [])
    if {"NODE_NAME", "PORT", "HOST", "DATABASE_URL"} & settings.keys():
        raise typer.BadParameter("the benchmark sets NODE_NAME, HOST, PORT and DATABASE_URL",
                                 param_hint="--set")
    cfg = ClusterConfig(
        name=name or datetime.now().strftime("cluster-%Y%m%d-%H%M%S"), repeat=repeat,
        layouts=tuple(dict.fromkeys(layout or list(LAYOUTS))),
        scenarios=tuple(dict.fromkeys(only or list(Scenario))),
        throughput_jobs=throughput_jobs, throughput_span=throughput_span,
        throughput_lead=throughput_lead, rate=rate, duration=duration, lead=lead, tick=tick,
        batch_size=batch_size, batch_concurrency=batch_concurrency, drain_timeout=drain_timeout,
        failover_jobs=failover_jobs, failover_bursts=failover_bursts, failover_gap=failover_gap,
        failover_kill=failover_kill,
        receiver_impl=receiver, server_env=settings, quiet_wait=quiet_wait, keep=keep,
        postgres=Postgres(pg_host, pg_port, pg_user, pg_admin_db),
    )
    raise typer.Exit(fb.run_loop(run_all(cfg)))


if __name__ == "__main__":
    typer.run(main)
