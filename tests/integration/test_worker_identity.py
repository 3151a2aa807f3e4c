"""Worker identity over the real HTTP protocol: server-issued ids bound to the registering
token, leases of the worker's own groups only, reports of its own tasks only, one answer
(404 `unknown_worker`) for every id a caller may not use, and revocation on the next call.

Real worker processes doing the same are in tests/e2e/test_worker_identity.py.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_worker_protocol import FakeWorker, job, run_of, trigger, until_state
from tests.servers import RunningServer, running_server

LEASE_S = 1.0
ID = re.compile(r"^w_([a-z0-9]{8})_([0-9a-f]{32})$")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "cw.db", worker_lease_seconds=LEASE_S,
                              worker_heartbeat_seconds=0.2, heartbeat_seconds=0.2) as running:
        for app in ("alpha", "beta"):
            answer = await running.client.post("/v1/apps", json={"name": app,
                                                                  "namespaces": [app]})
            assert answer.status_code == 201, answer.text
        yield running


async def worker_token(server: RunningServer, app: str, groups: list[str]) -> dict[str, Any]:
    answer = await server.client.post(f"/v1/apps/{app}/tokens",
                                      json={"role": "worker", "groups": groups})
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


def as_token(server: RunningServer, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})


async def registered(client: httpx.AsyncClient, name: str, groups: list[str]) -> FakeWorker:
    return await FakeWorker(client, name).register(groups)


async def leased(w: FakeWorker, timeout: float = 5.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await w.lease(1, 0.5)
        if found:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, "no task was leased"


async def task_state(server: RunningServer, run_id: str) -> list[tuple[str, str, int]]:
    tasks = (await server.client.get(f"/v1/runs/{run_id}/tasks")).json()["tasks"]
    return [(t["worker_id"], t["state"], t["log_size"]) for t in tasks]


def unknown(answer: httpx.Response) -> bool:
    return answer.status_code == 404 and answer.json()["error"] == {
        "code": "unknown_worker", "message": "unknown worker: register again",
        "field": "worker_id"}


async def test_ids_are_issued_by_the_server_random_and_name_the_token(
    server: RunningServer,
) -> None:
    made = await worker_token(server, "alpha", ["a"])
    async with as_token(server, made["token"]) as client:
        first = await registered(client, "same-name", ["a"])
        second = await registered(client, "same-name", ["a"])
    ids = [ID.match(w.id) for w in (first, second)]
    assert all(ids) and first.id != second.id
    assert {m.group(1) for m in ids if m} == {made["id"]}  # bound to the registering token
    randoms = [int(m.group(2), 16) for m in ids if m]
    assert abs(randoms[0] - randoms[1]) > 2**64  # not a counter: nothing to guess from
    listed = (await server.client.get("/v1/workers")).json()["workers"]
    assert sorted((w["id"], w["name"]) for w in listed) == sorted(
        [(first.id, "same-name"), (second.id, "same-name")])  # the name stays a label


async def test_another_tokens_worker_id_is_answered_as_unknown_and_left_alone(
    server: RunningServer,
) -> None:
    a_token = await worker_token(server, "alpha", ["a"])
    b_token = await worker_token(server, "beta", ["b"])
    async with as_token(server, a_token["token"]) as a_client, \
            as_token(server, b_token["token"]) as b_client:
        victim = await registered(b_client, "victim", ["b"])
        run_id = await trigger(server, await job(server, group="b"))
        task = await leased(victim)
        impostor = FakeWorker(a_client, "impostor", victim.id)  # knows B's id from a list
        calls = {
            "heartbeat": await a_client.post(f"/v1/workers/{victim.id}/heartbeat",
                                             json={"running": []}),
            "lease": await a_client.post(f"/v1/workers/{victim.id}/lease",
                                         json={"max": 5, "wait": 0}),
            "output": await impostor.out(task["task_id"], b"forged\n", 0),
            "finish": await impostor.finish(task["task_id"], "failure", exit_code=1),
            "stop": await a_client.post(f"/v1/workers/{victim.id}/stop", json={}),
        }
        made_up = await a_client.post("/v1/workers/w_abcdefgh_" + "0" * 32 + "/heartbeat",
                                      json={"running": []})
        assert {name: unknown(answer) for name, answer in calls.items()} == dict.fromkeys(
            calls, True)
        assert unknown(made_up)  # the very answer an id that never existed gets
        # nothing changed: B's task runs on, B is online, and B finishes it itself
        assert await task_state(server, run_id) == [(victim.id, "running", 0)]
        assert (await run_of(server, run_id))["state"] == "running"
        await victim.beat([task["task_id"]])
        assert (await victim.out(task["task_id"], b"mine\n", 0)).status_code == 200
        assert (await victim.finish(task["task_id"], "success", exit_code=0)).status_code == 200
    assert (await until_state(server, run_id, "succeeded"))["attempts"] == 1


async def test_a_worker_cannot_finish_or_write_another_workers_task_with_its_own_id(
    server: RunningServer,
) -> None:
    made = await worker_token(server, "alpha", ["a"])
    async with as_token(server, made["token"]) as client:
        mine = await registered(client, "mine", ["a"])
        theirs = await registered(server.client, "theirs", ["shared"])  # an admin's worker
        run_id = await trigger(server, await job(server, group="shared"))
        task = await leased(theirs)
        forged = await mine.finish(task["task_id"], "failure", exit_code=1)
        written = await mine.out(task["task_id"], b"forged\n", 0)
        assert forged.status_code == 409 and forged.json()["error"]["field"] == "task_id"
        assert written.status_code == 404 and written.json()["error"]["field"] == "task_id"
        assert await task_state(server, run_id) == [(theirs.id, "running", 0)]
        assert (await run_of(server, run_id))["state"] == "running"
        assert (await theirs.finish(task["task_id"], "success")).status_code == 200
    done = await until_state(server, run_id, "succeeded")
    assert [a["outcome"] for a in done["attempt_log"]] == ["success"]


async def test_a_token_registers_only_its_groups_and_leases_only_their_tasks(
    server: RunningServer,
) -> None:
    made = await worker_token(server, "alpha", ["a"])
    async with as_token(server, made["token"]) as client:
        refused = await client.post("/v1/workers", json={"name": "sneaky", "groups": ["a", "b"]})
        assert refused.status_code == 403 and refused.json()["error"]["field"] == "groups"
        mine = await registered(client, "a-only", ["a"])
        b_run = await trigger(server, await job(server, group="b"))
        await asyncio.sleep(0.3)
        assert await mine.lease(10, 0.5) == []  # group b's run is never handed to it
        assert (await run_of(server, b_run))["last_error"] == (
            "no online worker of group 'b' that accepts 'shell' jobs may run this job")
        await mine.beat()  # online again (a lease here is a second)
        a_run = await trigger(server, await job(server, group="a"))
        assert (await leased(mine))["run_id"] == a_run


async def test_a_task_whose_job_moved_to_another_group_is_not_sent(
    server: RunningServer,
) -> None:
    made = await worker_token(server, "alpha", ["a"])
    async with as_token(server, made["token"]) as client:
        mine = await registered(client, "mover", ["a"])
        key = await job(server, group="a")
        run_id = await trigger(server, key)
        await asyncio.sleep(0.3)  # handed to `mover`, not leased yet
        moved = await server.client.get(f"/v1/jobs/{key}")
        body = moved.json()["spec"] if "spec" in moved.json() else moved.json()
        target = body["target"] | {"group": "b"}
        replaced = await server.client.post("/v1/jobs", params={"replace": "true"}, json={
            "key": key, "schedule": body["schedule"], "target": target,
            "retry": {"max_attempts": 1}})
        assert replaced.status_code == 200, replaced.text
        assert await mine.lease(5, 0.5) == []
    done = await until_state(server, run_id, "failed")
    assert done["attempt_log"][0]["error"] == (
        "mover: error the job now runs on group 'b', not this worker's")


async def test_revoking_the_token_refuses_the_workers_next_call(server: RunningServer) -> None:
    made = await worker_token(server, "alpha", ["a"])
    async with as_token(server, made["token"]) as client:
        w = await registered(client, "revoked", ["a"])
        await w.beat()
        answer = await server.client.post(f"/v1/apps/alpha/tokens/{made['id']}/revoke")
        assert answer.status_code == 200, answer.text
        for path, body in (("heartbeat", {"running": []}), ("lease", {"max": 1}),
                           ("stop", {})):
            refused = await client.post(f"/v1/workers/{w.id}/{path}", json=body)
            assert refused.status_code == 401, (path, refused.text)
        again = await client.post("/v1/workers", json={"name": "back", "groups": ["a"]})
        assert again.status_code == 401


async def test_a_stopped_or_forgotten_worker_is_told_to_register_again(
    server: RunningServer,
) -> None:
    made = await worker_token(server, "alpha", ["a"])
    async with as_token(server, made["token"]) as client:
        w = await registered(client, "forgotten", ["a"])
        run_id = await trigger(server, await job(server, group="a"))
        task = await leased(w)
        # an admin may act for any worker: here it deregisters this one
        assert (await server.client.post(f"/v1/workers/{w.id}/stop", json={})).status_code == 200
        for answer in (
            await client.post(f"/v1/workers/{w.id}/heartbeat", json={"running": []}),
            await client.post(f"/v1/workers/{w.id}/lease", json={"max": 1, "wait": 0}),
            await w.out(task["task_id"], b"late\n", 0),
        ):
            assert unknown(answer), answer.text
        back = await registered(client, "forgotten", ["a"])
        assert back.id != w.id
        await until_state(server, run_id, "failed")  # its task was lost when it stopped
        next_run = await trigger(server, await job(server, group="a"))
        assert (await leased(back))["run_id"] == next_run
