"""cronwheel read benchmark: list pages and /metrics at 1,000,000 jobs (issue 14 point 2).

Fills a SQLite file once through the store's bulk insert (`add_jobs`, not HTTP): 1,000,000
jobs due in a week over ten namespaces of 99,900 and one app's namespace of 1,000 (inserted
last, so the newest ids), and 100,000 runs of one job. Each measurement then copies that file,
starts ``cronwheel serve`` on the copy (which applies any newer migration) and times, one call
after another, a page of 100 of each list (first page and a deep one) and a /metrics scrape;
medians and p99 over `--calls`. `--load` also times fire lateness while clients read lists.

    .venv/bin/python bench/read_bench.py --base /tmp/reads-1m.db          # fill once, measure
    .venv/bin/python bench/read_bench.py --base /tmp/reads-1m.db --load 50

Results: a table on stdout and bench/results/<name>.json. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import typer
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fire_bench import (  # a sibling script
    _BUCKET as BUCKET,
)
from fire_bench import (
    AUTH,
    RESULTS_DIR,
    Child,
    bucket_quantiles,
    console,
    free_port,
    iso,
    machine_busy,
    quantile,
    remove_dir,
    rounded,
    server_argv,
    server_cpu_seconds,
    settings_env,
    spawn,
    wait_ready,
)

from cronwheel.domain import jobs as rules
from cronwheel.domain.jobs import JobSpec
from cronwheel.domain.runs import Run, RunKind, RunState
from cronwheel.domain.schedules import OneShot
from cronwheel.domain.targets import HttpTarget
from cronwheel.ids import new_id
from cronwheel.store.runs import run_values
from cronwheel.store.sql import SqlStore

BIG_NAMESPACES = 10
PER_BIG = 99_900
APP_NAMESPACE = "team-a"
APP_JOBS = 1_000
RUNS = 100_000
K8S_NAMESPACE = "k8s-job"  # the Kubernetes dialect's jobs (half once, half cron), added later
K8S_JOBS = 10_000
APP_RUNS = 1_000  # runs of one team-a job, for the console's runs list
BATCH = 5_000
US = 1_000_000
TARGET = HttpTarget("http://127.0.0.1:9/callback")


# -- filling the base file -------------------------------------------------------------------


def _job(namespace: str, key: str, now: int) -> rules.Job:
    spec = JobSpec(namespace, key, OneShot(now + 7 * 86_400 * US), TARGET)
    return rules.new_job(new_id(), spec, now)


async def fill(path: Path) -> dict[str, Any]:
    """The base file: jobs through the store's batched insert, runs straight into the table."""
    store = SqlStore(f"sqlite:///{path}", node="bench-fill")
    await store.start()
    now = int(time.time() * US)
    started = time.monotonic()
    names = [(f"bulk-{n:02d}", f"job-{i:07d}") for n in range(BIG_NAMESPACES)
             for i in range(PER_BIG)]
    names += [(APP_NAMESPACE, f"job-{i:07d}") for i in range(APP_JOBS)]
    first: rules.Job | None = None
    for offset in range(0, len(names), BATCH):
        batch = [_job(ns, key, now) for ns, key in names[offset:offset + BATCH]]
        first = first or batch[0]
        await store.add_jobs(batch, all_or_nothing=False)
    await store.close()
    jobs_s = time.monotonic() - started
    assert first is not None
    _insert_runs(path, (first.id, first.spec.namespace, first.spec.key), now, RUNS)
    return {"jobs": len(names), "fill_jobs_s": rounded(jobs_s, 1),
            "runs_job": [first.spec.namespace, first.spec.key]}


def _insert_runs(path: Path, job: tuple[str, str, str], now: int, count: int) -> None:
    job_id, namespace, key = job
    rows = []
    for i in range(count):
        at = now - (count - i) * US
        run = Run(id=new_id(), job_id=job_id, namespace=namespace,
                  job_key=key, kind=RunKind.MANUAL, state=RunState.SUCCEEDED,
                  scheduled_at=at, fired_at=at, attempts=1, due_at=None, started_at=at,
                  finished_at=at + 1000, node="bench")
        rows.append(run_values(run))
    columns = list(rows[0])
    with sqlite3.connect(path) as conn:
        conn.executemany(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [tuple(r[c] for c in columns) for r in rows])


