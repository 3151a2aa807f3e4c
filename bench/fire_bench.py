"""cronwheel end-to-end benchmark: submit rate, fire lateness, callback throughput, memory.

Each scenario run starts a fresh server (``cronwheel serve``) on a free loopback port over a
new SQLite file in a temporary directory; one receiver process (bench/receiver.py) takes the
callbacks and measures lateness = receive time - scheduled instant.

    .venv/bin/python bench/fire_bench.py                       # every scenario, defaults
    .venv/bin/python bench/fire_bench.py --only lateness --repeat 3
    .venv/bin/python bench/fire_bench.py --only memory --pending 1000000
    .venv/bin/python bench/fire_bench.py --set DELIVERY_CONCURRENCY=1024 --only throughput

Results: a table on stdout and bench/results/<name>.json. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import aiohttp
import orjson
import typer
from rich.console import Console
from rich.table import Table

from cronwheel.domain.access import new_token

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"
FAR_FUTURE_S = 7 * 86_400.0  # pending jobs fire a week from now: never during a run
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024

T = TypeVar("T")
console = Console(width=None if sys.stdout.isatty() else 132)
DISTURBED_PCT = 25.0  # other processes' CPU (% of a core) above which a run counts as disturbed


class Scenario(StrEnum):
    ALL = "all"
    SUBMITS = "submits"
    LATENESS = "lateness"
    THROUGHPUT = "throughput"
    MEMORY = "memory"
    RECEIVER = "receiver"  # receiver implementations compared; not part of "all"


@dataclass(frozen=True)
class Config:
    name: str
    repeat: int
    single_jobs: int
    single_concurrency: int
    batch_jobs: int
    batch_size: int
    batch_concurrency: int
    pending: int
    rate: int
    duration: float
    lead: float
    tick: float
    throughput_jobs: int
    throughput_span: float
    throughput_lead: float
    drain_timeout: float
    receiver_impl: str
    receiver_requests: int
    server_env: dict[str, str]
    profile: bool
    dump: bool
    keep: bool
    quiet_wait: float


@dataclass(frozen=True)
class Target:
    scenario: str
    metric: str
    label: str
    op: str  # ">=" or "<"
    value: float
    unit: str
    conditions: tuple[tuple[str, float], ...] = ()  # (metric, at least): when it applies

    def met(self, measured: float) -> bool:
        return measured >= self.value if self.op == ">=" else measured < self.value

    def applies(self, result: dict[str, Any]) -> bool:
        return all(float(result.get(name, 0) or 0) >= least for name, least in self.conditions)

    def verdict(self, result: dict[str, Any]) -> str:
        """'yes', 'no', or 'n/a' when the run was smaller than the target's conditions."""
        value = result.get(self.metric)
        if not isinstance(value, int | float) or not self.applies(result):
            return "n/a"
        return "yes" if self.met(float(value)) else "no"


TARGETS = (
    Target("submits", "batch_jobs_per_s", "batch submits/s", ">=", 10_000, "jobs/s"),
    Target("lateness", "lateness_p99_ms", "p99 lateness (100k pending, 1k fires/s)", "<", 20,
           "ms", (("pending", 100_000), ("fires_per_s", 1_000))),
    Target("throughput", "callbacks_per_s", "callbacks/s sustained", ">=", 3_000, "/s",
           (("offered_per_s", 3_000),)),
    Target("memory", "rss_mb", "RSS with 1M pending", "<", 250, "MB",
           (("pending", 1_000_000),)),
)


# -- small helpers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def iso(micros: int) -> str:
    """An exact ISO 8601 UTC instant for an integer of epoch microseconds."""
    return (EPOCH + timedelta(microseconds=micros)).isoformat().replace("+00:00", "Z")


def proc_status(pid: int, field_name: str) -> int:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM) in bytes; 0 when gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    """`pid`'s live child processes, whichever of its threads started them."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            kids += [int(p) for p in (task / "children").read_text().split()]
    return kids


def server_cpu_seconds(pid: int) -> float:
    """A server's CPU so far: `cronwheel serve` and its engine process (the default layout
    since session 11), which would be missed by `cpu_seconds` of the API process alone."""
    return cpu_seconds(pid) + sum(cpu_seconds(kid) for kid in children(pid))


def server_rss(pid: int) -> int:
    """A server's resident memory in bytes: its process and its engine process."""
    return proc_status(pid, "VmRSS") + sum(proc_status(kid, "VmRSS") for kid in children(pid))


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used (from /proc/stat)."""
    try:
        line = Path("/proc/stat").read_text().splitlines()[0]
    except OSError:
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in line.split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


async def wait_quiet(limit_s: float, threshold_pct: float = 25.0) -> float:
    """Wait (at most `limit_s`) until the machine's other load drops below `threshold_pct`
    of one core over a one-second sample; returns the last sample's load."""
    deadline = time.monotonic() + limit_s
    load = math.nan
    for _ in range(max(1, int(limit_s) + 1)):
        before, started = machine_busy(), time.monotonic()
        await asyncio.sleep(1.0)
        load = 100 * (machine_busy() - before) / (time.monotonic() - started)
        if load < threshold_pct or time.monotonic() >= deadline:
            break
    return load


def quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def remove_dir(workdir: Path) -> None:
    """Delete a temp dir this benchmark made (flat: files only)."""
    for path in workdir.iterdir():
        with contextlib.suppress(OSError):
            path.unlink()
    with contextlib.suppress(OSError):
        workdir.rmdir()


