"""cronwheel at 10,000,000 pending jobs on SQLite (issue 14 points 5 and 7).

Fills a base file once, outside the server: the store's migrations make the schema
(``SqlStore.start``), each job is made by the domain (`new_job`) and turned into its row by the
store's own row builder (`job_values`), and the rows go in through plain sqlite3
``executemany`` in transactions of `--chunk` rows (the API's batch endpoint would take hours
here: ~120 µs of server CPU a job). Jobs are due between one and eight days from the fill,
100 namespaces of 100,000, inserted in key, id and due order.

Each measurement copies the base file, starts ``cronwheel serve`` on the copy and measures, in
order: RSS at start; fire lateness at `--rate` fires/s for `--seconds` (fire_bench's
method, the receiver in its own process); RSS after firing; single and batch submits
(submit_bench's method); RSS at the end.

    .venv/bin/python bench/tenm_bench.py --base /tmp/tenm.db            # fill once, measure
    .venv/bin/python bench/tenm_bench.py --base /tmp/tenm.db --pending 1000000

Results: a line per phase on stdout and bench/results/<name>.json. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fire_bench import (  # a sibling script
    AUTH,
    MB,
    RESULTS_DIR,
    Bench,
    Config,
    CpuMeter,
    children,
    console,
    free_port,
    per_job,
    proc_status,
    remove_dir,
    rounded,
    running_receiver,
    server_argv,
    server_rss,
    settings_env,
    spawn,
    wait_ready,
)
from submit_bench import batch_submits, single_submits

from cronwheel.domain import jobs as rules
from cronwheel.domain.jobs import JobSpec
from cronwheel.domain.schedules import OneShot
from cronwheel.domain.targets import HttpTarget
from cronwheel.ids import new_id
from cronwheel.store.rows import job_values
from cronwheel.store.sql import SqlStore

US = 1_000_000
DAY_US = 86_400 * US
PER_NAMESPACE = 100_000
TARGET = HttpTarget("http://127.0.0.1:9/callback")


# -- filling the base file -------------------------------------------------------------------


def _rows(count: int, now: int) -> Iterator[dict[str, Any]]:
    """`count` jobs due over days 1 to 8, in (namespace, key), id and due order."""
    step = 7 * DAY_US // count
    for i in range(count):
        namespace, key = f"bulk-{i // PER_NAMESPACE:03d}", f"job-{i % PER_NAMESPACE:06d}"
        spec = JobSpec(namespace, key, OneShot(now + DAY_US + i * step), TARGET)
        yield job_values(rules.new_job(new_id(), spec, now))


async def _migrate(path: Path) -> None:
    store = SqlStore(f"sqlite:///{path}", node="bench-fill")
    await store.start()
    await store.close()


def fill(path: Path, count: int, chunk: int) -> dict[str, Any]:
    """The base file: the schema by the store's migrations, then `count` job rows."""
    started = time.monotonic()
    asyncio.run(_migrate(path))
    now = int(time.time() * US)
    rows = _rows(count, now)
    first = next(rows)
    columns = list(first)
    sql = (f"INSERT INTO jobs ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' * len(columns))})")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-400000")  # 400 MB: the three indexes stay in memory
        pending = [tuple(first.values())]
        done = 0
        for row in rows:
            pending.append(tuple(row.values()))
            if len(pending) >= chunk:
                done += _insert(conn, sql, pending)
                pending = []
                if done % (10 * chunk) == 0:
                    console.print(f"  {done:,} rows, {time.monotonic() - started:.0f} s")
        done += _insert(conn, sql, pending)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return {"jobs": done, "fill_s": rounded(time.monotonic() - started, 1),
            "file_mb": rounded(path.stat().st_size / MB, 1)}


