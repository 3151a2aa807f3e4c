"""Per-app limits through a real server: each limit refused in the caller's envelope with the
status and field it names, 429 with the Retry-After to wait, an app's override over the
server's default, and the system app unlimited unless the server says otherwise."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cronwheel.clock import SystemClock
from cronwheel.delivery.kubernetes.clusters import Clusters
from cronwheel.delivery.kubernetes.fake import FakeCluster
from tests.servers import RunningServer, running_server

LATER = {"kind": "once", "at": "2099-01-01T00:00:00Z"}
HTTP = {"kind": "http", "url": "http://127.0.0.1:9/callback"}
EVERY_SECOND = {"kind": "cron", "expr": "* * * * * ?"}
EVERY_TEN = {"kind": "cron", "expr": "*/10 * * * * ?"}
# generous everywhere but the limit a test is about
DEFAULTS = {"app_submits_per_second": 1_000, "app_submit_burst": 1_000}


def job(key: str, namespace: str = "team", schedule: Any = LATER, **extra: Any) -> dict[str, Any]:
    return {"namespace": namespace, "key": key, "schedule": schedule, "target": HTTP, **extra}


class Apps:
    """A server with apps made by its admin, and a client per app's operator token."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.clients: list[httpx.AsyncClient] = []

    async def make(self, name: str, limits: dict[str, Any] | None = None) -> httpx.AsyncClient:
        admin = self.server.client
        made = await admin.post("/v1/apps", json={"name": name, "namespaces": [name],
                                                  "limits": limits or {}})
        assert made.status_code == 201, made.text
        token = await admin.post(f"/v1/apps/{name}/tokens", json={"role": "operator"})
        client = httpx.AsyncClient(base_url=self.server.base_url, timeout=10, headers={
            "Authorization": f"Bearer {token.json()['token']}"})
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


async def serving(tmp_path: Path, **settings: Any) -> AsyncIterator[Apps]:
    async with running_server(tmp_path / "db.sqlite", **settings) as server:
        apps = Apps(server)
        try:
            yield apps
        finally:
            await apps.close()


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[Apps]:
    """Default limits: 2 submits a second (a burst of 2), a 10 s shortest repeat."""
    async for apps in serving(tmp_path, app_submits_per_second=2, app_submit_burst=2,
                              app_min_interval_seconds=10):
        yield apps


def refused(response: httpx.Response, status: int, code: str, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["code"], error.get("field")) == (code, field), error
    return error


# -- submits per second ----------------------------------------------------------------------


async def test_over_the_submit_rate_is_429_with_retry_after(strict: Apps) -> None:
    team = await strict.make("team")
    for key in ("a", "b"):
        assert (await team.post("/v1/jobs", json=job(key))).status_code == 201
    third = await team.post("/v1/jobs", json=job("c"))
    error = refused(third, 429, "rate_limited", "submits_per_second")
    assert third.headers["Retry-After"] == "1"  # one token every half second, rounded up
    assert "2 submits per second" in error["message"]
    assert (await team.get("/v1/jobs/c", params={"namespace": "team"})).status_code == 404


async def test_retry_after_counts_what_a_batch_needs(tmp_path: Path) -> None:
    async for apps in serving(tmp_path, app_submits_per_second=1, app_submit_burst=5):
        team = await apps.make("team")
        batch = {"jobs": [job(f"k{i}") for i in range(5)]}
        assert (await team.post("/v1/jobs/batch", json=batch)).status_code == 201
        again = await team.post("/v1/jobs/batch",
                                json={"jobs": [job(f"n{i}") for i in range(3)]})
        refused(again, 429, "rate_limited", "submits_per_second")
        assert again.headers["Retry-After"] == "3"  # three tokens at one a second