def rounded(value: float, digits: int = 2) -> float:
    return round(value, digits) if math.isfinite(value) else value


# -- processes -------------------------------------------------------------------------------


@dataclass
class Child:
    """A subprocess this benchmark started; stopped by its own pid only."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    base_url: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, grace: float = 15.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}; log tail:\n{tail(self.log)}"
            )


class Alive(Protocol):
    """Something that raises when the process(es) behind it died: a Child, or a cluster."""

    def check_alive(self) -> None: ...


def spawn(name: str, argv: list[str], env: dict[str, str], log: Path, port: int) -> Child:
    """Start a subprocess with its output in `log`, working in the log's directory."""
    handle = log.open("wb")
    try:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                cwd=log.parent)
    finally:
        handle.close()
    return Child(name, proc, log, f"http://{HOST}:{port}")


async def wait_ready(child: Child, session: aiohttp.ClientSession, path: str,
                     timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(child.base_url + path,
                                   timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    child.stop()
    raise RuntimeError(f"{child.name} not ready within {timeout:g}s:\n{tail(child.log)}")


def cronwheel_argv(*args: str) -> list[str]:
    """The `cronwheel` CLI of this interpreter's environment, with `args`."""
    script = Path(sys.executable).parent / "cronwheel"
    prefix = ([str(script)] if script.exists()
              else [sys.executable, "-c", "from cronwheel.cli.main import main; main()"])
    return [*prefix, *args]


def serve_argv(port: int, database_url: str) -> list[str]:
    return cronwheel_argv("serve", "--host", HOST, "--port", str(port),
                          "--database-url", database_url)


def server_argv(port: int, database: Path) -> list[str]:
    return serve_argv(port, f"sqlite:///{database}")


# Every server a bench starts is provisioned with this admin token; every request sends it.
BENCH_TOKEN = new_token()[0]
AUTH = {"Authorization": f"Bearer {BENCH_TOKEN}"}
TOKEN_SETTINGS = ("CRONWHEEL_ADMIN_TOKEN", "CRONWHEEL_TOKEN")  # never written to results


async def submit_at_rate(
    session: aiohttp.ClientSession, base: Callable[[int], str], url: str, prefix: str,
    pace: tuple[float, float, float, float],
) -> tuple[Requests, float, int]:
    """Submits `rate` jobs a second for `duration` seconds, a batch every `tick`, each job due
    `lead` after its batch is sent (`pace` = rate, tick, duration, lead), tick k's batch to
    `base(k)`. Returns the submits, the first tick's time and the number of ticks."""
    rate, tick, duration, lead = pace
    per_tick = max(1, round(rate * tick))
    ticks = max(1, round(duration / tick))
    spacing_us = round(tick * 1e6 / per_tick)
    submitted = Requests()
    t0 = time.time() + 0.2
    tasks: list[asyncio.Task[None]] = []
    for k in range(ticks):
        send_at = t0 + k * tick
        await asyncio.sleep(max(0.0, send_at - time.time()))
        first_us = round((send_at + lead) * 1e6)
        jobs = [job(f"{prefix}-{k}-{j}", first_us + j * spacing_us, url)
                for j in range(per_tick)]
        tasks.append(asyncio.create_task(post_jobs(session, base(k), jobs, submitted)))
    await asyncio.gather(*tasks)
    return submitted, t0, ticks


def settings_env(settings: dict[str, str]) -> dict[str, str]:
    """This environment plus `settings` (NAME -> value) as CRONWHEEL_NAME, for a server (and
    its workers: CRONWHEEL_TOKEN)."""
    env = dict(os.environ)
    env.setdefault("CRONWHEEL_LOG_LEVEL", "warning")
    env["PYTHONUNBUFFERED"] = "1"
    env["CRONWHEEL_ADMIN_TOKEN"] = env["CRONWHEEL_TOKEN"] = BENCH_TOKEN
    for key, value in settings.items():
        env[f"CRONWHEEL_{key.upper()}"] = value
    return env


def server_env(cfg: Config) -> dict[str, str]:
    return settings_env(cfg.server_env)


@contextlib.asynccontextmanager
async def running_server(cfg: Config, session: aiohttp.ClientSession,
                         label: str) -> AsyncIterator[Child]:
    workdir = Path(tempfile.mkdtemp(prefix=f"cw-bench-{label}-"))
    port = free_port()
    child = spawn("server", server_argv(port, workdir / "bench.db"), server_env(cfg),
                   workdir / "server.log", port)
    try:
        await wait_ready(child, session, "/healthz")
        yield child
    finally:
        child.stop()
        if not cfg.keep:
            remove_dir(workdir)
        else:
            console.print(f"[dim]kept {workdir}[/dim]")


@contextlib.asynccontextmanager
async def running_receiver(impl: str, session: aiohttp.ClientSession) -> AsyncIterator[Child]:
    workdir = Path(tempfile.mkdtemp(prefix="cw-bench-receiver-"))
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "receiver.py"), "--port", str(port), "--impl", impl]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    child = spawn("receiver", argv, env, workdir / "receiver.log", port)
    try:
        await wait_ready(child, session, "/_bench/count")
        yield child
    finally:
        child.stop()
        remove_dir(workdir)


