"""Workers declare the job types they accept; the server hands each task only to a worker
that accepts its type (docs/workers.md, "Job types a worker accepts"). Played over the real
protocol, on a SQLite file and on PostgreSQL; real worker processes are in
tests/e2e/test_command_types.py."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import RunningServer, running_server
from tests.stores import database_url
from tests.support import wait_until

_keys = itertools.count()
HIVE = {"content": "select 1", "content_type": "text"}


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with database_url(request.param, tmp_path) as url, running_server(
        url, worker_lease_seconds=30.0, heartbeat_seconds=0.2,  # workers stay online unbeaten
    ) as running:
        yield running


async def register(server: RunningServer, name: str, **extra: Any) -> str:
    answer = await server.client.post("/v1/workers", json={
        "name": name, "groups": ["default"], "capacity": 4, "version": "test"} | extra)
    assert answer.status_code == 201, answer.text
    worker_id: str = answer.json()["id"]
    return worker_id


async def lease(server: RunningServer, worker_id: str, wait: float = 0.0) -> list[str]:
    answer = await server.client.post(f"/v1/workers/{worker_id}/lease",
                                      json={"max": 10, "wait": wait})
    assert answer.status_code == 200, answer.text
    return [t["type"] for t in answer.json()["tasks"]]


async def run(server: RunningServer, job_type: str, spec: dict[str, Any]) -> str:
    key = f"typed-{next(_keys)}"
    answer = await server.client.post("/v1/jobs", json={
        "key": key, "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"},
        "target": {"kind": "worker", "type": job_type, "spec": spec, "timeout": 60},
        "retry": {"max_attempts": 1}})
    assert answer.status_code == 201, answer.text
    triggered = await server.client.post(f"/v1/jobs/{key}/trigger", json={})
    assert triggered.status_code == 202, triggered.text
    run_id: str = triggered.json()["id"]
    return run_id


async def state_of(server: RunningServer, run_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await server.client.get(f"/v1/runs/{run_id}")).json()
    return found


async def test_each_task_goes_only_to_a_worker_that_accepts_its_type(
    server: RunningServer,
) -> None:
    shell_only = await register(server, "shell-only", types=["shell"])
    http_too = await register(server, "http-too", types=["http", "hive", "spark-sql"])
    for _ in range(3):
        await run(server, "http", {"url": "http://127.0.0.1:9/"})
    await run(server, "hive", HIVE)
    await run(server, "shell", {"command": "true"})
    await run(server, "spark_sql", HIVE)  # '_' matches only itself, not the '-' of spark-sql
    taken = sorted(await lease(server, http_too, wait=2.0))
    for _ in range(20):  # hand-offs of one trigger each: gather them all
        if len(taken) == 4:
            break
        taken += await lease(server, http_too, wait=0.5)
    assert sorted(taken) == ["hive", "http", "http", "http"]
    assert await lease(server, shell_only, wait=2.0) == ["shell"]
    assert await lease(server, http_too, wait=1.0) == []  # nor spark_sql: nobody accepts it


async def test_a_worker_that_does_not_say_takes_the_servers_types_never_a_command_type(
    server: RunningServer,
) -> None:
    """Workers older than declared types: they get what they got before (the server has no
    plugin here, so the built-in types)."""
    old = await register(server, "old-worker")
    listed = (await server.client.get("/v1/workers")).json()["workers"]
    assert [w["types"] for w in listed] == [["http", "python", "shell", "sql"]]
    hive = await run(server, "hive", HIVE)
    done = await wait_until(lambda: _ended(server, hive))
    assert done["state"] == "failed"
    assert "no online worker of group 'default' that accepts 'hive' jobs" in done["last_error"]
    await run(server, "shell", {"command": "true"})
    assert await lease(server, old, wait=2.0) == ["shell"]


async def _ended(server: RunningServer, run_id: str) -> dict[str, Any] | None:
    found = await state_of(server, run_id)
    return found if found["state"] not in ("pending", "running") else None


async def test_the_workers_list_and_a_jobs_workers_show_the_types(server: RunningServer) -> None:
    await register(server, "etl-1", types=["hive", "shell", "hive"])
    await register(server, "web-1", types=["http"])
    listed = {w["name"]: w["types"] for w in
              (await server.client.get("/v1/workers")).json()["workers"]}
    assert listed == {"etl-1": ["hive", "shell"], "web-1": ["http"]}
    key = f"typed-{next(_keys)}"
    made = await server.client.post("/v1/jobs", json={
        "key": key, "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"},
        "target": {"kind": "worker", "type": "hive", "spec": HIVE}})
    assert made.status_code == 201, made.text
    workers = (await server.client.get(f"/v1/jobs/{key}/workers")).json()["workers"]
    assert [w["name"] for w in workers] == ["etl-1"]  # web-1 could never run it


@pytest.mark.parametrize("types", [["hive,shell"], ["hive rm"], [""], [], ["x" * 65], [5]])
async def test_a_bad_type_list_is_refused_naming_the_field(
    server: RunningServer, types: list[Any]
) -> None:
    answer = await server.client.post("/v1/workers", json={"name": "bad", "types": types})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"].startswith("types")
    assert (await server.client.get("/v1/workers")).json()["workers"] == []
