"""Clusters as an operator configures them: CRONWHEEL_KUBERNETES_CLUSTERS-style settings with
a kubeconfig file, the lightkube client over HTTP to the fake API server, a job run through
it, and `cronwheel cluster` showing the cluster's health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from cronwheel.clock import SystemClock
from cronwheel.delivery.kubernetes.fake import FakeCluster
from cronwheel.settings import Settings
from tests.e2e.test_cli import cronwheel
from tests.kubernetes.apiserver import FakeApiServer, kubeconfig
from tests.servers import RunningServer, running_server


@pytest.fixture
async def api() -> AsyncIterator[FakeApiServer]:
    server = await FakeApiServer(FakeCluster(SystemClock())).start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def node(tmp_path: Path, api: FakeApiServer) -> AsyncIterator[RunningServer]:
    config = str(kubeconfig(tmp_path / "kubeconfig", api.url))
    clusters = [{"id": "lab", "kubeconfig": config, "context": "test", "namespace": "batch"}]
    async with running_server(tmp_path / "k8s.db", kubernetes_clusters=clusters,
                              kubernetes_poll_seconds=0.05) as running:
        yield running


async def test_a_configured_cluster_runs_jobs_and_shows_in_cronwheel_cluster(
    node: RunningServer, api: FakeApiServer,
) -> None:
    body = {"key": "hello", "schedule": {"kind": "once", "after": 0},
            "target": {"kind": "kubernetes", "cluster": "lab", "namespace": "batch",
                       "image": "busybox", "env": {"FAKE_SECONDS": "0.1"}}}
    assert (await node.client.post("/v1/jobs", json=body)).status_code == 201
    async with asyncio.timeout(10):
        while True:
            runs = (await node.client.get("/v1/jobs/hello/runs")).json()["runs"]
            if runs and runs[0]["state"] == "succeeded":
                break
            await asyncio.sleep(0.05)
    assert ("POST", "/apis/batch/v1/namespaces/batch/jobs") in api.requests
    shown = await cronwheel("cluster", server=node.base_url)
    assert shown.code == 0 and "kubernetes clusters" in shown.out and "lab" in shown.out
    as_json = (await cronwheel("cluster", "--json", server=node.base_url)).json()
    assert as_json["kubernetes"] == [{"id": "lab", "ok": True, "detail": "jobs readable in batch",
                                      "error": None}]


def test_a_cluster_needs_exactly_one_source_of_credentials() -> None:
    with pytest.raises(ValidationError):
        Settings(kubernetes_clusters=[{"id": "x"}])
    with pytest.raises(ValidationError):
        Settings(kubernetes_clusters=[{"id": "x", "kubeconfig": "/k", "in_cluster": True}])
    assert Settings(kubernetes_clusters=[{"id": "x", "in_cluster": True}]).kubernetes_clusters