def _insert(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> int:
    conn.execute("BEGIN")
    conn.executemany(sql, rows)
    conn.execute("COMMIT")
    return len(rows)


# -- measuring -------------------------------------------------------------------------------


def _config(rate: int, seconds: float, name: str) -> Config:
    """fire_bench's settings for its lateness scenario, at `rate` fires/s for `seconds`."""
    return Config(
        name=name, repeat=1, single_jobs=0, single_concurrency=1, batch_jobs=0, batch_size=1,
        batch_concurrency=1, pending=0, rate=rate, duration=seconds, lead=1.0, tick=0.1,
        throughput_jobs=0, throughput_span=1.0, throughput_lead=1.0, drain_timeout=60.0,
        receiver_impl="raw", receiver_requests=0, server_env={}, profile=False, dump=False,
        keep=False, quiet_wait=0.0)


def _flush(path: Path) -> None:
    """Write the copy to disk now: else the server's first checkpoint fsync flushes gigabytes
    of it, a stall of seconds in the middle of the measurement that no real server has."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rss(pid: int) -> float:
    """The server's resident MB: `cronwheel serve` and its engine process."""
    return rounded(server_rss(pid) / MB, 1)


def _peak(pid: int) -> float:
    """The sum of the server's processes' peak resident MB."""
    return rounded(sum(proc_status(p, "VmHWM") for p in (pid, *children(pid))) / MB, 1)


async def measure(base_file: Path, cfg: Config, single: int, clients: int, batch_jobs: int,
                  batch_size: int, batch_clients: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="cw-bench-tenm-"))
    copied = time.monotonic()
    for path in base_file.parent.glob(base_file.name + "*"):
        if not path.name.endswith((".lock", ".json", "-shm")):
            copy = workdir / path.name.replace(base_file.name, "bench.db")
            shutil.copyfile(path, copy)
            _flush(copy)
    out: dict[str, Any] = {"copy_s": rounded(time.monotonic() - copied, 1)}
    port = free_port()
    at = int(time.time() * US) + 365 * DAY_US
    connector = aiohttp.TCPConnector(limit=0)
    async with (aiohttp.ClientSession(connector=connector, headers=AUTH,
                                      timeout=aiohttp.ClientTimeout(total=300)) as session,
                running_receiver(cfg.receiver_impl, session) as receiver):
        server = spawn("server", server_argv(port, workdir / "bench.db"), settings_env({}),
                       workdir / "server.log", port)
        try:
            started = time.monotonic()
            await wait_ready(server, session, "/healthz", timeout=900)
            out |= {"ready_s": rounded(time.monotonic() - started, 1)}
            await asyncio.sleep(2.0)  # a claim pass or two over the backlog
            out |= {"rss_start_mb": _rss(server.pid)}
            bench = Bench(cfg, session, receiver)
            await bench.warm_deliveries(server)
            fired = await bench.fire_at_rate(server)
            out |= {f"fire_{k}": v for k, v in fired.items()}
            out |= {"rss_after_firing_mb": _rss(server.pid)}
            console.print(f"  fired: {json.dumps(out)}")
            await single_submits(session, server.base_url, 200, 16, "warm", at)
            meter = CpuMeter(server.pid, server.pid)
            out |= await single_submits(session, server.base_url, single, clients, "single", at)
            out["single_cpu_us_per_job"] = per_job(meter.read(), out["single_jobs"])
            meter = CpuMeter(server.pid, server.pid)
            out |= await batch_submits(session, server.base_url, batch_jobs, batch_size,
                                       batch_clients, "batch", at)
            out["batch_cpu_us_per_job"] = per_job(meter.read(), out["batch_jobs"])
            out |= {"rss_end_mb": _rss(server.pid),
                    "rss_peak_mb": _peak(server.pid)}
            return out
        finally:
            server.stop()
            remove_dir(workdir)


def main(
    base: Annotated[Path, typer.Option(help="the base file (filled if absent)")],
    pending: Annotated[int, typer.Option(help="jobs in a new base file")] = 10_000_000,
    chunk: Annotated[int, typer.Option(help="rows per fill transaction")] = 200_000,
    rate: Annotated[int, typer.Option(help="fires per second")] = 1_000,
    seconds: Annotated[float, typer.Option(help="seconds of firing")] = 10.0,
    single: Annotated[int, typer.Option(help="single POSTs")] = 3_000,
    clients: Annotated[int, typer.Option(help="concurrent single clients")] = 32,
    batch_jobs: Annotated[int, typer.Option(help="jobs through the batch endpoint")] = 50_000,
    batch_size: Annotated[int, typer.Option(help="jobs per batch request")] = 1_000,
    batch_clients: Annotated[int, typer.Option(help="concurrent batch clients")] = 4,
    name: Annotated[str, typer.Option(help="result file name")] = "tenm",
) -> None:
    meta_file = base.with_suffix(".json")
    if not meta_file.exists():
        console.print(f"filling {base} with {pending:,} jobs ...")
        meta_file.write_text(json.dumps(fill(base, pending, chunk)))
    meta = json.loads(meta_file.read_text())
    console.print(f"base: {json.dumps(meta)}")
    result = asyncio.run(measure(base, _config(rate, seconds, name), single, clients,
                                 batch_jobs, batch_size, batch_clients))
    console.print(json.dumps(result))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps({"base": meta, "run": result},
                                                          indent=2))


if __name__ == "__main__":
    typer.run(main)
