"""The Kubernetes job service dialect, driven through every endpoint of its document with
the document's methods and the real service's, against a node whose cluster is the
in-memory one (no API server can run here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cronwheel.clock import SystemClock
from cronwheel.delivery.kubernetes.clusters import Clusters
from cronwheel.delivery.kubernetes.fake import FakeCluster
from tests.servers import RunningServer, running_server


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(SystemClock())


@pytest.fixture
async def node(tmp_path: Path, cluster: FakeCluster) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "k8s.db", clusters=Clusters({"c1": cluster}),
                              kubernetes_poll_seconds=0.05) as running:
        yield running


def once(name: str = "export", **changes: Any) -> dict[str, Any]:
    """A create request as the document shows it: strings everywhere, metadata a map."""
    body: dict[str, Any] = {
        "job_name": name, "job_exec_time": str(int(time.time())), "namespace": "batch",
        "image": "busybox", "command": "sh,-c", "timeout": 60,
        "metadata": {"args": "echo,hi", "log_collect": "true", "backoff_limit": "0",
                     "envs": '{"FAKE_SECONDS": "0.1", "FAKE_LOG": "hello"}',
                     "labels": '{"team": "data"}'},
    }
    return body | changes


async def _until(check: Callable[[], Any]) -> None:
    async with asyncio.timeout(10):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def _past_creation(call: Callable[[], Awaitable[httpx.Response]]) -> Any:
    """While the run's Job is still being created the answer is 254: try again, as a
    client of the real service does."""
    async with asyncio.timeout(10):
        while True:
            answer = (await call()).json()
            if answer["code"] != 254:
                return answer
            await asyncio.sleep(0.05)


async def _describe(node: RunningServer, job_id: str, kind: str = "once_job") -> Any:
    return (await node.client.get(f"/api/{kind}/describe/{job_id}")).json()


async def test_create_runs_the_job_and_lists_describe_and_logs_show_it(
    node: RunningServer, cluster: FakeCluster,
) -> None:
    answer = (await node.client.post("/api/once_job/create", json=once())).json()
    assert (answer["code"], answer["cause"]) == (200, "")
    job_id = answer["data"]["job_id"]

    async def done() -> bool:
        return bool((await _describe(node, job_id))["data"]["job_status"] == 2)

    await _until(done)
    shown = (await _describe(node, job_id))["data"]
    assert (shown["job_name"], shown["job_times"], shown["job_success_times"]) == (
        "export", 1, 1)
    assert shown["namespace"] == "batch" and shown["image"] == "busybox"
    assert (await node.client.post(f"/api/once_job/describe/{job_id}")).json()["data"] == shown
    for listed in ((await node.client.get("/api/once_job/lists?page_num=1&page_size=5")).json(),
                   (await node.client.post("/api/once_job/lists",
                                           json={"page_num": 1, "page_size": 5})).json()):
        assert listed["data"]["total"] == "1" and listed["data"]["data"][0]["job_id"] == job_id
    logs = (await node.client.get(f"/api/job_logs/{job_id}")).json()["data"]
    assert [entry["logs"] for entry in logs] == ["hello\nexit 0\n"]
    assert logs[0]["pod_name"].startswith("cw-")
    (manifest,) = cluster.manifests()
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["sh", "-c"] and container["args"] == ["echo", "hi"]
    assert manifest["spec"]["activeDeadlineSeconds"] == 60  # timeout, not overwritten
    assert manifest["metadata"]["labels"]["team"] == "data"


@pytest.mark.parametrize(("body", "code", "status", "field"), [
    (once(job_name=""), 100, 400, "job_name"),
    (once(job_exec_time="tomorrow"), 100, 400, "job_exec_time"),
    (once(route="elsewhere"), 105, 422, "route"),
    (once(metadata={"restart_policy": "Always"}), 105, 422, "metadata.restart_policy"),
    (once(metadata={"envs": "not json"}), 100, 400, "metadata.envs"),
    (once(namespace="Bad_NS"), 105, 422, "namespace"),
])
async def test_bad_requests_answer_the_dialects_envelope_naming_the_field(
    node: RunningServer, body: dict[str, Any], code: int, status: int, field: str,
) -> None:
    answer = await node.client.post("/api/once_job/create", json=body)
    assert answer.status_code == status
    shown = answer.json()
    assert shown["code"] == code and shown["cause"].startswith(field + ":")
    assert shown["data"] is None and shown["error_msg"]


async def test_bad_json_and_a_taken_name(node: RunningServer) -> None:
    answer = await node.client.post("/api/once_job/create", content=b"{nope")
    assert answer.json()["code"] == 103
    assert (await node.client.post("/api/once_job/create", json=once("dup"))).json()[
        "code"] == 200
    again = await node.client.post("/api/once_job/create", json=once("dup"))
    assert again.status_code == 409 and again.json()["code"] == 106
    missing = await node.client.get("/api/once_job/describe/no-such-id")
    assert missing.status_code == 404 and missing.json()["code"] == 153
    wrong = await node.client.put("/api/once_job/create", json=once())
    assert wrong.status_code == 405 and wrong.json()["code"] == -1
    assert wrong.json()["cause"].startswith("method_not_allowed")


@pytest.mark.parametrize("method", ["DELETE", "POST"])
async def test_delete_removes_the_running_job_with_either_method(
    node: RunningServer, cluster: FakeCluster, method: str,
) -> None:
    body = once(metadata={"envs": '{"FAKE_SECONDS": "600"}'})
    job_id = (await node.client.post("/api/once_job/create", json=body)).json()["data"]["job_id"]

    async def created() -> bool:
        return cluster.created == 1 and bool((await _describe(node, job_id))["data"][
            "job_status"] == 0)

    await _until(created)
    answer = await _past_creation(
        lambda: node.client.request(method, f"/api/once_job/delete/{job_id}"))
    assert answer == {"code": 200, "cause": "", "error_msg": "",
                             "data": {"job_id": job_id}}

    async def gone() -> bool:
        return not cluster.manifests()

    await _until(gone)
    assert (await _describe(node, job_id))["data"]["job_status"] == 3


async def test_update_deletes_and_recreates_with_the_new_definition(
    node: RunningServer, cluster: FakeCluster,
) -> None:
    body = once(metadata={"envs": '{"FAKE_SECONDS": "600"}'})
    job_id = (await node.client.post("/api/once_job/create", json=body)).json()["data"]["job_id"]

    async def created() -> bool:
        return bool((await _describe(node, job_id))["data"]["job_status"] == 0)

    await _until(created)
    (first,) = cluster.manifests()
    update = once(job_id=job_id, image="alpine", metadata={"envs": '{"FAKE_SECONDS": "0.1"}'})
    answer = await _past_creation(lambda: node.client.post("/api/once_job/update", json=update))
    assert answer["code"] == 200 and answer["data"] == job_id

    async def redone() -> bool:
        shown = (await _describe(node, job_id))["data"]
        return bool(shown["image"] == "alpine" and shown["job_status"] == 2)

    await _until(redone)
    assert first not in cluster.manifests()
    assert cluster.created == 2


async def test_cron_jobs_create_list_describe_suspend_resume_update_delete(
    node: RunningServer,
) -> None:
    body = once("nightly", schedule="0 3 * * *", metadata={"concurrency_policy": "Replace"})
    job_id = (await node.client.post("/api/cron_job/create", json=body)).json()["data"]["job_id"]
    shown = (await _describe(node, job_id, "cron_job"))["data"]
    assert shown["schedule"] == "0 3 * * *" and shown["job_status"] == -1
    assert not shown["suspend"]
    listed = (await node.client.get("/api/cron_job/lists")).json()["data"]
    assert [j["job_id"] for j in listed["data"]] == [job_id]
    assert (await node.client.get("/api/once_job/lists")).json()["data"]["total"] == "0"
    await node.client.post(f"/api/cron_job/suspend/{job_id}")
    assert (await _describe(node, job_id, "cron_job"))["data"]["suspend"]
    await node.client.post(f"/api/cron_job/resume/{job_id}")
    assert not (await _describe(node, job_id, "cron_job"))["data"]["suspend"]
    bad = await node.client.post("/api/cron_job/update",
                                 json=body | {"job_id": job_id, "schedule": "61 * * * *"})
    assert bad.json()["code"] == 105 and bad.json()["cause"].startswith("schedule:")
    await node.client.post("/api/cron_job/update", json=body | {"job_id": job_id,
                                                                "schedule": "0 4 * * *"})
    assert (await _describe(node, job_id, "cron_job"))["data"]["schedule"] == "0 4 * * *"
    assert (await node.client.delete(f"/api/cron_job/delete/{job_id}")).json()["code"] == 200
    assert (await _describe(node, job_id, "cron_job"))["data"]["job_status"] == 3
    # a cron job is not a once job
    assert (await _describe(node, job_id))["code"] == 153


# Who is admitted (loopback by default, then the policy): tests/integration/test_admission.py


async def test_every_endpoint_and_method_is_in_the_openapi_document(node: RunningServer) -> None:
    spec = (await node.client.get("/openapi.json")).json()
    for kind in ("once_job", "cron_job"):
        assert set(spec["paths"][f"/api/{kind}/delete/{{job_id}}"]) == {"delete", "post"}
        assert set(spec["paths"][f"/api/{kind}/lists"]) == {"get", "post"}
        assert set(spec["paths"][f"/api/{kind}/describe/{{job_id}}"]) == {"get", "post"}
    assert set(spec["paths"]["/api/job_logs/{job_id}"]) == {"get", "post"}
