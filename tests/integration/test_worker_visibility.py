"""Who sees which workers: an admin every worker, anyone else only the workers its own
app's tokens registered (names, hosts and groups of other apps' workers are theirs), on
`GET /v1/workers`, a job's workers and the console's pages, over a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cronwheel.ui.app import create_app as create_console_app
from tests.integration.test_worker_identity import as_token, registered, worker_token
from tests.integration.test_worker_protocol import FakeWorker
from tests.servers import RunningServer, running_server

SHARED = "shared"  # one worker group served by both apps' workers


@dataclass
class Team:
    app: str
    viewer: str
    operator: str
    worker: FakeWorker


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "cw.db", run_engine=False,
                              make_app=lambda n: create_console_app(node=n)) as running:
        yield running


async def team(server: RunningServer, app: str) -> Team:
    made = await server.client.post("/v1/apps", json={"name": app, "namespaces": [app]})
    assert made.status_code == 201, made.text
    tokens = {}
    for role in ("viewer", "operator"):
        answer = await server.client.post(f"/v1/apps/{app}/tokens", json={"role": role})
        assert answer.status_code == 201, answer.text
        tokens[role] = answer.json()["token"]
    made_worker = await worker_token(server, app, [SHARED])
    client = as_token(server, made_worker["token"])
    server_side = await registered(client, f"{app}-worker", [SHARED])
    await client.aclose()
    return Team(app, tokens["viewer"], tokens["operator"], server_side)


async def names(client: httpx.AsyncClient, path: str, **params: str) -> list[str]:
    answer = await client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return sorted(w["name"] for w in answer.json()["workers"])


async def test_each_app_lists_only_its_own_workers_and_an_admin_lists_all(
    server: RunningServer,
) -> None:
    alpha, beta = await team(server, "alpha"), await team(server, "beta")
    everyone = ["alpha-worker", "beta-worker"]
    assert await names(server.client, "/v1/workers") == everyone  # the admin
    for mine, other in ((alpha, beta), (beta, alpha)):
        for raw in (mine.viewer, mine.operator):
            async with as_token(server, raw) as client:
                listed = (await client.get("/v1/workers")).json()["workers"]
                assert [w["name"] for w in listed] == [f"{mine.app}-worker"]
                assert [w["id"] for w in listed] == [mine.worker.id]
                assert await names(client, "/v1/workers", include_stopped="true") == [
                    f"{mine.app}-worker"]
                assert other.worker.id not in (await client.get("/v1/workers")).text
    # an app with no worker of its own sees none, though other apps' serve its groups
    await server.client.post("/v1/apps", json={"name": "gamma", "namespaces": ["gamma"]})
    viewer = (await server.client.post("/v1/apps/gamma/tokens",
                                       json={"role": "viewer"})).json()["token"]
    async with as_token(server, viewer) as client:
        assert await names(client, "/v1/workers") == []


async def worker_job(server: RunningServer) -> None:
    """Job `nightly` of app alpha, run by the workers of the group both apps serve."""
    target = {"kind": "worker", "group": SHARED, "type": "http",
              "spec": {"url": "http://127.0.0.1:9/"}}
    made = await server.client.post("/v1/jobs", json={
        "key": "nightly", "namespace": "alpha", "target": target,
        "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"}})
    assert made.status_code == 201, made.text


async def test_a_jobs_workers_are_only_the_callers_apps_ones(server: RunningServer) -> None:
    alpha, beta = await team(server, "alpha"), await team(server, "beta")
    await worker_job(server)
    path, ns = "/v1/jobs/nightly/workers", {"namespace": "alpha"}
    # both apps' workers serve the group: the admin sees both, alpha only its own
    assert await names(server.client, path, **ns) == ["alpha-worker", "beta-worker"]
    async with as_token(server, alpha.viewer) as client:
        assert await names(client, path, **ns) == ["alpha-worker"]
    async with as_token(server, alpha.operator) as client:
        switched = await client.post(path, params=ns, json={"workers": {"alpha-worker": False}})
        assert switched.status_code == 200, switched.text
        assert [(w["name"], w["enabled"]) for w in switched.json()["workers"]] == [
            ("alpha-worker", False)]
    async with as_token(server, beta.viewer) as client:  # not its job: as if there were none
        assert (await client.get(path, params=ns)).status_code == 404


async def test_the_consoles_worker_pages_show_only_the_callers_apps_workers(
    server: RunningServer,
) -> None:
    alpha, beta = await team(server, "alpha"), await team(server, "beta")
    await worker_job(server)
    for raw, shown, hidden in ((alpha.viewer, "alpha-worker", "beta-worker"),
                               (beta.viewer, "beta-worker", "alpha-worker")):
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as browser:
            login = await browser.post("/ui/login", data={"token": raw})
            assert login.status_code == 303, login.text
            page = (await browser.get("/ui/workers")).text
            assert f"<td>{shown}</td>" in page and hidden not in page
            if raw == alpha.viewer:  # its job's page: the group's workers, its app's only
                page = (await browser.get("/ui/job", params={"namespace": "alpha",
                                                              "key": "nightly"})).text
                assert "Workers of group shared" in page
                assert "<td>alpha-worker</td>" in page and "beta-worker" not in page
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as browser:
        admin = server.client.headers["Authorization"].removeprefix("Bearer ")
        assert (await browser.post("/ui/login", data={"token": admin})).status_code == 303
        page = (await browser.get("/ui/workers")).text
        assert "<td>alpha-worker</td>" in page and "<td>beta-worker</td>" in page