async def fill_extras(path: Path) -> dict[str, Any]:
    """What the console's lists and the Kubernetes dialect's read, added to a base file made
    before them: K8S_JOBS jobs of the dialect (half once, half cron, as its payload says) and
    APP_RUNS runs of one team-a job."""
    store = SqlStore(f"sqlite:///{path}", node="bench-fill")
    await store.start()
    now = int(time.time() * US)
    kinds = ("once_job", "cron_job")
    for offset in range(0, K8S_JOBS, BATCH):
        batch = []
        for i in range(offset, min(offset + BATCH, K8S_JOBS)):
            job = _job(K8S_NAMESPACE, f"k8s-{i:06d}", now)
            spec = dataclasses.replace(job.spec, payload={"kind": kinds[i % 2]})
            batch.append(dataclasses.replace(job, spec=spec))
        await store.add_jobs(batch, all_or_nothing=False)
    await store.close()
    with sqlite3.connect(path) as conn:
        job_id, key = conn.execute("SELECT id, key FROM jobs WHERE namespace = ? ORDER BY key "
                                   "LIMIT 1", (APP_NAMESPACE,)).fetchone()
    _insert_runs(path, (job_id, APP_NAMESPACE, key), now, APP_RUNS)
    return {"k8s_jobs": K8S_JOBS, "app_runs": APP_RUNS}


# -- measuring -------------------------------------------------------------------------------


async def _get(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> Any:
    async with session.get(url, headers=headers, allow_redirects=False) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status} {body[:300]!r}")
        return json.loads(body) if response.content_type == "application/json" else None


