"""cronwheel worker benchmark: task throughput, failover after a worker dies, a large log.

Each scenario run starts a fresh server (``python -m cronwheel serve``) on a free loopback
port over a new SQLite file in a temporary directory, and worker processes (``python -m
cronwheel worker --server URL --group bench --concurrency N --name NAME``) against it. Jobs
are worker jobs of type `shell` in group `bench`, submitted through /v1/jobs/batch. After a
phase the driver reads the SQLite file directly (read-only) for the runs' and tasks' times.

* throughput: `--tasks` trivial tasks (`true`) due at one instant, spread over `--workers`
  workers of `--concurrency` slots by `--route` (round-robin). Reported: tasks/s from the
  first task's start to the last one's finish, hand-off latency (task started_at - run
  scheduled_at) p50/p99/max, each run succeeded exactly once (one task, no duplicates), the
  tasks per worker; then `--paced-tasks` due `--paced-rate` per second, for the hand-off
  latency without a queue.
* failover: 2 workers, route failover; a job whose first attempt sleeps 300 s (its second
  echoes ok), max_attempts 2, initial_backoff 0.1 s. Once it runs, the worker holding it is
  SIGKILLed. Reported: seconds from the SIGKILL until the attempt is declared lost, the
  second attempt starts on the other worker, and the run succeeds; once per
  `--failover-lease` (the server's worker_lease_seconds: 5 by default, and 2).
* large-log: one task writing `--log-mb` MB to stdout in 100-byte lines. Reported: wall time
  and MB/s until the run finished, peak RSS (VmHWM) of the worker and the server against their
  RSS before; then the whole log paged through GET /v1/runs/{id}/log (1 MB pages): MB/s,
  the server's VmHWM after, and whether every byte came back.

    .venv/bin/python bench/worker_bench.py                            # every scenario, ~80 s
    .venv/bin/python bench/worker_bench.py --repeat 3 --name workers-x3
    .venv/bin/python bench/worker_bench.py --only throughput --route least-busy
    .venv/bin/python bench/worker_bench.py --only large-log --log-mb 500

Results: a table on stdout (also as Markdown) and bench/results/<name>.json.
See bench/README.md ("Workers").
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shlex
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import orjson
import typer
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fire_bench lives next to this file
import fire_bench as fb
from cluster_bench import stop_all

console = fb.console
MB = fb.MB
GROUP = "bench"
DEFAULT_WORKER_LEASE_S = 5.0  # the server's default worker_lease_seconds
TERMINAL = ("succeeded", "failed", "cancelled", "missed", "skipped", "killed")
ROUTES = ("round-robin", "random", "least-busy", "consistent-hash", "failover")
LOG_LINE = 100  # bytes per line of the large log: 99 letters and a newline
PAGE = 1_048_576  # the largest page GET /v1/runs/{id}/log serves
POLL_S = 0.2
STOP_GRACE_S = 20.0


class Scenario(StrEnum):
    THROUGHPUT = "throughput"
    FAILOVER = "failover"
    LARGE_LOG = "large-log"


@dataclass(frozen=True)
class WorkerConfig:
    name: str
    repeat: int
    scenarios: tuple[Scenario, ...]
    tasks: int
    workers: int
    concurrency: int
    route: str
    lead: float
    paced_tasks: int
    paced_rate: float
    failover_leases: tuple[float, ...]
    log_mb: int
    batch_size: int
    drain_timeout: float
    server_env: dict[str, str]
    quiet_wait: float
    keep: bool


# -- processes -------------------------------------------------------------------------------


def module_argv(*args: str) -> list[str]:
    """`python -m cronwheel ARGS` with this interpreter."""
    return [sys.executable, "-m", "cronwheel", *args]


def worker_env() -> dict[str, str]:
    return dict(os.environ, CRONWHEEL_LOG_LEVEL="warning", PYTHONUNBUFFERED="1",
                CRONWHEEL_TOKEN=fb.BENCH_TOKEN)


@dataclass
class Setup:
    """One server and its workers, over one SQLite file in `workdir`."""

    server: fb.Child
    workers: dict[str, fb.Child]
    database: Path
    workdir: Path
    killed: set[str] = field(default_factory=set)  # workers this benchmark SIGKILLed

    def check_alive(self) -> None:
        self.server.check_alive()
        for name, worker in self.workers.items():
            if name not in self.killed:
                worker.check_alive()

    def pids(self) -> dict[str, int]:
        live = {n: w.pid for n, w in self.workers.items() if n not in self.killed}
        return {"server": self.server.pid, **live}


def stop_children(setup_children: list[fb.Child], server: fb.Child | None) -> None:
    """SIGTERM the workers at once (they deregister), wait for them, then stop the server."""
    stop_all(setup_children, STOP_GRACE_S)
    if server is not None:
        server.stop()


async def wait_online(setup: Setup, session: aiohttp.ClientSession, names: list[str],
                      timeout: float = 60.0) -> None:
    """Until every worker in `names` is listed online by GET /v1/workers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        setup.check_alive()
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(f"{setup.server.base_url}/v1/workers",
                                   timeout=aiohttp.ClientTimeout(total=5)) as response:
                listed = orjson.loads(await response.read()).get("workers", [])
                if set(names) <= {w["name"] for w in listed if w.get("online")}:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"workers {names} not online within {timeout:g}s")


