"""The qschedule dialect, driven through every endpoint of its document (seed 003).

Bodies, job names, worker addresses and the token are the document's own
(`{"jobs":["qschedule.demo.job1","qschedule.demo.job2"]}`, `192.168.1.1:20010`, ...). Jobs
are created through the native API in the namespace of their app; workers are played by the
test itself over the real worker protocol (docs/workers.md). Tests that only check answers
share one node (`shared`) to stay fast.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.servers import RunningServer, running_server

ON = "/api2/jobs/on.do"
OFF = "/api2/jobs/off.do"
TASKS = "/api2/tasks.do"
STATE = "/api2/workers/state.do"
TOKEN = "IGbpF3fyuEVyzkNKuwZZESxPx3IhsHm5LnUSM1"  # the document's, without its "..."
DEMO = {"id": 163, "name": "qschedule.demo", "token": TOKEN}
CAR_TOKEN = "m-car-coupon-Q-Server-Token-7f3a"
CAR = {"id": 233, "name": "m_car_coupon_dis_entity", "token": CAR_TOKEN}
APPS = [DEMO, CAR]
JOB1 = "qschedule.demo.job1"
JOB2 = "qschedule.demo.job2"
W1 = "192.168.1.1:20010"
W2 = "192.168.1.2:20010"
CRON = "0 30 9 * * ?"
NOWHERE = "http://127.0.0.1:9/callback"  # discard port: nothing answers
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The document's messages.
BAD = "参数错误"
DENIED = "授权失败"
NO_JOB = "job不存在"
QUERY_FAILED = "查询失败"
ENABLE_FAILED = "启用失败"
DISABLE_FAILED = "停止失败"
RETRY_FAILED = "重试失败"
BAD_WORKERS = "workers json 格式非法"
ALL_OFF = "所有机器不能全部下线"
PARTLY = "可能存在未操作成功的机器,请调用查看接口验证"
FAILED = "操作失败"
DONE = "操作成功"
MESSAGES = {BAD, DENIED, NO_JOB, QUERY_FAILED, ENABLE_FAILED, DISABLE_FAILED, RETRY_FAILED,
            BAD_WORKERS, ALL_OFF, PARTLY, FAILED, DONE}
OK = {"ret": True, "message": DONE}

# -- the document's request bodies ----------------------------------------------------------------

DOC_JOBS = b"""{
"jobs":["qschedule.demo.job1","qschedule.demo.job2"]
}"""
DOC_TASK = b"""{
"job":"qschedule.demo.job1",
"param":{}
}"""
# The document writes `workers` as '{...}': a string holding JSON. As JSON text:
DOC_STATE = json.dumps({
    "jobName": "qschedule.demo.job1",
    "workers": '{"192.168.1.1:20010":true,"192.168.1.2:20010":false}',
}).encode()


def worker_target(group: str = "demo", **changes: Any) -> dict[str, Any]:
    return {"kind": "worker", "group": group, "route": "random", "type": "shell",
            "spec": {"command": "sleep 30"}, "timeout": 60} | changes


def job_body(key: str, namespace: str = "qschedule.demo", **changes: Any) -> dict[str, Any]:
    return {"namespace": namespace, "key": key, "schedule": {"kind": "cron", "expr": CRON},
            "target": worker_target(), "alert": {"after": 3, "webhook": "http://127.0.0.1:9/alert"},
            "misfire": {"policy": "skip"}} | changes


# -- sending -------------------------------------------------------------------------------------


def headers(token: str | bytes | None) -> dict[bytes, bytes]:
    """JSON content, and the token when given (bytes: sent as they are, even non-ASCII)."""
    found = {b"Content-Type": b"application/json"}
    if token is not None:
        found[b"Q-Server-Token"] = token if isinstance(token, bytes) else token.encode()
    return found


async def post(server: RunningServer, path: str, body: Any, token: str | None = TOKEN
               ) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await server.client.post(path, content=content, headers=headers(token))


async def get(server: RunningServer, path: str, token: str | None = TOKEN) -> httpx.Response:
    return await server.client.get(path, headers=headers(token))


def answer(response: httpx.Response, status: int, message: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["message"] == message, body
    assert body["ret"] is (status == 200), body
    assert set(body) <= {"ret", "message", "field", "data"}, body
    return body


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == OK


async def create(server: RunningServer, key: str, namespace: str = "qschedule.demo",
                 **changes: Any) -> dict[str, Any]:
    response = await server.client.post("/v1/jobs", json=job_body(key, namespace, **changes))
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


async def native(server: RunningServer, key: str, namespace: str = "qschedule.demo"
                 ) -> dict[str, Any]:
    response = await server.client.get(f"/v1/jobs/{key}", params={"namespace": namespace})
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def us(iso: str) -> int:
    return (datetime.fromisoformat(iso) - EPOCH) // timedelta(microseconds=1)


def ms(iso: str) -> int:
    return us(iso) // 1000


# -- playing a worker over its protocol ------------------------------------------------------------


async def register(server: RunningServer, name: str, groups: list[str],
                   host: str | None = None) -> str:
    body: dict[str, Any] = {"name": name, "groups": groups, "capacity": 4, "version": "test"}
    if host is not None:
        body["host"] = host
    response = await server.client.post("/v1/workers", json=body)
    assert response.status_code == 201, response.text
    worker_id: str = response.json()["id"]
    return worker_id


async def heartbeat(server: RunningServer, worker_id: str, running: list[str]) -> list[str]:
    response = await server.client.post(f"/v1/workers/{worker_id}/heartbeat",
                                        json={"running": running})
    assert response.status_code == 200, response.text
    kill: list[str] = response.json()["kill"]
    return kill


async def lease_one(server: RunningServer, worker_id: str) -> dict[str, Any]:
    response = await server.client.post(f"/v1/workers/{worker_id}/lease",
                                        json={"max": 1, "wait": 5})
    assert response.status_code == 200, response.text
    [task] = response.json()["tasks"]
    found: dict[str, Any] = task
    return found


async def finish(server: RunningServer, worker_id: str, task_id: str, outcome: str) -> None:
    response = await server.client.post(f"/v1/workers/{worker_id}/tasks/{task_id}/finish",
                                        json={"outcome": outcome})
    assert response.status_code == 200, response.text


async def run_of(server: RunningServer, run_id: str) -> dict[str, Any]:
    response = await server.client.get(f"/v1/runs/{run_id}")
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


async def settled(server: RunningServer, run_id: str) -> dict[str, Any]:
    for _ in range(100):
        run = await run_of(server, run_id)
        if run["finished_at"] is not None:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never finished")


# -- fixtures ------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def qs(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A fresh node with the two apps configured."""
    async with running_server(tmp_path / "cronwheel.db", qschedule_apps=APPS) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    """One node for the tests that only look at answers; job1 and job2 exist on it."""
    path: Path = tmp_path_factory.mktemp("qschedule") / "cronwheel.db"
    async with running_server(path, qschedule_apps=APPS) as running:
        await create(running, JOB1)
        await create(running, JOB2)
        yield running