async def test_a_trigger_and_a_schedule_edit_count_as_submits(strict: Apps) -> None:
    team = await strict.make("team")
    assert (await team.post("/v1/jobs", json=job("a"))).status_code == 201
    trigger = await team.post("/v1/jobs/a/trigger", params={"namespace": "team"})
    assert trigger.status_code == 202
    edit = await team.post("/v1/jobs/a/schedules", params={"namespace": "team"}, json=EVERY_TEN)
    refused(edit, 429, "rate_limited", "submits_per_second")
    assert "Retry-After" in edit.headers


async def test_each_app_has_its_own_bucket_and_its_override_wins(strict: Apps) -> None:
    team = await strict.make("team")
    roomy = await strict.make("roomy", {"submits_per_second": 100, "submit_burst": 100})
    for key in ("a", "b"):
        assert (await team.post("/v1/jobs", json=job(key))).status_code == 201
    assert (await team.post("/v1/jobs", json=job("c"))).status_code == 429
    for key in ("a", "b", "c", "d", "e"):  # another app is not slowed by the first one
        assert (await roomy.post("/v1/jobs", json=job(key, "roomy"))).status_code == 201


async def test_the_system_app_is_unlimited_by_default(strict: Apps) -> None:
    admin = strict.server.client
    for key in ("a", "b", "c", "d", "e"):
        made = await admin.post("/v1/jobs", json=job(key, "default", EVERY_SECOND))
        assert made.status_code == 201, made.text


async def test_the_system_app_is_limited_when_the_server_says_so(tmp_path: Path) -> None:
    async for apps in serving(tmp_path, app_submits_per_second=1, app_submit_burst=1,
                              app_limits_system=True):
        admin = apps.server.client
        assert (await admin.post("/v1/jobs", json=job("a", "default"))).status_code == 201
        second = await admin.post("/v1/jobs", json=job("b", "default"))
        refused(second, 429, "rate_limited", "submits_per_second")


# -- jobs held, batch size, payload size -------------------------------------------------------


async def test_jobs_held_beyond_max_jobs_are_refused_naming_the_limit(tmp_path: Path) -> None:
    async for apps in serving(tmp_path, **DEFAULTS, app_max_jobs=3):
        team = await apps.make("team")
        small = await apps.make("small", {"max_jobs": 1})
        assert (await team.post("/v1/jobs/batch",
                                json={"jobs": [job("a"), job("b")]})).status_code == 201
        over = await team.post("/v1/jobs/batch", json={"jobs": [job("c"), job("d")]})
        error = refused(over, 403, "limit_exceeded", "max_jobs")
        assert "holds 2" in error["message"] and "max_jobs is 3" in error["message"]
        listed = await team.get("/v1/jobs", params={"namespace": "team"})
        assert len(listed.json()["jobs"]) == 2  # nothing of the refused batch was written
        assert (await team.post("/v1/jobs", json=job("c"))).status_code == 201
        # the override (1) wins over the default (3)
        assert (await small.post("/v1/jobs", json=job("a", "small"))).status_code == 201
        refused(await small.post("/v1/jobs", json=job("b", "small")), 403, "limit_exceeded",
                "max_jobs")


async def test_a_batch_larger_than_the_apps_max_batch_is_422(tmp_path: Path) -> None:
    async for apps in serving(tmp_path, **DEFAULTS):
        team = await apps.make("team", {"max_batch": 3})
        batch = {"jobs": [job(f"k{i}") for i in range(4)]}
        error = refused(await team.post("/v1/jobs/batch", json=batch), 422, "invalid_argument",
                        "jobs")
        assert "max_batch is 3" in error["message"]
        batch["jobs"].pop()
        assert (await team.post("/v1/jobs/batch", json=batch)).status_code == 201


async def test_a_batch_the_submit_bucket_could_never_hold_is_422(strict: Apps) -> None:
    team = await strict.make("team")
    batch = {"jobs": [job(f"k{i}") for i in range(3)]}
    error = refused(await team.post("/v1/jobs/batch", json=batch), 422, "invalid_argument",
                    "jobs")
    assert "submit_burst is 2" in error["message"]