@contextlib.asynccontextmanager
async def running_setup(cfg: WorkerConfig, session: aiohttp.ClientSession, label: str,
                        names: list[str], concurrency: int,
                        settings: dict[str, str] | None = None) -> AsyncIterator[Setup]:
    """A fresh server (SQLite file in a new temp dir) and workers `names`; all stopped after."""
    workdir = Path(tempfile.mkdtemp(prefix=f"cw-workers-{label}-"))
    database = workdir / "bench.db"
    port = fb.free_port()
    argv = module_argv("serve", "--host", fb.HOST, "--port", str(port),
                       "--database-url", f"sqlite:///{database}")
    server = fb.spawn("server", argv, fb.settings_env({**cfg.server_env, **(settings or {})}),
                      workdir / "server.log", port)
    workers: dict[str, fb.Child] = {}
    try:
        await fb.wait_ready(server, session, "/healthz")
        for name in names:
            workers[name] = fb.spawn(name, module_argv(
                "worker", "--server", server.base_url, "--group", GROUP,
                "--concurrency", str(concurrency), "--name", name),
                worker_env(), workdir / f"{name}.log", port)
        setup = Setup(server, workers, database, workdir)
        await wait_online(setup, session, names)
        yield setup
    finally:
        await asyncio.to_thread(stop_children, list(workers.values()), server)
        if cfg.keep:
            console.print(f"[dim]kept {workdir}[/dim]")
        else:
            fb.remove_dir(workdir)


# -- the database ----------------------------------------------------------------------------


