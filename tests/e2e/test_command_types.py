"""Real `cronwheel worker` processes with command types and declared types (docs/workers.md).

A stand-in program (tests/e2e/fake_beeline.py) plays the data platform's client; workers are
started with the command line the docs give, `--command-type hive='... -f {script}'`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.test_workers import LEASE_S, REPO, finished, read_all, submit, workers
from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server

STAND_IN = REPO / "tests" / "e2e" / "fake_beeline.py"
SRC = (REPO / "src",)  # the workers run this checkout's cronwheel, whatever is installed
HIVE = (f"hive={shlex.quote(sys.executable)} {shlex.quote(str(STAND_IN))} "
        "-u jdbc:hive2://db:10000 --hivevar day={params.day} --exit {params.exit} -f {script}")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "cw.db", worker_lease_seconds=LEASE_S) as running:
        yield running


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": os.pathsep.join(str(p) for p in (*SRC, REPO)),
                         "COLUMNS": "400"}  # typer's error box must not wrap the message


def _exists(path: str) -> bool:
    return Path(path).exists()


def _seen(log: str) -> dict[str, object]:
    found: dict[str, object] = json.loads(log.splitlines()[0])
    return found


async def test_a_hive_job_runs_through_its_command_and_the_output_reaches_the_run(
    server: RunningServer,
) -> None:
    async with workers(server, "etl-1", extra=("--command-type", HIVE), path=SRC):
        ok = await submit(server, "nightly", "hive", {
            "content": "select count(*) from t;\n", "content_type": "script",
            "params": {"day": "2026-12-01", "exit": "0"}})
        bad = await submit(server, "broken", "hive", {
            "content": "select nonsense", "params": {"day": "x", "exit": "3"}})
        ok_run, bad_run = await finished(server, ok), await finished(server, bad)
    assert ok_run["state"] == "succeeded", ok_run
    log = await read_all(server, ok)
    seen = _seen(log)
    assert seen["args"] == ["-u", "jdbc:hive2://db:10000", "--hivevar", "day=2026-12-01",
                            "--exit", "0", "-f", seen["path"]]
    assert seen["content"] == "select count(*) from t;\n" and seen["mode"] == "0o600"
    assert "stand-in: done" in log  # stderr is in the log too
    assert not _exists(str(seen["path"]))  # the content file is removed after
    assert json.loads(await read_all(server, ok, "result")) == {"exit_code": 0}
    assert bad_run["state"] == "failed"
    assert bad_run["attempt_log"][0]["status_code"] == 3
    assert json.loads(await read_all(server, bad, "result")) == {"exit_code": 3}


async def test_content_and_params_are_data_never_read_by_a_shell(
    server: RunningServer, tmp_path: Path,
) -> None:
    marker = tmp_path / "pwned"
    nasty = (f"it's \"q\" $(touch {marker}) `touch {marker}`; touch {marker} &&\n"
             f"second line | touch {marker} \\")
    async with workers(server, "etl-1", extra=("--command-type", HIVE), path=SRC):
        run_id = await submit(server, "nasty", "hive", {
            "content": nasty, "params": {"day": nasty, "exit": "0"}})
        run = await finished(server, run_id)
    assert run["state"] == "succeeded", run
    seen = _seen(await read_all(server, run_id))
    assert seen["content"] == nasty
    assert seen["args"][3] == f"day={nasty}"  # type: ignore[index]
    await asyncio.sleep(0.2)
    assert not _exists(str(marker))


async def test_a_worker_limited_to_shell_takes_no_http_task(
    server: RunningServer, receiver: HttpReceiver,
) -> None:
    async with workers(server, "shell-only", extra=("--types", "shell"), path=SRC), \
            workers(server, "anything", path=SRC):
        listed = {w["name"]: w["types"] for w in
                  (await server.client.get("/v1/workers")).json()["workers"]}
        assert listed["shell-only"] == ["shell"]
        assert {"http", "shell", "python", "sql"} <= set(listed["anything"])
        nodes = []
        for n in range(4):  # round-robin would give the shell-only worker two of them
            run_id = await submit(server, f"ping-{n}", "http", {"url": receiver.url})
            nodes.append((await finished(server, run_id))["attempt_log"][0]["node"])
        shell = await submit(server, "sh", "shell", {"command": "true"})
        shell_nodes = {(await finished(server, shell))["attempt_log"][0]["node"]}
    assert nodes == ["anything"] * 4
    assert len(receiver.received) == 4
    assert shell_nodes <= {"shell-only", "anything"}


async def test_a_worker_asked_for_a_type_it_cannot_run_does_not_start(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cronwheel", "worker", "--server", "http://127.0.0.1:9",
        "--types", "shell,hive", "--token", "cw_aaaaaaaa_" + "b" * 43, cwd=REPO, env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, (out, err)
    assert b"hive, which this worker cannot run" in err
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cronwheel", "worker", "--server", "http://127.0.0.1:9",
        "--command-type", "hive=beeline -e 'select 1'", cwd=REPO, env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, (out, err)
    assert b"never hands over the job's content" in err


async def test_stdout_as_the_result_for_shell_and_a_command_type(
    server: RunningServer,
) -> None:
    """`"stdout": "result"`: stdout is the result stream (paged like the log), stderr the log,
    the exit code the attempt's; without the option both stay in the log."""
    rows = "".join(f"row {i}\n" for i in range(1, 20_001))  # ~190 KB: past the inline limit
    async with workers(server, "etl-1", extra=("--command-type", HIVE), path=SRC):
        shell = await submit(server, "split-shell", "shell", {
            "command": "seq -f 'row %g' 1 20000; echo warn >&2; exit 2", "stdout": "result"})
        hive = await submit(server, "split-hive", "hive", {
            "content": "select 1", "params": {"day": "d", "exit": "0"}, "stdout": "result"})
        plain = await submit(server, "plain-shell", "shell", {"command": "echo o; echo e >&2"})
        shell_run, hive_run = await finished(server, shell), await finished(server, hive)
        await finished(server, plain)
    assert shell_run["state"] == "failed"
    assert shell_run["attempt_log"][0]["status_code"] == 2
    assert await read_all(server, shell, "result", limit=4096) == rows
    assert await read_all(server, shell) == "warn\n"
    assert hive_run["state"] == "succeeded", hive_run
    result = await read_all(server, hive, "result", limit=7)
    assert _seen(result)["content"] == "select 1" and result.endswith("select 1\n")
    assert await read_all(server, hive) == "stand-in: done\n"
    assert await read_all(server, plain) == "o\ne\n"
    assert json.loads(await read_all(server, plain, "result")) == {"exit_code": 0}
