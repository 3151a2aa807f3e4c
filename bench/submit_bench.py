"""cronwheel submit benchmark at 1,000,000 pending jobs (issue 14 point 5, the submit half).

Uses read_bench's base file (1,000,000 jobs filled through the store's bulk insert, due in a
week). Each run copies it, starts ``cronwheel serve`` on the copy and measures, one after the
other: `--single` POST /v1/jobs from `--clients` concurrent clients, then `--batch-jobs` jobs
through POST /v1/jobs/batch in requests of `--batch-size` from `--batch-clients` clients.
Reports jobs/s, request p50/p99, server CPU µs per job and the server's RSS at the end.

    .venv/bin/python bench/submit_bench.py --base /tmp/reads-1m.db --repeat 3

To measure another copy of the code: PYTHONPATH=/path/to/copy/src (the server inherits it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fire_bench import (  # a sibling script
    AUTH,
    JSON_HEADERS,
    MB,
    RESULTS_DIR,
    CpuMeter,
    Requests,
    console,
    free_port,
    per_job,
    post_jobs,
    remove_dir,
    run_pool,
    server_argv,
    server_rss,
    settings_env,
    spawn,
    wait_ready,
)
from fire_bench import job as job_body
from read_bench import fill

US = 1_000_000
URL = "http://127.0.0.1:9/callback"  # never called: the jobs are due in a year


async def single_submits(session: aiohttp.ClientSession, base: str, count: int, clients: int,
                  prefix: str, at: int) -> dict[str, Any]:
    out = Requests()
    started = time.monotonic()
    await run_pool(count, clients, lambda i: post_jobs(
        session, base, [job_body(f"{prefix}-{i}", at + i, URL)], out, single=True))
    return out.summary(time.monotonic() - started, "single")


async def batch_submits(session: aiohttp.ClientSession, base: str, total: int, size: int,
                        clients: int, prefix: str, at: int,
                        minimal: bool = False) -> dict[str, Any]:
    """With `minimal`, each request asks for the ids only (`Prefer: return=minimal`)."""
    out = Requests()
    headers = JSON_HEADERS | ({"Prefer": "return=minimal"} if minimal else {})
    started = time.monotonic()

    async def one(index: int) -> None:
        jobs = [job_body(f"{prefix}-{i}", at + i, URL)
                for i in range(index * size, min(total, (index + 1) * size))]
        await post_jobs(session, base, jobs, out, headers=headers)

    await run_pool(-(-total // size), clients, one)
    return out.summary(time.monotonic() - started, "batch")


async def measure(base_file: Path, single: int, clients: int, batch_jobs: int,
                  batch_size: int, batch_clients: int, minimal: bool = False) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="cw-bench-submits-"))
    shutil.copyfile(base_file, workdir / "bench.db")
    port = free_port()
    at = int(time.time() * US) + 365 * 86_400 * US
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=AUTH,
                                     timeout=aiohttp.ClientTimeout(total=300)) as session:
        argv = server_argv(port, workdir / "bench.db")
        server = spawn("server", argv, settings_env({}),
                       workdir / "server.log", port)
        try:
            await wait_ready(server, session, "/healthz", timeout=600)
            base = server.base_url
            result: dict[str, Any] = {"rss_start_mb": server_rss(server.pid) / MB}
            await single_submits(session, base, 200, 16, "warm", at)
            meter = CpuMeter(server.pid, server.pid)
            result |= await single_submits(session, base, single, clients, "single", at)
            cpu = meter.read()
            result["single_cpu_us_per_job"] = per_job(cpu, result["single_jobs"])
            meter = CpuMeter(server.pid, server.pid)
            result |= await batch_submits(session, base, batch_jobs, batch_size, batch_clients,
                                          "batch", at, minimal)
            cpu = meter.read()
            result["batch_cpu_us_per_job"] = per_job(cpu, result["batch_jobs"])
            result["rss_end_mb"] = server_rss(server.pid) / MB
            return result
        finally:
            server.stop()
            remove_dir(workdir)


KEYS = ("single_jobs_per_s", "single_req_p50_ms", "single_req_p99_ms", "single_cpu_us_per_job",
        "batch_jobs_per_s", "batch_req_p50_ms", "batch_req_p99_ms", "batch_cpu_us_per_job",
        "rss_start_mb", "rss_end_mb", "single_errors", "batch_errors")


def main(
    base: Annotated[Path, typer.Option(help="read_bench's 1M base file (filled if absent)")],
    single: Annotated[int, typer.Option(help="single POSTs per run")] = 5_000,
    clients: Annotated[int, typer.Option(help="concurrent single clients")] = 32,
    batch_jobs: Annotated[int, typer.Option(help="jobs through the batch endpoint")] = 100_000,
    batch_size: Annotated[int, typer.Option(help="jobs per batch request")] = 1_000,
    batch_clients: Annotated[int, typer.Option(help="concurrent batch clients")] = 4,
    repeat: Annotated[int, typer.Option(help="runs; medians reported")] = 1,
    name: Annotated[str, typer.Option(help="result file name")] = "submits",
    minimal: Annotated[bool, typer.Option(help="batches ask for ids only (Prefer: "
                                               "return=minimal)")] = False,
) -> None:
    meta = base.with_suffix(".json")
    if not meta.exists():
        console.print(f"filling {base} ...")
        meta.write_text(json.dumps(asyncio.run(fill(base))))
    runs = []
    for i in range(repeat):
        run = asyncio.run(measure(base, single, clients, batch_jobs, batch_size, batch_clients,
                                  minimal))
        console.print(f"run {i}: {json.dumps({k: run.get(k) for k in KEYS})}")
        runs.append(run)
    medians = {k: statistics.median(float(r[k]) for r in runs) for k in KEYS}
    console.print(f"medians: {json.dumps(medians)}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps({"runs": runs, "medians": medians},
                                                          indent=2))


if __name__ == "__main__":
    typer.run(main)
