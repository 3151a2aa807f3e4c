"""The `cronwheel` console script end to end: a real subprocess against a real node.

The node runs inside the test's event loop, so the command runs under asyncio and is awaited;
a blocking subprocess call would stall the server it talks to.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.receivers import HttpReceiver
from tests.servers import RunningServer
from tests.support import TEST_ADMIN_TOKEN, free_port


def console_script() -> str:
    here = os.path.dirname(sys.executable)
    found = shutil.which("cronwheel", path=here) or shutil.which("cronwheel")
    if found is None:
        pytest.fail("the cronwheel console script is not installed (pip install -e .)")
    return found


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def cronwheel(*args: str, server: str | None = None, timeout: float = 20.0,
                    token: str | None = TEST_ADMIN_TOKEN,
                    env_extra: dict[str, str] | None = None) -> Result:
    """Run `cronwheel ARGS...`; CRONWHEEL_SERVER is `server` when given, else unset;
    CRONWHEEL_TOKEN is `token` (the test servers' admin token unless told otherwise) unless
    `env_extra` sets it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CRONWHEEL_") and k != "COLUMNS"}
    if server is not None:
        env["CRONWHEEL_SERVER"] = server
    if token is not None:
        env["CRONWHEEL_TOKEN"] = token
    env |= env_extra or {}
    proc = await asyncio.create_subprocess_exec(
        console_script(), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"cronwheel {' '.join(args)} did not finish in {timeout}s") from None
    result = Result(proc.returncode if proc.returncode is not None else -1,
                    out.decode(), err.decode())
    assert "Traceback" not in result.err, result.err
    return result


async def finished_run(server: RunningServer, key: str, timeout: float = 10.0) -> dict[str, Any]:
    """The newest run of `key` once it has succeeded (the receiver's answer is recorded last)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await server.client.get(f"/v1/jobs/{key}/runs")
        runs: list[dict[str, Any]] = answer.json()["runs"]
        if runs and runs[0]["state"] == "succeeded":
            return runs[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no succeeded run of {key!r}: {runs}")
        await asyncio.sleep(0.05)


async def test_add_fire_and_inspect_runs(server: RunningServer, receiver: HttpReceiver) -> None:
    base = server.base_url
    added = await cronwheel("jobs", "add", "invoice-42", "--after", "0.2", "--url", receiver.url,
                            "--payload", '{"invoice": 42}', "--priority", "3", "--server", base)
    assert added.code == 0, added.err
    assert "created job default/invoice-42" in added.out

    listed = await cronwheel("jobs", "ls", "--json", server=base)
    assert listed.code == 0, listed.err
    [job] = [j for j in listed.json()["jobs"] if j["key"] == "invoice-42"]
    assert job["priority"] == 3
    assert job["target"]["url"] == receiver.url

    [got] = await receiver.wait_for(1)
    assert got.json() == {"invoice": 42}
    run = await finished_run(server, "invoice-42")

    runs = await cronwheel("jobs", "runs", "invoice-42", server=base)
    assert runs.code == 0, runs.err
    row = next(line for line in runs.out.splitlines() if run["id"] in line)
    assert "scheduled" in row and "succeeded" in row

    detail = await cronwheel("runs", "show", run["id"], "--json", server=base)
    assert detail.code == 0, detail.err
    body = detail.json()
    assert body["state"] == "succeeded"
    [attempt] = body["attempt_log"]
    assert (attempt["number"], attempt["outcome"], attempt["status_code"]) == (1, "success", 200)

    table = await cronwheel("runs", "show", run["id"], server=base)
    assert table.code == 0, table.err
    assert "attempts" in table.out
    attempt_row = next(line for line in table.out.splitlines() if "success" in line)
    assert attempt_row.split()[:2] == ["1", "│"] and "200" in attempt_row

    jobs = await cronwheel("jobs", "ls", server=base)
    row = next(line for line in jobs.out.splitlines() if "invoice-42" in line)
    assert "completed" in row and receiver.url in row


async def test_same_key_is_idempotent_and_a_different_definition_conflicts(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    add = ("jobs", "add", "report", "--after", "10m", "--url", receiver.url)
    first = await cronwheel(*add, "--payload", '{"v": 1}', server=server.base_url)
    assert first.code == 0, first.err
    assert first.out.startswith("created job default/report: active, next fire")

    again = await cronwheel(*add, "--payload", '{"v": 1}', server=server.base_url)
    assert again.code == 0, again.err
    assert "already exists with the same definition" in again.out

    clash = await cronwheel(*add, "--payload", '{"v": 2}', server=server.base_url)
    assert clash.code == 1
    assert clash.out == ""
    assert clash.err.strip() == (
        "error: job 'report' exists with a different definition (field: key)"
    )


async def test_pause_resume_cancel_a_countdown(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    base = server.base_url
    added = await cronwheel("jobs", "add", "cd", "--after", "600", "--countdown",
                            "--url", receiver.url, server=base)
    assert added.code == 0, added.err

    paused = await cronwheel("jobs", "pause", "cd", "--json", server=base)
    assert paused.code == 0, paused.err
    job = paused.json()
    assert job["state"] == "paused" and job["next_fire_at"] is None
    assert 590 < job["remaining"] <= 600

    shown = await cronwheel("jobs", "show", "cd", server=base)
    assert shown.code == 0, shown.err
    assert "paused" in shown.out and "left" in shown.out and "(countdown)" in shown.out

    resumed = await cronwheel("jobs", "resume", "cd", server=base)
    assert resumed.code == 0, resumed.err
    assert resumed.out.startswith("resumed job default/cd: active, next fire")

    cancelled = await cronwheel("jobs", "cancel", "cd", server=base)
    assert cancelled.code == 0, cancelled.err
    assert cancelled.out.strip() == "cancelled job default/cd: cancelled"

    twice = await cronwheel("jobs", "cancel", "cd", server=base)
    assert twice.code == 1
    assert twice.err.strip() == "error: the job is already cancelled"

    gone = await cronwheel("jobs", "ls", "--state", "cancelled", "--json", server=base)
    assert [j["key"] for j in gone.json()["jobs"]] == ["cd"]
    assert receiver.received == []


async def test_trigger_delivers_now_with_a_payload_override(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    base = server.base_url
    added = await cronwheel("jobs", "add", "later", "--at", "2099-01-01T00:00:00Z",
                            "--url", receiver.url, "--payload", '"scheduled"', server=base)
    assert added.code == 0, added.err
    fired = await cronwheel("jobs", "trigger", "later", "--payload", '{"now": true}', "--json",
                            server=base)
    assert fired.code == 0, fired.err
    assert fired.json()["kind"] == "manual"
    [got] = await receiver.wait_for(1)
    assert got.json() == {"now": True}


async def test_ls_follows_cursors_and_filters(server: RunningServer) -> None:
    target = {"kind": "http", "url": "http://127.0.0.1:9/never"}
    for namespace, key in [("default", "a-1"), ("default", "a-2"), ("default", "b-1"),
                           ("other", "a-3")]:
        body = {"namespace": namespace, "key": key, "target": target,
                "schedule": {"kind": "once", "after": 3600}}
        assert (await server.client.post("/v1/jobs", json=body)).status_code == 201

    page, every, wide, table = await asyncio.gather(
        cronwheel("jobs", "ls", "--limit", "2", "--json", server=server.base_url),
        cronwheel("jobs", "ls", "--limit", "2", "--all", "--json", server=server.base_url),
        cronwheel("jobs", "ls", "-A", "--prefix", "a-", "--json", server=server.base_url),
        cronwheel("jobs", "ls", "-n", "other", server=server.base_url),
    )
    assert len(page.json()["jobs"]) == 2 and page.json()["next_cursor"]
    assert [j["key"] for j in every.json()["jobs"]] == ["a-1", "a-2", "b-1"]
    assert every.json()["next_cursor"] is None
    assert sorted(j["key"] for j in wide.json()["jobs"]) == ["a-1", "a-2", "a-3"]
    assert table.code == 0, table.err
    assert table.out.split("\n")[0].split() == [
        "key", "┃", "namespace", "┃", "state", "┃", "next", "fire", "┃", "target", "┃",
        "priority",
    ]
    [row] = [line for line in table.out.splitlines() if "a-3" in line]
    assert "other" in row and "active" in row and "POST http://127.0.0.1:9/never" in row


async def test_server_errors_exit_1_with_the_message(server: RunningServer) -> None:
    base = server.base_url
    missing, elsewhere, no_run, invalid = await asyncio.gather(
        cronwheel("jobs", "show", "nope", server=base),
        cronwheel("jobs", "pause", "nope", "-n", "other", server=base),
        cronwheel("runs", "show", "01a1fdb8-0000-7000-8000-000000000000", server=base),
        cronwheel("jobs", "add", "x", "--at", "2030-01-01T00:00:00",
                  "--url", "http://127.0.0.1:9/", server=base),
    )
    assert missing.code == 1
    assert missing.err.strip() == "error: no job 'nope' in namespace 'default' (field: key)"
    assert elsewhere.code == 1
    assert "in namespace 'other'" in elsewhere.err
    assert no_run.code == 1
    assert no_run.err.startswith("error: no run ")
    assert invalid.code == 1
    assert invalid.err.startswith("error: ") and "(field: schedule.at)" in invalid.err


async def test_unreachable_server_exits_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    by_option, by_env = await asyncio.gather(
        cronwheel("jobs", "ls", "--server", url),
        cronwheel("runs", "show", "some-id", server=url),
    )
    assert by_option.code == 2
    assert by_option.err.startswith(f"cannot reach cronwheel at {url}: ")
    assert by_env.code == 2
    assert by_env.err.startswith(f"cannot reach cronwheel at {url}: ")


async def test_usage_errors_are_reported_before_any_request() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    no_schedule, bad_json = await asyncio.gather(
        cronwheel("jobs", "add", "x", "--url", "http://a", "--server", url),
        cronwheel("jobs", "add", "x", "--after", "5", "--url", "http://a",
                  "--payload", "{nope", "--server", url),
    )
    assert no_schedule.code == 2
    assert "exactly one schedule" in " ".join(no_schedule.err.replace("│", " ").split())
    assert bad_json.code == 2
    assert "not valid JSON" in bad_json.err


async def test_serve_help_lists_its_options() -> None:
    result = await cronwheel("serve", "--help")
    assert result.code == 0, result.err
    for option in ("--host", "--port", "--database-url"):
        assert option in result.out


async def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    result = await cronwheel("migrate", "--database-url", f"sqlite:///{database}")
    assert result.code == 0, result.err
    assert "schema is up to date" in result.out
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master "
                                                 "WHERE type = 'table'")}
    conn.close()
    assert {"jobs", "runs", "attempts"} <= tables


async def test_schedule_next_previews_without_a_server() -> None:
    shown = await cronwheel("schedule", "next", "0 30 2 * * ?", "--tz", "America/New_York",
                            "-n", "3", "--after", "2026-03-07T00:00:00Z", "--json")
    assert shown.code == 0, shown.err
    assert shown.json()["next"] == ["2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z",
                                    "2026-03-09T06:30:00Z"]
    table = await cronwheel("schedule", "next", "*/15 9-17 * * 1-5")
    assert table.code == 0 and "every 15 minutes" in table.out
    bad = await cronwheel("schedule", "next", "0 0 32 * *")
    assert bad.code == 1 and "day-of-month" in bad.err


async def test_add_a_cron_job_and_a_rate_job(server: RunningServer) -> None:
    cron = await cronwheel("jobs", "add", "weekday", "--cron", "0 30 9 ? * MON-FRI",
                           "--tz", "Asia/Shanghai", "--url", "http://127.0.0.1:9/x",
                           "--json", server=server.base_url)
    assert cron.code == 0, cron.err
    assert cron.json()["schedule"]["tz"] == "Asia/Shanghai"
    assert cron.json()["next_fire_at"].endswith("T01:30:00Z")  # 09:30 in Shanghai
    rate = await cronwheel("jobs", "add", "often", "--every", "5m", "--url",
                           "http://127.0.0.1:9/x", server=server.base_url)
    assert rate.code == 0, rate.err
    listed = await cronwheel("jobs", "ls", "--json", server=server.base_url)
    kinds = {job["key"]: job["schedule"]["kind"] for job in listed.json()["jobs"]}
    assert kinds == {"weekday": "cron", "often": "rate"}
    shown = await cronwheel("jobs", "show", "weekday", server=server.base_url)
    assert "cron 0 30 9 ? * MON-FRI Asia/Shanghai" in shown.out
