"""`depends_on` on the native API, its refusals (4xx naming the field), the dependency graph
route, and `cronwheel jobs deps` drawing it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_cli import cronwheel
from tests.servers import RunningServer

URL = "http://127.0.0.1:9/callback"
LATER = {"kind": "once", "at": "2099-01-01T00:00:00Z"}


def body(key: str, **changes: Any) -> dict[str, Any]:
    return {"key": key, "schedule": LATER, "target": {"kind": "http", "url": URL}, **changes}


BAD_DEPENDENCIES = [
    ({"depends_on": [{"job": "a", "strategy": "most"}]}, "depends_on[0].strategy"),
    ({"depends_on": [{"job": "a", "window": "d(1,0)"}]}, "depends_on[0].window"),
    ({"depends_on": [{"job": "a", "window": "cq"}]}, "depends_on[0].window"),
    ({"depends_on": [{"job": ""}]}, "depends_on[0].job"),
    ({"depends_on": [{"window": "cd"}]}, "depends_on[0].job"),
    ({"depends_on": [{"job": "a", "when": 1}]}, "depends_on[0]"),
    ({"depends_on": [{"job": "a"}, {"job": "a"}]}, "depends_on"),
    ({"depends_on": [{"job": "x"}]}, "depends_on"),  # itself
    ({"depends_on": [{"job": f"j{i}"} for i in range(33)]}, "depends_on"),
    ({"expiry": 0}, "expiry"),
    ({"schedule": {"kind": "dependencies"}}, "schedule"),
]


@pytest.mark.parametrize(("change", "field"), BAD_DEPENDENCIES)
async def test_a_bad_dependency_is_a_422_naming_its_field(
    server: RunningServer, change: dict[str, Any], field: str,
) -> None:
    resp = await server.client.post("/v1/jobs", json=body("x", **change))
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["field"] == field and error["message"]
    assert (await server.client.get("/v1/jobs")).json()["jobs"] == []


async def test_a_cycle_is_a_422_naming_it_and_writes_nothing(server: RunningServer) -> None:
    assert (await server.client.post("/v1/jobs", json=body("a"))).status_code == 201
    b = body("b", depends_on=[{"job": "a"}])
    assert (await server.client.post("/v1/jobs", json=b)).status_code == 201
    loop = body("a", depends_on=[{"job": "b", "strategy": "last", "window": "h(1)"}])
    resp = await server.client.post("/v1/jobs", params={"replace": "true"}, json=loop)
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["field"] == "depends_on" and "depends_on: cycle a -> b -> a" in error["message"]
    assert (await server.client.get("/v1/jobs/a")).json()["depends_on"] == []


async def test_the_graph_shows_both_directions_and_a_missing_upstream(
    server: RunningServer,
) -> None:
    jobs = [body("a"), body("b", depends_on=[{"job": "a", "strategy": "any", "window": "h(3)"},
                                            {"job": "ghost"}]),
            body("c", schedule={"kind": "dependencies"}, depends_on=[{"job": "b"}])]
    for job in jobs:
        resp = await server.client.post("/v1/jobs", json=job)
        assert resp.status_code == 201, resp.text
    shown = (await server.client.get("/v1/jobs/b")).json()
    assert shown["depends_on"] == [
        {"job": "a", "namespace": "default", "strategy": "any", "window": "h(3)"},
        {"job": "ghost", "namespace": "default", "strategy": "all", "window": "cd"}]
    assert shown["expiry"] == 86_400
    graph = (await server.client.get("/v1/jobs/b/dependencies",
                                     params={"window": "cw"})).json()
    assert (graph["key"], graph["window"]) == ("b", "cw")
    assert [(n["key"], n["state"], n["strategy"], n["window"]) for n in graph["upstream"]] == [
        ("a", "active", "any", "h(3)"), ("ghost", "missing", "all", "cd")]
    [down] = graph["downstream"]
    assert (down["key"], down["state"], down["runs"], down["children"]) == (
        "c", "active", [], [])
    top = (await server.client.get("/v1/jobs/a/dependencies")).json()
    assert [n["key"] for n in top["downstream"]] == ["b"]
    assert [n["key"] for n in top["downstream"][0]["children"]] == ["c"]
    bad = await server.client.get("/v1/jobs/b/dependencies", params={"window": "soon"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "window"
    missing = await server.client.get("/v1/jobs/nope/dependencies")
    assert missing.status_code == 404


async def test_the_cli_draws_the_tree(server: RunningServer) -> None:
    for job in [body("a"), body("b", depends_on=[{"job": "a", "window": "ch"}]),
                body("c", depends_on=[{"job": "b"}, {"job": "gone"}])]:
        assert (await server.client.post("/v1/jobs", json=job)).status_code == 201
    drawn = await cronwheel("jobs", "deps", "b", server=server.base_url)
    assert drawn.code == 0, drawn.err
    lines = drawn.out.splitlines()
    assert "default/b active" in lines[0]
    upstream = next(i for i, line in enumerate(lines) if "waits for (upstream)" in line)
    downstream = next(i for i, line in enumerate(lines) if "waited for by" in line)
    assert "default/a [all ch] active" in lines[upstream + 1]
    assert "default/c [all cd] active" in lines[downstream + 1]
    drawn = await cronwheel("jobs", "deps", "c", "--json", server=server.base_url)
    assert [n["state"] for n in drawn.json()["upstream"]] == ["active", "missing"]
