"""The native API for a job's time expressions by id, and for reruns: statuses, named fields,
no half-written change, no server error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers import RunningServer

URL = "http://127.0.0.1:9/callback"
UNION = {"kind": "union", "items": [
    {"id": "nightly", "kind": "cron", "expr": "0 2 * * *"},
    {"kind": "rate", "every": "6h", "start": "2026-01-01T00:00:00Z"},
]}


def body(key: str = "k", schedule: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"key": key, "schedule": schedule or {"kind": "cron", "expr": "0 * * * *"},
            "target": {"kind": "http", "url": URL}}


async def test_a_job_created_with_several_schedules_lists_them(server: RunningServer) -> None:
    created = await server.client.post("/v1/jobs", json=body("multi", UNION))
    assert created.status_code == 201, created.text
    assert [i["id"] for i in created.json()["schedule"]["items"]] == ["nightly", "2"]
    listed = await server.client.get("/v1/jobs/multi/schedules")
    assert listed.status_code == 200
    items = listed.json()["schedules"]
    assert [(i["id"], i["kind"]) for i in items] == [("nightly", "cron"), ("2", "rate")]
    again = await server.client.post("/v1/jobs", json=body("multi", UNION))
    assert again.status_code == 200  # an equal re-submit is the same job


async def test_add_edit_and_remove_by_id(server: RunningServer) -> None:
    await server.client.post("/v1/jobs", json=body("j"))
    single = (await server.client.get("/v1/jobs/j/schedules")).json()["schedules"]
    assert [i["id"] for i in single] == ["1"]

    added = await server.client.post("/v1/jobs/j/schedules",
                                     json={"id": "soon", "kind": "once", "after": 30})
    assert added.status_code == 201, added.text
    job = added.json()["job"]
    assert added.json()["schedule"]["id"] == "soon"
    assert [i["id"] for i in job["schedule"]["items"]] == ["1", "soon"]
    assert job["next_fire_at"] == added.json()["schedule"]["at"]

    edited = await server.client.put("/v1/jobs/j/schedules/soon",
                                     json={"kind": "once", "at": "2099-01-01T00:00:00Z"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["schedule"]["at"] == "2099-01-01T00:00:00Z"
    assert edited.json()["job"]["next_fire_at"] != job["next_fire_at"]

    removed = await server.client.delete("/v1/jobs/j/schedules/1")
    assert removed.status_code == 200, removed.text
    assert removed.json()["next_fire_at"] == "2099-01-01T00:00:00Z"

    last = await server.client.delete("/v1/jobs/j/schedules/soon")
    assert last.status_code == 409
    assert last.json()["error"]["field"] == "schedules"
    kept = (await server.client.get("/v1/jobs/j/schedules")).json()["schedules"]
    assert [i["id"] for i in kept] == ["soon"]


async def test_several_changes_in_one_call_all_or_none(server: RunningServer) -> None:
    await server.client.post("/v1/jobs", json=body("p"))
    swap = {"changes": [{"op": "remove", "id": "1"},
                        {"op": "add", "id": "noon", "schedule": {"kind": "cron",
                                                                 "expr": "0 12 * * *"}}]}
    resp = await server.client.patch("/v1/jobs/p/schedules", json=swap)
    assert resp.status_code == 200, resp.text
    assert [i["id"] for i in resp.json()["schedule"]["items"]] == ["noon"]
    bad = {"changes": [{"op": "add", "schedule": {"kind": "rate", "every": "5m"}},
                       {"op": "edit", "id": "noon", "schedule": {"kind": "cron", "expr": "x"}}]}
    refused = await server.client.patch("/v1/jobs/p/schedules", json=bad)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "changes[1].cron"
    empty = await server.client.patch("/v1/jobs/p/schedules",
                                      json={"changes": [{"op": "remove", "id": "noon"}]})
    assert empty.status_code == 409 and empty.json()["error"]["field"] == "schedules"
    unknown = await server.client.patch("/v1/jobs/p/schedules",
                                        json={"changes": [{"op": "rename", "id": "noon"}]})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "changes[0].op"
    kept = (await server.client.get("/v1/jobs/p/schedules")).json()["schedules"]
    assert [i["id"] for i in kept] == ["noon"]


@pytest.mark.parametrize(("method", "path", "data", "status", "field"), [
    ("post", "/v1/jobs/j/schedules", {"kind": "weekly"}, 422, "kind"),
    ("post", "/v1/jobs/j/schedules", {"kind": "cron", "expr": "61 * * * *"}, 422, "cron"),
    ("post", "/v1/jobs/j/schedules", {"id": "1", "kind": "rate", "every": "5m"}, 422, "id"),
    ("post", "/v1/jobs/j/schedules", {"id": "a b", "kind": "rate", "every": "5m"}, 422, "id"),
    ("post", "/v1/jobs/j/schedules", {"kind": "union", "items": []}, 422, "kind"),
    ("post", "/v1/jobs/j/schedules", [1, 2], 422, "body"),
    ("post", "/v1/jobs/j/schedules", {"kind": "once", "after": 10**30}, 422, "body"),
    ("post", "/v1/jobs/nope/schedules", {"kind": "rate", "every": "5m"}, 404, "key"),
    ("put", "/v1/jobs/j/schedules/9", {"kind": "rate", "every": "5m"}, 422, "id"),
    ("put", "/v1/jobs/j/schedules/1", {"id": "2", "kind": "rate", "every": "5m"}, 422, "id"),
    ("put", "/v1/jobs/j/schedules/1", {"kind": "rate", "every": "0s"}, 422, "every"),
    ("delete", "/v1/jobs/j/schedules/9", None, 422, "id"),
    ("get", "/v1/jobs/nope/schedules", None, 404, "key"),
])
async def test_bad_schedule_requests_name_the_field(
    server: RunningServer, method: str, path: str, data: Any, status: int, field: str
) -> None:
    await server.client.post("/v1/jobs", json=body("j"))
    before = (await server.client.get("/v1/jobs/j")).json()
    resp = await server.client.request(method, path, json=data)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["field"] == field
    assert (await server.client.get("/v1/jobs/j")).json() == before  # nothing written


async def test_a_rerun_creates_runs_for_the_range(server: RunningServer) -> None:
    await server.client.post("/v1/jobs", json=body("bf", {"kind": "cron", "expr": "0 3 * * *"}))
    resp = await server.client.post("/v1/jobs/bf/rerun", json={
        "from": "2026-01-01T00:00:00Z", "to": "2026-01-03T23:59:59Z"})
    assert resp.status_code == 202, resp.text
    got = resp.json()
    assert (got["created"], got["rerun"], got["in_flight"]) == (3, 0, 0)
    assert [r["scheduled_at"] for r in got["runs"]] == [
        "2026-01-01T03:00:00Z", "2026-01-02T03:00:00Z", "2026-01-03T03:00:00Z"]
    assert {r["kind"] for r in got["runs"]} == {"scheduled"}
    runs = (await server.client.get("/v1/jobs/bf/runs")).json()["runs"]
    assert len(runs) == 3


@pytest.mark.parametrize(("data", "field"), [
    ({"to": "2026-01-02T00:00:00Z"}, "from"),
    ({"from": "2026-01-02T00:00:00Z"}, "to"),
    ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
    ({"from": "yesterday", "to": "2026-01-01T00:00:00Z"}, "from"),
    ({"from": "2026-01-01T00:00:00", "to": "2026-01-01T00:00:00Z"}, "from"),
    ({"from": "2026-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z"}, "to"),
    ({"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),  # > 1,000 hours
    ({"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"}, "from"),
    ({"from": 5, "to": "2026-01-01T00:00:00Z"}, "from"),
    ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "up": 1}, "up"),
    ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z", "downstream": "x"},
     "downstream"),
])
async def test_bad_reruns_are_a_422_naming_the_field(
    server: RunningServer, data: dict[str, Any], field: str
) -> None:
    await server.client.post("/v1/jobs", json=body("r"))
    resp = await server.client.post("/v1/jobs/r/rerun", json=data)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field
    assert (await server.client.get("/v1/jobs/r/runs")).json()["runs"] == []


async def test_rerun_of_a_missing_or_cancelled_job(server: RunningServer) -> None:
    span = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T05:00:00Z"}
    assert (await server.client.post("/v1/jobs/none/rerun", json=span)).status_code == 404
    await server.client.post("/v1/jobs", json=body("c"))
    await server.client.post("/v1/jobs/c/cancel")
    resp = await server.client.post("/v1/jobs/c/rerun", json=span)
    assert resp.status_code == 409
    schedule_add = await server.client.post("/v1/jobs/c/schedules",
                                            json={"kind": "rate", "every": "5m"})
    assert schedule_add.status_code == 409


async def test_the_openapi_document_lists_the_routes(server: RunningServer) -> None:
    paths = (await server.client.get("/openapi.json")).json()["paths"]
    assert set(paths["/v1/jobs/{key}/schedules"]) == {"get", "post", "patch"}
    assert set(paths["/v1/jobs/{key}/schedules/{schedule_id}"]) == {"put", "delete"}
    assert "409" in paths["/v1/jobs/{key}/schedules/{schedule_id}"]["delete"]["responses"]
    assert "422" in paths["/v1/jobs/{key}/rerun"]["post"]["responses"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=10,
)
ITEM = st.fixed_dictionaries(
    {"kind": st.sampled_from(["once", "cron", "rate", "iso8601", "union"]) | JSON},
    optional={"id": st.text(max_size=8) | JSON, "at": st.text(max_size=30) | JSON,
              "after": JSON, "expr": st.text(max_size=20) | JSON, "every": JSON,
              "items": JSON, "added_at": JSON},
)
RERUN = st.fixed_dictionaries({}, optional={"from": st.text(max_size=30) | JSON,
                                            "to": st.text(max_size=30) | JSON,
                                            "downstream": JSON})


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item=ITEM | JSON, rerun=RERUN | JSON)
async def test_fuzzed_bodies_never_cause_a_server_error(
    server: RunningServer, item: Any, rerun: Any
) -> None:
    await server.client.post("/v1/jobs", json=body("fz"))
    for method, path, data in (("post", "/v1/jobs/fz/schedules", item),
                               ("put", "/v1/jobs/fz/schedules/1", item),
                               ("patch", "/v1/jobs/fz/schedules",
                                {"changes": [{"op": "add", "schedule": item}]}),
                               ("post", "/v1/jobs/fz/rerun", rerun)):
        resp = await server.client.request(method, path, json=data)
        assert resp.status_code < 500, resp.text
