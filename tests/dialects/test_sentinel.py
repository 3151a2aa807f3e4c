"""The Sentinel dialect (seed 002) as Jarvis clients speak it: form-encoded bodies with
`appName`, `appToken` (real MD5 tokens of a real appKey), `user` and `parameters` as JSON text.

The appKey is set through the admin API and kept sealed by the server; jobs are read back
through the native API to check what a Sentinel field became. Tests that only look at answers
share one node.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronwheel.domain.app_keys import app_token
from tests.servers import RunningServer, running_server

APP = "etl"
CRON = "0 0 2 * * ?"  # Quartz, as Jarvis clients write it: 02:00 every day


def token(key: str, skew: int = 0) -> str:
    return app_token(key, int(time.time()) + skew)


async def post(server: RunningServer, path: str, parameters: Any, key: str,
               app: str = APP, skew: int = 0, as_json: bool = False,
               **fields: str) -> httpx.Response:
    body = {"appName": app, "appToken": token(key, skew), "user": "alice",
            "parameters": parameters if isinstance(parameters, str)
            else json.dumps(parameters)} | fields
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        if as_json:  # json.dumps, not httpx's encoder: NaN and Infinity are fuzzed too
            return await client.post(path, content=json.dumps(body | {"parameters": parameters}),
                                     headers={"Content-Type": "application/json"})
        return await client.post(path, data=body)


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["code"] == 0 and body["msg"] == "success", body
    return body["data"]


def refused(answer: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["code"] == 1, body
    assert body["field"] == field, body
    return body


async def make_app(server: RunningServer, name: str = APP) -> str:
    made = await server.client.post("/v1/apps", json={
        "name": name, "namespaces": [name], "grants": {"job_types": ["shell"]}})
    assert made.status_code == 201, made.text
    keyed = await server.client.post(f"/v1/apps/{name}/sentinel-key", json={})
    assert keyed.status_code == 201, keyed.text
    return str(keyed.json()["app_key"])


def job_params(**changes: Any) -> dict[str, Any]:
    return {"jobName": "daily orders", "jobType": "shell", "content": "echo hello",
            "scheduleExpressionList": [
                {"operatorMode": 1, "expressionType": 1, "expression": CRON}]} | changes


async def submit(server: RunningServer, key: str, **changes: Any) -> int:
    data = ok(await post(server, "/api/job/submit", job_params(**changes), key))
    assert isinstance(data["jobId"], int)
    return int(data["jobId"])


async def native(server: RunningServer, job_id: int, app: str = APP) -> dict[str, Any]:
    found = await server.client.get(f"/v1/jobs/{job_id}", params={"namespace": app})
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[tuple[RunningServer, str]]:
    path: Path = tmp_path_factory.mktemp("sentinel") / "cronwheel.db"
    async with running_server(path) as running:
        yield running, await make_app(running)


module_loop = pytest.mark.asyncio(loop_scope="module")


@module_loop
async def test_a_submit_with_every_field_of_the_document(
    shared: tuple[RunningServer, str],
) -> None:
    server, key = shared
    upstream = await submit(server, key, jobName="orders load")
    job_id = await submit(
        server, key, status=1, contentType=2, params='{"DAY": "today"}', workerGroupId=7,
        department="data", bizGroups=",1,2,", priority=3, isTemp=False,
        activeStartDate=1_800_000_000_000, activeEndDate=1_900_000_000_000,
        expiredTime=7200, failedAttempts=2, failedInterval=30,
        dependencyList=[{"operatorMode": 1, "preJobId": upstream, "commonStrategy": 2,
                         "offsetStrategy": "d(1)"}],
        scheduleExpressionList=[
            {"operatorMode": 1, "expressionId": 5, "expressionType": 1, "expression": CRON},
            {"operatorMode": 1, "expressionType": 2, "expression": "h(6)"},
            {"operatorMode": 1, "expressionType": 4,
             "expression": "R/2030-01-01T00:00:00Z/P1D"},
        ])
    job = await native(server, job_id)
    assert job["key"] == str(job_id) and job["namespace"] == APP
    items = job["schedule"]["items"]
    assert [item["id"] for item in items] == ["5", "1", "2"]
    assert items[0] | {"added_at": None} == items[0] | {
        "kind": "cron", "expr": CRON, "tz": "Asia/Shanghai", "added_at": None,
        "start": "2027-01-15T08:00:00Z", "end": "2030-03-17T17:46:40Z"}
    assert items[1]["kind"] == "iso8601" and items[1]["expr"].endswith("/PT6H")
    assert job["target"] | {"timeout": 0} == {
        "kind": "worker", "type": "shell", "group": "7", "route": "round-robin",
        "spec": {"script": "echo hello", "interpreter": "/bin/bash", "env": {"DAY": "today"},
                 "stdout": "result"},
        "timeout": 0}
    assert job["retry"]["max_attempts"] == 3 and job["retry"]["initial_backoff"] == 30
    assert (job["expiry"], job["priority"]) == (7200, 3)
    assert job["depends_on"] == [{"job": str(upstream), "namespace": APP, "strategy": "last",
                                  "window": "d(1)"}]
    listed = ok(await post(server, "/api/job/query", {"department": "data", "bizGroupId": 2},
                           key))["list"]
    assert [(j["jobId"], j["jobName"], j["bizGroups"], j["status"]) for j in listed] == [
        (job_id, "daily orders", ",1,2,", 1)]


@module_loop
async def test_json_bodies_and_parameters_as_an_object_are_accepted(
    shared: tuple[RunningServer, str],
) -> None:
    server, key = shared
    answer = await post(server, "/api/job/submit", job_params(jobName="by json"), key,
                        as_json=True)
    assert (await native(server, ok(answer)["jobId"]))["state"] == "active"


@module_loop
async def test_the_app_token_is_checked(shared: tuple[RunningServer, str]) -> None:
    server, key = shared
    params = job_params()
    refused(await post(server, "/api/job/submit", params, key, skew=-185), 401, "appToken")
    refused(await post(server, "/api/job/submit", params, key, skew=185), 401, "appToken")
    refused(await post(server, "/api/job/submit", params, "not-the-app-key-123"), 401,
            "appToken")
    refused(await post(server, "/api/job/submit", params, key, app="nobody"), 401, "appName")
    refused(await post(server, "/api/job/submit", params, key, appToken=""), 401, "appToken")
    ok(await post(server, "/api/job/submit", params, key, skew=170))  # within the window


def expressions(*entries: dict[str, Any]) -> dict[str, Any]:
    return job_params(scheduleExpressionList=list(entries))


def upstream(**entry: Any) -> dict[str, Any]:
    return job_params(dependencyList=[{"operatorMode": 1, "preJobId": 1} | entry])


@pytest.mark.parametrize(("params", "field", "status"), [
    ({"jobType": "shell", "content": "x"}, "jobName", 400),
    (job_params(jobType="no such type!"), "jobType", 400),  # not a job type name
    (job_params(jobType="hive"), "jobType", 403),  # a command type this app was not granted
    (job_params(status=9), "status", 400),
    (job_params(expiredTime="soon"), "expiredTime", 400),
    (expressions({"operatorMode": 1, "expressionType": 7, "expression": CRON}),
     "scheduleExpressionList[0].expressionType", 400),
    (expressions({"operatorMode": 1, "expression": "61 * * * *"}),
     "scheduleExpressionList[0].expression", 400),
    (expressions({"operatorMode": 1, "expressionType": 2, "expression": "every day"}),
     "scheduleExpressionList[0].expression", 400),
    (expressions({"operatorMode": 2, "expressionId": 1, "expression": CRON}),
     "scheduleExpressionList[0].operatorMode", 400),
    (expressions(), "scheduleExpressionList", 400),
    (upstream(preJobId=999_999), "dependencyList[0].preJobId", 404),
    (upstream(offsetStrategy="d(-1)"), "dependencyList[0].offsetStrategy", 400),
    (upstream(commonStrategy=4), "dependencyList[0].commonStrategy", 400),
    (job_params(activeStartDate=2, activeEndDate=1), "activeStartDate", 400),
    ("{not json", "parameters", 400),
    ([1, 2], "parameters", 400),
])
@module_loop
async def test_bad_input_is_refused_naming_the_field(
    shared: tuple[RunningServer, str], params: Any, field: str, status: int,
) -> None:
    server, key = shared
    refused(await post(server, "/api/job/submit", params, key), status, field)


@module_loop
async def test_expressions_dependencies_and_status_are_set_by_id(
    shared: tuple[RunningServer, str],
) -> None:
    server, key = shared
    first = await submit(server, key, jobName="a")
    second = await submit(server, key, jobName="b", dependencyList=[
        {"operatorMode": 1, "preJobId": first}])
    cycle = await post(server, "/api/job/dependency/set", {
        "jobId": first, "dependencyList": [{"operatorMode": 1, "preJobId": second}]}, key)
    assert "cycle" in refused(cycle, 400, "dependencyList")["msg"]
    ok(await post(server, "/api/job/dependency/set", {"jobId": second, "dependencyList": [
        {"operatorMode": 2, "preJobId": first, "commonStrategy": 3, "offsetStrategy": "ch"}]},
        key))
    assert (await native(server, second))["depends_on"][0] | {"namespace": APP} == {
        "job": str(first), "namespace": APP, "strategy": "any", "window": "ch"}
    ok(await post(server, "/api/job/scheduleExp/set", {"jobId": second, "scheduleExpressionList": [
        {"operatorMode": 1, "expressionType": 1, "expression": "0 0 3 * * ?"},
        {"operatorMode": 2, "expressionId": 1, "expressionType": 3, "expression": "d(1)"},
    ]}, key))
    items = (await native(server, second))["schedule"]["items"]
    assert [(i["id"], i["kind"]) for i in items] == [("1", "once"), ("2", "cron")]
    ok(await post(server, "/api/job/scheduleExp/set", {"jobId": second, "scheduleExpressionList": [
        {"operatorMode": 3, "expressionId": 1}]}, key))
    assert [i["id"] for i in (await native(server, second))["schedule"]["items"]] == ["2"]
    ok(await post(server, "/api/job/status/set", {"jobIds": [first, second], "status": 5}, key))
    assert (await native(server, second))["state"] == "paused"
    ok(await post(server, "/api/job/status/set", {"jobIds": [second], "status": 1}, key))
    assert (await native(server, second))["state"] == "active"
    ok(await post(server, "/api/job/edit", {"jobId": second, "content": "echo edited",
                                            "failedAttempts": 1}, key))
    edited = await native(server, second)
    assert edited["target"]["spec"]["script"] == "echo edited"
    assert edited["retry"]["max_attempts"] == 2 and edited["depends_on"]


@module_loop
async def test_another_apps_jobs_and_tasks_do_not_exist(
    shared: tuple[RunningServer, str],
) -> None:
    server, key = shared
    mine = await submit(server, key, jobName="mine")
    other_key = await make_app(server, "other")
    for path, params, field in [
        ("/api/task/query/taskIds", {"jobId": mine}, "jobId"),
        ("/api/job/edit", {"jobId": mine, "content": "rm -rf /"}, "jobId"),
        ("/api/task/query/status", {"taskId": 1}, "taskId"),
    ]:
        refused(await post(server, path, params, other_key, app="other"), 404, field)


@module_loop
async def test_a_temporary_job_has_one_task_and_its_status(
    shared: tuple[RunningServer, str],
) -> None:
    server, key = shared
    job_id = await submit(server, key, isTemp=True, scheduleExpressionList=None)
    for _ in range(50):
        listed = ok(await post(server, "/api/task/query/taskIds", {"jobId": job_id}, key))
        if listed["taskIds"]:
            break
        await asyncio.sleep(0.1)
    [task_id] = listed["taskIds"]
    status = ok(await post(server, "/api/task/query/jobStatus", {"jobId": job_id}, key))
    # no worker serves group 1 here: the task fails (real workers: tests/e2e)
    assert status["taskId"] == task_id and status["status"] in (2, 3, 5)
    same = ok(await post(server, "/api/task/query/status", {"taskId": task_id}, key))
    assert same["status"] == status["status"] and same["jobId"] == job_id
    refused(await post(server, "/api/log/readResult", {"taskId": task_id}, key), 404, "taskId")
    refused(await post(server, "/api/task/kill", {"taskIds": [424242]}, key), 404, "taskIds")


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(["/api/job/submit", "/api/job/edit", "/api/task/kill",
                             "/api/task/query/status", "/api/log/readExecuteLog",
                             "/api/job/dependency/set", "/api/job/scheduleExp/set",
                             "/api/task/rerun", "/api/job/status/set"]),
       params=st.one_of(
           st.dictionaries(st.sampled_from(list(job_params(
               status=1, priority=1, isTemp=1, expiredTime=1, failedAttempts=1, jobId=1,
               taskId=1, taskIds=1, offset=1, size=1, dependencyList=1, startDate=1,
               endDate=1, jobIdList=1, attemptId=1, jobIds=1))),
               st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                         st.text(max_size=20),
                         st.lists(st.integers(min_value=-2, max_value=2**70), max_size=3),
                         st.lists(st.dictionaries(st.sampled_from(
                             ["operatorMode", "preJobId", "expressionId", "expressionType",
                              "expression", "commonStrategy", "offsetStrategy"]),
                             st.one_of(st.integers(), st.text(max_size=12))), max_size=2))),
           st.text(max_size=30)),
       as_json=st.booleans())
@module_loop
async def test_no_request_gets_a_server_error_and_every_refusal_names_its_field(
    shared: tuple[RunningServer, str], path: str, params: Any, as_json: bool,
) -> None:
    server, key = shared
    answer = await post(server, path, params, key, as_json=as_json)
    assert answer.status_code < 500, answer.text
    body = answer.json()
    assert body["code"] in (0, 1)
    if body["code"] == 1:
        assert body["field"], body


@module_loop
async def test_a_waiting_task_is_removed_and_kept(shared: tuple[RunningServer, str]) -> None:
    server, key = shared
    never = await submit(server, key, jobName="upstream at 02:00")
    waiter = await submit(server, key, jobName="waits", scheduleExpressionList=[
        {"operatorMode": 1, "expressionType": 3, "expression": "s(1)"}],
        dependencyList=[{"operatorMode": 1, "preJobId": never, "offsetStrategy": "cy"}])
    for _ in range(100):
        listed = ok(await post(server, "/api/task/query/taskIds", {"jobId": waiter}, key))
        if listed["taskIds"]:
            break
        await asyncio.sleep(0.1)
    [task] = listed["list"]
    assert (task["status"], task["state"]) == (1, "waiting")
    ok(await post(server, "/api/task/remove", {"taskIds": [task["taskId"]]}, key))
    gone = ok(await post(server, "/api/task/query/status", {"taskId": task["taskId"]}, key))
    assert (gone["status"], gone["state"]) == (99, "cancelled")
    again = await post(server, "/api/task/remove", {"taskIds": [task["taskId"]]}, key)
    assert str(task["taskId"]) in refused(again, 409, "taskIds")["data"]["failed"]


@module_loop
async def test_a_failed_task_is_retried_and_a_range_rerun(
    shared: tuple[RunningServer, str],
) -> None:
    server, key = shared
    job_id = await submit(server, key, isTemp=True, scheduleExpressionList=None,
                          workerGroupId=99)  # no worker serves group 99: the task fails
    for _ in range(100):
        tasks = ok(await post(server, "/api/task/query/taskIds", {"jobId": job_id}, key))
        if tasks["list"] and tasks["list"][0]["status"] == 5:
            break
        await asyncio.sleep(0.1)
    [task] = tasks["list"]
    assert (task["status"], task["attemptId"]) == (5, 1)
    ok(await post(server, "/api/task/retry", {"taskId": task["taskId"]}, key))
    retried = ok(await post(server, "/api/task/query/status", {"taskId": task["taskId"]}, key))
    assert retried["attemptId"] >= 1 and retried["taskId"] == task["taskId"]
    refused(await post(server, "/api/task/retry", {"taskId": 0}, key), 400, "taskId")

    daily = await submit(server, key, jobName="daily", scheduleExpressionList=[
        {"operatorMode": 1, "expressionType": 4, "expression": "R/2026-01-01T00:00:00Z/P1D"}])
    done = ok(await post(server, "/api/task/rerun", {
        "jobIdList": [daily], "startDate": 1_767_225_600_000,  # 2026-01-01 00:00 UTC
        "endDate": 1_767_398_400_000}, key))  # 2026-01-03 00:00 UTC: three instants
    # the job fired its first instant when made (a missed occurrence fires once): rerun
    assert done["created"] + done["rerun"] + done["inFlight"] == 3 and done["created"] >= 2
    listed = ok(await post(server, "/api/task/query/taskIds", {"jobId": daily}, key))["list"]
    assert sorted(t["scheduleTime"] for t in listed)[:3] == [
        1_767_225_600_000, 1_767_312_000_000, 1_767_398_400_000]
    refused(await post(server, "/api/task/rerun", {"jobIdList": [daily], "startDate": 5,
                                                   "endDate": 4}, key), 400, "endDate")


@module_loop
async def test_a_native_job_holding_the_next_key_is_never_taken_over(
    shared: tuple[RunningServer, str],
) -> None:
    server, key = shared
    last = await submit(server, key, jobName="before")
    squatter = {"key": str(last + 1), "namespace": APP, "target": {
        "kind": "http", "url": "http://127.0.0.1:9/x"},
        "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"}}
    assert (await server.client.post("/v1/jobs", json=squatter)).status_code == 201
    assert await submit(server, key) == last + 2  # the squatted id is skipped
    assert (await native(server, last + 1))["target"]["kind"] == "http"  # untouched
    assert await submit(server, key) == last + 3