class Profiler:
    """py-spy record on the server during one measured phase (``--profile``)."""

    def __init__(self, enabled: bool, pid: int, out: Path) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self.out = out
        if not enabled:
            return
        exe = Path(sys.executable).parent / "py-spy"
        if not exe.exists():
            found = shutil.which("py-spy")
            if found is None:
                console.print("[yellow]--profile: py-spy not in the venv or on PATH[/yellow]")
                return
            exe = Path(found)
        out.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [str(exe), "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
             "--threads", "--format", "raw", "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def stop(self) -> str | None:
        if self._proc is None:
            return None
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        return str(self.out)


# -- measuring -------------------------------------------------------------------------------


@dataclass
class CpuMeter:
    """CPU used by the server, the receiver and this driver over one phase."""

    server: int
    receiver: int
    start_wall: float = field(default_factory=time.monotonic)
    start_server: float = 0.0
    start_receiver: float = 0.0
    start_self: float = 0.0
    start_machine: float = 0.0

    def __post_init__(self) -> None:
        self.start_server = server_cpu_seconds(self.server)
        self.start_receiver = cpu_seconds(self.receiver)
        self.start_self = time.process_time()
        self.start_machine = machine_busy()

    def read(self) -> dict[str, float]:
        """CPU % of one core per process; `other_cpu_pct` is everything else on the machine
        (other users, py-spy): high values mean the run was disturbed."""
        wall = time.monotonic() - self.start_wall
        if wall <= 0:
            return {}
        server = 100 * (server_cpu_seconds(self.server) - self.start_server) / wall
        receiver = 100 * (cpu_seconds(self.receiver) - self.start_receiver) / wall
        driver = 100 * (time.process_time() - self.start_self) / wall
        machine = 100 * (machine_busy() - self.start_machine) / wall
        return {
            "server_cpu_s": rounded(server * wall / 100, 3),
            "server_cpu_pct": rounded(server, 1),
            "receiver_cpu_pct": rounded(receiver, 1),
            "driver_cpu_pct": rounded(driver, 1),
            "other_cpu_pct": rounded(max(0.0, machine - server - receiver - driver), 1),
        }


@dataclass
class Requests:
    """Outcome of a set of API requests."""

    jobs: int = 0
    requests: int = 0
    errors: int = 0
    retries: int = 0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    def ok(self, jobs: int, seconds: float) -> None:
        self.jobs += jobs
        self.requests += 1
        self.latencies.append(seconds)

    def failed(self, what: str) -> None:
        self.errors += 1
        self.requests += 1
        self.first_error = self.first_error or what

    def summary(self, wall: float, prefix: str) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            f"{prefix}_jobs": self.jobs,
            f"{prefix}_errors": self.errors,
            f"{prefix}_retries": self.retries,
            f"{prefix}_wall_s": rounded(wall, 3),
            f"{prefix}_jobs_per_s": rounded(self.jobs / wall if wall > 0 else math.nan, 1),
            f"{prefix}_req_p50_ms": rounded(1000 * quantile(ordered, 0.5)),
            f"{prefix}_req_p99_ms": rounded(1000 * quantile(ordered, 0.99)),
            **({f"{prefix}_first_error": self.first_error} if self.first_error else {}),
        }


def per_job(cpu: dict[str, float], jobs: int) -> float:
    """Server CPU microseconds per job: robust to other load on a shared machine."""
    return rounded(1e6 * cpu.get("server_cpu_s", math.nan) / jobs, 1) if jobs else math.nan


def job(key: str, at_us: int, url: str) -> dict[str, Any]:
    return {
        "key": key,
        "schedule": {"kind": "once", "at": iso(at_us)},
        "target": {"kind": "http", "url": url},
        "payload": {"s": at_us / 1e6},
    }


JSON_HEADERS = {"Content-Type": "application/json"}


async def post_jobs(session: aiohttp.ClientSession, base: str, jobs: list[dict[str, Any]],
                    outcome: Requests, single: bool = False, timeout: float = 300.0,
                    headers: dict[str, str] = JSON_HEADERS) -> None:
    """One request: jobs[0] alone to /v1/jobs when `single`, else all to /v1/jobs/batch."""
    url = f"{base}/v1/jobs" if single else f"{base}/v1/jobs/batch"
    body = orjson.dumps(jobs[0] if single else {"jobs": jobs})
    started = time.perf_counter()
    for attempt in range(3):  # a re-submit is harmless: equal jobs come back as existing
        try:
            async with session.post(url, data=body, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                await response.read()
                if response.status in (200, 201):
                    outcome.ok(len(jobs), time.perf_counter() - started)
                else:
                    outcome.failed(f"HTTP {response.status}: {(await response.text())[:300]}")
                return
        except (aiohttp.ClientConnectionError, OSError) as exc:
            # a pooled keep-alive connection the server closed just as we reused it
            if attempt == 2 or isinstance(exc, TimeoutError):
                outcome.failed(f"{type(exc).__name__}: {exc}")
                return
            outcome.retries += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome.failed(f"{type(exc).__name__}: {exc}")
            return


async def run_pool(count: int, concurrency: int, work: Callable[[int], Awaitable[None]]) -> None:
    """Call work(0..count-1) with at most `concurrency` under way."""
    counter = itertools.count()

    async def worker() -> None:
        while (index := next(counter)) < count:
            await work(index)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))


async def load_batches(session: aiohttp.ClientSession, base: str, total: int, size: int,
                       concurrency: int, make: Callable[[int], dict[str, Any]]) -> Requests:
    outcome = Requests()
    batches = math.ceil(total / size)

    async def one(index: int) -> None:
        jobs = [make(i) for i in range(index * size, min(total, (index + 1) * size))]
        await post_jobs(session, base, jobs, outcome)

    await run_pool(batches, concurrency, one)
    return outcome


