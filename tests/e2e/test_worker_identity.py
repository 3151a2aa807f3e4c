"""Worker identity with real `cronwheel worker` processes: a worker with one app's token
cannot take, finish or register into another's group, a revoked token stops it on its next
call, and a worker the server forgot (stopped, or its database reset) registers again by
itself and runs the next task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_cli import cronwheel
from tests.e2e.test_workers import (
    LEASE_S,
    finished,
    read_all,
    submit,
    until,
    workers,
)
from tests.servers import RunningServer, running_server
from tests.support import free_port


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "cw.db", worker_lease_seconds=LEASE_S) as running:
        yield running


async def worker_token(server: RunningServer, app: str, group: str) -> dict[str, Any]:
    made = await server.client.post("/v1/apps", json={"name": app, "namespaces": [app]})
    assert made.status_code == 201, made.text
    answer = await server.client.post(f"/v1/apps/{app}/tokens",
                                      json={"role": "worker", "groups": [group]})
    assert answer.status_code == 201, answer.text
    token: dict[str, Any] = answer.json()
    return token


async def listed(server: RunningServer) -> dict[str, dict[str, Any]]:
    found = (await server.client.get("/v1/workers")).json()["workers"]
    return {w["name"]: w for w in found}


async def tasks_of(server: RunningServer, run_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (
        await server.client.get(f"/v1/runs/{run_id}/tasks")).json()["tasks"]
    return found


async def test_a_worker_cannot_act_beyond_its_token(
    server: RunningServer, tmp_path: Path,
) -> None:
    a = await worker_token(server, "alpha", "a")
    b = await worker_token(server, "beta", "b")
    touched = tmp_path / "b-ran-on"
    b_script = {"command": f'echo "$CRONWHEEL_WORKER" >> {touched}; sleep 3; echo done'}
    async with workers(server, "wa", group="a", extra=("--token", a["token"])):
        # group b's run is never handed to (nor run by) the group-a worker
        alone = await submit(server, "b-alone", "shell", b_script, group="b")
        assert (await finished(server, alone))["last_error"] == (
            "no online worker of group 'b' that accepts 'shell' jobs may run this job")
        assert not touched.exists()
        # nor may its token register a worker into group b
        sneaky = await cronwheel("worker", "--server", server.base_url, "--group", "b",
                                 "--name", "sneaky", "--token", a["token"])
        assert sneaky.code == 1 and "does not serve worker group 'b'" in sneaky.err
        async with workers(server, "wb", group="b", extra=("--token", b["token"])):
            run_id = await submit(server, "b-job", "shell", b_script, group="b")
            [task] = await until(lambda: _running(server, run_id), "b's task to start")
            ids = {name: w["id"] for name, w in (await listed(server)).items()}
            assert task["worker_id"] == ids["wb"]
            async with httpx.AsyncClient(base_url=server.base_url, headers={
                    "Authorization": f"Bearer {a['token']}"}) as as_a:
                forged = {"outcome": "failure", "exit_code": 1}
                tid = task["id"]
                by_own_id = await as_a.post(f"/v1/workers/{ids['wa']}/tasks/{tid}/finish",
                                            json=forged)
                by_their_id = await as_a.post(f"/v1/workers/{ids['wb']}/tasks/{tid}/finish",
                                              json=forged)
                their_lease = await as_a.post(f"/v1/workers/{ids['wb']}/lease",
                                              json={"max": 1})
            assert by_own_id.status_code == 409
            assert by_their_id.status_code == 404 == their_lease.status_code
            assert by_their_id.json()["error"]["code"] == "unknown_worker"
            run = await finished(server, run_id)
            assert run["state"] == "succeeded", run  # the forged finish changed nothing
            assert "done" in await read_all(server, run_id)
            assert touched.read_text() == "wb\n"
        # revoking the token refuses the worker's next call: it goes offline, runs nothing
        revoked = await server.client.post(f"/v1/apps/alpha/tokens/{a['id']}/revoke")
        assert revoked.status_code == 200
        await until(lambda: _offline(server, "wa"), "the revoked worker to go offline",
                    LEASE_S + 10)
        after = await submit(server, "a-after", "shell", {"command": "true"}, group="a")
        assert (await finished(server, after))["last_error"] == (
            "no online worker of group 'a' that accepts 'shell' jobs may run this job")


async def _running(server: RunningServer, run_id: str) -> list[dict[str, Any]]:
    return [t for t in await tasks_of(server, run_id) if t["state"] == "running"]


async def _offline(server: RunningServer, name: str) -> bool:
    return not (await listed(server))[name]["online"]


async def test_a_stopped_worker_registers_again_and_runs_the_next_task(
    server: RunningServer,
) -> None:
    async with workers(server, "comeback"):
        first = (await listed(server))["comeback"]["id"]
        stopped = await server.client.post(f"/v1/workers/{first}/stop", json={})
        assert stopped.status_code == 200  # an admin deregisters it; the process runs on

        async def again() -> str | None:
            now = (await listed(server)).get("comeback")
            return now["id"] if now and now["online"] and now["id"] != first else None

        second = await until(again, "the worker to register again")
        run_id = await submit(server, "after-stop", "shell", {"command": "echo back"})
        run = await finished(server, run_id)
    assert run["state"] == "succeeded", run
    [task] = await tasks_of(server, run_id)
    assert task["worker_id"] == second


async def test_a_worker_registers_again_with_a_server_whose_database_was_reset(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with running_server(tmp_path / "old.db", port=port,
                              worker_lease_seconds=LEASE_S) as old:
        procs_cm = workers(old, "survivor", concurrency=1)
        procs = await procs_cm.__aenter__()
        before = (await listed(old))["survivor"]["id"]
    try:
        async with running_server(tmp_path / "new.db", port=port,
                                  worker_lease_seconds=LEASE_S) as new:
            await until(lambda: _online(new, "survivor"), "the worker to register again")
            assert (await listed(new))["survivor"]["id"] != before
            run_id = await submit(new, "after-reset", "shell", {"command": "echo again"})
            run = await finished(new, run_id)
            assert run["state"] == "succeeded", run
            assert "again" in await read_all(new, run_id)
            procs["survivor"].terminate()
            await asyncio.wait_for(procs["survivor"].wait(), 15)
    finally:
        await procs_cm.__aexit__(None, None, None)


async def _online(server: RunningServer, name: str) -> bool:
    found = (await listed(server)).get(name)
    return bool(found and found["online"])
