"""The other lists of issue 14 point 2 page on the store's indexes: the console's jobs and runs
walk every row of the caller's app once and never one of another app's, and the Kubernetes
dialect's numbered pages hold each of its jobs once, only of its namespace and kind."""

from __future__ import annotations

import html
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from cronwheel.clock import SystemClock
from cronwheel.delivery.kubernetes.clusters import Clusters
from cronwheel.delivery.kubernetes.fake import FakeCluster
from cronwheel.store import overview
from cronwheel.ui import jobs as ui_jobs
from cronwheel.ui import runs as ui_runs
from cronwheel.ui.app import create_app as create_console_app
from tests.integration.test_job_paging import OURS, THEIRS, jobs
from tests.servers import RunningServer, running_server
from tests.stores import database_url

NEXT = re.compile(r'href="([^"]+)" rel="next"')
JOB_LINK = re.compile(r'href="/ui/job\?namespace=([^"&]*)&amp;key=([^"]*)"')
RUN_LINK = re.compile(r'href="/ui/runs/([0-9a-f-]{36})"')


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    clusters = Clusters({"c1": FakeCluster(SystemClock())})
    async with database_url(request.param, tmp_path) as url, \
            running_server(url, run_engine=False, clusters=clusters,
                           make_app=lambda n: create_console_app(node=n)) as running:
        yield running


@asynccontextmanager
async def console(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """A browser logged in with a viewer token of `team` (team-a and team-b*), while `other`
    claims team-b-x, carved out of team's prefix."""
    admin = server.client
    for app, claims in (("team", ["team-a", "team-b*"]), ("other", ["team-b-x", "aaa", "zzz"])):
        made = await admin.post("/v1/apps", json={"name": app, "namespaces": claims})
        assert made.status_code == 201, made.text
    token = (await admin.post("/v1/apps/team/tokens", json={"role": "viewer"})).json()["token"]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as browser:
        assert (await browser.post("/ui/login", data={"token": token})).status_code == 303
        yield browser


async def pages(browser: httpx.AsyncClient, url: str) -> AsyncIterator[str]:
    """Each page's HTML, following the rel="next" link from `url`."""
    next_url: str | None = url
    while next_url is not None:
        answer = await browser.get(next_url)
        assert answer.status_code == 200, answer.text
        yield answer.text
        found = NEXT.search(answer.text)
        next_url = html.unescape(found.group(1)) if found else None


def names_in(page: str) -> list[tuple[str, str]]:
    return [(_unquote(ns), _unquote(key)) for ns, key in JOB_LINK.findall(page)]


def _unquote(text: str) -> str:
    return parse_qs(f"v={html.unescape(text)}")["v"][0]


async def add_jobs(server: RunningServer, count: int) -> None:
    for namespace in OURS + THEIRS:
        made = await server.client.post("/v1/jobs/batch", json=jobs(namespace, range(count)))
        assert made.status_code == 201, made.text


async def test_the_consoles_jobs_list_walks_the_apps_jobs_once(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui_jobs, "PAGE", 7)
    monkeypatch.setattr(ui_jobs, "SCAN", 4)
    monkeypatch.setattr(ui_jobs, "MAX_SCAN", 12)
    await add_jobs(server, 12)
    await server.client.post("/v1/jobs/k005/pause", params={"namespace": "team-b-1"})
    await server.client.post("/v1/jobs/k005/pause", params={"namespace": "team-b-x"})
    async with console(server) as browser:
        seen = [name async for page in pages(browser, "/ui/jobs") for name in names_in(page)]
        paused = [name async for page in pages(browser, "/ui/jobs?state=paused")
                  for name in names_in(page)]
        hidden = (await browser.get("/ui/jobs", params={"namespace": "team-b-x"})).status_code
    assert len(seen) == len(set(seen))
    assert set(seen) == {(ns, f"k{i:03d}") for ns in OURS for i in range(12)}
    assert seen == sorted(seen, key=lambda name: (name[0].encode(), name[1].encode()))
    assert paused == [("team-b-1", "k005")]  # found in windows of SCAN rows of team's jobs
    assert hidden == 404


@pytest.mark.parametrize("span_namespaces", [32, 2])  # a prefix claim: namespaces, or a range
async def test_the_consoles_runs_list_walks_the_apps_runs_once(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, span_namespaces: int
) -> None:
    monkeypatch.setattr(overview, "SPAN_NAMESPACES", span_namespaces)
    monkeypatch.setattr(ui_runs, "PAGE", 4)
    monkeypatch.setattr(ui_runs, "SCAN", 3)
    await add_jobs(server, 1)
    made: dict[str, str] = {}
    for round_ in range(3):
        for namespace in OURS + THEIRS:
            run = await server.client.post("/v1/jobs/k000/trigger",
                                           params={"namespace": namespace})
            assert run.status_code == 202, (round_, run.text)
            made[run.json()["id"]] = namespace
    ours = [run for run, namespace in made.items() if namespace in OURS]
    async with console(server) as browser:
        seen = [run async for page in pages(browser, "/ui/runs") for run in RUN_LINK.findall(page)]
        one = [run async for page in pages(browser, "/ui/runs?namespace=team-b-1")
               for run in RUN_LINK.findall(page)]
        hidden = (await browser.get("/ui/runs", params={"namespace": "team-b-x"})).status_code
    assert seen == sorted(ours, reverse=True)  # each once, newest first, none of other's
    assert one == sorted((r for r in ours if made[r] == "team-b-1"), reverse=True)
    assert hidden == 404


def k8s_job(name: str, kind: str) -> dict[str, Any]:
    body: dict[str, Any] = {"job_name": name, "namespace": "batch", "image": "busybox",
                            "command": "true", "job_exec_time": int(time.time()) + 86_400}
    return body | ({"schedule": "0 3 * * *"} if kind == "cron_job" else {})


async def test_the_kubernetes_lists_number_pages_of_their_own_jobs(server: RunningServer) -> None:
    client = server.client
    for i in range(11):
        for kind in ("once_job", "cron_job"):
            made = (await client.post(f"/api/{kind}/create", json=k8s_job(f"{kind}-{i:02d}",
                                                                            kind))).json()
            assert made["code"] == 200, made
    # another namespace's job whose payload looks like the dialect's
    other = {"namespace": "elsewhere", "key": "once_job-99", "payload": {"kind": "once_job"},
             "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"},
             "target": {"kind": "http", "url": "http://127.0.0.1:9/x"}}
    assert (await client.post("/v1/jobs", json=other)).status_code == 201
    for kind in ("once_job", "cron_job"):
        listed: list[str] = []
        for page_num in range(1, 5):
            page = (await client.get(f"/api/{kind}/lists",
                                     params={"page_num": page_num, "page_size": 4})).json()
            assert page["code"] == 200 and page["data"]["total"] == "11", page
            entries = page["data"]["data"]
            assert [e["id"] for e in entries] == list(range(4 * page_num - 3,
                                                           4 * page_num - 3 + len(entries)))
            listed += [e["job_name"] for e in entries]
        assert listed == [f"{kind}-{i:02d}" for i in range(11)]
    bad = await client.get("/api/once_job/lists", params={"page_num": 10**12})
    assert bad.status_code == 400 and bad.json()["cause"].startswith("page_num")