def far_job(prefix: str, url: str, base_us: int) -> Callable[[int], dict[str, Any]]:
    """Jobs a week ahead, 10 ms apart, so the due index is spread like a real backlog."""
    return lambda i: job(f"{prefix}-{i}", base_us + i * 10_000, url)


async def receiver_call(session: aiohttp.ClientSession, receiver: Child, method: str,
                        name: str) -> Any:
    async with session.request(method, f"{receiver.base_url}/_bench/{name}",
                               timeout=aiohttp.ClientTimeout(total=120)) as response:
        response.raise_for_status()
        return orjson.loads(await response.read())


async def wait_callbacks(session: aiohttp.ClientSession, receiver: Child, expected: int,
                         deadline: float, server: Alive, settle: float = 1.0) -> int:
    """Poll the receiver until `expected` callbacks or the (wall clock) deadline, then wait
    `settle` seconds for late duplicates."""
    count = 0
    polls = 0
    while polls < 100_000:  # bounded however the clock behaves
        polls += 1
        count = int((await receiver_call(session, receiver, "GET", "count"))["count"])
        if count >= expected or time.time() >= deadline:
            break
        server.check_alive()
        await asyncio.sleep(0.25)
    # late duplicates would arrive right after: give them a moment
    await asyncio.sleep(settle)
    return int((await receiver_call(session, receiver, "GET", "count"))["count"])


_BUCKET = re.compile(r'^cronwheel_fire_lateness_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$',
                     re.MULTILINE)


async def server_lateness_buckets(session: aiohttp.ClientSession, server: Child) -> list[
        tuple[float, float]]:
    """Cumulative (le, count) of the server's own fire-lateness histogram (at dispatch)."""
    async with session.get(f"{server.base_url}/metrics",
                           timeout=aiohttp.ClientTimeout(total=30)) as response:
        text = await response.text()
    return [(float(le), float(n)) for le, n in _BUCKET.findall(text)]


def bucket_quantiles(before: list[tuple[float, float]],
                     after: list[tuple[float, float]]) -> dict[str, Any]:
    """Upper bounds (ms) of the buckets holding p50 and p99 of the server-side lateness."""
    delta = [(le, n - dict(before).get(le, 0.0)) for le, n in after]
    total = delta[-1][1] if delta else 0.0
    out: dict[str, Any] = {}
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        bound = next((le for le, n in delta if total and n >= q * total), math.inf)
        out[f"server_dispatch_lateness_{name}_le_ms"] = bound * 1000
    return out


def callback_summary(stats: dict[str, Any], expected: int, prefix: str) -> dict[str, Any]:
    lateness = stats.get("lateness_ms", {})
    return {
        "expected": expected,
        "received": stats.get("count", 0),
        "missing": max(0, expected - int(stats.get("unique_keys", 0))),
        "duplicate_runs": stats.get("duplicate_runs", 0),
        "duplicate_keys": stats.get("duplicate_keys", 0),
        "retries": stats.get("retries", 0),
        **{f"{prefix}_{k.replace('.', '_')}_ms": rounded(float(v), 2)
           for k, v in lateness.items()},
    }


# -- scenarios -------------------------------------------------------------------------------