module_loop = pytest.mark.asyncio(loop_scope="module")

# -- on.do, off.do -------------------------------------------------------------------------------


async def test_off_and_on_with_the_documents_body(qs: RunningServer) -> None:
    await create(qs, JOB1)
    await create(qs, JOB2)
    assert_ok(await post(qs, OFF, DOC_JOBS))
    assert [(await native(qs, k))["state"] for k in (JOB1, JOB2)] == ["paused", "paused"]
    assert_ok(await post(qs, OFF, DOC_JOBS))  # already off: still a success
    assert_ok(await post(qs, ON, DOC_JOBS))
    jobs = [await native(qs, k) for k in (JOB1, JOB2)]
    assert [j["state"] for j in jobs] == ["active", "active"]
    assert all(j["next_fire_at"] is not None for j in jobs)
    assert_ok(await post(qs, ON, DOC_JOBS))  # already on
    # jobs as a string holding the array, and a name given twice
    assert_ok(await post(qs, OFF, {"jobs": json.dumps([JOB1, JOB1])}))
    assert (await native(qs, JOB1))["state"] == "paused"
    assert (await native(qs, JOB2))["state"] == "active"


async def test_one_unknown_or_cancelled_name_refuses_the_whole_request(qs: RunningServer) -> None:
    await create(qs, JOB1)
    assert_ok(await post(qs, OFF, {"jobs": [JOB1]}))
    body = answer(await post(qs, ON, DOC_JOBS), 409, ENABLE_FAILED)  # job2 does not exist
    assert body["data"] == {"failed": {JOB2: "no such job"}}
    assert (await native(qs, JOB1))["state"] == "paused"  # nothing applied

    await create(qs, JOB2)
    cancelled = await qs.client.post(f"/v1/jobs/{JOB2}/cancel",
                                     params={"namespace": "qschedule.demo"})
    assert cancelled.status_code == 200
    body = answer(await post(qs, ON, DOC_JOBS), 409, ENABLE_FAILED)
    assert body["data"] == {"failed": {JOB2: "the job is cancelled: it cannot be enabled"}}
    assert (await native(qs, JOB1))["state"] == "paused"

    assert_ok(await post(qs, ON, {"jobs": [JOB1]}))
    body = answer(await post(qs, OFF, DOC_JOBS), 409, DISABLE_FAILED)
    assert body["data"] == {"failed": {JOB2: "the job is cancelled: it cannot be disabled"}}
    assert (await native(qs, JOB1))["state"] == "active"
    body = answer(await post(qs, OFF, {"jobs": ["qschedule.demo.job3"]}), 409, DISABLE_FAILED)
    assert body["data"] == {"failed": {"qschedule.demo.job3": "no such job"}}


