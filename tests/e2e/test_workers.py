"""Real `cronwheel worker` processes on loopback, running jobs of every type for a server.

The server runs in the test's loop (a real uvicorn on a SQLite file; PostgreSQL for the
crash test); workers are separate processes started with the README's command line. What a
user sees is checked: run states, attempts, logs and results through the API, and the
processes on this machine (a killed or timed-out job leaves no process behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cronwheel.worker.executor import group_members
from tests.plugins import install_plugin
from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server
from tests.stores import postgres_database
from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
LEASE_S = 2.0


@contextlib.asynccontextmanager
async def workers(
    server: RunningServer, *names: str, group: str = "default", concurrency: int = 2,
    extra: tuple[str, ...] = (), path: tuple[Path, ...] = (),
) -> AsyncIterator[dict[str, asyncio.subprocess.Process]]:
    """Worker processes, registered with the server before this yields; `path` goes before
    the repository (its sources first, so they run this checkout's code) on their
    PYTHONPATH."""
    pythonpath = os.pathsep.join(str(p) for p in (*path, REPO / "src", REPO))
    env = os.environ | {"PYTHONPATH": pythonpath, "CRONWHEEL_LOG_LEVEL": "warning"}
    procs: dict[str, asyncio.subprocess.Process] = {}
    for name in names:
        procs[name] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cronwheel", "worker", "--server", server.base_url,
            "--group", group, "--concurrency", str(concurrency), "--name", name,
            "--grace", "2", *extra, cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL,
        )
    try:
        await until(lambda: _registered(server, set(names)), "workers registered")
        yield procs
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _registered(server: RunningServer, names: set[str]) -> bool:
    listed = (await server.client.get("/v1/workers")).json()["workers"]
    return names <= {w["name"] for w in listed if w["online"]}


async def until(check: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "cw.db", worker_lease_seconds=LEASE_S) as running:
        yield running


async def submit(server: RunningServer, key: str, job_type: str, spec: dict[str, Any],
                 route: str = "round-robin", timeout: float = 60, group: str = "default",
                 **extra: Any) -> str:
    body = {"key": key, "schedule": {"kind": "once", "after": 0},
            "target": {"kind": "worker", "group": group, "route": route, "type": job_type,
                       "spec": spec, "timeout": timeout},
            "retry": {"max_attempts": 1}} | extra
    answer = await server.client.post("/v1/jobs", json=body)
    assert answer.status_code == 201, answer.text
    runs = await until(lambda: _runs(server, key), f"a run of {key}")
    run_id: str = runs[0]["id"]
    return run_id


async def _runs(server: RunningServer, key: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await server.client.get(f"/v1/jobs/{key}/runs")).json()["runs"]
    return found


async def finished(server: RunningServer, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        run: dict[str, Any] = (await server.client.get(f"/v1/runs/{run_id}")).json()
        return run if run["state"] not in ("pending", "running") else None

    found: dict[str, Any] = await until(done, f"run {run_id} to finish", timeout)
    return found


async def read_all(server: RunningServer, run_id: str, stream: str = "log",
                   limit: int = 65_536, **params: Any) -> str:
    pages, offset = [], 0
    while True:
        page = (await server.client.get(f"/v1/runs/{run_id}/log", params={
            "offset": offset, "limit": limit, "stream": stream, **params})).json()
        pages.append(page["text"])
        offset = page["next_offset"]
        if page["end"]:
            return "".join(pages)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(FileNotFoundError):  # a zombie awaiting its parent is gone too
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return False
    return True


# -- job types -----------------------------------------------------------------------------


async def test_shell_job_runs_with_its_cwd_env_and_payload(
    server: RunningServer, tmp_path: Path
) -> None:
    async with workers(server, "w1"):
        run_id = await submit(server, "shell", "shell", {
            "command": 'echo "in $(pwd) day=$DAY key=$CRONWHEEL_JOB_KEY payload=$CRONWHEEL_PAYLOAD"'
                       "; echo oops >&2",
            "cwd": str(tmp_path), "env": {"DAY": "monday"}}, payload={"n": 1})
        run = await finished(server, run_id)
    assert run["state"] == "succeeded", run
    log = await read_all(server, run_id)
    assert f"in {tmp_path} day=monday key=shell payload=" in log and '{"n":1}' in log
    assert "oops" in log  # stderr goes to the same log
    assert orjson.loads(await read_all(server, run_id, "result")) == {"exit_code": 0}
    assert run["attempt_log"][0]["node"] == "w1"


async def test_a_plugin_type_is_found_by_the_server_and_the_worker_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site)  # the `echo` type: runs `echo TEXT`
    monkeypatch.syspath_prepend(str(site))
    async with running_server(tmp_path / "cw.db", worker_lease_seconds=LEASE_S) as server:
        async with workers(server, "w1", path=(site,)):
            run_id = await submit(server, "echo", "echo", {"text": "from a plugin"})
            run = await finished(server, run_id)
        assert run["state"] == "succeeded", run
        assert await read_all(server, run_id) == "from a plugin\n"


async def test_shell_exit_code_decides_the_outcome(server: RunningServer) -> None:
    async with workers(server, "w1"):
        run_id = await submit(server, "failing", "shell", {"script": "echo half\nexit 3\n"})
        run = await finished(server, run_id)
    assert run["state"] == "failed"
    [attempt] = run["attempt_log"]
    assert (attempt["outcome"], attempt["status_code"]) == ("failure", 3)
    assert "half" in await read_all(server, run_id)


async def test_http_job_status_decides_and_the_body_is_the_result(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    receiver.script = [503]
    async with workers(server, "w1"):
        bad = await submit(server, "http-bad", "http", {"url": receiver.url, "method": "POST",
                                                         "body": {"x": 1}})
        assert (await finished(server, bad))["state"] == "failed"
        good = await submit(server, "http-ok", "http", {"url": receiver.url})
        assert (await finished(server, good))["state"] == "succeeded"
    assert receiver.received[0].body == b'{"x":1}'
    assert await read_all(server, good, "result") == "ok"


async def test_python_job_calls_the_function_and_keeps_its_return_value(
    server: RunningServer,
) -> None:
    async with workers(server, "w1"):
        ok = await submit(server, "py", "python", {"callable": "tests.worker.helpers:add",
                                                   "args": [2, 3]})
        bad = await submit(server, "py-bad", "python",
                           {"callable": "tests.worker.helpers:boom"})
        assert (await finished(server, ok))["state"] == "succeeded"
        assert (await finished(server, bad))["state"] == "failed"
    assert orjson.loads(await read_all(server, ok, "result")) == 5  # small: came inline
    assert "adding 2 and 3" in await read_all(server, ok)
    assert "this job is meant to fail" in await read_all(server, bad)


async def test_sql_job_runs_on_the_workers_postgres_database(server: RunningServer) -> None:
    async with postgres_database() as url, workers(
        server, "w1", extra=("--database", f"warehouse={url}")
    ):
        run_id = await submit(server, "sql", "sql", {
            "database": "warehouse",
            "statement": "SELECT n, n * n AS square FROM generate_series(1, 3) AS n "
                         "WHERE n >= :low", "params": {"low": 2}})
        run = await finished(server, run_id)
        missing = await submit(server, "sql-missing", "sql",
                               {"database": "nowhere", "statement": "SELECT 1"})
        other = await finished(server, missing)
    assert run["state"] == "succeeded", await read_all(server, run_id)
    rows = [orjson.loads(line) for line in (await read_all(server, run_id, "result")).split()]
    assert rows == [{"n": 2, "square": 4}, {"n": 3, "square": 9}]
    assert other["state"] == "failed" and "nowhere" in await read_all(server, missing)


async def test_a_result_too_big_to_come_inline_is_uploaded_whole(server: RunningServer) -> None:
    async with workers(server, "w1"):
        run_id = await submit(server, "big", "python", {"callable": "tests.worker.helpers:big",
                                                        "args": [300_000]})
        assert (await finished(server, run_id))["state"] == "succeeded"
    assert orjson.loads(await read_all(server, run_id, "result")) == "x" * 300_000


# -- routing -------------------------------------------------------------------------------


async def test_round_robin_and_broadcast_over_real_workers(server: RunningServer) -> None:
    async with workers(server, "rr-a", "rr-b", "rr-c", group="fleet"):
        runs = [await submit(server, "rr", "shell", {"command": "true"}, group="fleet")]
        for _ in range(2):
            runs.append((await server.client.post("/v1/jobs/rr/trigger")).json()["id"])
        nodes = [(await finished(server, r))["attempt_log"][0]["node"] for r in runs]
        run_id = await submit(server, "everyone", "shell",
                              {"command": 'echo "ran on $CRONWHEEL_WORKER"'},
                              route="broadcast", group="fleet")
        run = await finished(server, run_id)
    assert sorted(nodes) == ["rr-a", "rr-b", "rr-c"]  # one run each, in turn
    assert run["state"] == "succeeded"
    tasks = (await server.client.get(f"/v1/runs/{run_id}/tasks")).json()["tasks"]
    assert sorted(t["worker"] for t in tasks) == ["rr-a", "rr-b", "rr-c"]
    for name in ("rr-a", "rr-b", "rr-c"):
        assert f"ran on {name}" in await read_all(server, run_id, worker=name)


async def _nodes(server: RunningServer, key: str, count: int, spec: dict[str, Any],
                 route: str, spaced: bool = False) -> list[str]:
    """Run `key` `count` times (the first run, then triggers) and say where each ran."""
    runs = [await submit(server, key, "shell", spec, route=route, group="fleet")]
    for _ in range(count - 1):
        if spaced:  # the next run is handed over once the previous one is under way
            await until(lambda: _has_task(server, runs[-1]), "the previous run to start")
        runs.append((await server.client.post(f"/v1/jobs/{key}/trigger")).json()["id"])
    return [(await finished(server, r))["attempt_log"][0]["node"] for r in runs]


async def test_random_least_busy_consistent_hash_and_failover_over_real_workers(
    server: RunningServer,
) -> None:
    quick = {"command": "true"}
    async with workers(server, "fl-a", "fl-b", "fl-c", group="fleet") as procs:
        hashed = await _nodes(server, "hashed", 6, quick, "consistent-hash")
        assert len(set(hashed)) == 1  # one key, one worker
        spread = await _nodes(server, "spread", 12, quick, "random")
        assert len(set(spread)) >= 2  # all twelve on one of three: p = 3^-11
        busy = await _nodes(server, "busy", 3, {"command": "sleep 1"}, "least-busy",
                            spaced=True)
        assert sorted(busy) == ["fl-a", "fl-b", "fl-c"]  # each went to an idle worker
        first = await _nodes(server, "first", 3, quick, "failover")
        assert first == ["fl-a"] * 3
        procs["fl-a"].send_signal(signal.SIGTERM)  # leaves cleanly: the next takes over
        await procs["fl-a"].wait()
        assert (await server.client.post("/v1/jobs/first/trigger")).status_code == 202
        runs = await _runs(server, "first")
        assert (await finished(server, runs[0]["id"]))["attempt_log"][0]["node"] == "fl-b"


# -- kill, timeout, retry ------------------------------------------------------------------


LONG = 'sleep 300 & echo "pids $$ $!" ; sleep 300 & wait'


async def _pids(server: RunningServer, run_id: str) -> list[int]:
    async def found() -> list[int] | None:
        with contextlib.suppress(Exception):
            text = (await server.client.get(f"/v1/runs/{run_id}/log")).json()["text"]
            if "pids " in text:
                return [int(p) for p in text.split("pids ")[1].split()[:2]]
        return None

    pids: list[int] = await until(found, "the job to print its pids")
    return pids


async def test_kill_stops_the_whole_process_tree_within_seconds(server: RunningServer) -> None:
    async with workers(server, "w1"):
        run_id = await submit(server, "long", "shell", {"command": LONG},
                              retry={"max_attempts": 3})
        pids = await _pids(server, run_id)
        assert all(alive(p) for p in pids)
        asked = time.monotonic()
        answer = await server.client.post(f"/v1/runs/{run_id}/kill")
        assert answer.status_code == 202
        run = await finished(server, run_id, timeout=10)
        took = time.monotonic() - asked
    assert run["state"] == "killed" and took < 5, (run, took)
    assert [a["outcome"] for a in run["attempt_log"]] == ["killed"]  # never retried
    await until(_gone(pids), "the process tree to be gone", 5)


def _gone(pids: list[int]) -> Any:
    async def check() -> bool:
        return not any(alive(p) for p in pids)

    return check


async def test_timeout_kills_the_tree_and_fails_the_attempt(server: RunningServer) -> None:
    async with workers(server, "w1"):
        run_id = await submit(server, "slow", "shell", {"command": LONG}, timeout=1.5)
        pids = await _pids(server, run_id)
        run = await finished(server, run_id)
    assert run["state"] == "failed"
    assert run["attempt_log"][0]["outcome"] == "timeout"
    await until(_gone(pids), "the process tree to be gone", 5)


async def test_retries_are_new_attempts_of_the_same_run(
    server: RunningServer, tmp_path: Path
) -> None:
    marker = tmp_path / "tried"
    script = f'if [ -e {marker} ]; then echo second; else touch {marker}; echo first; exit 1; fi'
    async with workers(server, "w1"):
        run_id = await submit(server, "flaky", "shell", {"command": script},
                              retry={"max_attempts": 3, "initial_backoff": 0.2})
        run = await finished(server, run_id)
    assert run["state"] == "succeeded" and run["id"] == run_id
    assert [(a["number"], a["outcome"]) for a in run["attempt_log"]] == [
        (1, "failure"), (2, "success")]
    assert "first" in await read_all(server, run_id, attempt=1)
    assert "second" in await read_all(server, run_id)  # the latest attempt by default


# -- large output --------------------------------------------------------------------------


async def test_a_large_log_pages_through_by_offset(server: RunningServer) -> None:
    lines = 200_000  # about 7 MB
    async with workers(server, "w1"):
        run_id = await submit(server, "chatty", "shell",
                              {"command": f"seq 1 {lines} | sed 's/$/ ünïcödé/'"})
        run = await finished(server, run_id, timeout=60)
    assert run["state"] == "succeeded"
    text = await read_all(server, run_id, limit=1_000_000)
    got = text.splitlines()
    assert len(got) == lines and got[0] == "1 ünïcödé" and got[-1] == f"{lines} ünïcödé"
    page = (await server.client.get(f"/v1/runs/{run_id}/log",
                                    params={"offset": 1_000, "limit": 100})).json()
    assert page["offset"] == 1_000 and page["next_offset"] <= 1_100 and not page["end"]


# -- a worker dies mid-run -----------------------------------------------------------------


@pytest.mark.timing
async def test_a_worker_killed_mid_run_has_its_run_retried_on_another(tmp_path: Path) -> None:
    async with postgres_database() as url, running_server(
        url, worker_lease_seconds=LEASE_S
    ) as server, workers(server, "fo-a", "fo-b", group="crash") as procs:
        marker = tmp_path / "first"
        script = (f'if [ -e {marker} ]; then echo "done on $CRONWHEEL_WORKER"; '
                  f'else echo $$ > {marker}; sleep 300; fi')
        run_id = await submit(server, "survivor", "shell", {"command": script},
                              route="failover", group="crash",
                              retry={"max_attempts": 2, "initial_backoff": 0.1})
        await until(lambda: _has_task(server, run_id), "the first attempt to start")
        await until(lambda: _written(marker), "the first attempt's shell to note its pid")
        procs["fo-a"].kill()  # SIGKILL: no goodbye, no report
        killed = time.monotonic()
        run = await finished(server, run_id, timeout=30)
        took = time.monotonic() - killed
        orphan_gone = await _group_gone(int(marker.read_text()), 10)
        _reap_orphan(marker)
        log = await read_all(server, run_id)
    assert run["state"] == "succeeded", run
    assert [(a["outcome"], a["node"]) for a in run["attempt_log"]] == [
        ("abandoned", "fo-a"), ("success", "fo-b")]
    assert took < LEASE_S + 5
    assert orphan_gone  # the dead worker's guard killed the first attempt's processes
    assert "done on fo-b" in log


async def _written(path: Path) -> bool:
    """A task counts as running before its shell has run a line: killed then, the first
    attempt would leave no marker, and the second would then sleep as the first was to."""
    def written() -> bool:
        return path.exists() and bool(path.read_text().strip())

    return await asyncio.to_thread(written)


async def _has_task(server: RunningServer, run_id: str) -> bool:
    tasks = (await server.client.get(f"/v1/runs/{run_id}/tasks")).json()["tasks"]
    return any(t["state"] == "running" for t in tasks)


async def _group_gone(pgid: int, timeout: float) -> bool:
    """Not `killpg(pgid, 0)`: the killed task's shell was reparented to PID 1, and where PID 1
    does not reap orphans (CI's init does not) it stays in the group as a zombie."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_members(pgid):
            return True
        await asyncio.sleep(0.1)
    return False


def _reap_orphan(marker: Path) -> None:
    """Should the guard have failed, end the job here: it leads its own process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(int(marker.read_text()), signal.SIGKILL)


# -- the CLI -------------------------------------------------------------------------------


async def test_cli_reads_logs_lists_workers_and_kills(server: RunningServer) -> None:
    from tests.e2e.test_cli import cronwheel

    async with workers(server, "cli-w"):
        done = await submit(server, "printer", "shell", {"command": "seq 1 50000"})
        await finished(server, done)
        printed = await cronwheel("runs", "log", done, server=server.base_url)
        assert printed.code == 0 and printed.out.split() == [str(i) for i in range(1, 50_001)]
        long = await submit(server, "long", "shell", {"command": LONG})
        pids = await _pids(server, long)
        listed = await cronwheel("workers", "ls", "--json", server=server.base_url)
        [shown] = listed.json()["workers"]
        assert (shown["name"], shown["busy"], shown["online"]) == ("cli-w", 1, True)
        here = await cronwheel("workers", "runs", "127.0.0.1", "--json", server=server.base_url)
        assert [r["id"] for r in here.json()["runs"]] == [long]
        killed = await cronwheel("runs", "kill", long, server=server.base_url)
        assert killed.code == 0 and "being killed" in killed.out
        assert (await finished(server, long, timeout=10))["state"] == "killed"
        await until(_gone(pids), "the process tree to be gone", 5)
        again = await cronwheel("runs", "kill", long, server=server.base_url)
        assert again.code == 1 and "already killed" in again.err


# -- the server restarts while a worker runs a task ----------------------------------------


async def test_a_task_survives_a_server_restart_longer_than_the_worker_lease(
    tmp_path: Path,
) -> None:
    database, port = tmp_path / "cw.db", free_port()
    marker = tmp_path / "ran"
    script = f"echo once >> {marker}; sleep 6; echo finished"
    async with running_server(database, port=port, worker_lease_seconds=LEASE_S) as first:
        base = first.base_url
        procs_cm = workers(first, "steady", concurrency=1)
        procs = await procs_cm.__aenter__()
        run_id = await submit(first, "through-restart", "shell", {"command": script},
                              retry={"max_attempts": 3, "initial_backoff": 0.1})
        await until(lambda: _has_task(first, run_id), "the task to start")
    try:
        await asyncio.sleep(LEASE_S * 2)  # no server: the worker's heartbeats fail
        async with running_server(database, port=port, worker_lease_seconds=LEASE_S,
                                  heartbeat_seconds=0.1) as again:  # reaps every 0.1 s
            assert again.base_url == base
            run = await finished(again, run_id, timeout=30)
            log = await read_all(again, run_id)
            assert run["state"] == "succeeded", run
            assert [a["outcome"] for a in run["attempt_log"]] == ["success"]  # not re-run
            assert marker.read_text() == "once\n" and "finished" in log
            procs["steady"].send_signal(signal.SIGTERM)
    finally:
        with contextlib.suppress(Exception):
            await procs_cm.__aexit__(None, None, None)