@dataclass
class Bench:
    cfg: Config
    session: aiohttp.ClientSession
    receiver: Child
    run_index: int = 0

    @property
    def url(self) -> str:
        return f"{self.receiver.base_url}/callback"

    def profiler(self, server: Child, scenario: str) -> Profiler:
        out = RESULTS_DIR / f"{self.cfg.name}-{scenario}-{self.run_index}.pyspy.txt"
        return Profiler(self.cfg.profile, server.pid, out)

    async def dump_records(self, scenario: str) -> None:
        """With --dump, the receiver writes every record to bench/results for offline study."""
        if self.cfg.dump:
            path = RESULTS_DIR / f"{self.cfg.name}-{scenario}-{self.run_index}.records.json"
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            await receiver_call(self.session, self.receiver, "POST", f"dump?path={path}")

    async def submits(self) -> dict[str, Any]:
        cfg = self.cfg
        async with running_server(cfg, self.session, "submits") as server:
            base_us = time.time_ns() // 1000 + int(FAR_FUTURE_S * 1e6)
            warm = Requests()
            await run_pool(200, 16, lambda i: post_jobs(
                self.session, server.base_url, [job(f"warm-{i}", base_us, self.url)],
                warm, single=True))
            meter = CpuMeter(server.pid, self.receiver.pid)
            profile = self.profiler(server, "submits-single")
            single = Requests()
            started = time.monotonic()
            await run_pool(cfg.single_jobs, cfg.single_concurrency, lambda i: post_jobs(
                self.session, server.base_url,
                [job(f"single-{i}", base_us + i * 10_000, self.url)], single, single=True))
            single_wall = time.monotonic() - started
            single_cpu = meter.read()
            single_profile = profile.stop()

            meter = CpuMeter(server.pid, self.receiver.pid)
            profile = self.profiler(server, "submits-batch")
            started = time.monotonic()
            batch = await load_batches(
                self.session, server.base_url, cfg.batch_jobs, cfg.batch_size,
                cfg.batch_concurrency, far_job("batch", self.url, base_us + 10**12))
            batch_wall = time.monotonic() - started
            batch_cpu = meter.read()
            batch_profile = profile.stop()
            return {
                **single.summary(single_wall, "single"),
                **{f"single_{k}": v for k, v in single_cpu.items()},
                "single_server_cpu_us_per_job": per_job(single_cpu, single.jobs),
                **batch.summary(batch_wall, "batch"),
                **{f"batch_{k}": v for k, v in batch_cpu.items()},
                "batch_server_cpu_us_per_job": per_job(batch_cpu, batch.jobs),
                "rss_mb": rounded(server_rss(server.pid) / MB, 1),
                **({"profiles": [single_profile, batch_profile]} if single_profile else {}),
            }

    async def warm_deliveries(self, server: Child, count: int = 200) -> None:
        """Fire a few jobs before measuring: the first delivery after a start pays for
        importing the HTTP transport and opening connections (reported separately)."""
        await receiver_call(self.session, self.receiver, "POST", "reset")
        first_us = round((time.time() + 1.0) * 1e6)
        warm = await load_batches(
            self.session, server.base_url, count, count, 1,
            lambda i: job(f"warmup-{i}", first_us + i * 2_500, self.url))
        await wait_callbacks(self.session, self.receiver, warm.jobs, time.time() + 15, server)
        await receiver_call(self.session, self.receiver, "POST", "reset")

    async def _load_pending(self, server: Child, count: int) -> dict[str, Any]:
        base_us = time.time_ns() // 1000 + int(FAR_FUTURE_S * 1e6)
        meter = CpuMeter(server.pid, self.receiver.pid)
        started = time.monotonic()
        loaded = await load_batches(self.session, server.base_url, count, self.cfg.batch_size,
                                    self.cfg.batch_concurrency, far_job("pending", self.url,
                                                                        base_us))
        cpu = meter.read()
        return {**loaded.summary(time.monotonic() - started, "load"),
                "load_server_cpu_us_per_job": per_job(cpu, loaded.jobs),
                "load_other_cpu_pct": cpu.get("other_cpu_pct")}

    async def lateness(self) -> dict[str, Any]:
        cfg = self.cfg
        async with running_server(cfg, self.session, "lateness") as server:
            out = await self._load_pending(server, cfg.pending)
            out["pending"] = out.pop("load_jobs")
            await self.warm_deliveries(server)
            return out | await self.fire_at_rate(server)

    async def fire_at_rate(self, server: Child) -> dict[str, Any]:
        """Submit `rate` jobs a second for `duration` seconds, each due `lead` after its
        submit, and measure how late their callbacks arrive (and the server's CPU)."""
        cfg = self.cfg
        buckets = await server_lateness_buckets(self.session, server)
        meter = CpuMeter(server.pid, self.receiver.pid)
        profile = self.profiler(server, "lateness")
        submitted, t0, ticks = await submit_at_rate(
            self.session, lambda _k: server.base_url, self.url, "fire",
            (cfg.rate, cfg.tick, cfg.duration, cfg.lead))
        expected = submitted.jobs
        last_due = t0 + (ticks - 1) * cfg.tick + cfg.lead + cfg.tick
        await wait_callbacks(self.session, self.receiver, expected,
                             last_due + cfg.drain_timeout, server)
        cpu = meter.read()
        stats = await receiver_call(self.session, self.receiver, "GET", "stats")
        path = profile.stop()
        await self.dump_records("lateness")
        return {
            "fires_per_s": cfg.rate,
            "fire_seconds": cfg.duration,
            "lead_s": cfg.lead,
            **callback_summary(stats, expected, "lateness"),
            **bucket_quantiles(buckets, await server_lateness_buckets(self.session, server)),
            "submit_errors": submitted.errors,
            "submit_req_p99_ms": rounded(1000 * quantile(sorted(submitted.latencies), 0.99)),
            **cpu,
            "rss_mb": rounded(server_rss(server.pid) / MB, 1),
            **({"profile": path} if path else {}),
        }

    async def throughput(self) -> dict[str, Any]:
        cfg = self.cfg
        async with running_server(cfg, self.session, "throughput") as server:
            await self.warm_deliveries(server)
            count = cfg.throughput_jobs
            t0_us = round((time.time() + cfg.throughput_lead) * 1e6)
            spacing_us = cfg.throughput_span * 1e6 / count
            started = time.monotonic()
            loaded = await load_batches(
                self.session, server.base_url, count, cfg.batch_size, cfg.batch_concurrency,
                lambda i: job(f"burst-{i}", t0_us + round(i * spacing_us), self.url))
            submit_wall = time.monotonic() - started
            overlap = time.time() > t0_us / 1e6
            if overlap:
                console.print("[yellow]throughput: submission ran past the first fire; "
                              "raise --throughput-lead[/yellow]")
            await asyncio.sleep(max(0.0, t0_us / 1e6 - time.time()))
            buckets = await server_lateness_buckets(self.session, server)
            meter = CpuMeter(server.pid, self.receiver.pid)
            profile = self.profiler(server, "throughput")
            await wait_callbacks(self.session, self.receiver, loaded.jobs,
                                 t0_us / 1e6 + cfg.throughput_span + cfg.drain_timeout, server)
            cpu = meter.read()
            path = profile.stop()
            stats = await receiver_call(self.session, self.receiver, "GET", "stats")
            await self.dump_records("throughput")
            per_second = stats.get("per_second", [])
            return {
                "jobs": loaded.jobs,
                "offered_per_s": rounded(count / cfg.throughput_span, 0),
                "submit_jobs_per_s": rounded(loaded.jobs / submit_wall, 1),
                "submit_overlapped_firing": overlap,
                "callbacks_per_s": rounded(float(stats.get("per_s", math.nan)), 1),
                "arrival_span_s": rounded(float(stats.get("span_s", math.nan)), 2),
                "best_second": max(per_second) if per_second else 0,
                "arrivals_per_second": per_second,
                **callback_summary(stats, loaded.jobs, "lateness"),
                **bucket_quantiles(buckets, await server_lateness_buckets(self.session, server)),
                **cpu,
                "server_cpu_us_per_callback": per_job(cpu, int(stats.get("count", 0))),
                "rss_mb": rounded(server_rss(server.pid) / MB, 1),
                **({"profile": path} if path else {}),
            }

    async def memory(self) -> dict[str, Any]:
        cfg = self.cfg
        async with running_server(cfg, self.session, "memory") as server:
            await asyncio.sleep(1.0)
            cold = server_rss(server.pid)
            warm_jobs = min(cfg.batch_size, cfg.pending)
            base_us = time.time_ns() // 1000 + int(FAR_FUTURE_S * 1e6)
            warm = await load_batches(self.session, server.base_url, warm_jobs, cfg.batch_size,
                                      1, far_job("warm", self.url, base_us))
            await asyncio.sleep(1.0)
            baseline = server_rss(server.pid)
            out = await self._load_pending(server, cfg.pending - warm.jobs)
            pending = warm.jobs + int(out.pop("load_jobs"))
            await asyncio.sleep(3.0)  # a claim pass or two over the full backlog
            rss = server_rss(server.pid)
            database = sum(p.stat().st_size for p in server.log.parent.glob("bench.db*"))
            return {
                "pending": pending,
                **out,
                "rss_cold_mb": rounded(cold / MB, 1),
                "rss_baseline_mb": rounded(baseline / MB, 1),
                "rss_mb": rounded(rss / MB, 1),
                "rss_peak_mb": rounded(proc_status(server.pid, "VmHWM") / MB, 1),
                "bytes_per_pending_job": rounded((rss - baseline) / max(1, pending - warm.jobs),
                                                 1),
                "database_mb": rounded(database / MB, 1),
            }

    async def receivers(self) -> dict[str, Any]:
        """Each receiver implementation under the same load: CPU per callback, requests/s."""
        out: dict[str, Any] = {}
        body = orjson.dumps({"s": time.time()})
        for impl in ("raw", "aiohttp"):
            async with running_receiver(impl, self.session) as receiver:
                headers = {**JSON_HEADERS, "Cronwheel-Run-Id": "r", "Cronwheel-Job-Key": "k",
                           "Cronwheel-Attempt": "1",
                           "Cronwheel-Scheduled-At": "2026-01-01T00:00:00Z"}
                errors = 0

                async def hit(_i: int, url: str = f"{receiver.base_url}/callback",
                              headers: dict[str, str] = headers) -> None:
                    nonlocal errors
                    try:
                        async with self.session.post(url, data=body, headers=headers) as resp:
                            await resp.read()
                    except (aiohttp.ClientError, OSError):
                        errors += 1

                await run_pool(500, 32, hit)
                cpu_before = cpu_seconds(receiver.pid)
                started = time.monotonic()
                await run_pool(self.cfg.receiver_requests, 64, hit)
                wall = time.monotonic() - started
                used = cpu_seconds(receiver.pid) - cpu_before
                count = self.cfg.receiver_requests
                out |= {
                    f"{impl}_requests_per_s": rounded(count / wall, 0),
                    f"{impl}_cpu_us_per_request": rounded(1e6 * used / count, 1),
                    f"{impl}_cpu_pct": rounded(100 * used / wall, 1),
                    f"{impl}_errors": errors,
                }
        return out


