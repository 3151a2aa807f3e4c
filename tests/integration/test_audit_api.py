"""The audit trail through a real server: who changed what, from where, with what outcome,
refusals included; GET /v1/audit for admins, filtered and paged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cronwheel.api.auditing import AuditTrail
from cronwheel.domain.audit import AuditEntry, AuditFilter
from cronwheel.domain.time import US_PER_S
from cronwheel.ids import new_id
from cronwheel.store.memory_audit import MemoryAuditStore
from cronwheel.testing import ManualClock
from tests.servers import RunningServer, running_server
from tests.stores import database_url
from tests.support import wait_until

HTTP = {"kind": "http", "url": "http://127.0.0.1:9/callback"}
LATER = {"kind": "once", "at": "2099-01-01T00:00:00Z"}


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with database_url(request.param, tmp_path) as url, running_server(
            url, run_engine=False) as running:
        await running.client.post("/v1/apps", json={"name": "team", "namespaces": ["team"]})
        yield running


async def token(server: RunningServer, role: str) -> str:
    made = await server.client.post("/v1/apps/team/tokens", json={"role": role})
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


async def entries(server: RunningServer, **params: Any) -> list[dict[str, Any]]:
    answer = await server.client.get("/v1/audit", params=params)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["entries"]
    return found


async def test_changes_are_recorded_with_who_what_where_and_outcome(
    server: RunningServer,
) -> None:
    operator = await token(server, "operator")
    job = {"key": "nightly", "namespace": "team", "schedule": LATER, "target": HTTP}
    client = server.client
    assert (await client.post("/v1/jobs", json=job, headers=bearer(operator))).status_code == 201
    conflict = job | {"payload": {"changed": True}}
    assert (await client.post("/v1/jobs", json=conflict,
                              headers=bearer(operator))).status_code == 409
    assert (await client.post("/v1/jobs/nightly/pause", params={"namespace": "team"},
                              headers=bearer(operator))).status_code == 200
    assert (await client.delete("/v1/jobs/nightly", params={"namespace": "team"},
                                headers=bearer(operator))).status_code == 200

    found = await entries(server, app="team")
    assert [(e["action"], e["outcome"], e["namespace"], e["target"]) for e in found] == [
        ("delete_job", "ok", "team", "nightly"),
        ("pause_job", "ok", "team", "nightly"),
        ("create_job", "conflict", "team", "nightly"),
        ("create_job", "ok", "team", "nightly"),
    ]
    newest = found[0]
    assert newest["token_prefix"] == operator[:11]
    assert newest["role"] == "operator" and newest["address"] == "127.0.0.1"
    assert newest["detail"] == {"method": "DELETE", "path": "/v1/jobs/nightly"}
    # The admin's own changes are there too, under its app.
    admin = await entries(server, app="system", action="create_token")
    assert admin and admin[0]["target"] == "team"


async def test_refusals_are_recorded_with_their_outcome(server: RunningServer) -> None:
    viewer = await token(server, "viewer")
    operator = await token(server, "operator")
    client = server.client
    job = {"key": "k", "namespace": "team", "schedule": LATER, "target": HTTP}
    assert (await client.post("/v1/jobs", json=job, headers={"Authorization": ""})
            ).status_code == 401
    assert (await client.post("/v1/jobs", json=job, headers=bearer(viewer))).status_code == 403
    elsewhere = job | {"namespace": "not-theirs"}
    assert (await client.post("/v1/jobs", json=elsewhere,
                              headers=bearer(operator))).status_code == 403
    assert (await client.post("/v1/jobs/ghost/pause", params={"namespace": "team"},
                              headers=bearer(operator))).status_code == 404
    bad = job | {"schedule": {"kind": "cron", "expr": "not a cron"}}
    assert (await client.post("/v1/jobs", json=bad, headers=bearer(operator))
            ).status_code == 422

    async def refused() -> list[dict[str, Any]]:
        found = [e for e in await entries(server) if e["outcome"] != "ok"]
        return found if len(found) == 5 else []

    found = await wait_until(refused)  # refusals are written in batches, a moment later
    assert [(e["action"], e["outcome"], e["status"], e["app"], e["namespace"])
            for e in found] == [
        ("create_job", "invalid", 422, "team", "team"),
        ("pause_job", "not_found", 404, "team", "team"),
        ("create_job", "forbidden", 403, "team", "not-theirs"),
        ("create_job", "forbidden", 403, "team", None),  # refused before the body was read
        ("create_job", "unauthenticated", 401, None, None),
    ]
    assert found[2]["token_prefix"] == operator[:11]
    assert not await entries(server, outcome="ok", action="create_job")


async def test_only_admins_read_the_trail_filtered_and_paged(server: RunningServer) -> None:
    for index in range(5):
        answer = await server.client.post("/v1/apps/team/namespaces",
                                          json={"namespace": f"team-{index}"})
        assert answer.status_code == 201
    pages: list[list[str]] = []
    params: dict[str, Any] = {"action": "add_namespace", "limit": 2}
    while True:
        answer = (await server.client.get("/v1/audit", params=params)).json()
        pages.append([e["id"] for e in answer["entries"]])
        if answer["next_cursor"] is None:
            break
        params["cursor"] = answer["next_cursor"]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert len({i for p in pages for i in p}) == 5

    since = (await entries(server, action="add_namespace"))[1]["at"]
    assert len(await entries(server, action="add_namespace", since=since)) == 2
    assert len(await entries(server, action="add_namespace", until=since)) == 3
    bad = await server.client.get("/v1/audit", params={"outcome": "maybe"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "outcome"
    bad = await server.client.get("/v1/audit", params={"cursor": "nonsense"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"
    operator = await token(server, "operator")
    denied = await server.client.get("/v1/audit", headers=bearer(operator))
    assert denied.status_code == 403


async def test_a_dialect_change_is_recorded_as_the_system_app(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        answer = await anonymous.post("/api/v1/submit/job", json={
            "outJobNo": "audit-1", "triggerTime": 4_000_000_000, "callbackProtocol": "HTTP",
            "callbackEndpoint": "http://127.0.0.1:9/callback", "type": 5})
    assert answer.status_code == 200, answer.text
    [found] = await entries(server, action="delayjob.submit_job")
    assert found["app"] == "system" and found["address"] == "127.0.0.1"
    assert found["token_prefix"] is None


async def test_the_worker_protocol_and_reads_are_not_recorded(server: RunningServer) -> None:
    before = len(await entries(server, limit=1000))
    await server.client.get("/v1/jobs")
    await server.client.post("/v1/workers", json={"name": "w1", "groups": ["g"]})
    assert len(await entries(server, limit=1000)) == before


async def test_a_flood_of_refusals_is_dropped_beyond_the_bound_and_counted() -> None:
    store = MemoryAuditStore()
    clock = ManualClock(1_800_000_000 * US_PER_S)
    trail = AuditTrail(store, clock, bound=3, flush_s=3600)

    def refusal() -> AuditEntry:
        return AuditEntry(id=new_id(), at=clock.now(), action="create_job",
                          outcome="unauthenticated", status=401)

    for _ in range(10):
        trail.later(refusal())
    await trail.flush()
    found = await store.find(AuditFilter(), None, 100)
    assert len(found) == 4
    [dropped] = [e for e in found if e.action == "audit_dropped"]
    assert dropped.detail == {"count": 7}
    await trail.close()



async def test_every_kind_of_change_is_recorded_with_its_change(server: RunningServer) -> None:
    """Jobs (batch, schedules, trigger, kill, backfill, cancel), apps, grants, limits,
    namespaces and tokens: each change once, `ok`, written with the change itself."""
    client = server.client
    ns = {"namespace": "team"}

    async def ok(method: str, path: str, **kwargs: Any) -> Any:
        answer = await client.request(method, path, **kwargs)
        assert answer.is_success, (method, path, answer.text)
        return answer.json() if answer.content else None

    rate = {"kind": "rate", "every": "5m", "start": "2026-01-01T00:00:00Z"}
    retry = {"max_attempts": 10, "initial_backoff": 3600, "max_backoff": 3600}
    await ok("POST", "/v1/jobs/batch", json={"jobs": [
        {"key": "a", "namespace": "team", "schedule": rate, "target": HTTP, "retry": retry},
        {"key": "b", "namespace": "team", "schedule": LATER, "target": HTTP}]})
    await ok("POST", "/v1/jobs/a/schedules", params=ns, json={"kind": "rate", "every": "1h",
                                                              "id": "2"})
    await ok("DELETE", "/v1/jobs/a/schedules/2", params=ns)
    run = await ok("POST", "/v1/jobs/a/trigger", params=ns)
    await ok("POST", f"/v1/runs/{run['id']}/kill")
    await ok("POST", "/v1/jobs/a/rerun", params=ns,
             json={"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:10:00Z"})
    await ok("POST", "/v1/jobs/b/cancel", params=ns)
    await ok("PATCH", "/v1/apps/team", json={"grants": {"job_types": ["shell"]},
                                              "limits": {"max_jobs": 10}})
    await ok("DELETE", "/v1/apps/team/namespaces/team")
    made = await ok("POST", "/v1/apps/team/tokens", json={"role": "viewer"})
    await ok("POST", f"/v1/apps/team/tokens/{made['id']}/revoke")

    found = await entries(server, app="system", limit=1000)
    seen = [(e["action"], e["target"]) for e in reversed(found) if e["outcome"] == "ok"]
    assert seen[-11:] == [
        ("create_jobs", None), ("add_schedule", "a"), ("remove_schedule", "a/2"),
        ("trigger_job", "a"), ("kill", run["id"]), ("rerun", "a"), ("cancel_job", "b"),
        ("change_app", "team"), ("remove_namespace", "team/team"), ("create_token", "team"),
        ("revoke_token", f"team/{made['id']}"),
    ]
    batch = next(e for e in found if e["action"] == "create_jobs")
    assert batch["namespace"] == "team" and batch["detail"]["jobs"] == 2
    assert not [e for e in found if e["outcome"] != "ok"]


async def test_upkeep_deletes_entries_past_retention(tmp_path: Path) -> None:
    async with running_server(tmp_path / "db.sqlite", run_engine=False, upkeep_seconds=0.2,
                              audit_retention_days=1.0 / 86_400) as server:
        answer = await server.client.post("/v1/apps", json={"name": "short-lived"})
        assert answer.status_code == 201
        assert await server.node.store.audit.find(AuditFilter(action="create_app"), None, 10)

        async def gone() -> bool:
            return not await server.node.store.audit.find(AuditFilter(), None, 10)

        await wait_until(gone, timeout=10)  # older than a second: the upkeep took it


async def test_a_dispatchserver_tenant_user_is_recorded(server: RunningServer) -> None:
    """The iuap client's `userid` cookie names the person behind a change (issue 10 pt 4)."""
    task = {"jobCode": "audited", "groupCode": "g1", "triggerType": "CronTrigger",
            "cronExpress": "0 0 0 1 1 ? 2090"}
    recall = {"recallType": "HTTP", "option": {"url": "http://127.0.0.1:9/cb"}, "data": "{}"}
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        answer = await client.post("/dispatchserver/add.do", data={
            "taskConfig": json.dumps(task), "recallConfig": json.dumps(recall),
            "replace": "true"},
            headers={"Cookie": "tenantid=t9;sysid=s9;userid=u-42"})
    assert answer.json()["success"] is True, answer.text
    [found] = await entries(server, action="dispatchserver.add_do")
    assert (found["app"], found["user"], found["address"]) == ("system", "u-42", "127.0.0.1")