async def test_a_bad_third_name_leaves_the_first_two_unchanged(qs: RunningServer) -> None:
    """One transaction for the whole request: two jobs that could change do not, when the
    third cannot, in either direction; every failing name is listed."""
    job3 = "qschedule.demo.job3"
    await create(qs, JOB1)
    await create(qs, JOB2)
    before = [await native(qs, k) for k in (JOB1, JOB2)]
    body = answer(await post(qs, OFF, {"jobs": [JOB1, JOB2, job3]}), 409, DISABLE_FAILED)
    assert body["data"] == {"failed": {job3: "no such job"}}
    assert [await native(qs, k) for k in (JOB1, JOB2)] == before  # not even updated_at moved

    assert_ok(await post(qs, OFF, {"jobs": [JOB1, JOB2]}))
    await create(qs, job3)
    await qs.client.post(f"/v1/jobs/{job3}/cancel", params={"namespace": "qschedule.demo"})
    body = answer(await post(qs, ON, {"jobs": [JOB1, JOB2, job3, "qschedule.demo.job4"]}), 409,
                  ENABLE_FAILED)
    assert body["data"] == {"failed": {job3: "the job is cancelled: it cannot be enabled",
                                       "qschedule.demo.job4": "no such job"}}
    assert [(await native(qs, k))["state"] for k in (JOB1, JOB2)] == ["paused", "paused"]


async def test_the_services_limits_answer_in_the_envelope(tmp_path: Path) -> None:
    async with running_server(tmp_path / "limited.db", qschedule_apps=APPS, max_batch=2,
                              max_payload_bytes=1_024) as limited:
        await create(limited, JOB1)
        await create(limited, JOB2)
        three = {"jobs": [JOB1, JOB2, "qschedule.demo.job3"]}
        assert answer(await post(limited, OFF, three), 400, BAD)["field"] == "jobs"
        assert_ok(await post(limited, OFF, {"jobs": [JOB1, JOB2, JOB1]}))  # two distinct
        big = {"job": JOB1, "param": {"blob": "x" * 1_100}}
        assert answer(await post(limited, TASKS, big), 400, BAD)["field"] == "param"
        runs = await limited.client.get(f"/v1/jobs/{JOB1}/runs",
                                        params={"namespace": "qschedule.demo"})
        assert runs.json()["runs"] == []