# -- reporting -------------------------------------------------------------------------------


def environment(cfg: Config) -> dict[str, Any]:
    return {
        **machine_environment(),
        "server_env": {k: v for k, v in server_env(cfg).items()
                       if k.startswith("CRONWHEEL_") and k not in TOKEN_SETTINGS},
        "receiver": cfg.receiver_impl,
    }


def machine_environment() -> dict[str, Any]:
    """Date, machine, versions and the measured cronwheel source: what every result records."""
    cpu_model = ""
    with contextlib.suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(),
                          re.MULTILINE)
        cpu_model = found.group(1) if found else ""
    versions = {}
    for package in ("cronwheel", "aiohttp", "uvloop", "uvicorn", "fastapi", "sqlalchemy",
                    "aiosqlite", "httptools", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_model,
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "mem_total_gb": rounded(proc_meminfo("MemTotal") / 1024**3, 1),
        "loadavg_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
        "cronwheel_source": source_digest(),
    }


def source_digest() -> dict[str, str]:
    """Where the server's cronwheel package comes from and a digest of its .py files, so a
    result can be tied to the code it measured (the tree changes while people work)."""
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("cronwheel")
    if spec is None or not spec.submodule_search_locations:
        return {}
    root = Path(next(iter(spec.submodule_search_locations)))
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return {"path": str(root), "sha256": digest.hexdigest()[:16]}


def proc_meminfo(name: str) -> int:
    with contextlib.suppress(OSError):
        found = re.search(rf"^{name}:\s+(\d+) kB", Path("/proc/meminfo").read_text(),
                          re.MULTILINE)
        if found:
            return int(found.group(1)) * 1024
    return 0


