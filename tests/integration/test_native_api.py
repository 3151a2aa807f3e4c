"""The native API's contract: status codes, field-naming errors, idempotency, paging, fuzzing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers import RunningServer, running_server

URL = "http://127.0.0.1:9/callback"


def body(key: str = "k", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": key,
        "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"},
        "target": {"kind": "http", "url": URL},
        "payload": {"a": 1},
    }
    base.update(changes)
    return base


BAD_FIELDS = [
    ({"key": ""}, "key"),
    ({"key": "x" * 256}, "key"),
    ({"key": "bad\nkey"}, "key"),
    ({"namespace": ""}, "namespace"),
    ({"priority": 10**9}, "priority"),
    ({"priority": "high"}, "priority"),
    ({"schedule": {"kind": "weekly"}}, "schedule.kind"),
    ({"schedule": {"kind": "once"}}, "schedule.at"),
    ({"schedule": {"kind": "once", "at": "tomorrow"}}, "schedule.at"),
    ({"schedule": {"kind": "once", "at": "2026-01-01T00:00:00"}}, "schedule.at"),
    ({"schedule": {"kind": "once", "after": "-PT1S"}}, "schedule.after"),
    ({"schedule": {"kind": "once", "after": -5}}, "schedule.after"),
    ({"schedule": {"kind": "once", "at": "2026-01-01T00:00:00Z", "after": 1}}, "schedule.at"),
    ({"target": {"kind": "smtp"}}, "target.kind"),
    ({"target": {"kind": "http", "url": "ftp://x/y"}}, "target.url"),
    ({"target": {"kind": "http", "url": URL, "timeout": 0}}, "target.timeout"),
    ({"target": {"kind": "http", "url": URL, "method": "BREW"}}, "target.method"),
    ({"target": {"kind": "grpc", "address": "no-port"}}, "target.address"),
    ({"target": {"kind": "kafka", "bootstrap": [], "topic": "t"}}, "target.bootstrap"),
    ({"target": {"kind": "kafka", "bootstrap": ["h:1"], "topic": "bad topic"}}, "target.topic"),
    ({"retry": {"max_attempts": 0}}, "retry.max_attempts"),
    ({"retry": {"initial_backoff": 10, "max_backoff": 1}}, "retry.initial_backoff"),
    ({"misfire": {"policy": "sometimes"}}, "misfire.policy"),
    ({"misfire": {"grace": -1}}, "misfire.grace"),
    ({"unexpected": 1}, "unexpected"),
]


@pytest.mark.parametrize(("change", "field"), BAD_FIELDS)
async def test_bad_field_is_a_422_naming_it(
    server: RunningServer, change: dict[str, Any], field: str
) -> None:
    resp = await server.client.post("/v1/jobs", json=body(**change))
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["field"] == field and error["message"]
    listed = (await server.client.get("/v1/jobs")).json()["jobs"]
    assert listed == []  # nothing half-written


async def test_malformed_json_is_a_422(server: RunningServer) -> None:
    resp = await server.client.post(
        "/v1/jobs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_argument"


async def test_oversized_payload_is_refused(server: RunningServer) -> None:
    resp = await server.client.post("/v1/jobs", json=body(payload="x" * 1_100_000))
    assert resp.status_code == 422 and resp.json()["error"]["field"] == "payload"


async def test_create_is_idempotent_for_the_same_body(server: RunningServer) -> None:
    first = await server.client.post("/v1/jobs", json=body())
    again = await server.client.post("/v1/jobs", json=body())
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = await server.client.post("/v1/jobs", json=body(payload={"a": 2}))
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "conflict"
    assert other.json()["error"]["existing"]["payload"] == {"a": 1}


async def test_same_key_in_two_namespaces_is_two_jobs(server: RunningServer) -> None:
    a = await server.client.post("/v1/jobs", json=body(namespace="team-a"))
    b = await server.client.post("/v1/jobs", json=body(namespace="team-b", payload=2))
    assert a.status_code == b.status_code == 201
    got = (await server.client.get("/v1/jobs/k", params={"namespace": "team-b"})).json()
    assert got["payload"] == 2 and got["namespace"] == "team-b"
    assert (await server.client.get("/v1/jobs/k")).status_code == 404


async def test_batch_is_all_or_nothing(server: RunningServer) -> None:
    await server.client.post("/v1/jobs", json=body("taken"))
    bad = {"jobs": [body("b1"), body("b2", target={"kind": "http", "url": "nope"}), body("b3")]}
    resp = await server.client.post("/v1/jobs/batch", json=bad)
    assert resp.status_code == 422
    assert resp.json()["error"]["items"][0]["field"] == "jobs[1].target.url"
    dup = {"jobs": [body("d1"), body("d1")]}
    assert (await server.client.post("/v1/jobs/batch", json=dup)).status_code == 422
    clash = {"jobs": [body("c1"), body("taken", payload=9)]}
    resp = await server.client.post("/v1/jobs/batch", json=clash)
    assert resp.status_code == 409
    assert resp.json()["error"]["items"] == [
        {"index": 1, "field": "jobs[1].key", "code": "conflict",
         "message": "job 'taken' exists with a different definition"}]
    keys = [j["key"] for j in (await server.client.get("/v1/jobs")).json()["jobs"]]
    assert keys == ["taken"]
    ok = await server.client.post("/v1/jobs/batch", json={"jobs": [body("taken"), body("n1")]})
    assert ok.status_code == 201 and (ok.json()["created"], ok.json()["existing"]) == (1, 1)


async def test_a_batch_names_every_job_with_a_bad_target_even_when_repeated(
    server: RunningServer,
) -> None:
    """Jobs of a batch share parsed targets: a bad one is still refused at each index."""
    bad = {"kind": "http", "url": "nope"}
    jobs = [body("t0"), body("t1", target=bad), body("t2"), body("t3", target=bad)]
    resp = await server.client.post("/v1/jobs/batch", json={"jobs": jobs})
    assert resp.status_code == 422
    assert [i["field"] for i in resp.json()["error"]["items"]] == [
        "jobs[1].target.url", "jobs[3].target.url"]
    ok = await server.client.post("/v1/jobs/batch", json={"jobs": [body("t0"), body("t2")]})
    assert ok.status_code == 201
    assert [j["target"]["url"] for j in ok.json()["jobs"]] == [URL, URL]


async def test_a_batch_answers_only_the_ids_when_asked(server: RunningServer) -> None:
    """`Prefer: return=minimal`: the ids in order and the counts; without it, every job."""
    full = await server.client.post("/v1/jobs/batch", json={"jobs": [body("m1")]})
    assert full.status_code == 201 and "Preference-Applied" not in full.headers
    lean = await server.client.post("/v1/jobs/batch", json={"jobs": [body("m1"), body("m2")]},
                                    headers={"Prefer": "respond-async, return=minimal"})
    assert lean.status_code == 201 and lean.headers["Preference-Applied"] == "return=minimal"
    m2 = (await server.client.get("/v1/jobs/m2")).json()
    assert lean.json() == {"ids": [full.json()["jobs"][0]["id"], m2["id"]],
                           "created": 1, "existing": 1}


async def test_listing_pages_with_a_cursor_and_filters(server: RunningServer) -> None:
    jobs = [body(f"p{i:02}") for i in range(25)]
    await server.client.post("/v1/jobs/batch", json={"jobs": jobs})
    await server.client.post("/v1/jobs/p03/cancel")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        page = (await server.client.get("/v1/jobs", params=params)).json()
        seen += [j["key"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"p{i:02}" for i in range(25)] and len(seen) == 25
    cancelled = (await server.client.get("/v1/jobs", params={"state": "cancelled"})).json()
    assert [j["key"] for j in cancelled["jobs"]] == ["p03"]
    prefixed = (await server.client.get("/v1/jobs", params={"key_prefix": "p1"})).json()
    assert len(prefixed["jobs"]) == 10
    bad = await server.client.get("/v1/jobs", params={"cursor": "garbage"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"
    assert (await server.client.get("/v1/jobs", params={"limit": 0})).status_code == 422


async def test_state_changes_answer_with_clear_codes(server: RunningServer) -> None:
    assert (await server.client.post("/v1/jobs/ghost/pause")).status_code == 404
    await server.client.post("/v1/jobs", json=body())
    assert (await server.client.post("/v1/jobs/k/resume")).status_code == 409
    paused = await server.client.post("/v1/jobs/k/pause")
    assert paused.json()["state"] == "paused" and paused.json()["next_fire_at"] is None
    resumed = await server.client.post("/v1/jobs/k/resume")
    assert resumed.json()["next_fire_at"] == "2099-01-01T00:00:00Z"
    assert (await server.client.get("/v1/runs/nope")).status_code == 404


async def test_health_metrics_and_openapi(server: RunningServer) -> None:
    assert (await server.client.get("/healthz")).json()["status"] == "ok"
    metrics = (await server.client.get("/metrics")).text
    assert "cronwheel_fire_lateness_seconds" in metrics
    spec = (await server.client.get("/openapi.json")).json()
    assert "/v1/jobs" in spec["paths"] and "/v1/jobs/batch" in spec["paths"]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
NEAR_VALID = st.fixed_dictionaries(
    {
        "key": st.text(max_size=300) | JSON,
        "schedule": st.fixed_dictionaries(
            {"kind": st.sampled_from(["once", "cron", ""]) | JSON},
            optional={"at": st.text(max_size=40) | JSON, "after": JSON,
                      "countdown": JSON},
        ),
        "target": st.fixed_dictionaries(
            {"kind": st.sampled_from(["http", "grpc", "kafka"]) | JSON},
            optional={"url": st.text(max_size=40) | JSON, "address": JSON,
                      "bootstrap": JSON, "topic": JSON, "timeout": JSON, "headers": JSON},
        ),
    },
    optional={"payload": JSON, "priority": JSON, "retry": JSON, "misfire": JSON,
              "namespace": JSON},
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=NEAR_VALID | JSON)
async def test_fuzzed_bodies_never_cause_a_server_error(
    server: RunningServer, payload: Any
) -> None:
    for path in ("/v1/jobs", "/v1/jobs/batch"):
        data = {"jobs": [payload]} if path.endswith("batch") else payload
        resp = await server.client.post(path, json=data)
        assert resp.status_code < 500, resp.text
        if resp.status_code >= 400:
            assert resp.json()["error"]["message"]


async def test_keys_with_slashes_are_addressable(server: RunningServer) -> None:
    created = await server.client.post("/v1/jobs", json=body("orders/2026/42"))
    assert created.status_code == 201
    got = await server.client.get("/v1/jobs/orders%2F2026%2F42")
    assert got.status_code == 200 and got.json()["key"] == "orders/2026/42"
    paused = await server.client.post("/v1/jobs/orders/2026/42/pause")
    assert paused.json()["state"] == "paused"
    runs = await server.client.get("/v1/jobs/orders/2026/42/runs")
    assert runs.status_code == 200 and runs.json()["runs"] == []


async def test_a_single_sqlite_node_is_its_own_cluster(server: RunningServer) -> None:
    view = (await server.client.get("/v1/cluster")).json()
    [node] = view["nodes"]
    assert node["owner"] == view["node"] and node["alive"] and view["leader"]



async def test_cluster_shows_stopped_nodes_for_a_while_and_lost_ones_until_retention(
    server: RunningServer,
) -> None:
    from cronwheel.contracts import NodeInfo
    from cronwheel.domain.time import US_PER_S

    store, now = server.node.store, server.node.db_clock.now()
    minute = 60 * US_PER_S
    for owner, at, stopped in (("restarted", now - minute, True),
                               ("long-gone", now - 11 * minute, True),
                               ("crashed", now - minute, False)):
        await store.heartbeat(NodeInfo(owner, owner, "http://x", "1", at - minute), at, stopped)
    view = (await server.client.get("/v1/cluster")).json()
    states = {n["owner"]: n["state"] for n in view["nodes"]}
    assert states == {view["node"]: "alive", "restarted": "stopped", "crashed": "lost"}
    every = (await server.client.get("/v1/cluster", params={"include_stopped": True})).json()
    assert {n["owner"]: n["state"] for n in every["nodes"]}["long-gone"] == "stopped"

async def test_job_responses_match_the_documented_schema(server: RunningServer) -> None:
    from cronwheel.api.schemas import JobOut

    created = (await server.client.post("/v1/jobs", json=body(
        "schema", schedule={"kind": "cron", "expr": "0 0 * * *", "tz": "Asia/Shanghai"},
        retry={"multiplier": 3}, concurrency="forbid"))).json()
    assert JobOut.model_validate(created).model_dump(mode="json") == created
    listed = (await server.client.get("/v1/jobs")).json()["jobs"]
    assert listed == [created]


# -- the service's limits and the never-firing refusal, in this API's envelope ----------------


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A node with small limits: payloads up to 1 KiB as JSON, batches of up to 2 jobs."""
    async with running_server(tmp_path / "limited.db", max_payload_bytes=1_024,
                              max_batch=2) as running:
        yield running