async def test_a_token_sees_only_its_own_apps_jobs(qs: RunningServer) -> None:
    await create(qs, JOB1)
    body = answer(await post(qs, OFF, {"jobs": [JOB1]}, CAR_TOKEN), 409, DISABLE_FAILED)
    assert body["data"] == {"failed": {JOB1: "no such job"}}
    answer(await get(qs, f"/api2/jobs/{JOB1}.do", CAR_TOKEN), 404, NO_JOB)
    answer(await get(qs, f"/api2/workers/{JOB1}.do", CAR_TOKEN), 404, NO_JOB)
    answer(await post(qs, TASKS, DOC_TASK, CAR_TOKEN), 404, NO_JOB)
    answer(await post(qs, STATE, DOC_STATE, CAR_TOKEN), 404, NO_JOB)
    assert (await native(qs, JOB1))["state"] == "active"
    # the token as the document prints it, in double quotes, is the same token
    assert_ok(await post(qs, OFF, {"jobs": [JOB1]}, f'"{TOKEN}"'))


# -- job info ------------------------------------------------------------------------------------


async def test_job_info_fields_match_the_job(qs: RunningServer) -> None:
    created = await create(qs, JOB1)
    response = await get(qs, f"/api2/jobs/{JOB1}.do")
    body = answer(response, 200, DONE)
    assert body["data"] == {
        "appId": 163, "appName": "qschedule.demo", "name": JOB1, "type": "remote",
        "state": True, "cron": CRON, "nextRun": ms(created["next_fire_at"]),
        "lastRun": 0, "lastState": 0, "lastDuration": 0,
        "lastUpdate": ms(created["updated_at"]), "recover": "discard",
        "loadBalance": "random", "timeout": 60, "consecutiveFailTimesAlertThreshold": 3,
        "desc": "",
    }
    next_run = datetime.fromtimestamp(body["data"]["nextRun"] / 1000, UTC)
    assert (next_run.hour, next_run.minute, next_run.second) == (9, 30, 0)

    assert_ok(await post(qs, OFF, {"jobs": [JOB1]}))
    paused = await native(qs, JOB1)
    info = answer(await get(qs, f"/api2/jobs/{JOB1}.do"), 200, DONE)["data"]
    assert info["state"] is False and info["nextRun"] is None
    assert info["lastUpdate"] == ms(paused["updated_at"]) > ms(created["updated_at"])


async def test_job_info_of_a_callback_job_with_defaults(qs: RunningServer) -> None:
    target = {"kind": "http", "url": NOWHERE, "timeout": 2.5}
    await create(qs, "plain", schedule={"kind": "rate", "every": "5m"}, target=target,
                 alert=None, misfire={"policy": "fire_all"})
    info = answer(await get(qs, "/api2/jobs/plain.do"), 200, DONE)["data"]
    job = await native(qs, "plain")
    assert info["cron"].startswith("every 5 minutes from ")  # the schedule's description
    assert (info["recover"], info["loadBalance"], info["timeout"]) == ("retry", "none", 2.5)
    assert info["consecutiveFailTimesAlertThreshold"] == 0
    assert info["nextRun"] == ms(job["next_fire_at"])


# -- tasks.do ------------------------------------------------------------------------------------


async def test_tasks_do_runs_the_job_now_with_param_as_payload(qs: RunningServer) -> None:
    await create(qs, JOB1)
    response = await post(qs, TASKS, DOC_TASK)
    assert response.status_code == 200, response.text
    first = response.json()
    assert first["ret"] is True and set(first) == {"ret", "message"}
    run = await run_of(qs, first["message"])
    assert (run["key"], run["namespace"], run["kind"]) == (JOB1, "qschedule.demo", "manual")
    assert run["payload"] == {}

    param = {"date": "2014-06-12", "ids": [1, 2]}
    second = (await post(qs, TASKS, {"job": JOB1, "param": param})).json()
    assert second["ret"] is True and second["message"] != first["message"]
    assert (await run_of(qs, second["message"]))["payload"] == param

    assert_ok(await post(qs, OFF, {"jobs": [JOB1]}))  # a disabled job can still run now
    assert (await post(qs, TASKS, {"job": JOB1})).json()["ret"] is True

    await qs.client.post(f"/v1/jobs/{JOB1}/cancel", params={"namespace": "qschedule.demo"})
    answer(await post(qs, TASKS, DOC_TASK), 409, RETRY_FAILED)
    answer(await post(qs, TASKS, {"job": JOB2, "param": {}}), 404, NO_JOB)


