"""A real `cronwheel worker` process logs as the server does: one event per line, its name and
the task's fields, as text or as JSON (CRONWHEEL_LOG_FORMAT); and the sync client follows a
worker job's log from a real `cronwheel serve` process until the task ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cronwheel.client import Client
from cronwheel.client.wire import Event
from tests.e2e.test_serve_logs import serve
from tests.e2e.test_workers import REPO, finished, submit
from tests.servers import RunningServer, running_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "cw.db", worker_lease_seconds=2.0) as running:
        yield running


@contextlib.asynccontextmanager
async def logging_worker(base_url: str, name: str, log_format: str) -> AsyncIterator[list[str]]:
    """A worker process whose stderr lines are collected as they come; stopped with SIGTERM
    (and waited for) on leaving, so the lines then hold its shutdown too."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
                        "CRONWHEEL_LOG_FORMAT": log_format, "CRONWHEEL_LOG_LEVEL": "info"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cronwheel", "worker", "--server", base_url, "--name", name,
        "--grace", "2", cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []

    async def collect() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            lines.append(raw.decode().rstrip("\n"))

    reader = asyncio.create_task(collect())
    try:
        yield lines
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await reader


async def _line(lines: list[str], event: str, timeout: float = 20.0) -> str:
    """The first line of `event` once the worker has written it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in lines:
            if f'"event": "{event}"' in line or f" {event} " in f"{line} ":
                return line
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {event} line in:\n" + "\n".join(lines))


async def test_json_lines_name_each_event_and_carry_the_tasks_fields(
    server: RunningServer,
) -> None:
    async with logging_worker(server.base_url, "json-worker", "json") as lines:
        registered = json.loads(await _line(lines, "worker.registered"))
        run_id = await submit(server, "nightly-export", "shell", {"command": "echo hi; exit 3"})
        assert (await finished(server, run_id))["state"] == "failed"
        started = json.loads(await _line(lines, "worker.task_started"))
        ended = json.loads(await _line(lines, "worker.task_finished"))
    every = [json.loads(line) for line in lines]  # each stderr line is one JSON object
    assert all(isinstance(line, dict) and line.get("event") for line in every), lines
    assert registered["worker"] == "json-worker" and registered["worker_id"]
    assert registered["level"] == "info" and registered["logger"] == "cronwheel.worker.runner"
    for line in (started, ended):
        assert line["run_id"] == run_id and line["job_key"] == "nightly-export"
        assert line["namespace"] == "default" and line["attempt"] == 1
        assert line["type"] == "shell" and line["task_id"]
    assert (ended["outcome"], ended["exit_code"], ended["level"]) == ("failure", 3, "warning")
    assert ended["duration_s"] >= 0
    events = [line["event"] for line in every]
    # stopping, then (when the finished task's report is still under way) draining, then gone
    assert events[-1] == "worker.deregistered" and "worker.stopping" in events[-3:-1], events


async def test_text_lines_show_the_event_name_then_key_value_fields(
    server: RunningServer,
) -> None:
    async with logging_worker(server.base_url, "text-worker", "text") as lines:
        await _line(lines, "worker.registered")
        run_id = await submit(server, "hourly-sync", "shell", {"command": "echo hi"})
        assert (await finished(server, run_id))["state"] == "succeeded"
        started = await _line(lines, "worker.task_started")
        ended = await _line(lines, "worker.task_finished")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.match(rf"{stamp} INFO cronwheel\.worker\.runner worker\.task_started ", started)
    assert re.match(rf"{stamp} INFO cronwheel\.worker\.runner worker\.task_finished ", ended)
    for line in (started, ended):
        fields = dict(pair.split("=", 1) for pair in line.split(" ")[4:])
        assert fields["run_id"] == run_id and fields["job_key"] == "hourly-sync"
        assert (fields["namespace"], fields["attempt"], fields["type"]) == ("default", "1",
                                                                           "shell")
    assert "outcome=success" in ended and "exit_code=0" in ended
    assert not any(line.startswith("{") for line in lines)


async def test_a_wrong_log_format_stops_the_worker_with_one_line_naming_it() -> None:
    env = os.environ | {"PYTHONPATH": str(REPO / "src"), "CRONWHEEL_LOG_FORMAT": "xml"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cronwheel", "worker", "--server", "http://127.0.0.1:9",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert err.decode().splitlines() == [
        "error: CRONWHEEL_LOG_FORMAT: must be one of text, json (got 'xml')"]


@pytest.mark.timing
async def test_the_sync_client_follows_a_running_worker_jobs_log_to_its_end(
    tmp_path: Path,
) -> None:
    """The job prints, then waits for a file the test makes only once the client has shown
    the first line: the client must be following live, and must stop at the task's end."""
    go = tmp_path / "go"
    command = f"echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second"
    job = {"key": "followed", "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"},
           "target": {"kind": "worker", "group": "default", "type": "shell",
                      "spec": {"command": command}, "timeout": 60}}
    async with serve(tmp_path) as (base, _), logging_worker(base, "follow-w", "json") as lines:
        await _line(lines, "worker.registered")
        with Client(base) as cw:
            await asyncio.to_thread(cw.create_job, job)
            run = await asyncio.to_thread(cw.trigger_job, "followed")
            deadline = time.monotonic() + 20
            while (await asyncio.to_thread(cw.get_run, run.id)).state != "running":
                assert time.monotonic() < deadline, "the run never started"
                await asyncio.sleep(0.1)
            events: list[Event] = []

            def follow() -> None:
                for event in cw.follow_log(run.id):
                    events.append(event)

            follower = asyncio.create_task(asyncio.to_thread(follow))
            deadline = time.monotonic() + 20
            while "first\n" not in _text(events):
                assert time.monotonic() < deadline, f"no output followed: {events}"
                await asyncio.sleep(0.05)
            assert not follower.done()  # the task still runs: the stream stays open
            go.touch()
            await asyncio.wait_for(follower, 30)
            final = await asyncio.to_thread(cw.get_run, run.id)
    assert _text(events) == "first\nsecond\n"
    assert [e.name for e in events][-1] == "end" and events[-1].data["state"] == "succeeded"
    assert final.state == "succeeded"


def _text(events: list[Event]) -> str:
    return "".join(str(e.data.get("text", "")) for e in events if e.name == "output")