async def test_a_payload_larger_than_the_apps_limit_is_422(tmp_path: Path) -> None:
    async for apps in serving(tmp_path, **DEFAULTS):
        team = await apps.make("team", {"max_payload_bytes": 1_024})
        big = job("a", payload={"text": "x" * 2_000})
        refused(await team.post("/v1/jobs", json=big), 422, "invalid_argument", "payload")
        assert (await team.post("/v1/jobs", json=job("a", payload={"t": "x"}))).status_code \
            == 201
        override = await team.post("/v1/jobs/a/trigger", params={"namespace": "team"},
                                   json={"payload": {"text": "x" * 2_000}})
        refused(override, 422, "invalid_argument", "payload")


# -- the shortest repeat -----------------------------------------------------------------------


async def test_a_schedule_repeating_faster_than_the_limit_is_422_naming_it(strict: Apps) -> None:
    team = await strict.make("team")
    error = refused(await team.post("/v1/jobs", json=job("fast", schedule=EVERY_SECOND)), 422,
                    "invalid_argument", "schedule")
    assert "min_interval_seconds is 10" in error["message"]
    assert (await team.post("/v1/jobs", json=job("ok", schedule=EVERY_TEN))).status_code == 201


async def test_schedule_edits_are_held_to_the_shortest_repeat(tmp_path: Path) -> None:
    async for apps in serving(tmp_path, **DEFAULTS, app_min_interval_seconds=10):
        team = await apps.make("team")
        ns = {"namespace": "team"}
        assert (await team.post("/v1/jobs", json=job("a", schedule=EVERY_TEN))).status_code \
            == 201
        added = await team.post("/v1/jobs/a/schedules", params=ns,
                                json={"kind": "rate", "every": "1s"})
        refused(added, 422, "invalid_argument", "schedule.items[1]")
        edited = await team.put("/v1/jobs/a/schedules/1", params=ns, json=EVERY_SECOND)
        refused(edited, 422, "invalid_argument", "schedule.items[0]")
        kept = await team.get("/v1/jobs/a/schedules", params=ns)
        assert [s["expr"] for s in kept.json()["schedules"]] == ["*/10 * * * * ?"]
        slower = await team.put("/v1/jobs/a/schedules/1", params=ns,
                                json={"kind": "rate", "every": "1m"})
        assert slower.status_code == 200, slower.text


async def test_an_apps_shorter_repeat_overrides_the_default(strict: Apps) -> None:
    fast = await strict.make("fast", {"min_interval_seconds": 1})
    made = await fast.post("/v1/jobs", json=job("a", "fast", EVERY_SECOND))
    assert made.status_code == 201, made.text


# -- the dialects, as the system app until their admission names another ---------------------

LIMITED_SYSTEM = {"app_submits_per_second": 1, "app_submit_burst": 1,
                  "app_limits_system": True, "app_min_interval_seconds": 10}


async def test_delayjob_answers_429_in_its_envelope(tmp_path: Path) -> None:
    async for apps in serving(tmp_path, **LIMITED_SYSTEM):
        client = apps.server.client

        def delay_job(key: str) -> dict[str, Any]:
            return {"outJobNo": key, "type": 5, "triggerTime": 4_000_000_000,
                    "callbackProtocol": "HTTP", "callbackEndpoint": "http://127.0.0.1:9/cb",
                    "jobInfo": "hi"}

        assert (await client.post("/api/v1/submit/job", json=delay_job("a"))).json() == {
            "code": "ok", "message": "success"}
        second = await client.post("/api/v1/submit/job", json=delay_job("b"))
        assert second.status_code == 429 and second.headers["Retry-After"] == "1"
        assert second.json()["code"] == "rate_limited"
        assert second.json()["message"].startswith("submits_per_second: ")