# -- workers -------------------------------------------------------------------------------------


async def listed(server: RunningServer, key: str = JOB1) -> dict[str, bool]:
    body = answer(await get(server, f"/api2/workers/{key}.do"), 200, DONE)
    return {w["address"]: w["canSchedule"] for w in body["data"]}


async def test_workers_state_and_list_with_the_documents_workers(qs: RunningServer) -> None:
    await create(qs, JOB1)
    ids = [await register(qs, W1, ["demo"], "192.168.1.1"),
           await register(qs, W2, ["demo", "other"], "192.168.1.2")]
    await register(qs, "192.168.1.3:20010", ["other"], "192.168.1.3")  # not job1's group
    body = answer(await get(qs, f"/api2/workers/{JOB1}.do"), 200, DONE)
    assert body["data"] == [
        {"address": W1, "canSchedule": True, "hostname": W1, "jobName": JOB1},
        {"address": W2, "canSchedule": True, "hostname": W2, "jobName": JOB1},
    ]

    assert_ok(await post(qs, STATE, DOC_STATE))
    assert await listed(qs) == {W1: True, W2: False}
    native_view = await qs.client.get(f"/v1/jobs/{JOB1}/workers",
                                      params={"namespace": "qschedule.demo"})
    assert {w["name"]: w["enabled"] for w in native_view.json()["workers"]} == {
        W1: True, W2: False}

    for worker_id in ids:
        await heartbeat(qs, worker_id, [])
    refused = answer(await post(qs, STATE, {"jobName": JOB1, "workers": {W1: False}}), 409,
                     ALL_OFF)
    assert refused["field"] == "workers"
    assert await listed(qs) == {W1: True, W2: False}  # nothing changed

    # an address that is no worker of the group: the others are switched all the same
    body = answer(await post(qs, STATE, {"jobName": JOB1, "workers": json.dumps(
        {W2: True, "192.168.1.3:20010": False, "192.168.1.9:20010": True})}), 409, PARTLY)
    assert set(body["data"]["failed"]) == {"192.168.1.3:20010", "192.168.1.9:20010"}
    assert await listed(qs) == {W1: True, W2: True}
    assert_ok(await post(qs, STATE, {"jobName": JOB1, "workers": {W1: False}}))
    assert await listed(qs) == {W1: False, W2: True}


async def test_workers_of_a_job_not_run_by_workers(qs: RunningServer) -> None:
    await create(qs, "callback", target={"kind": "http", "url": NOWHERE})
    answer(await post(qs, STATE, {"jobName": "callback", "workers": {W1: True}}), 409, FAILED)
    answer(await get(qs, "/api2/workers/callback.do"), 409, QUERY_FAILED)
    answer(await post(qs, STATE, DOC_STATE), 404, NO_JOB)
    answer(await get(qs, f"/api2/workers/{JOB1}.do"), 404, NO_JOB)


# -- /api/check ----------------------------------------------------------------------------------


