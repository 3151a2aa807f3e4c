"""Read load during firing: does API load slow the engine? (issue 14, point 1)

One `cronwheel serve` on a fresh SQLite file, with the engine in its own process
(CRONWHEEL_ENGINE_PROCESS=1) or not (0), alternated back to back. Per run:

1. quiet submits: SUBMITTERS clients POST single far-future jobs for SUBMIT_S seconds;
2. JOBS one-shot jobs are submitted (batches), due over FIRE_S seconds from a few seconds on;
3. while they fire, READERS clients loop over GET /v1/jobs?limit=100 and GET /metrics, and
   SUBMITTERS clients submit again (submits under read load);
4. lateness (receive time - scheduled instant) from bench/receiver.py, CPU of the API
   process and of its children (the engine process), the reads answered.

    PYTHONPATH=src .venv/bin/python bench/split_bench.py --repeat 3 [--jobs 10000]

Results: a table on stdout and bench/results/split.json. Timings on a shared machine: read
them with the load (`uptime`) printed beside them.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import typer
from fire_bench import (
    AUTH,
    RESULTS_DIR,
    Requests,
    callback_summary,
    children,
    cpu_seconds,
    job,
    post_jobs,
    receiver_call,
    remove_dir,
    running_receiver,
    server_argv,
    settings_env,
    spawn,
    wait_callbacks,
    wait_ready,
)
from fire_bench import free_port as bench_port

READ_PATHS = ("/v1/jobs?limit=100", "/metrics")


def children_cpu(pid: int) -> float:
    """CPU seconds of `pid`'s live children (the engine process)."""
    return sum(cpu_seconds(kid) for kid in children(pid))


async def submit_for(session: aiohttp.ClientSession, base: str, url: str, seconds: float,
                     clients: int, prefix: str) -> float:
    """Single-job submits by `clients` for `seconds`: jobs/s."""
    outcome = Requests()
    end = time.monotonic() + seconds
    far_us = round((time.time() + 7 * 86_400) * 1e6)

    async def client(c: int) -> None:
        i = 0
        while time.monotonic() < end:
            await post_jobs(session, base, [job(f"{prefix}-{c}-{i}", far_us + i, url)], outcome,
                            single=True)
            i += 1

    started = time.monotonic()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return outcome.jobs / (time.monotonic() - started)


