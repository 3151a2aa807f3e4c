"""A whole node with a Kubernetes cluster (the in-memory one, on the system clock), driven
through the native HTTP API: submit checks, a run to its end with its log, kill, health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from cronwheel.clock import SystemClock
from cronwheel.delivery.kubernetes.clusters import Clusters
from cronwheel.delivery.kubernetes.fake import FakeCluster
from cronwheel.domain.kubernetes import job_name_for
from cronwheel.ui.app import create_app as create_console_app
from tests.servers import RunningServer, running_server
from tests.support import TEST_ADMIN_TOKEN


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(SystemClock())


@pytest.fixture
async def node(tmp_path: Path, cluster: FakeCluster) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "k8s.db", clusters=Clusters({"c1": cluster}),
                              kubernetes_poll_seconds=0.05) as running:
        yield running


def job(key: str, cluster: str = "c1", **options: Any) -> dict[str, Any]:
    return {"key": key, "schedule": {"kind": "once", "after": 0},
            "target": {"kind": "kubernetes", "cluster": cluster, "namespace": "batch",
                       "image": "busybox", **options}}


async def _ended_run(node: RunningServer, key: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            runs = (await node.client.get(f"/v1/jobs/{key}/runs")).json()["runs"]
            if runs and runs[0]["state"] not in ("pending", "running"):
                found: dict[str, Any] = runs[0]
                return found
            await asyncio.sleep(0.05)


async def _until(check: Callable[[], bool]) -> None:
    """The node works on the system clock: poll briefly for what it does."""
    async with asyncio.timeout(10):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)


async def test_an_unknown_cluster_is_refused_at_submit_naming_the_field(
    node: RunningServer,
) -> None:
    answer = await node.client.post("/v1/jobs", json=job("k", cluster="elsewhere"))
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "target.cluster"
    assert "elsewhere" in answer.json()["error"]["message"]
    assert (await node.client.get("/v1/jobs/k")).status_code == 404  # nothing written


async def test_a_job_runs_on_the_cluster_and_its_log_is_read_like_a_workers(
    node: RunningServer, cluster: FakeCluster,
) -> None:
    env = {"FAKE_SECONDS": "0.1", "FAKE_LOG": "hello from the pod"}
    answer = await node.client.post("/v1/jobs", json=job("export", env=env, logs="always"))
    assert answer.status_code == 201, answer.text
    run = await _ended_run(node, "export")
    assert run["state"] == "succeeded"
    assert cluster.manifest_of("batch", job_name_for(run["id"])) is not None
    page = (await node.client.get(f"/v1/runs/{run['id']}/log")).json()
    assert page["text"] == "hello from the pod\nexit 0\n" and page["end"]
    assert page["worker"].startswith(job_name_for(run["id"]))
    tasks = (await node.client.get(f"/v1/runs/{run['id']}/tasks")).json()["tasks"]
    assert [(t["state"], t["exit_code"]) for t in tasks] == [("succeeded", 0)]


async def test_killing_a_run_deletes_its_job(node: RunningServer, cluster: FakeCluster) -> None:
    await node.client.post("/v1/jobs", json=job("long", env={"FAKE_SECONDS": "600"}))
    await _until(lambda: cluster.created == 1)
    run = (await node.client.get("/v1/jobs/long/runs")).json()["runs"][0]
    killed = await node.client.post(f"/v1/runs/{run['id']}/kill")
    assert killed.status_code == 202
    await _until(lambda: cluster.manifest_of("batch", job_name_for(run["id"])) is None)
    assert (await _ended_run(node, "long"))["state"] == "killed"


async def test_the_cluster_view_shows_each_kubernetes_cluster_and_its_health(
    node: RunningServer, cluster: FakeCluster,
) -> None:
    view = (await node.client.get("/v1/cluster")).json()
    assert view["kubernetes"] == [{"id": "c1", "ok": True, "detail": "v1.31.0-fake",
                                   "error": None}]
    cluster.down = True
    (health,) = (await node.client.get("/v1/cluster")).json()["kubernetes"]
    assert not health["ok"] and "unavailable" in health["error"].lower()


async def test_the_console_cluster_page_lists_kubernetes_clusters_and_their_health(
    tmp_path: Path, cluster: FakeCluster,
) -> None:
    async with running_server(tmp_path / "ui.db", clusters=Clusters({"c1": cluster}),
                              make_app=lambda n: create_console_app(node=n)) as console:
        login = await console.client.post("/ui/login", data={"token": TEST_ADMIN_TOKEN})
        assert login.status_code == 303, login.text
        page = (await console.client.get("/ui/cluster")).text
        assert "Kubernetes clusters" in page and "<td>c1</td>" in page
        assert "v1.31.0-fake" in page and "state-online" in page.split("Kubernetes")[1]
        cluster.down = True
        page = (await console.client.get("/ui/cluster")).text
        assert "state-lost" in page.split("Kubernetes clusters")[1]


async def _runs(node: RunningServer, key: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await node.client.get(f"/v1/jobs/{key}/runs")).json()["runs"]
    return found


def every_second(key: str, **changes: Any) -> dict[str, Any]:
    return job(key, env={"FAKE_SECONDS": "600"}) | {
        "schedule": {"kind": "rate", "every": "1s"}} | changes


async def test_a_scheduled_container_forbids_overlap_by_default(
    node: RunningServer, cluster: FakeCluster,
) -> None:
    created = await node.client.post("/v1/jobs", json=every_second("cron"))
    assert created.json()["concurrency"] == "forbid"
    await _until(lambda: cluster.created == 1)
    await asyncio.sleep(2.5)  # two more occurrences while the first Job still runs
    states = [r["state"] for r in await _runs(node, "cron")]
    assert states.count("running") == 1 and "skipped" in states
    assert cluster.created == 1


async def test_replace_cancels_the_running_job_for_the_next_occurrence(
    node: RunningServer, cluster: FakeCluster,
) -> None:
    await node.client.post("/v1/jobs", json=every_second("swap", concurrency="replace"))
    await _until(lambda: cluster.created == 2)
    first = (await _runs(node, "swap"))[-1]  # newest first: the oldest run is last
    assert first["state"] == "cancelled"
    await _until(lambda: cluster.manifest_of("batch", job_name_for(first["id"])) is None)
    await node.client.post("/v1/jobs/swap/pause")  # suspend: no more Jobs
    made = cluster.created
    await asyncio.sleep(1.5)
    assert cluster.created == made


async def test_the_run_detail_shows_each_pod_as_an_attempt_and_reads_its_log(
    node: RunningServer,
) -> None:
    env = {"FAKE_SECONDS": "0.1", "FAKE_EXITS": "1,0", "FAKE_LOG": "line"}
    answer = await node.client.post("/v1/jobs", json=job("retried", env=env, backoff_limit=2,
                                                         logs="always"))
    assert answer.status_code == 201, answer.text
    run = await _ended_run(node, "retried")
    detail = (await node.client.get(f"/v1/runs/{run['id']}")).json()
    assert detail["state"] == "succeeded" and detail["attempts"] == 2
    pod = job_name_for(run["id"])
    assert [(a["number"], a["outcome"], a["node"], a["status_code"], a["error"])
            for a in detail["attempt_log"]] == [
        (1, "failure", f"{pod}-00000", 1, "Error"), (2, "success", f"{pod}-00001", 0, None)]
    for number, code in ((1, 1), (2, 0)):
        page = (await node.client.get(f"/v1/runs/{run['id']}/log",
                                      params={"attempt": number})).json()
        assert page["text"] == f"line\nexit {code}\n"
        assert page["worker"] == f"{pod}-0000{number - 1}"
    latest = (await node.client.get(f"/v1/runs/{run['id']}/log")).json()
    assert latest["worker"] == f"{pod}-00001"
    first = (await node.client.get(f"/v1/runs/{run['id']}/log",
                                   params={"worker": f"{pod}-00000"})).json()
    assert first["text"] == "line\nexit 1\n"  # a pod named alone: its own attempt's log