async def test_check_lists_the_jobs_in_progress_on_a_host(qs: RunningServer) -> None:
    key = "car.coupon.sendOutdateMsg"
    await create(qs, key, "m_car_coupon_dis_entity", target=worker_target("coupon"),
                 alert={"after": 1, "webhook": "http://127.0.0.1:9/alert"},
                 misfire={"policy": "fire_once"}, retry={"max_attempts": 1})
    await create(qs, "native.job", "elsewhere", target=worker_target("coupon"), alert=None)
    worker = await register(qs, "127.0.0.1:20010", ["coupon"])  # host: the address seen
    idle = await qs.client.get("/api/check/127.0.0.1.do")
    assert idle.status_code == 200 and idle.json() == {"ret": True, "message": DONE, "data": []}

    started = await post(qs, TASKS, {"job": key, "param": {"batch": 7}}, CAR_TOKEN)
    run_id = started.json()["message"]
    task = await lease_one(qs, worker)
    assert (task["run_id"], task["payload"], task["key"]) == (run_id, {"batch": 7}, key)
    await heartbeat(qs, worker, [task["task_id"]])
    other = await qs.client.post("/v1/jobs/native.job/trigger", params={"namespace": "elsewhere"})
    other_task = await lease_one(qs, worker)
    assert other_task["run_id"] == other.json()["id"]

    for host in ("127.0.0.1", "127.0.0.1:20010"):
        body = answer(await qs.client.get(f"/api/check/{host}.do"), 200, DONE)
        assert [(j["appId"], j["appName"], j["name"]) for j in body["data"]] == [
            (233, "m_car_coupon_dis_entity", key), (0, "elsewhere", "native.job")]
        info = body["data"][0]
        assert (info["cron"], info["recover"], info["loadBalance"]) == (CRON, "retry", "random")
        assert (info["consecutiveFailTimesAlertThreshold"], info["lastState"]) == (1, 0)
    for host in ("10.1.2.3", "::1", "worker-7.example.com"):
        empty = answer(await qs.client.get(f"/api/check/{host}.do"), 200, DONE)
        assert empty["data"] == []

    await finish(qs, worker, task["task_id"], "success")
    await finish(qs, worker, other_task["task_id"], "success")
    run = await settled(qs, run_id)
    info = answer(await get(qs, f"/api2/jobs/{key}.do", CAR_TOKEN), 200, DONE)["data"]
    assert info["lastState"] == 200
    assert info["lastRun"] == ms(run["started_at"])
    assert info["lastDuration"] == (us(run["finished_at"]) - us(run["started_at"])) // 1000
    assert (await qs.client.get("/api/check/127.0.0.1.do")).json()["data"] == []

    for outcome, code in (("failure", 500), ("timeout", 500)):
        run_id = (await post(qs, TASKS, {"job": key}, CAR_TOKEN)).json()["message"]
        task = await lease_one(qs, worker)
        await finish(qs, worker, task["task_id"], outcome)
        await settled(qs, run_id)
        info = answer(await get(qs, f"/api2/jobs/{key}.do", CAR_TOKEN), 200, DONE)["data"]
        assert info["lastState"] == code

    run_id = (await post(qs, TASKS, {"job": key}, CAR_TOKEN)).json()["message"]
    task = await lease_one(qs, worker)
    killing = await qs.client.post(f"/v1/runs/{run_id}/kill")
    assert killing.status_code == 202
    assert await heartbeat(qs, worker, [task["task_id"]]) == [task["task_id"]]
    await finish(qs, worker, task["task_id"], "killed")
    assert (await settled(qs, run_id))["state"] == "killed"
    info = answer(await get(qs, f"/api2/jobs/{key}.do", CAR_TOKEN), 200, DONE)["data"]
    assert info["lastState"] == 499


# -- answers only: one shared node ---------------------------------------------------------------

ENDPOINTS = [("POST", ON, DOC_JOBS), ("POST", OFF, DOC_JOBS),
             ("GET", f"/api2/jobs/{JOB1}.do", None), ("POST", TASKS, DOC_TASK),
             ("POST", STATE, DOC_STATE), ("GET", f"/api2/workers/{JOB1}.do", None)]
WRONG_TOKENS = [None, "", "IGbpF3fyuEVyzkNKuwZZESxPx3IhsHm5LnUSM2", TOKEN[:-1], TOKEN + "x",
                CAR_TOKEN.upper(), "令牌".encode(), b"\xff" + TOKEN.encode()]


@module_loop
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS,
                         ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