def disturbed(run: dict[str, Any]) -> bool:
    """Other processes used more than DISTURBED_PCT of a core during a measured phase."""
    return any(isinstance(v, int | float) and v > DISTURBED_PCT
               for k, v in run.items() if k.endswith("other_cpu_pct"))


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the undisturbed runs when there are any (over all runs otherwise)."""
    quiet = [r for r in runs if not r["disturbed"]]
    return {"runs": runs, "median": medians(quiet or runs), "median_all": medians(runs),
            "median_over": f"{len(quiet)} undisturbed of {len(runs)}" if quiet
            else f"all {len(runs)} (every run disturbed)"}


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each numeric metric across runs; the first run's value otherwise."""
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = [r.get(key) for r in runs]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) == len(values):
            out[key] = statistics.median(numbers)
        else:
            out[key] = values[0] if len(runs) == 1 else values
    return out


TABLE_ROWS: dict[str, list[tuple[str, str]]] = {
    "submits": [("single_jobs_per_s", "single POST jobs/s"), ("single_req_p99_ms", "p99 ms"),
                ("batch_jobs_per_s", "batch jobs/s"), ("batch_req_p99_ms", "batch p99 ms"),
                ("batch_server_cpu_pct", "server CPU % (batch)")],
    "lateness": [("pending", "pending jobs"), ("load_jobs_per_s", "load jobs/s (batch)"),
                 ("received", "callbacks"), ("lateness_p50_ms", "lateness p50 ms"),
                 ("lateness_p99_ms", "lateness p99 ms"), ("lateness_max_ms", "lateness max ms"),
                 ("duplicate_runs", "duplicates"), ("missing", "missing"),
                 ("server_cpu_pct", "server CPU %")],
    "throughput": [("offered_per_s", "offered/s"), ("callbacks_per_s", "callbacks/s"),
                   ("best_second", "best 1 s window"), ("lateness_p50_ms", "lateness p50 ms"),
                   ("lateness_p99_ms", "lateness p99 ms"), ("lateness_max_ms", "lateness max ms"),
                   ("duplicate_runs", "duplicates"), ("missing", "missing"),
                   ("server_cpu_pct", "server CPU %")],
    "memory": [("pending", "pending jobs"), ("rss_baseline_mb", "RSS baseline MB"),
               ("rss_mb", "RSS MB"), ("rss_peak_mb", "peak RSS MB"),
               ("bytes_per_pending_job", "bytes/pending job"),
               ("load_jobs_per_s", "load jobs/s")],
    "receiver": [("raw_cpu_us_per_request", "raw µs CPU/req"),
                 ("aiohttp_cpu_us_per_request", "aiohttp µs CPU/req"),
                 ("raw_requests_per_s", "raw req/s"), ("aiohttp_requests_per_s", "aiohttp req/s")],
}


def short(value: float) -> str:
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def fmt(value: Any, digits: int | None = None) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, float):
        if digits is not None and abs(value) >= 100:
            return f"{value:,.{digits}f}"
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def report(env: dict[str, Any], results: dict[str, Any]) -> None:
    console.print(
        f"[bold]environment[/bold]: {env['nproc']} CPUs ({env['cpu']}), "
        f"{env['mem_total_gb']} GB, Python {env['python']}, SQLite {env['sqlite']}, "
        f"{env['platform']}, load {tuple(round(x, 2) for x in env['loadavg_start'])}"
    )
    source = env.get("cronwheel_source", {})
    if source:
        console.print(f"cronwheel source: {source.get('path')} (sha256 {source.get('sha256')})")
    if env["server_env"]:
        console.print(f"server settings: {env['server_env']}")
    table = Table(title="cronwheel fire benchmark")
    for column in ("scenario", "metric", "median", "runs", "target", "ok"):
        table.add_column(column, justify="right" if column in ("median", "runs") else "left")
    for scenario, result in results.items():
        median, runs = result["median"], result["runs"]
        for key, label in TABLE_ROWS.get(scenario, []):
            if key not in median:
                continue
            target = next((t for t in TARGETS if t.scenario == scenario and t.metric == key),
                          None)
            verdict, goal = "", ""
            value = median[key]
            if target is not None:
                goal = f"{target.op} {short(target.value)} {target.unit}"
                if target.conditions:
                    goal += " @ " + ", ".join(f"{short(least)} {name.split('_')[0]}"
                                              for name, least in target.conditions)
                verdict = {"yes": "[green]yes[/green]", "no": "[red]no[/red]"}.get(
                    target.verdict(median), "n/a")
            spread = " / ".join(fmt(r.get(key), 0) + ("*" if r.get("disturbed") else "")
                                for r in runs) if len(runs) > 1 else ""
            table.add_row(scenario, label, fmt(value), spread, goal, verdict)
    console.print(table)
    console.print("median: over the undisturbed runs when there are any; * marks a disturbed "
                  f"run (other processes used > {DISTURBED_PCT:g}% of a core meanwhile)")


# -- the CLI ---------------------------------------------------------------------------------


