"""cronwheel benchmark: a noisy namespace beside a quiet one (issue 14 point 3).

One node on SQLite (or on a fresh PostgreSQL database, `--database postgres`), two receivers.
The noisy namespace holds `--noisy-jobs` jobs repeating every `--interval-ms`, far more than
the node can fire, delivering to a slow receiver (`--delay-ms` per callback, aiohttp). After
`--warmup` seconds of that flood, the quiet namespace submits `--quiet-rate` one-shot jobs a
second for `--duration` seconds, each due `--lead` seconds later, at priority
`--quiet-priority`, to a fast receiver (raw). Reported: the quiet jobs' lateness at their
receiver (p50/p99/max, missing after `--drain-timeout`), the noisy namespace's callbacks per
second over the quiet phase, and the server's CPU (and PostgreSQL's).

    PYTHONPATH=$PWD/src .venv/bin/python bench/noisy_bench.py --repeat 3 --name after
    PYTHONPATH=/path/to/main/src .venv/bin/python bench/noisy_bench.py --repeat 3 --name before

Results: a table on stdout and bench/results/<name>.json. See bench/README.md, "Session 10"
and "Session 11".
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import orjson
import typer
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fire_bench lives next to this file
import cluster_bench as cb
import fire_bench as fb
import split_bench as sb


@dataclass(frozen=True)
class NoisyConfig:
    name: str
    repeat: int
    noisy_jobs: int
    interval_ms: int
    delay_ms: float
    warmup: float
    quiet_rate: int
    duration: float
    lead: float
    quiet_priority: int
    drain_timeout: float
    quiet_wait: float
    server_env: dict[str, str]
    backend: cb.Backend
    postgres: cb.Postgres
    keep: bool = False


@contextlib.asynccontextmanager
async def receiver(session: aiohttp.ClientSession, impl: str,
                   delay_ms: float = 0.0) -> AsyncIterator[fb.Child]:
    workdir = Path(tempfile.mkdtemp(prefix="cw-noisy-receiver-"))
    port = fb.free_port()
    argv = [sys.executable, str(fb.BENCH_DIR / "receiver.py"), "--port", str(port),
            "--impl", impl]
    if delay_ms:
        argv += ["--delay-ms", str(delay_ms)]
    child = fb.spawn(f"receiver-{impl}", argv, fb.settings_env({}), workdir / "receiver.log",
                     port)
    try:
        await fb.wait_ready(child, session, "/_bench/count")
        yield child
    finally:
        child.stop()
        fb.remove_dir(workdir)


@contextlib.asynccontextmanager
async def server(cfg: NoisyConfig, session: aiohttp.ClientSession) -> AsyncIterator[fb.Child]:
    workdir = Path(tempfile.mkdtemp(prefix="cw-noisy-"))
    port = fb.free_port()
    try:
        async with cb.fresh_database(cfg.postgres, cfg.backend, workdir) as url:
            if cfg.backend is cb.Backend.POSTGRES:
                await cb.migrate(url, workdir)
            child = fb.spawn("server", fb.serve_argv(port, url),
                             fb.settings_env(cfg.server_env), workdir / "server.log", port)
            try:
                await fb.wait_ready(child, session, "/healthz")
                yield child
            finally:
                child.stop()
    finally:
        if cfg.keep:
            fb.console.print(f"[dim]kept {workdir}[/dim]")
        else:
            fb.remove_dir(workdir)


def noisy_job(index: int, url: str, interval_ms: int) -> dict[str, Any]:
    return {"namespace": "noisy", "key": f"n-{index}", "target": {"kind": "http", "url": url},
            "schedule": {"kind": "simple", "interval": interval_ms, "unit": "millisecond"}}


def quiet_job(index: int, url: str, at_us: int, priority: int) -> dict[str, Any]:
    return {**fb.job(f"q-{index}", at_us, url), "namespace": "quiet", "priority": priority}


async def count(session: aiohttp.ClientSession, child: fb.Child) -> int:
    return int((await fb.receiver_call(session, child, "GET", "count"))["count"])


async def one_run(cfg: NoisyConfig, session: aiohttp.ClientSession) -> dict[str, Any]:
    other = await fb.wait_quiet(cfg.quiet_wait)
    async with (
        receiver(session, "aiohttp", cfg.delay_ms) as slow,
        receiver(session, "raw") as quick,
        server(cfg, session) as node,
    ):
        base = node.base_url
        url = f"{slow.base_url}/callback"
        loaded = await fb.load_batches(session, base, cfg.noisy_jobs, 1_000, 2,
                                       lambda i: noisy_job(i, url, cfg.interval_ms))
        if loaded.errors and cfg.noisy_jobs:
            raise RuntimeError(f"noisy jobs refused: {loaded.first_error}")
        await asyncio.sleep(cfg.warmup)
        noisy_before = await count(session, slow)
        meter = fb.CpuMeter(node.pid, quick.pid)
        engine0 = sb.children_cpu(node.pid)  # the engine process, when `serve` starts one
        postgres = cb.cpu_of(cb.postgres_pids()) if cfg.backend is cb.Backend.POSTGRES else {}
        submitted = await submit_quiet(cfg, session, base, f"{quick.base_url}/callback")
        phase = time.monotonic() - meter.start_wall
        noisy_during = await count(session, slow) - noisy_before
        cpu = meter.read()
        engine = sb.children_cpu(node.pid) - engine0
        cpu["engine_cpu_pct"] = fb.rounded(100 * engine / phase, 1)
        cpu["other_cpu_pct"] = fb.rounded(max(0.0, cpu["other_cpu_pct"]
                                              - cpu["engine_cpu_pct"]), 1)
        cpu["server_cpu_s"] = fb.rounded(cpu["server_cpu_s"] + engine, 3)  # both processes
        if postgres:  # counted in `other_cpu_pct` by the meter: taken out of it
            used = sum(now - postgres.get(pid, 0.0)
                       for pid, now in cb.cpu_of(cb.postgres_pids()).items())
            cpu["postgres_cpu_pct"] = fb.rounded(100 * used / phase, 1)
            cpu["postgres_cpu_us_per_noisy_callback"] = (
                fb.rounded(1e6 * used / noisy_during, 1) if noisy_during else math.nan)
            cpu["other_cpu_pct"] = fb.rounded(max(0.0, cpu["other_cpu_pct"]
                                                  - cpu["postgres_cpu_pct"]), 1)
        last_due = time.time() + cfg.lead
        got = await fb.wait_callbacks(session, quick, submitted, last_due + cfg.drain_timeout,
                                      node, settle=0.5)
        stats = await fb.receiver_call(session, quick, "GET", "stats")
        summary = fb.callback_summary(stats, submitted, "quiet_lateness")
        return {
            "noisy_jobs": cfg.noisy_jobs, "interval_ms": cfg.interval_ms,
            "quiet_jobs": submitted, "quiet_received": got,
            "noisy_callbacks_per_s": fb.rounded(noisy_during / phase, 0),
            "noisy_callbacks": noisy_during,
            "server_cpu_us_per_noisy_callback": fb.per_job(cpu, noisy_during),
            "other_cpu_pct_before": fb.rounded(other, 1),
            **summary, **cpu,
        }


async def submit_quiet(cfg: NoisyConfig, session: aiohttp.ClientSession, base: str,
                       url: str) -> int:
    """`quiet_rate` jobs a second in ticks of 0.1 s, each due `lead` seconds later."""
    outcome = fb.Requests()
    per_tick = max(1, round(cfg.quiet_rate / 10))
    ticks = max(1, round(cfg.duration * 10))
    started = time.monotonic()
    index = 0
    for tick in range(ticks):
        await asyncio.sleep(max(0.0, started + tick / 10 - time.monotonic()))
        due = round((time.time() + cfg.lead) * 1e6)
        jobs = [quiet_job(index + k, url, due + k * 100_000 // per_tick, cfg.quiet_priority)
                for k in range(per_tick)]
        index += per_tick
        await fb.post_jobs(session, base, jobs, outcome)
    if outcome.errors:
        raise RuntimeError(f"quiet jobs refused: {outcome.first_error}")
    return index


KEYS = ("quiet_lateness_p50_ms", "quiet_lateness_p99_ms", "quiet_lateness_max_ms", "missing",
        "duplicate_runs", "noisy_callbacks_per_s", "server_cpu_us_per_noisy_callback",
        "server_cpu_pct", "engine_cpu_pct", "postgres_cpu_pct", "other_cpu_pct")


async def run_all(cfg: NoisyConfig) -> int:
    runs = []
    async with aiohttp.ClientSession(headers=fb.AUTH) as session:
        for attempt in range(cfg.repeat):
            fb.console.print(f"[bold]noisy beside quiet[/bold] run {attempt + 1}/{cfg.repeat}")
            runs.append(await one_run(cfg, session))
            fb.console.print({k: runs[-1].get(k) for k in KEYS})
    medians = {k: statistics.median(float(r.get(k, math.nan)) for r in runs) for k in KEYS}
    table = Table(title=f"noisy namespace beside a quiet one ({cfg.name}, medians of {len(runs)})")
    for key in KEYS:
        table.add_column(key.replace("_", " "))
    table.add_row(*(fb.fmt(medians[k]) for k in KEYS))
    fb.console.print(table)
    fb.RESULTS_DIR.mkdir(exist_ok=True)
    out = fb.RESULTS_DIR / f"{cfg.name}.json"
    out.write_bytes(orjson.dumps({"config": asdict(cfg), "environment": fb.machine_environment(),
                                  "source": fb.source_digest(), "runs": runs,
                                  "medians": medians}, option=orjson.OPT_INDENT_2))
    fb.console.print(f"wrote {out}")
    return 0


def main(
    name: Annotated[str, typer.Option(help="results go to bench/results/NAME.json")] = "",
    repeat: Annotated[int, typer.Option(min=1, max=20)] = 1,
    noisy_jobs: Annotated[int, typer.Option(
        min=0, help="0: the quiet namespace alone, its usual lateness")] = 10_000,
    interval_ms: Annotated[int, typer.Option(min=1)] = 10,
    delay_ms: Annotated[float, typer.Option(min=0, help="the noisy receiver's answer time")
                        ] = 50.0,
    warmup: Annotated[float, typer.Option(min=0, help="seconds of flood before measuring")
                      ] = 10.0,
    quiet_rate: Annotated[int, typer.Option(min=1, help="quiet one-shot jobs a second")] = 10,
    duration: Annotated[float, typer.Option(min=0.1, help="seconds of quiet submits")] = 20.0,
    lead: Annotated[float, typer.Option(min=0, help="seconds from submit to due")] = 2.0,
    quiet_priority: Annotated[int, typer.Option()] = 1_000_000,
    drain_timeout: Annotated[float, typer.Option(min=1)] = 60.0,
    quiet_wait: Annotated[float, typer.Option(min=0)] = 30.0,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="server setting NAME=VALUE, as CRONWHEEL_NAME (repeatable)")] = None,
    keep: Annotated[bool, typer.Option(help="keep the server's temp dir (db, log)")] = False,
    database: Annotated[cb.Backend, typer.Option(
        help="sqlite: a file; postgres: a fresh database on --pg-host, dropped after")
                        ] = cb.Backend.SQLITE,
    pg_host: Annotated[str, typer.Option()] = "127.0.0.1",
    pg_port: Annotated[int, typer.Option()] = 5432,
    pg_user: Annotated[str, typer.Option()] = "postgres",
    pg_admin_db: Annotated[str, typer.Option(help="where CREATE DATABASE is run")] = "test",
) -> None:
    """Flood one namespace and measure another's lateness."""
    cfg = NoisyConfig(
        name=name or datetime.now().strftime("noisy-%Y%m%d-%H%M%S"), repeat=repeat,
        noisy_jobs=noisy_jobs, interval_ms=interval_ms, delay_ms=delay_ms, warmup=warmup,
        quiet_rate=quiet_rate, duration=duration, lead=lead, quiet_priority=quiet_priority,
        drain_timeout=drain_timeout, quiet_wait=quiet_wait,
        server_env=fb.parse_settings(set_ or []), backend=database,
        postgres=cb.Postgres(pg_host, pg_port, pg_user, pg_admin_db), keep=keep)
    raise typer.Exit(fb.run_loop(run_all(cfg)))


if __name__ == "__main__":
    typer.run(main)