@pytest.mark.parametrize("token", WRONG_TOKENS)
async def test_a_missing_or_wrong_token_is_refused(
    shared: RunningServer, method: str, path: str, body: bytes | None, token: str | bytes | None
) -> None:
    response = await shared.client.request(method, path, content=body, headers=headers(token))
    assert response.status_code == 401, response.text
    assert response.json() == {"ret": False, "message": DENIED}


BAD_BODIES: list[tuple[str, Any, str]] = [
    *[
        case
        for path in (ON, OFF)
        for case in [
            (path, b"", "body"), (path, b"{", "body"), (path, b"[]", "body"),
            (path, b'"jobs"', "body"), (path, {}, "jobs"), (path, {"jobs": None}, "jobs"),
            (path, {"jobs": []}, "jobs"), (path, {"jobs": JOB1}, "jobs"),
            (path, {"jobs": {"a": 1}}, "jobs"), (path, {"jobs": [JOB1, 5]}, "jobs[1]"),
            (path, {"jobs": [""]}, "jobs[0]"), (path, {"jobs": ["a\nb"]}, "jobs[0]"),
            (path, {"jobs": ["x" * 256]}, "jobs[0]"),
        ]
    ],
    (TASKS, b"", "body"), (TASKS, b"job=x", "body"), (TASKS, {}, "job"),
    (TASKS, {"job": None}, "job"), (TASKS, {"job": 5}, "job"),
    (TASKS, {"job": JOB1, "param": []}, "param"), (TASKS, {"job": JOB1, "param": "{}"}, "param"),
    (TASKS, {"job": JOB1, "param": 5}, "param"),
    (TASKS, {"job": JOB1, "param": {"blob": "x" * 1_100_000}}, "param"),
    (STATE, b"{", "body"), (STATE, {"workers": "{}"}, "jobName"),
    (STATE, {"jobName": JOB1}, "workers"), (STATE, {"jobName": JOB1, "workers": None}, "workers"),
    (STATE, {"jobName": ["x"], "workers": {W1: True}}, "jobName"),
]


@module_loop
@pytest.mark.parametrize(("path", "body", "field"), BAD_BODIES,
                         ids=[f"{p} {str(b)[:40]}" for p, b, _ in BAD_BODIES])
async def test_bad_bodies_are_a_400_naming_the_field(
    shared: RunningServer, path: str, body: Any, field: str
) -> None:
    got = answer(await post(shared, path, body), 400, BAD)
    assert got["field"] == field


@module_loop
@pytest.mark.parametrize("workers", [
    "{", "[]", '["192.168.1.1:20010"]', "{}", '{"192.168.1.1:20010":"true"}',
    '{"192.168.1.1:20010":1}', "{'192.168.1.1:20010':true}", "true", 5, [W1], {}, {W1: None},
])
async def test_malformed_workers_json(shared: RunningServer, workers: Any) -> None:
    got = answer(await post(shared, STATE, {"jobName": JOB1, "workers": workers}), 400,
                 BAD_WORKERS)
    assert got["field"] == "workers"


@module_loop
async def test_unknown_jobs_are_job_not_found(shared: RunningServer) -> None:
    for path in ("/api2/jobs/qschedule.demo.job9.do", "/api2/workers/qschedule.demo.job9.do",
                 "/api2/jobs/a%2Fb.do"):
        answer(await get(shared, path), 404, NO_JOB)
    answer(await post(shared, TASKS, {"job": "qschedule.demo.job9", "param": {}}), 404, NO_JOB)
    answer(await post(shared, STATE, {"jobName": "qschedule.demo.job9",
                                      "workers": {W1: True}}), 404, NO_JOB)
    answer(await get(shared, "/api2/jobs/.do"), 400, BAD)
    answer(await get(shared, f"/api2/jobs/{'x' * 256}.do"), 400, BAD)
    # a job named like an endpoint is still reachable with GET
    answer(await get(shared, "/api2/jobs/on.do"), 404, NO_JOB)
    answer(await get(shared, STATE), 404, NO_JOB)