async def test_dispatchserver_answers_429_and_names_the_cron_too_frequent(
    tmp_path: Path,
) -> None:
    async for apps in serving(tmp_path, **LIMITED_SYSTEM | {"app_submit_burst": 2}):
        client = apps.server.client

        def add(code: str, expr: str) -> dict[str, Any]:
            task = {"triggerType": "CronTrigger", "jobCode": code, "groupCode": "orders",
                    "priority": 5, "endDate": None, "cronExpress": expr}
            recall = {"recallType": "HTTP", "option": json.dumps({"url": "http://127.0.0.1:9/"}),
                      "data": "{}"}
            return {"recallConfig": json.dumps(recall), "taskConfig": json.dumps(task),
                    "replace": False}

        fast = await client.post("/dispatchserver/add.do", json=add("fast", "* * * * * ?"))
        assert fast.status_code == 400
        assert fast.json()["error"].startswith("taskConfig.cronExpress: the schedule repeats "
                                               "every 1 s")
        ok = await client.post("/dispatchserver/add.do", json=add("slow", "0 0 0 1 1 ? 2099"))
        assert ok.json() == {"success": True, "error": None, "resultValue": None}
        # the refused add took one of the two tokens, the accepted one the other
        again = await client.post("/dispatchserver/add.do", json=add("more", "0 0 0 1 1 ? 2099"))
        assert again.status_code == 429 and again.headers["Retry-After"] == "1"
        assert again.json()["success"] is False
        assert "submits per second" in again.json()["error"]


async def test_kubernetes_answers_limited_flow(tmp_path: Path) -> None:
    cluster = FakeCluster(SystemClock())
    async for apps in serving(tmp_path, **LIMITED_SYSTEM, clusters=Clusters({"c1": cluster})):
        client = apps.server.client

        def once(name: str) -> dict[str, Any]:
            return {"job_name": name, "job_exec_time": str(int(time.time()) + 3_600),
                    "namespace": "batch", "image": "busybox", "command": "sh,-c",
                    "timeout": 60, "metadata": {"args": "echo,hi"}}

        first = await client.post("/api/once_job/create", json=once("a"))
        assert first.json()["code"] == 200, first.text
        second = await client.post("/api/once_job/create", json=once("b"))
        assert second.status_code == 429 and second.headers["Retry-After"] == "1"
        assert second.json()["code"] == 104


async def test_the_openapi_document_lists_429_where_the_rate_may_refuse(strict: Apps) -> None:
    spec = (await strict.server.client.get("/openapi.json")).json()
    paths = spec["paths"]
    for method, path in (("post", "/v1/jobs"), ("post", "/v1/jobs/batch"),
                         ("post", "/v1/jobs/{key}/trigger"), ("post", "/v1/jobs/{key}/rerun"),
                         ("put", "/v1/jobs/{key}/schedules/{schedule_id}")):
        assert "429" in paths[path][method]["responses"], (method, path)
    assert "429" not in paths["/v1/jobs/{key}/pause"]["post"]["responses"]
    assert "429" in paths["/api/v1/submit/job"]["post"]["responses"]
    assert "429" in paths["/dispatchserver/add.do"]["post"]["responses"]


async def test_qschedule_tasks_do_answers_429_in_its_envelope(tmp_path: Path) -> None:
    token = "IGbpF3fyuEVyzkNKuwZZESxPx3IhsHm5LnUSM1"
    qs_app = {"id": 163, "name": "qschedule.demo", "token": token}
    async for apps in serving(tmp_path, qschedule_apps=[qs_app], app_limits_system=True,
                              app_submits_per_second=1, app_submit_burst=2):
        client = apps.server.client
        made = await client.post("/v1/jobs", json=job("job1", "qschedule.demo"))
        assert made.status_code == 201, made.text  # the native create took one token
        headers = {"Q-Server-Token": token, "Content-Type": "application/json"}
        body = json.dumps({"job": "job1", "param": {}})
        first = await client.post("/api2/tasks.do", content=body, headers=headers)
        assert first.status_code == 200, first.text
        second = await client.post("/api2/tasks.do", content=body, headers=headers)
        assert second.status_code == 429 and second.headers["Retry-After"] == "1"
        assert second.json()["ret"] is False and second.json()["message"] == "请求过于频繁"