async def run_all(cfg: Config, only: list[Scenario]) -> dict[str, Any]:
    chosen: list[Scenario] = [s for s in Scenario if s not in (Scenario.ALL, Scenario.RECEIVER)]
    if Scenario.ALL not in only:
        chosen = [s for s in Scenario if s in only and s is not Scenario.ALL]
    env = environment(cfg)
    results: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=max(256, cfg.single_concurrency * 2),
                                     limit_per_host=0)
    async with (
        aiohttp.ClientSession(connector=connector, headers=AUTH) as session,
        running_receiver(cfg.receiver_impl, session) as receiver,
    ):
        bench = Bench(cfg, session, receiver)
        steps: dict[Scenario, Callable[[], Awaitable[dict[str, Any]]]] = {
            Scenario.SUBMITS: bench.submits,
            Scenario.LATENESS: bench.lateness,
            Scenario.THROUGHPUT: bench.throughput,
            Scenario.MEMORY: bench.memory,
            Scenario.RECEIVER: bench.receivers,
        }
        for scenario in chosen:
            runs = []
            for index in range(cfg.repeat):
                bench.run_index = index
                console.print(f"[cyan]{scenario.value} run {index + 1}/{cfg.repeat}[/cyan]")
                quiet = await wait_quiet(cfg.quiet_wait)
                started = time.monotonic()
                result = await steps[scenario]()
                result["load_before_pct"] = rounded(quiet, 1)
                result["disturbed"] = disturbed(result)
                result["scenario_wall_s"] = rounded(time.monotonic() - started, 1)
                console.print(f"  [dim]{json.dumps(result, default=str)}[/dim]")
                runs.append(result)
            results[scenario.value] = summarize(runs)
    env["loadavg_end"] = os.getloadavg()
    report(env, results)
    targets = [
        {**asdict(t), "measured": results[t.scenario]["median"].get(t.metric),
         "met": t.verdict(results[t.scenario]["median"])}
        for t in TARGETS if t.scenario in results
    ]
    document = {"environment": env, "config": asdict(cfg), "results": results,
                "targets": targets}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{cfg.name}.json"
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2,
                                  default=str))
    console.print(f"results: {path}")
    return document


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run the driver on uvloop when it is installed (as the server does)."""
    runner: Callable[[Coroutine[Any, Any, T]], T] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    return runner(main)


def parse_settings(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--set")
        out[key.removeprefix("CRONWHEEL_").upper()] = value
    return out


def main(
    only: Annotated[list[Scenario] | None, typer.Option(
        help="scenarios to run (repeatable); 'receiver' compares receiver implementations")
    ] = None,
    name: Annotated[str, typer.Option(help="results go to bench/results/NAME.json")] = "",
    repeat: Annotated[int, typer.Option(min=1, max=20, help="runs per scenario")] = 1,
    single_jobs: Annotated[int, typer.Option(min=1, help="single POSTs")] = 5_000,
    single_concurrency: Annotated[int, typer.Option(min=1, max=1024)] = 64,
    batch_jobs: Annotated[int, typer.Option(min=1, help="jobs through /v1/jobs/batch")] = 50_000,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 1_000,
    batch_concurrency: Annotated[int, typer.Option(min=1, max=64)] = 4,
    pending: Annotated[int, typer.Option(
        min=1, help="pending far-future jobs (lateness, memory)")] = 100_000,
    rate: Annotated[int, typer.Option(min=1, help="fires/s in the lateness scenario")] = 1_000,
    duration: Annotated[float, typer.Option(min=0.1, max=3600, help="seconds of firing")] = 20.0,
    lead: Annotated[float, typer.Option(min=0.0, max=600,
                                        help="seconds between submit and fire")] = 5.0,
    tick: Annotated[float, typer.Option(min=0.01, max=10, help="seconds between submits")] = 0.1,
    throughput_jobs: Annotated[int, typer.Option(min=1)] = 60_000,
    throughput_span: Annotated[float, typer.Option(min=0.1, help="seconds they are due over")
                               ] = 10.0,
    throughput_lead: Annotated[float, typer.Option(
        min=1.0, max=600, help="seconds from the start of submission to the first fire")] = 20.0,
    drain_timeout: Annotated[float, typer.Option(
        min=1.0, max=3600, help="seconds to wait for callbacks after the last due time")] = 60.0,
    receiver: Annotated[str, typer.Option(help="receiver implementation: raw or aiohttp")
                        ] = "raw",
    receiver_requests: Annotated[int, typer.Option(min=100)] = 20_000,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="server setting NAME=VALUE, as CRONWHEEL_NAME (repeatable)")] = None,
    profile: Annotated[bool, typer.Option(
        help="py-spy record the server in each measured phase (raw stacks to bench/results)")
    ] = False,
    dump: Annotated[bool, typer.Option(
        help="write every callback record (lateness, throughput) to bench/results")] = False,
    keep: Annotated[bool, typer.Option(help="keep each server's temp dir (db, log)")] = False,
    quiet_wait: Annotated[float, typer.Option(
        min=0, max=3600, help="before each run, wait up to this many seconds for the machine's "
        "other load to drop below 25% of a core (shared machines)")] = 60.0,
) -> None:
    """Run the benchmark scenarios against fresh local servers and report."""
    if receiver not in ("raw", "aiohttp"):
        raise typer.BadParameter("raw or aiohttp", param_hint="--receiver")
    cfg = Config(
        name=name or datetime.now().strftime("run-%Y%m%d-%H%M%S"),
        repeat=repeat, single_jobs=single_jobs, single_concurrency=single_concurrency,
        batch_jobs=batch_jobs, batch_size=batch_size, batch_concurrency=batch_concurrency,
        pending=pending, rate=rate, duration=duration, lead=lead, tick=tick,
        throughput_jobs=throughput_jobs, throughput_span=throughput_span,
        throughput_lead=throughput_lead, drain_timeout=drain_timeout,
        receiver_impl=receiver, receiver_requests=receiver_requests,
        server_env=parse_settings(set_ or []), profile=profile, dump=dump, keep=keep,
        quiet_wait=quiet_wait,
    )
    run_loop(run_all(cfg, only or [Scenario.ALL]))


if __name__ == "__main__":
    typer.run(main)