async def test_trigger_with_an_oversized_payload_is_a_422_naming_payload(
    limited: RunningServer,
) -> None:
    assert (await limited.client.post("/v1/jobs", json=body())).status_code == 201
    resp = await limited.client.post("/v1/jobs/k/trigger", json={"payload": "x" * 1_100})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == "payload"
    assert (await limited.client.get("/v1/jobs/k/runs")).json()["runs"] == []
    small = await limited.client.post("/v1/jobs/k/trigger", json={"payload": "x" * 100})
    assert small.status_code == 202 and small.json()["payload"] == "x" * 100


async def test_batch_and_payload_limits_name_the_field(limited: RunningServer) -> None:
    over = await limited.client.post("/v1/jobs/batch",
                                     json={"jobs": [body("a"), body("b"), body("c")]})
    assert over.status_code == 422 and over.json()["error"]["field"] == "jobs"
    big = await limited.client.post("/v1/jobs/batch",
                                    json={"jobs": [body("a"), body("b", payload="x" * 1_100)]})
    assert big.status_code == 422
    assert [i["field"] for i in big.json()["error"]["items"]] == ["jobs[1].payload"]
    one = await limited.client.post("/v1/jobs", json=body(payload="x" * 1_100))
    assert one.status_code == 422 and one.json()["error"]["field"] == "payload"
    assert (await limited.client.get("/v1/jobs")).json()["jobs"] == []