async def read_until(session: aiohttp.ClientSession, base: str, stop: asyncio.Event,
                     readers: int) -> dict[str, float]:
    answered, errors = 0, 0
    latencies: list[float] = []

    async def reader(r: int) -> None:
        nonlocal answered, errors
        i = r
        while not stop.is_set():
            began = time.perf_counter()
            try:
                async with session.get(base + READ_PATHS[i % 2],
                                       timeout=aiohttp.ClientTimeout(total=60)) as response:
                    await response.read()
                    answered += response.status == 200
                    errors += response.status != 200
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
            latencies.append(time.perf_counter() - began)
            i += 1

    started = time.monotonic()
    await asyncio.gather(*(reader(r) for r in range(readers)))
    latencies.sort()
    return {"reads_per_s": round(answered / (time.monotonic() - started), 1),
            "read_errors": errors,
            "read_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else 0}


async def one_run(session: aiohttp.ClientSession, split: bool, args: dict[str, Any]) -> dict[
        str, Any]:
    async with running_receiver("raw", session) as receiver:
        workdir = Path(tempfile.mkdtemp(prefix="cw-bench-split-"))
        port = bench_port()
        env = settings_env({**args["settings"], "engine_process": "1" if split else "0"})
        server = spawn("server", server_argv(port, workdir / "bench.db"), env,
                       workdir / "server.log", port)
        url = f"{receiver.base_url}/cb"
        try:
            await wait_ready(server, session, "/healthz", timeout=120)
            quiet = await submit_for(session, server.base_url, url, args["submit_s"],
                                     args["submitters"], "quiet")
            jobs, fire_s = args["jobs"], args["fire_s"]
            t0 = time.time() + args["lead_s"]
            due = [job(f"due-{i}", round((t0 + fire_s * i / jobs) * 1e6), url)
                   for i in range(jobs)]
            batch = Requests()
            await asyncio.gather(*(post_jobs(session, server.base_url, due[i:i + 1000], batch)
                                   for i in range(0, jobs, 1000)))
            assert batch.errors == 0, batch.first_error
            await receiver_call(session, receiver, "POST", "reset")
            await asyncio.sleep(max(0.0, t0 - 1 - time.time()))
            api0, engine0 = cpu_seconds(server.pid), children_cpu(server.pid)
            stop = asyncio.Event()
            reads = asyncio.create_task(read_until(session, server.base_url, stop,
                                                   args["readers"]))
            loaded = await submit_for(session, server.base_url, url, fire_s,
                                      args["loaded_submitters"], "loaded")
            await wait_callbacks(session, receiver, jobs, t0 + fire_s + 60, server)
            stop.set()
            read = await reads
            api_cpu = cpu_seconds(server.pid) - api0
            engine_cpu = children_cpu(server.pid) - engine0
            stats = await receiver_call(session, receiver, "GET", "stats")
        finally:
            server.stop()
            remove_dir(workdir)
    return {"split": split, **callback_summary(stats, jobs, "lateness"), **read,
            "submits_quiet_per_s": round(quiet, 1), "submits_loaded_per_s": round(loaded, 1),
            "api_cpu_s": round(api_cpu, 2), "engine_cpu_s": round(engine_cpu, 2),
            "settings": args["settings"], "loadavg": os.getloadavg()[0]}


def main(
    repeat: Annotated[int, typer.Option(help="runs per layout, alternated")] = 3,
    jobs: Annotated[int, typer.Option(help="one-shot jobs due during the read load")] = 10_000,
    fire_s: Annotated[float, typer.Option(help="seconds they come due over")] = 10.0,
    readers: Annotated[int, typer.Option(help="concurrent read clients")] = 50,
    submitters: Annotated[int, typer.Option(help="concurrent submit clients")] = 4,
    submit_s: Annotated[float, typer.Option(help="seconds of quiet submits")] = 4.0,
    loaded_submitters: Annotated[int | None, typer.Option(
        help="submit clients during the firing (default: --submitters)")] = None,
    lead_s: Annotated[float, typer.Option(help="seconds from submit to the first due")] = 6.0,
    layouts: Annotated[str, typer.Option(help="both, split or one")] = "both",
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="a server setting for every run, NAME=VALUE (read_concurrency=1)")] = None,
) -> None:
    chosen = {"both": (False, True), "split": (True,), "one": (False,)}[layouts]
    settings = dict(item.split("=", 1) for item in set_ or [])
    args = {"jobs": jobs, "fire_s": fire_s, "readers": readers, "submitters": submitters,
            "submit_s": submit_s, "lead_s": lead_s, "settings": settings,
            "loaded_submitters": submitters if loaded_submitters is None else loaded_submitters}

    async def run() -> list[dict[str, Any]]:
        connector = aiohttp.TCPConnector(limit=readers + submitters + 8)
        async with aiohttp.ClientSession(headers=AUTH, connector=connector) as session:
            results = []
            for _ in range(repeat):
                for split in chosen:
                    result = await one_run(session, split, args)
                    print(json.dumps(result), flush=True)
                    results.append(result)
            return results

    results = asyncio.run(run())
    RESULTS_DIR.mkdir(exist_ok=True)
    name = f"split-{readers}r-{args['loaded_submitters']}s.json"
    (RESULTS_DIR / name).write_text(json.dumps({"args": args, "runs": results}, indent=2))
    keys = ("lateness_p50_ms", "lateness_p99_ms", "lateness_max_ms", "reads_per_s",
            "submits_quiet_per_s", "submits_loaded_per_s", "api_cpu_s", "engine_cpu_s",
            "loadavg", "missing", "duplicate_runs")
    for split in chosen:
        runs = [r for r in results if r["split"] == split]
        medians = {k: statistics.median(float(r.get(k, 0)) for r in runs) for k in keys}
        print("engine process" if split else "one process   ", json.dumps(medians))


if __name__ == "__main__":
    typer.run(main)