@module_loop
@pytest.mark.parametrize("ip", ["not a host!", "300.1.1.1", "1.2.3", "a..b", "-host",
                                "127.0.0.1:99999", "127.0.0.1:", "::1::2", "x" * 254])
async def test_check_of_a_malformed_ip(shared: RunningServer, ip: str) -> None:
    got = answer(await shared.client.get(f"/api/check/{quote(ip, safe='')}.do"), 400, BAD)
    assert got["field"] == "ip"


@module_loop
async def test_wrong_method_and_unknown_path_answer_in_the_envelope(
    shared: RunningServer,
) -> None:
    for method, path, status, field in [
        ("GET", TASKS, 405, "method"), ("PUT", STATE, 405, "method"),
        ("POST", f"/api2/jobs/{JOB1}.do", 405, "method"), ("DELETE", ON, 405, "method"),
        ("GET", "/api2/nothing", 404, "path"), ("POST", "/api/check/127.0.0.1.do", 405, "method"),
        ("GET", "/api/check/", 404, "path"),
    ]:
        response = await shared.client.request(method, path, headers=headers(TOKEN))
        got = answer(response, status, BAD)
        assert got["field"] == field, (method, path)


# -- fuzz ----------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=10,
)
NAMES = st.sampled_from([JOB1, JOB2, "qschedule.demo.job9", "", "x" * 300]) | st.text(max_size=20)
ADDRESSES = st.sampled_from([W1, W2, "192.168.1.9:20010"]) | st.text(max_size=12)
WORKER_MAPS = st.dictionaries(ADDRESSES, st.booleans() | JSON_VALUES, max_size=3)
BODIES = st.one_of(
    st.fixed_dictionaries({}, optional={
        "jobs": st.lists(NAMES | JSON_VALUES, max_size=4) | st.lists(NAMES).map(json.dumps)
        | JSON_VALUES}),
    st.fixed_dictionaries({}, optional={"job": NAMES | JSON_VALUES,
                                        "param": st.dictionaries(st.text(max_size=8), JSON_VALUES,
                                                                 max_size=3) | JSON_VALUES}),
    st.fixed_dictionaries({}, optional={
        "jobName": NAMES | JSON_VALUES,
        "workers": WORKER_MAPS | WORKER_MAPS.map(json.dumps) | st.text(max_size=20)
        | JSON_VALUES}),
    JSON_VALUES,
)


def assert_envelope(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    body: dict[str, Any] = response.json()
    assert set(body) <= {"ret", "message", "field", "data"} and {"ret", "message"} <= set(body)
    assert body["ret"] is (response.status_code == 200), body
    return body


@module_loop
@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from([ON, OFF, TASKS, STATE]),
       body=BODIES | st.binary(max_size=40))
async def test_random_bodies_never_get_a_5xx_or_another_shape(
    shared: RunningServer, path: str, body: Any
) -> None:
    got = assert_envelope(await post(shared, path, body))
    if path == TASKS and got["ret"]:
        assert len(got["message"]) == 36  # a run id
    else:
        assert got["message"] in MESSAGES, got


@module_loop
@settings(max_examples=60, deadline=None)
@given(name=st.text(max_size=30), kind=st.sampled_from(["jobs", "workers", "check"]))
async def test_random_names_in_paths_never_get_a_5xx(
    shared: RunningServer, name: str, kind: str
) -> None:
    prefix = "/api/check/" if kind == "check" else f"/api2/{kind}/"
    got = assert_envelope(await get(shared, f"{prefix}{quote(name, safe='')}.do"))
    assert got["message"] in MESSAGES, got


def test_hostname_carries_the_port_of_the_workers_name() -> None:
    from cronwheel.api.dialects.qschedule import _hostname

    assert _hostname("192.168.1.1", "192.168.1.1:20010") == "192.168.1.1:20010"
    assert _hostname("10.0.0.5", "batch-1") == "10.0.0.5"  # no port to show
    assert _hostname("::1", "w:20010") == "[::1]:20010"