NEVER_FIRES = [
    pytest.param({"kind": "cron", "expr": "0 0 0 1 1 ? 2020"}, {}, id="cron's only year past"),
    pytest.param({"kind": "cron", "expr": "0 * * * *", "end": "2020-01-01T00:00:00Z"}, {},
                 id="cron's end past"),
    pytest.param({"kind": "once", "at": "2020-01-01T00:00:00Z"}, {"policy": "skip"},
                 id="past one-shot with misfire skip"),
    pytest.param({"kind": "simple", "interval": 1, "unit": "hour", "repeat": 0,
                  "start": "2020-01-01T00:00:00Z"}, {"policy": "skip", "grace": 60},
                 id="one past simple fire with misfire skip"),
]


@pytest.mark.parametrize(("schedule", "misfire"), NEVER_FIRES)
async def test_a_schedule_that_can_never_fire_is_a_422_naming_schedule(
    server: RunningServer, schedule: dict[str, Any], misfire: dict[str, Any]
) -> None:
    resp = await server.client.post("/v1/jobs", json=body(schedule=schedule, misfire=misfire))
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_argument", "schedule")
    assert "never fire" in error["message"]
    batch = await server.client.post("/v1/jobs/batch", json={"jobs": [
        body("fine"), body("dead", schedule=schedule, misfire=misfire)]})
    assert batch.status_code == 422
    assert [i["field"] for i in batch.json()["error"]["items"]] == ["jobs[1].schedule"]
    assert (await server.client.get("/v1/jobs")).json()["jobs"] == []
    # without skip, a past instant still fires (at once): accepted
    past = {"kind": "once", "at": "2020-01-01T00:00:00Z"}
    assert (await server.client.post("/v1/jobs", json=body(schedule=past))).status_code == 201


async def test_delete_removes_the_job_and_keeps_its_runs_unless_asked(
    server: RunningServer,
) -> None:
    client = server.client
    assert (await client.post("/v1/jobs", json=body("kept"))).status_code == 201
    run = (await client.post("/v1/jobs/kept/trigger")).json()
    answer = await client.delete("/v1/jobs/kept")
    assert answer.status_code == 200
    assert answer.json()["job"]["key"] == "kept" and answer.json()["runs"] == "kept"
    assert (await client.get("/v1/jobs/kept")).status_code == 404
    assert (await client.get(f"/v1/runs/{run['id']}")).status_code == 200
    assert (await client.delete("/v1/jobs/kept")).json()["error"]["field"] == "key"

    assert (await client.post("/v1/jobs", json=body("gone"))).status_code == 201
    run = (await client.post("/v1/jobs/gone/trigger")).json()
    answer = await client.delete("/v1/jobs/gone", params={"runs": "delete"})
    assert answer.json()["runs"] == "deleted"
    assert (await client.get(f"/v1/runs/{run['id']}")).status_code == 404
    wrong = await client.delete("/v1/jobs/gone", params={"runs": "maybe"})
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "runs"