def _rows(path: Path, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return [tuple(row) for row in connection.execute(sql, params).fetchall()]
    finally:
        connection.close()


async def db_rows(setup: Setup, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of one read-only query on the server's SQLite file (WAL: never blocks it)."""
    return await asyncio.to_thread(_rows, setup.database, sql, params)


FINISHED = f"state IN ({', '.join(repr(s) for s in TERMINAL)})"


async def wait_finished(setup: Setup, prefix: str, expected: int, deadline: float) -> int:
    """Poll until `expected` runs of jobs `prefix-*` are finished, or the wall-clock deadline.
    Returns how many are."""
    done = 0
    for _ in range(1_000_000):  # bounded however the clock behaves
        done = (await db_rows(setup, f"SELECT count(*) FROM runs WHERE job_key LIKE ? "
                                     f"AND {FINISHED}", f"{prefix}-%"))[0][0]
        if done >= expected or time.time() >= deadline:
            break
        setup.check_alive()
        await asyncio.sleep(POLL_S)
    return int(done)


# -- CPU of every process involved -----------------------------------------------------------


def cpu_times(pid: int) -> tuple[float, float]:
    """(own, waited-for children) user + system CPU seconds of a process; NaN when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan, math.nan
    fields = stat.rsplit(")", 1)[1].split()
    return ((int(fields[11]) + int(fields[12])) / fb.CLK_TCK,
            (int(fields[13]) + int(fields[14])) / fb.CLK_TCK)


def main_thread_cpu(pid: int) -> float:
    """CPU seconds of a process's main thread (for the server: its event loop)."""
    try:
        stat = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / fb.CLK_TCK


@dataclass
class Meter:
    """CPU (% of one core) over one phase: the server, each worker, the tasks' processes
    (the workers' waited-for children), this driver, everything else, and what was idle.
    `cpu_X_main_pct` is the main thread of X (the event loop); the rest of `cpu_X_pct` is
    its other threads (the server's SQLite connections, a worker's child watchers)."""

    processes: dict[str, int]  # label -> pid
    start_wall: float = field(default_factory=time.monotonic)
    start: dict[str, tuple[float, float]] = field(default_factory=dict)
    start_main: dict[str, float] = field(default_factory=dict)
    start_self: float = 0.0
    start_machine: float = 0.0

    def __post_init__(self) -> None:
        self.start = {label: cpu_times(pid) for label, pid in self.processes.items()}
        self.start_main = {label: main_thread_cpu(pid) for label, pid in self.processes.items()}
        self.start_self = time.process_time()
        self.start_machine = fb.machine_busy()

    def read(self) -> dict[str, float]:
        wall = time.monotonic() - self.start_wall
        out: dict[str, float] = {}
        known = children = workers = 0.0
        for label, pid in self.processes.items():
            own, kids = cpu_times(pid)
            used = own - self.start[label][0]
            out[f"cpu_{label}_pct"] = fb.rounded(100 * used / wall, 1)
            main = main_thread_cpu(pid) - self.start_main[label]
            out[f"cpu_{label}_main_pct"] = fb.rounded(100 * main / wall, 1)
            kids_used = kids - self.start[label][1]
            known += used + kids_used
            if label != "server":
                workers += used
                children += kids_used
        driver = time.process_time() - self.start_self
        machine = fb.machine_busy() - self.start_machine
        out |= {
            "cpu_workers_pct": fb.rounded(100 * workers / wall, 1),
            "cpu_task_processes_pct": fb.rounded(100 * children / wall, 1),
            "cpu_driver_pct": fb.rounded(100 * driver / wall, 1),
            "machine_cpu_pct": fb.rounded(100 * machine / wall, 1),
            "other_cpu_pct": fb.rounded(max(0.0, 100 * (machine - known - driver) / wall), 1),
            "idle_pct": fb.rounded(max(0.0, 100 * len(os.sched_getaffinity(0))
                                        - 100 * machine / wall), 1),
            "phase_wall_s": fb.rounded(wall, 2),
            "server_cpu_s": fb.rounded(out["cpu_server_pct"] * wall / 100, 3),
            "workers_cpu_s": fb.rounded(workers, 3),
            "task_processes_cpu_s": fb.rounded(children, 3),
        }
        return out


def rss_mb(pid: int, name: str = "VmRSS") -> float:
    return fb.rounded(fb.proc_status(pid, name) / MB, 1)


# -- jobs ------------------------------------------------------------------------------------


def worker_job(key: str, schedule: dict[str, Any], command: str, route: str,
               timeout: float = 60.0, retry: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "key": key,
        "schedule": schedule,
        "target": {"kind": "worker", "group": GROUP, "route": route, "type": "shell",
                   "spec": {"command": command}, "timeout": timeout},
        "retry": retry or {"max_attempts": 1},
    }


def at(epoch_s: float) -> dict[str, Any]:
    return {"kind": "once", "at": fb.iso(round(epoch_s * 1e6))}


NOW: dict[str, Any] = {"kind": "once", "after": 0}


async def submit(session: aiohttp.ClientSession, setup: Setup, jobs: list[dict[str, Any]],
                 size: int) -> fb.Requests:
    return await fb.load_batches(session, setup.server.base_url, len(jobs), size, 2,
                                 lambda i: jobs[i])


def ms_quantiles(values_us: list[int], prefix: str,
                 which: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p99", 0.99))
                 ) -> dict[str, float]:
    ordered = sorted(v / 1000 for v in values_us)
    out = {f"{prefix}_{name}_ms": fb.rounded(fb.quantile(ordered, q), 1) for name, q in which}
    if ordered and ("max", 1.0) in which:
        out[f"{prefix}_max_ms"] = fb.rounded(ordered[-1], 1)
    return out


LATENCY = (("p50", 0.5), ("p99", 0.99), ("max", 1.0))

RUN_TASKS = """
SELECT r.id, r.job_id, r.state, r.attempts, r.scheduled_at, r.fired_at, r.finished_at,
       t.id, t.worker_name, t.state, t.created_at, t.started_at, t.finished_at
FROM runs r LEFT JOIN tasks t ON t.run_id = r.id
WHERE r.job_key LIKE ?
"""


async def audit(setup: Setup, prefix: str, expected: int) -> dict[str, Any]:
    """Each run of jobs `prefix-*`, with its tasks: once each, succeeded, and the times."""
    rows = await db_rows(setup, RUN_TASKS, f"{prefix}-%")
    tasks_of: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    runs: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        runs[row[0]] = row
        if row[7] is not None:
            tasks_of[row[0]].append(row)
    runs_per_job = Counter(run[1] for run in runs.values())
    started = [t for ts in tasks_of.values() for t in ts if t[11] is not None]
    ok = sum(1 for rid, run in runs.items() if run[2] == "succeeded" and run[3] == 1
             and len(tasks_of[rid]) == 1 and tasks_of[rid][0][9] == "succeeded")
    first = min((t[11] for t in started), default=0)
    last = max((t[12] or 0 for t in started), default=0)
    span_s = (last - first) / 1e6
    # the last hand-off (task row written): before it the server is still assigning runs
    handed = max((t[10] for t in started), default=0)
    after = sum(1 for t in started if (t[12] or 0) > handed)
    after_s = (last - handed) / 1e6
    return {
        "runs": len(runs),
        "succeeded_once": ok,
        "not_succeeded_once": expected - ok,
        "unfired_jobs": expected - len(runs_per_job),
        "duplicate_runs": sum(n - 1 for n in runs_per_job.values()),
        "duplicate_tasks": sum(max(0, len(ts) - 1) for ts in tasks_of.values()),
        "runs_without_task": sum(1 for rid in runs if not tasks_of[rid]),
        "run_states": dict(Counter(run[2] for run in runs.values())),
        "tasks_per_worker": dict(sorted(Counter(t[8] for t in started).items())),
        "span_s": fb.rounded(span_s, 3),
        "tasks_per_s": fb.rounded((len(started) / span_s) if span_s > 0 else math.nan, 1),
        "handing_off_s": fb.rounded((handed - first) / 1e6, 2),
        "finished_while_handing_off": len(started) - after,
        "tasks_per_s_after_handoff": fb.rounded(after / after_s if after_s > 0 else math.nan, 1),
        **ms_quantiles([t[11] - t[4] for t in started], "handoff", LATENCY),
        # where the hand-off time goes. assign: until the node starts handing the run over
        # (the task's created_at is stamped then, before it picks the worker); lease_wait:
        # from then until a lease of the worker took it (the pick, the hand-off write, the
        # long poll waking up; started_at); run: until its finish call was recorded. A run
        # row is written up to the fire lead (100 ms) before its instant: fired_at is no use.
        **ms_quantiles([t[10] - t[4] for t in started], "assign"),
        **ms_quantiles([t[11] - t[10] for t in started], "lease_wait"),
        **ms_quantiles([(t[12] or t[11]) - t[11] for t in started], "run"),
    }


# -- scenarios -------------------------------------------------------------------------------


@dataclass
class WorkerBench:
    cfg: WorkerConfig
    session: aiohttp.ClientSession

    async def warm(self, setup: Setup, per_worker: int = 4) -> None:
        """A few broadcast tasks first, so every worker has imported and started a task
        before anything is measured (the first task pays for imports)."""
        jobs = [worker_job(f"warm-{i}", NOW, "true", "broadcast") for i in range(per_worker)]
        sent = await submit(self.session, setup, jobs, len(jobs))
        done = await wait_finished(setup, "warm", sent.jobs, time.time() + 60)
        if done < sent.jobs:
            raise RuntimeError(f"warm-up: {done} of {sent.jobs} runs finished in 60 s")

    async def burst(self, setup: Setup, prefix: str, count: int, spacing: float
                    ) -> tuple[fb.Requests, float, float, bool]:
        """Submit `count` `true` tasks due from `lead` s after now, `spacing` s apart; returns
        the submission, the first due time, the last and whether submitting overran it."""
        cfg = self.cfg
        t0 = time.time() + cfg.lead
        jobs = [worker_job(f"{prefix}-{i}", at(t0 + i * spacing), "true", cfg.route)
                for i in range(count)]
        sent = await submit(self.session, setup, jobs, cfg.batch_size)
        overran = time.time() > t0
        if overran:
            console.print(f"[yellow]{prefix}: submitting ran past the first due time; "
                          "raise --lead[/yellow]")
        if sent.errors:
            console.print(f"[red]{prefix}: {sent.errors} submit errors: {sent.first_error}"
                          "[/red]")
        return sent, t0, t0 + (count - 1) * spacing, overran

    async def throughput(self) -> dict[str, Any]:
        cfg = self.cfg
        names = [f"bench-w{i + 1}" for i in range(cfg.workers)]
        async with running_setup(cfg, self.session, "throughput", names,
                                 cfg.concurrency) as setup:
            await self.warm(setup)
            sent, t0, last_due, overran = await self.burst(setup, "tp", cfg.tasks, 0.0)
            await asyncio.sleep(max(0.0, t0 - time.time()))
            meter = Meter(setup.pids())
            done = await wait_finished(setup, "tp", sent.jobs, last_due + cfg.drain_timeout)
            cpu = meter.read()
            out: dict[str, Any] = {
                "tasks": sent.jobs, "workers": cfg.workers, "concurrency": cfg.concurrency,
                "route": cfg.route, "submit_errors": sent.errors,
                "submit_overran": overran, "finished": done,
                **await audit(setup, "tp", sent.jobs), **cpu,
            }
            out["server_cpu_us_per_task"] = fb.rounded(1e6 * cpu["server_cpu_s"] / done, 0)
            out["workers_cpu_us_per_task"] = fb.rounded(1e6 * cpu["workers_cpu_s"] / done, 0)
            out["task_processes_cpu_us_per_task"] = fb.rounded(
                1e6 * cpu["task_processes_cpu_s"] / done, 0)
            if cfg.paced_tasks:
                out |= await self.paced(setup)
            return out

    async def paced(self, setup: Setup) -> dict[str, Any]:
        """Tasks due `paced_rate` per second, well below capacity: hand-off without a queue."""
        cfg = self.cfg
        sent, _t0, last_due, _ = await self.burst(setup, "pc", cfg.paced_tasks,
                                                  1.0 / cfg.paced_rate)
        done = await wait_finished(setup, "pc", sent.jobs, last_due + cfg.drain_timeout)
        found = await audit(setup, "pc", sent.jobs)
        keep = ("handoff_p50_ms", "handoff_p99_ms", "handoff_max_ms", "assign_p50_ms",
                "assign_p99_ms", "lease_wait_p50_ms", "lease_wait_p99_ms", "run_p50_ms",
                "run_p99_ms", "not_succeeded_once",
                "duplicate_runs", "duplicate_tasks")
        return {"paced_tasks": sent.jobs, "paced_rate": cfg.paced_rate, "paced_finished": done,
                **{f"paced_{k}": found[k] for k in keep}}

    async def failover(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for lease in self.cfg.failover_leases:
            one = await self.failover_once(lease)
            out |= {f"lease{lease:g}_{k}": v for k, v in one.items()}
        return out

    async def failover_once(self, lease: float) -> dict[str, Any]:
        settings = ({} if lease == DEFAULT_WORKER_LEASE_S
                    else {"WORKER_LEASE_SECONDS": f"{lease:g}"})
        names = ["bench-fo-a", "bench-fo-b"]  # failover picks the first by name
        async with running_setup(self.cfg, self.session, f"failover-{lease:g}", names, 2,
                                 settings) as setup:
            await self.warm(setup, 2)
            marker = setup.workdir / "failover.marker"
            quoted = shlex.quote(str(marker))
            command = (f"if [ -e {quoted} ]; then echo ok; "
                       f"else echo $$ > {quoted}; sleep 300; fi")
            job = worker_job("fo-1", NOW, command, "failover", timeout=600.0,
                             retry={"max_attempts": 2, "initial_backoff": 0.1})
            try:
                sent = await submit(self.session, setup, [job], 1)
                if sent.errors:
                    raise RuntimeError(f"failover: submit failed: {sent.first_error}")
                return await self.kill_and_watch(setup, marker, lease)
            finally:
                kill_orphan(marker)

    async def kill_and_watch(self, setup: Setup, marker: Path, lease: float
                             ) -> dict[str, Any]:
        holder, heartbeat = await wait_running(setup, marker)
        worker = setup.workers[holder]
        setup.killed.add(holder)
        worker.proc.kill()
        killed_at = time.time()
        await asyncio.to_thread(worker.proc.wait, 5)
        deadline = killed_at + 4 * lease + 30
        run: tuple[Any, ...] | None = None
        while time.time() < deadline:
            found = await db_rows(setup, "SELECT id, state, attempts, finished_at FROM runs "
                                         "WHERE job_key = 'fo-1'")
            run = found[0] if found else None
            if run is not None and run[1] in TERMINAL:
                break
            await asyncio.sleep(0.05)
        if run is None:
            raise RuntimeError("failover: the run never appeared")
        tasks = await db_rows(setup, "SELECT attempt, worker_name, state, created_at, "
                                     "started_at, finished_at, lease_until FROM tasks "
                                     "WHERE run_id = ? ORDER BY attempt", run[0])
        return failover_result(killed_at, heartbeat, holder, run, tasks)

    async def large_log(self) -> dict[str, Any]:
        cfg = self.cfg
        size = cfg.log_mb * MB
        async with running_setup(cfg, self.session, "log", ["bench-log-w1"], 1) as setup:
            await self.warm(setup, 1)
            worker = setup.workers["bench-log-w1"]
            before = {"worker_rss_before_mb": rss_mb(worker.pid),
                      "server_rss_before_mb": rss_mb(setup.server.pid)}
            command = f"yes {'a' * (LOG_LINE - 1)} | head -c {size}"
            meter = Meter(setup.pids())
            started = time.monotonic()
            sent = await submit(self.session, setup,
                                [worker_job("log-1", NOW, command, "round-robin", 600.0)], 1)
            if sent.errors:
                raise RuntimeError(f"large-log: submit failed: {sent.first_error}")
            await wait_finished(setup, "log", 1, time.time() + max(120.0, cfg.log_mb * 3.0))
            observed_s = time.monotonic() - started
            cpu = meter.read()
            written = await self.log_written(setup, size)
            out: dict[str, Any] = {
                "log_mb": cfg.log_mb, "log_bytes": size, **before, **written,
                "submit_to_done_s": fb.rounded(observed_s, 2),
                "worker_hwm_mb": rss_mb(worker.pid, "VmHWM"),
                "server_hwm_mb": rss_mb(setup.server.pid, "VmHWM"),
                "database_mb": fb.rounded(sum(p.stat().st_size for p in
                                              setup.workdir.glob("bench.db*")) / MB, 1),
                **{f"write_{k}": v for k, v in cpu.items()},
            }
            out["worker_growth_mb"] = fb.rounded(out["worker_hwm_mb"]
                                                 - out["worker_rss_before_mb"], 1)
            out["server_growth_mb"] = fb.rounded(out["server_hwm_mb"]
                                                 - out["server_rss_before_mb"], 1)
            out |= await self.read_log(setup, str(written["run_id"]), size)
            return out

    async def log_written(self, setup: Setup, size: int) -> dict[str, Any]:
        rows = await db_rows(setup, "SELECT r.id, r.state, t.started_at, r.finished_at, "
                                    "t.log_size, t.exit_code FROM runs r JOIN tasks t "
                                    "ON t.run_id = r.id WHERE r.job_key = 'log-1'")
        if not rows:
            raise RuntimeError("large-log: no run with a task")
        run_id, state, started, finished, log_size, exit_code = rows[0]
        wall = ((finished or started) - started) / 1e6
        chunks = (await db_rows(setup, "SELECT count(*), max(length(data)) FROM task_output"))[0]
        return {"run_id": run_id, "run_state": state, "exit_code": exit_code,
                "stored_log_bytes": log_size, "stored_ok": log_size == size,
                "stored_chunks": chunks[0], "largest_chunk_kb": fb.rounded(chunks[1] / 1024, 0),
                "write_wall_s": fb.rounded(wall, 2),
                "write_mb_per_s": fb.rounded(size / MB / wall if wall > 0 else math.nan, 1)}

    async def read_log(self, setup: Setup, run_id: str, size: int) -> dict[str, Any]:
        """Every page of the log, 1 MB at a time; bytes counted and the content checked."""
        url = f"{setup.server.base_url}/v1/runs/{run_id}/log"
        meter = Meter({"server": setup.server.pid})
        started = time.monotonic()
        offset = pages = newlines = 0
        clean = ended = True
        for _ in range(size // (PAGE // 2) + 10):  # pages may stop a few bytes short
            async with self.session.get(url, params={"offset": offset, "limit": PAGE},
                                        timeout=aiohttp.ClientTimeout(total=60)) as response:
                response.raise_for_status()
                page = orjson.loads(await response.read())
            text: str = page["text"]
            pages += 1
            newlines += text.count("\n")
            clean = clean and text.count("a") + text.count("\n") == len(text)
            clean = clean and page["next_offset"] - offset == len(text)
            offset = int(page["next_offset"])
            if page["end"] or not text:
                ended = bool(page["end"])
                break
        wall = time.monotonic() - started
        cpu = meter.read()
        return {
            "read_bytes": offset, "read_pages": pages, "read_ok": offset == size and ended,
            "read_content_ok": clean and newlines == size // LOG_LINE,
            "read_wall_s": fb.rounded(wall, 2),
            "read_mb_per_s": fb.rounded(offset / MB / wall, 1),
            "read_server_cpu_pct": cpu["cpu_server_pct"],
            "server_hwm_after_read_mb": rss_mb(setup.server.pid, "VmHWM"),
        }

    async def run(self, scenario: Scenario) -> dict[str, Any]:
        steps = {Scenario.THROUGHPUT: self.throughput, Scenario.FAILOVER: self.failover,
                 Scenario.LARGE_LOG: self.large_log}
        return await steps[scenario]()


async def wait_running(setup: Setup, marker: Path, timeout: float = 30.0) -> tuple[str, int]:
    """Until the failover task runs (its shell wrote the marker): the worker holding it and
    that worker's last heartbeat (epoch µs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        setup.check_alive()
        found = await db_rows(setup, "SELECT t.worker_name, w.heartbeat_at FROM tasks t "
                                     "JOIN runs r ON r.id = t.run_id JOIN workers w "
                                     "ON w.id = t.worker_id WHERE r.job_key = 'fo-1' "
                                     "AND t.state = 'running'")
        if found and marker_pid(marker) is not None:
            return str(found[0][0]), int(found[0][1])
        await asyncio.sleep(0.05)
    raise RuntimeError(f"failover: the task was not running within {timeout:g}s")


def marker_pid(marker: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(marker.read_text().split()[0])
    return None


def kill_orphan(marker: Path) -> bool:
    """SIGKILL the process group of the first attempt's shell (its sleep outlived the
    SIGKILLed worker): only if that pid still leads its group and runs our command."""
    pid = marker_pid(marker)
    if pid is None:
        return False
    try:
        if os.getpgid(pid) != pid:
            return False
        if str(marker).encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        return False
    return True


def failover_result(killed_at: float, heartbeat_us: int, holder: str, run: tuple[Any, ...],
                    tasks: list[tuple[Any, ...]]) -> dict[str, Any]:
    kill_us = killed_at * 1e6

    def since(value: Any) -> float:
        return fb.rounded((value - kill_us) / 1e6, 2) if value is not None else math.nan

    first = next((t for t in tasks if t[0] == 1), None)
    second = next((t for t in tasks if t[0] == 2), None)
    # attempt 1's lease_until is its last renewal (the lease call, or a later heartbeat):
    # the worker is offline once it passes; a node's reap (every node heartbeat) settles it
    expiry = first[6] if first else None
    return {
        "killed_worker": holder,
        "heartbeat_age_at_kill_s": fb.rounded(kill_us / 1e6 - heartbeat_us / 1e6, 2),
        "first_task_state": first[2] if first else None,
        "lease_left_at_kill_s": since(expiry),
        "reaped_after_expiry_s": (fb.rounded((first[5] - expiry) / 1e6, 2)
                                  if first and first[5] and expiry else math.nan),
        "lost_after_s": since(first[5] if first else None),
        "second_assigned_s": since(second[3] if second else None),
        "second_start_s": since(second[4] if second else None),
        "succeeded_s": since(run[3]) if run[1] == "succeeded" else math.nan,
        "run_state": run[1],
        "attempts": run[2],
        "second_worker": second[1] if second else None,
        "moved_to_other_worker": bool(second and second[1] != holder),
        "tasks": len(tasks),
    }


# -- reporting -------------------------------------------------------------------------------


TABLE_ROWS: dict[str, list[tuple[str, str]]] = {
    Scenario.THROUGHPUT.value: [
        ("tasks", "tasks"), ("tasks_per_s", "tasks/s (first start -> last finish)"),
        ("handing_off_s", "s until the last run was handed to a worker"),
        ("finished_while_handing_off", "tasks finished meanwhile"),
        ("tasks_per_s_after_handoff", "tasks/s after the last hand-off"),
        ("handoff_p50_ms", "hand-off p50 ms (burst, queue included)"),
        ("handoff_p99_ms", "hand-off p99 ms (burst)"), ("handoff_max_ms", "hand-off max ms"),
        ("paced_handoff_p50_ms", "hand-off p50 ms (paced)"),
        ("paced_handoff_p99_ms", "hand-off p99 ms (paced)"),
        ("paced_handoff_max_ms", "hand-off max ms (paced)"),
        ("not_succeeded_once", "runs not succeeded exactly once"),
        ("duplicate_tasks", "duplicate tasks"), ("duplicate_runs", "duplicate runs"),
        ("cpu_server_pct", "server CPU %"), ("cpu_server_main_pct", "server event loop CPU %"),
        ("cpu_workers_pct", "workers CPU % (all)"),
        ("cpu_task_processes_pct", "task processes CPU %"), ("idle_pct", "idle % (of 200)"),
        ("server_cpu_us_per_task", "server CPU µs/task"),
        ("workers_cpu_us_per_task", "workers CPU µs/task"),
    ],
    Scenario.LARGE_LOG.value: [
        ("log_mb", "log MB"), ("write_wall_s", "task start -> run finished s"),
        ("write_mb_per_s", "write MB/s"), ("worker_rss_before_mb", "worker RSS before MB"),
        ("worker_hwm_mb", "worker peak RSS MB"), ("server_rss_before_mb", "server RSS before MB"),
        ("server_hwm_mb", "server peak RSS MB (after writing)"),
        ("write_cpu_server_pct", "server CPU % (writing)"),
        ("write_cpu_server_main_pct", "server event loop CPU % (writing)"),
        ("write_cpu_workers_pct", "worker CPU % (writing)"),
        ("write_cpu_task_processes_pct", "task processes (yes, head) CPU % (writing)"),
        ("read_mb_per_s", "read MB/s (1 MB pages)"),
        ("read_server_cpu_pct", "server CPU % (reading)"),
        ("server_hwm_after_read_mb", "server peak RSS MB (after reading)"),
    ],
}


FAILOVER_ROWS = (("lease_left_at_kill_s", "attempt 1's lease left at the kill, s"),
                 ("lost_after_s", "kill -> attempt 1 lost, s"),
                 ("reaped_after_expiry_s", "lease expiry -> attempt 1 lost, s"),
                 ("second_start_s", "kill -> attempt 2 started, s"),
                 ("succeeded_s", "kill -> run succeeded, s"))


def table_rows(scenario: str, median: dict[str, Any]) -> list[tuple[str, str]]:
    if scenario != Scenario.FAILOVER.value:
        return TABLE_ROWS.get(scenario, [])
    leases = dict.fromkeys(k.split("_", 1)[0] for k in median if k.startswith("lease"))
    return [(f"{lease}_{key}", f"lease {lease.removeprefix('lease')} s: {label}")
            for lease in leases for key, label in FAILOVER_ROWS]


def cell(result: dict[str, Any], key: str) -> tuple[str, str]:
    runs = result["runs"]
    value = fb.fmt(result["median"].get(key, math.nan))
    spread = " / ".join(fb.fmt(r.get(key), 0) + ("*" if r.get("disturbed") else "")
                        for r in runs) if len(runs) > 1 else ""
    return value, spread


def report(env: dict[str, Any], results: dict[str, Any]) -> None:
    console.print(f"[bold]environment[/bold]: {env['nproc']} CPUs ({env['cpu']}), "
                  f"{env['mem_total_gb']} GB, Python {env['python']}, SQLite {env['sqlite']}, "
                  f"{env['platform']}")
    table = Table(title="cronwheel worker benchmark (medians)")
    for column in ("scenario", "metric", "median", "runs"):
        table.add_column(column, justify="left" if column in ("scenario", "metric")
                         else "right")
    lines = ["| scenario | metric | median | runs |", "|---|---|---|---|"]
    for scenario, result in results.items():
        for key, label in table_rows(scenario, result["median"]):
            if key in result["median"]:
                value, spread = cell(result, key)
                table.add_row(scenario, label, value, spread)
                lines.append(f"| {scenario} | {label} | {value} | {spread} |")
    console.print(table)
    for scenario, result in results.items():
        for run in result["runs"]:
            for key in ("tasks_per_worker", "run_states", "killed_worker", "second_worker"):
                if key in run:
                    console.print(f"  {scenario} run {run['run']}: {key} = {run[key]}")
    console.print("\nMarkdown:\n")
    print("\n".join(lines))


def verdicts(results: dict[str, Any]) -> list[str]:
    out = []
    tp = results.get(Scenario.THROUGHPUT.value)
    if tp:
        bad = sum(int(r.get("not_succeeded_once", 0)) + int(r.get("duplicate_tasks", 0))
                  + int(r.get("duplicate_runs", 0)) for r in tp["runs"])
        out.append(f"every run succeeded exactly once, no duplicates: "
                   f"{'yes' if bad == 0 else f'NO ({bad})'}")
    fo = results.get(Scenario.FAILOVER.value)
    if fo:
        moved = all(v for r in fo["runs"] for k, v in r.items()
                    if k.endswith("moved_to_other_worker"))
        out.append(f"failover: attempt 2 ran on the other worker every time: "
                   f"{'yes' if moved else 'NO'}")
    log = results.get(Scenario.LARGE_LOG.value)
    if log:
        ok = all(r.get("read_ok") and r.get("read_content_ok") and r.get("stored_ok")
                 for r in log["runs"])
        growth = max(max(r["worker_growth_mb"], r["server_growth_mb"],
                         r["server_hwm_after_read_mb"] - r["server_rss_before_mb"])
                     for r in log["runs"])
        out.append(f"large log: every byte stored and read back: {'yes' if ok else 'NO'}; "
                   f"largest RSS growth {growth:.1f} MB (worker or server)")
    return out


# -- the CLI ---------------------------------------------------------------------------------


async def measure(cfg: WorkerConfig, bench: WorkerBench) -> dict[str, Any]:
    """Every scenario `repeat` times, interleaved so drift hits all alike."""
    runs: dict[str, list[dict[str, Any]]] = {s.value: [] for s in cfg.scenarios}
    for index in range(cfg.repeat):
        for scenario in cfg.scenarios:
            console.print(f"[cyan]{scenario.value} run {index + 1}/{cfg.repeat}[/cyan]")
            quiet = await fb.wait_quiet(cfg.quiet_wait)
            started = time.monotonic()
            result = await bench.run(scenario)
            result |= {"run": index + 1, "load_before_pct": fb.rounded(quiet, 1),
                       "disturbed": fb.disturbed(result),
                       "scenario_wall_s": fb.rounded(time.monotonic() - started, 1)}
            console.print(f"  [dim]{orjson.dumps(result).decode()}[/dim]")
            runs[scenario.value].append(result)
    return {name: fb.summarize(found) for name, found in runs.items() if found}


async def run_all(cfg: WorkerConfig) -> int:
    env = fb.machine_environment()
    env["server_env"] = {k: v for k, v in fb.settings_env(cfg.server_env).items()
                         if k.startswith("CRONWHEEL_") and k not in fb.TOKEN_SETTINGS}
    connector = aiohttp.TCPConnector(limit=64, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, headers=fb.AUTH) as session:
        results = await measure(cfg, WorkerBench(cfg, session))
    env["loadavg_end"] = os.getloadavg()
    report(env, results)
    checks = verdicts(results)
    for line in checks:
        console.print(f"  {line}")
    fb.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = fb.RESULTS_DIR / f"{cfg.name}.json"
    path.write_bytes(orjson.dumps({"environment": env, "config": asdict(cfg),
                                   "results": results, "verdicts": checks},
                                  option=orjson.OPT_INDENT_2, default=str))
    console.print(f"results: {path}")
    return 0 if all("NO" not in line for line in checks) else 2


def main(
    only: Annotated[list[Scenario] | None, typer.Option(help="scenarios (repeatable)")] = None,
    name: Annotated[str, typer.Option(help="results go to bench/results/NAME.json")] = "",
    repeat: Annotated[int, typer.Option(min=1, max=20, help="runs per scenario (medians)")
                      ] = 1,
    tasks: Annotated[int, typer.Option(min=1, max=100_000, help="throughput: tasks")] = 2_000,
    workers: Annotated[int, typer.Option(min=1, max=16, help="throughput: workers")] = 2,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="throughput: slots each")
                           ] = 8,
    route: Annotated[str, typer.Option(help=f"throughput: one of {', '.join(ROUTES)}")
                     ] = "round-robin",
    lead: Annotated[float, typer.Option(
        min=0.5, max=120, help="seconds from submitting to the first due time")] = 3.0,
    paced_tasks: Annotated[int, typer.Option(
        min=0, max=10_000, help="throughput: then this many tasks at --paced-rate (0: none)")
                           ] = 200,
    paced_rate: Annotated[float, typer.Option(min=0.1, max=1_000, help="tasks/s")] = 20.0,
    failover_lease: Annotated[list[float] | None, typer.Option(
        min=0.5, max=60, help="failover: worker_lease_seconds to try (repeatable; default "
        "5 and 2)")] = None,
    log_mb: Annotated[int, typer.Option(min=1, max=10_000, help="large-log: MB of output")
                      ] = 100,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
    drain_timeout: Annotated[float, typer.Option(
        min=1, max=3600, help="seconds to wait for the runs after the last due time")] = 120.0,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="server setting NAME=VALUE, as CRONWHEEL_NAME (repeatable)")] = None,
    quiet_wait: Annotated[float, typer.Option(
        min=0, max=3600, help="before each run, wait up to this many seconds for the machine's "
        "other load to drop below 25% of a core")] = 60.0,
    keep: Annotated[bool, typer.Option(help="keep each run's temp dir (logs, SQLite file)")
                    ] = False,
) -> None:
    """Run the worker benchmark against fresh local servers and workers, and report."""
    if route not in ROUTES:
        raise typer.BadParameter(f"one of {', '.join(ROUTES)}", param_hint="--route")
    settings = fb.parse_settings(set_ or [])
    if {"HOST", "PORT", "DATABASE_URL"} & settings.keys():
        raise typer.BadParameter("the benchmark sets HOST, PORT and DATABASE_URL",
                                 param_hint="--set")
    cfg = WorkerConfig(
        name=name or datetime.now().strftime("workers-%Y%m%d-%H%M%S"), repeat=repeat,
        scenarios=tuple(dict.fromkeys(only or list(Scenario))), tasks=tasks, workers=workers,
        concurrency=concurrency, route=route, lead=lead, paced_tasks=paced_tasks,
        paced_rate=paced_rate,
        failover_leases=tuple(dict.fromkeys(failover_lease or [DEFAULT_WORKER_LEASE_S, 2.0])),
        log_mb=log_mb, batch_size=batch_size, drain_timeout=drain_timeout,
        server_env=settings, quiet_wait=quiet_wait, keep=keep,
    )
    raise typer.Exit(fb.run_loop(run_all(cfg)))


if __name__ == "__main__":
    typer.run(main)
