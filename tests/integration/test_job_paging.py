"""`GET /v1/jobs` and a job's runs page by keyset: every item once while others are added, a
tampered cursor refused naming the field, and an app's caller never shown another app's jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cronwheel.api import native
from cronwheel.domain.paging import encode_cursor
from tests.servers import RunningServer, running_server
from tests.stores import database_url

LATER = {"kind": "once", "at": "2099-01-01T00:00:00Z"}
TARGET = {"kind": "http", "url": "http://127.0.0.1:9/callback"}
# `team` claims team-a and every team-b...; `other` carves team-b-x out of it.
OURS = ["team-a", "team-b", "team-b-1", "team-bé"]
THEIRS = ["aaa", "team-b-x", "zzz", "team-a2"]


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with database_url(request.param, tmp_path) as url, \
            running_server(url, run_engine=False) as running:
        yield running


def jobs(namespace: str, keys: range, prefix: str = "k") -> dict[str, Any]:
    return {"jobs": [{"namespace": namespace, "key": f"{prefix}{i:03d}", "schedule": LATER,
                      "target": TARGET} for i in keys]}


async def viewer(server: RunningServer) -> httpx.AsyncClient:
    admin = server.client
    for app, claims in (("team", ["team-a", "team-b*"]), ("other", ["team-b-x", "aaa", "zzz"])):
        made = await admin.post("/v1/apps", json={"name": app, "namespaces": claims})
        assert made.status_code == 201, made.text
    token = await admin.post("/v1/apps/team/tokens", json={"role": "viewer"})
    assert token.status_code == 201, token.text
    return httpx.AsyncClient(base_url=server.base_url, timeout=10,
                             headers={"Authorization": f"Bearer {token.json()['token']}"})


async def walk(client: httpx.AsyncClient, limit: int, **params: Any) -> list[tuple[str, str]]:
    """Every page from the first, following next_cursor (and checking the Link header)."""
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        answer = await client.get("/v1/jobs", params={"limit": limit, **params}
                                  | ({"cursor": cursor} if cursor else {}))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [(j["namespace"], j["key"]) for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            assert "link" not in answer.headers
            return seen
        assert f"cursor={cursor}" in answer.headers["link"] and 'rel="next"' in answer.headers[
            "link"]


async def test_paging_reads_every_job_once_while_jobs_are_added(server: RunningServer) -> None:
    for namespace in OURS + THEIRS:
        assert (await server.client.post("/v1/jobs/batch", json=jobs(namespace, range(0, 40, 2)))
                ).status_code == 201
    before = {(ns, f"k{i:03d}") for ns in OURS for i in range(0, 40, 2)}

    async def add_more() -> None:  # between and inside the pages already read
        for i in range(1, 40, 2):
            batch = [job for ns in OURS + THEIRS for job in jobs(ns, range(i, i + 1))["jobs"]]
            await server.client.post("/v1/jobs/batch", json={"jobs": batch})

    async with await viewer(server) as client:
        adding = asyncio.create_task(add_more())
        seen = await walk(client, limit=7)
        await adding
        after = await walk(client, limit=1000)
    assert len(seen) == len(set(seen))  # none twice
    assert before <= set(seen) <= set(after)  # each one there from the start, once
    assert {ns for ns, _key in after} == set(OURS)  # and only the app's own namespaces
    assert seen == sorted(seen, key=lambda name: (name[0].encode(), name[1].encode()))
    admin = await walk(server.client, limit=33)
    assert len(admin) == len(set(admin)) == len(OURS + THEIRS) * 40


async def test_a_tampered_cursor_is_a_422_naming_the_field(server: RunningServer) -> None:
    await server.client.post("/v1/jobs/batch", json=jobs("team-a", range(5)))
    first = (await server.client.get("/v1/jobs", params={"limit": 2})).json()
    for cursor in ("garbage", first["next_cursor"][:-2] + "!!", "eyJhIjoxfQ", "x" * 5000,
                   "00000000-0000-7000-8000-000000000000"):
        answer = await server.client.get("/v1/jobs", params={"cursor": cursor})
        assert answer.status_code == 422, (cursor, answer.text)
        assert answer.json()["error"]["field"] == "cursor"
    # the id-paged API's cursor, a job id, still goes on after that job
    listed = (await server.client.get("/v1/jobs")).json()["jobs"]
    by_id = (await server.client.get("/v1/jobs", params={"cursor": listed[1]["id"]})).json()
    assert [j["key"] for j in by_id["jobs"]] == [j["key"] for j in listed[2:]]


async def test_a_cursor_never_reaches_another_apps_jobs(server: RunningServer) -> None:
    for namespace in OURS + THEIRS:
        await server.client.post("/v1/jobs/batch", json=jobs(namespace, range(3)))
    async with await viewer(server) as client:
        for position in (("team-b-x", "k000"), ("aaa", "a"), ("team-b-1", "k002")):
            page = (await client.get("/v1/jobs", params={"cursor": encode_cursor(position)})
                    ).json()
            assert {j["namespace"] for j in page["jobs"]} <= set(OURS), position
        hidden = await client.get("/v1/jobs", params={"namespace": "team-b-x"})
        assert hidden.status_code == 200 and hidden.json()["jobs"] == []
        prefixed = (await client.get("/v1/jobs", params={"key_prefix": "k00"})).json()
        assert {j["namespace"] for j in prefixed["jobs"]} == set(OURS)


async def test_a_sparse_filter_reads_a_bounded_window_per_page(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(native, "MAX_SCAN", 6)
    await server.client.post("/v1/jobs/batch", json=jobs("team-a", range(30)))
    paused = [f"k{i:03d}" for i in (3, 4, 17, 29)]
    for key in paused:
        await server.client.post(f"/v1/jobs/{key}/pause", params={"namespace": "team-a"})
    pages: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"state": "paused", "limit": 3}
        page = (await server.client.get("/v1/jobs", params=params | (
            {"cursor": cursor} if cursor else {}))).json()
        pages.append([j["key"] for j in page["jobs"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [key for page in pages for key in page] == paused
    assert len(pages) >= 5 and [] in pages  # pages of at most 6 rows read: some hold none


async def test_runs_page_newest_first_with_a_next_link(server: RunningServer) -> None:
    await server.client.post("/v1/jobs/batch", json=jobs("team-a", range(1)))
    made = [(await server.client.post("/v1/jobs/k000/trigger", params={"namespace": "team-a"})
             ).json()["id"] for _ in range(7)]
    seen: list[str] = []
    url: str | None = "/v1/jobs/k000/runs?namespace=team-a&limit=3"
    while url is not None:
        answer = await server.client.get(url)
        seen += [run["id"] for run in answer.json()["runs"]]
        link = answer.headers.get("link")
        url = link[1:link.index(">")] if link else None
    assert seen == made[::-1]
    for cursor in ("garbage", "x" * 40):
        bad = await server.client.get("/v1/jobs/k000/runs",
                                      params={"namespace": "team-a", "cursor": cursor})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor", bad.text