async def _viewer(session: aiohttp.ClientSession, base: str) -> dict[str, str]:
    """A viewer token of the app owning `team-a`: a caller that sees 1,000 of the jobs."""
    app = {"name": "team-a", "namespaces": [APP_NAMESPACE]}
    async with session.post(f"{base}/v1/apps", json=app, headers=AUTH) as response:
        assert response.status in (201, 409), await response.text()
    async with session.post(f"{base}/v1/apps/team-a/tokens", json={"role": "viewer"},
                            headers=AUTH) as response:
        assert response.status == 201, await response.text()
        return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def _console_cases(
    session: aiohttp.ClientSession, base: str
) -> dict[str, tuple[str, dict[str, str]]]:
    """The console's jobs and runs lists (HTML pages of 50) for a viewer of an app claiming
    `team-*` (a prefix: no single namespace to ask the store for), logged in by cookie."""
    app = {"name": "teams", "namespaces": ["team-*"]}
    async with session.post(f"{base}/v1/apps", json=app, headers=AUTH) as response:
        assert response.status in (201, 409), await response.text()
    async with session.post(f"{base}/v1/apps/teams/tokens", json={"role": "viewer"},
                            headers=AUTH) as response:
        token = (await response.json())["token"]
    async with session.post(f"{base}/ui/login", data={"token": token},
                            allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        cookie = "; ".join(f"{c.key}={c.value}" for c in response.cookies.values())
    viewer = {"Cookie": cookie}
    return {
        "console jobs, viewer of team-*, first page": ("/ui/jobs", viewer),
        "console jobs, viewer of team-*, state=paused": ("/ui/jobs?state=paused", viewer),
        "console runs, viewer of team-*, first page": ("/ui/runs", viewer),
        "console runs, viewer, namespace=team-b (none)": ("/ui/runs?namespace=team-b", viewer),
    }


def deep_cursors(path: Path, runs_job: Sequence[str]) -> dict[str, str]:
    """Cursors far into each list: the ids of a job or run there, a cursor both the id-paged
    API (before session 10) and the keyset one (which still takes an id) understand."""
    with sqlite3.connect(path) as conn:
        def one(sql: str, *args: Any) -> str:
            return str(conn.execute(sql, args).fetchone()[0])

        job_id = one("SELECT id FROM jobs WHERE namespace = ? AND key = ?", *runs_job)
        return {
            "jobs": one("SELECT id FROM jobs WHERE namespace = 'bulk-05' AND key = ?",
                        f"job-{PER_BIG // 2:07d}"),
            "namespace": one("SELECT id FROM jobs WHERE namespace = 'bulk-05' AND key = ?",
                             f"job-{PER_BIG - 1000:07d}"),
            "runs": one("SELECT id FROM runs WHERE job_id = ? ORDER BY id LIMIT 1 OFFSET ?",
                        job_id, RUNS // 10),
        }


async def _time(session: aiohttp.ClientSession, server: Child, url: str,
                headers: dict[str, str], calls: int) -> dict[str, float]:
    started = time.perf_counter()
    await _get(session, url, headers)  # warms the page cache; a slow case is timed less
    if time.perf_counter() - started > 1.0:
        calls = min(calls, 3)
    times = []
    cpu0 = server_cpu_seconds(server.pid)
    for _ in range(calls):
        started = time.perf_counter()
        await _get(session, url, headers)
        times.append((time.perf_counter() - started) * 1000)
    cpu = (server_cpu_seconds(server.pid) - cpu0) / calls * 1000
    times.sort()
    return {"calls": calls, "p50_ms": rounded(statistics.median(times), 2),
            "p99_ms": rounded(quantile(times, 0.99), 2), "server_cpu_ms": rounded(cpu, 2)}


async def measure_reads(session: aiohttp.ClientSession, server: Child, runs_job: Sequence[str],
                        deep: dict[str, str], calls: int) -> dict[str, dict[str, float]]:
    base = server.base_url
    viewer = await _viewer(session, base)
    ns, key = runs_job
    runs_path = f"/v1/jobs/{key}/runs?namespace={ns}"
    cases = {
        "jobs, admin, first page": ("/v1/jobs?limit=100", AUTH),
        "jobs, admin, deep page": (f"/v1/jobs?limit=100&cursor={deep['jobs']}", AUTH),
        "jobs, namespace, first page": ("/v1/jobs?limit=100&namespace=bulk-05", AUTH),
        "jobs, namespace, deep page": (
            f"/v1/jobs?limit=100&namespace=bulk-05&cursor={deep['namespace']}", AUTH),
        "jobs, namespace + key_prefix": (
            "/v1/jobs?limit=100&namespace=bulk-05&key_prefix=job-00500", AUTH),
        "jobs, viewer of 1,000": ("/v1/jobs?limit=100", viewer),
        "jobs, state=paused (none are)": ("/v1/jobs?limit=100&state=paused", AUTH),
        "jobs, key_prefix in any namespace": ("/v1/jobs?limit=100&key_prefix=job-00500", AUTH),
        "runs, first page": (f"{runs_path}&limit=100", AUTH),
        "runs, deep page": (f"{runs_path}&limit=100&cursor={deep['runs']}", AUTH),
        "/metrics": ("/metrics", AUTH),
        "k8s once_job lists, page 1 of 100": ("/api/once_job/lists?page_size=100", {}),
        "k8s once_job lists, page 50 of 100": (
            "/api/once_job/lists?page_size=100&page_num=50", {}),
    } | await _console_cases(session, base)
    out = {}
    for name, (path, headers) in cases.items():
        out[name] = await _time(session, server, base + path, headers, calls)
        console.print(f"  {name}: {out[name]}")
    return out


# -- reads while jobs fire -------------------------------------------------------------------


async def measure_load(session: aiohttp.ClientSession, server: Child, clients: int,
                       seconds: float, rate: int, path: str) -> dict[str, Any]:
    """`clients` reading `path` in a loop while `rate` jobs/s come due; lateness from the
    server's own histogram is coarse, so each job's run is read back (fired - scheduled)."""
    base = server.base_url
    stop = asyncio.Event()
    reads: list[float] = []

    async def reader() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await _get(session, base + path, AUTH)
            reads.append((time.perf_counter() - started) * 1000)

    now = time.time()
    due = [now + 3 + i / rate for i in range(int(seconds * rate))]
    jobs = [{"namespace": "load", "key": f"due-{i:06d}",
             "schedule": {"kind": "once", "at": iso(int(at * US))},
             "target": {"kind": "log"}}
            for i, at in enumerate(due)]
    for offset in range(0, len(jobs), 500):
        async with session.post(f"{base}/v1/jobs/batch", json={"jobs": jobs[offset:offset + 500]},
                                headers=AUTH) as response:
            assert response.status == 201, await response.text()
    buckets = await _lateness_buckets(session, base)
    tasks = [asyncio.create_task(reader()) for _ in range(clients)]
    busy0, wall0, cpu0 = machine_busy(), time.monotonic(), server_cpu_seconds(server.pid)
    await asyncio.sleep(max(0.0, due[-1] - time.time()) + 2)
    stop.set()
    await asyncio.gather(*tasks)
    wall = time.monotonic() - wall0
    dispatched = bucket_quantiles(buckets, await _lateness_buckets(session, base))
    late = await _lateness(session, base, len(jobs))
    reads.sort()
    return dispatched | {
            "clients": clients, "path": path, "jobs_due": len(jobs), "rate_per_s": rate,
            "read_p50_ms": rounded(quantile(reads, 0.5), 1),
            "read_p99_ms": rounded(quantile(reads, 0.99), 1),
            "reads_per_s": rounded(len(reads) / wall, 1),
            "run_recorded_p50_ms": rounded(quantile(late, 0.5), 1),
            "run_recorded_p99_ms": rounded(quantile(late, 0.99), 1),
            "fired": len(late),
            "server_cpu_pct": rounded(100 * (server_cpu_seconds(server.pid) - cpu0) / wall, 1),
            "machine_cpu_pct": rounded(100 * (machine_busy() - busy0) / wall, 1)}


async def _lateness_buckets(session: aiohttp.ClientSession, base: str) -> list[
        tuple[float, float]]:
    """The server's fire-lateness histogram (scheduled instant to dispatch), cumulative."""
    async with session.get(f"{base}/metrics", headers=AUTH) as response:
        text = await response.text()
    return [(float(le), float(n)) for le, n in BUCKET.findall(text)]


async def _lateness(session: aiohttp.ClientSession, base: str, count: int) -> list[float]:
    """fired_at - scheduled_at of each load job's run (ms), read through the API: when the
    run was recorded, which the engine does up to its fire lead (100 ms) early."""
    late = []
    for i in range(count):
        page = await _get(session, f"{base}/v1/jobs/due-{i:06d}/runs?namespace=load&limit=1",
                          AUTH)
        for run in page["runs"]:
            late.append(_ms(run["fired_at"]) - _ms(run["scheduled_at"]))
    return sorted(late)


def _ms(instant: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp() * 1000


# -- the command -----------------------------------------------------------------------------


async def run(base_file: Path, calls: int, load: int, load_seconds: float, rate: int,
              load_path: str, label: str) -> dict[str, Any]:
    meta_path = base_file.with_suffix(".json")
    if not meta_path.exists():
        console.print(f"filling {base_file} ...")
        meta_path.write_text(json.dumps(await fill(base_file)))
    meta = json.loads(meta_path.read_text())
    if "k8s_jobs" not in meta:
        console.print(f"adding the Kubernetes jobs and team-a runs to {base_file} ...")
        meta |= await fill_extras(base_file)
        meta_path.write_text(json.dumps(meta))
    workdir = Path(tempfile.mkdtemp(prefix="cw-bench-reads-"))
    shutil.copyfile(base_file, workdir / "bench.db")
    port = free_port()
    result: dict[str, Any] = {"label": label, "fill": meta, "calls": calls}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        started = time.monotonic()
        server = spawn("server", server_argv(port, workdir / "bench.db"), settings_env({}),
                       workdir / "server.log", port)
        try:
            await wait_ready(server, session, "/healthz", timeout=600)
            result["start_s"] = rounded(time.monotonic() - started, 1)
            deep = deep_cursors(base_file, meta["runs_job"])
            result["reads"] = await measure_reads(session, server, meta["runs_job"], deep,
                                                  calls) if calls else {}
            if load >= 0:
                result["load"] = await measure_load(session, server, load, load_seconds, rate,
                                                    load_path)
                console.print(f"  load: {result['load']}")
        finally:
            server.stop()
            remove_dir(workdir)
    return result


def main(
    base: Annotated[Path, typer.Option(help="the filled SQLite file (made if missing)")],
    calls: Annotated[int, typer.Option(help="calls timed per case")] = 50,
    load: Annotated[int, typer.Option(help="clients reading during firing (-1: skip)")] = -1,
    load_seconds: Annotated[float, typer.Option()] = 10.0,
    rate: Annotated[int, typer.Option(help="jobs coming due per second under load")] = 200,
    load_path: Annotated[str, typer.Option(help="what the clients read under load")] = (
        "/v1/jobs?limit=100&namespace=bulk-05"),
    skip_reads: Annotated[bool, typer.Option(help="only the load measurement")] = False,
    label: Annotated[str, typer.Option(help="names the result file")] = "reads",
) -> None:
    result = asyncio.run(run(base, 0 if skip_reads else calls, load, load_seconds, rate,
                             load_path, label))
    table = Table(title=f"reads at {result['fill']['jobs']:,} jobs ({label})")
    for column in ("case", "p50 ms", "p99 ms", "server CPU ms/call"):
        table.add_column(column)
    for name, row in result["reads"].items():
        table.add_row(name, str(row["p50_ms"]), str(row["p99_ms"]), str(row["server_cpu_ms"]))
    console.print(table)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{label}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(main)
