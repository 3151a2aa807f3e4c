"""Every /v1 route of the OpenAPI spec × every kind of caller: the exact status and envelope.

(The dialect paths × clients inside and outside the admission policy:
test_dialect_access_matrix.py.)

The routes come from the running app's spec; each must have an entry in `ROUTES` (how to call
it, which policy it follows, what a permitted caller gets), so a new route fails this test
until someone decides who may call it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from cronwheel.domain.access import Role, TokenRecord, hash_token, new_token
from cronwheel.domain.time import US_PER_S
from tests.servers import RunningServer, running_server
from tests.support import TEST_ADMIN_TOKEN

HTTP = {"kind": "http", "url": "http://127.0.0.1:9/callback"}
LATER = {"kind": "once", "at": "2099-01-01T00:00:00Z"}
GROUP = "team-w"
_names = itertools.count()

# What each policy gives each authenticated caller; "ok" is the route's own success status.
OK = "ok"
POLICIES: dict[str, dict[str, int | str]] = {
    "read_ns": {"viewer": OK, "other": 404, "operator": OK, "admin": OK, "worker": 403},
    "write_ns": {"viewer": 403, "other": 404, "operator": OK, "admin": OK, "worker": 403},
    "create_ns": {"viewer": 403, "other": 403, "operator": OK, "admin": OK, "worker": 403},
    "read_any": {"viewer": OK, "other": OK, "operator": OK, "admin": OK, "worker": 403},
    "own_app": {"viewer": OK, "other": 404, "operator": OK, "admin": OK, "worker": 403},
    "admin": {"viewer": 403, "other": 403, "operator": 403, "admin": OK, "worker": 403},
    "work": {"viewer": 403, "other": 403, "operator": 403, "admin": OK, "worker": OK},
    "any": {"viewer": OK, "other": OK, "operator": OK, "admin": OK, "worker": OK},
}
REFUSED = ("none", "wrong", "expired", "revoked")  # each gets 401 everywhere
CALLERS = (*REFUSED, "viewer", "other", "operator", "admin", "worker")


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None


@dataclass
class World:
    """A server with two apps, their tokens, and objects in the app `team`."""

    server: RunningServer
    tokens: dict[str, str | None] = field(default_factory=dict)
    worker_job: str = ""  # a worker job in `team` whose run has a finished task with a log
    worker_run: str = ""
    worker_name: str = ""

    @property
    def admin(self) -> httpx.AsyncClient:
        return self.server.client

    async def ok(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        answer = await self.admin.request(method, path, **kwargs)
        assert answer.status_code == status, (path, answer.text)
        return answer.json() if answer.content else None

    async def job(self, namespace: str = "team", target: Any = HTTP, **extra: Any) -> str:
        key = f"job-{next(_names)}"
        await self.ok("POST", "/v1/jobs", 201, json={
            "key": key, "namespace": namespace, "schedule": LATER, "target": target} | extra)
        return key

    async def waiting_run(self) -> str:
        """A run that stays pending or running (its retries are an hour apart)."""
        key = await self.job(retry={"max_attempts": 10, "initial_backoff": 3600,
                                "max_backoff": 3600})
        run = await self.ok("POST", f"/v1/jobs/{key}/trigger", 202,
                            params={"namespace": "team"}, json={})
        return str(run["id"])

    async def held_run(self) -> str:
        """A run that never starts: it waits for an upstream that does not exist."""
        key = await self.job(schedule={"kind": "once", "after": 0},
                             depends_on=[{"job": "never-made", "strategy": "all"}])
        for _ in range(200):
            runs = await self.ok("GET", f"/v1/jobs/{key}/runs", 200, params={"namespace": "team"})
            if runs["runs"]:
                return str(runs["runs"][0]["id"])
            await asyncio.sleep(0.05)
        raise AssertionError("the held run was not made")

    async def worker(self, name: str | None = None, group: str = GROUP,
                     token: str = TEST_ADMIN_TOKEN) -> str:
        """A worker registered with `token`: only that token (or an admin's) may act for it."""
        body = {"name": name or f"w-{next(_names)}", "groups": [group]}
        answer = await self.admin.post("/v1/workers", json=body,
                                       headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def task(self, worker_id: str, group: str) -> str:
        """A task of a fresh worker-job run, leased by `worker_id`, alone in `group`."""
        key = await self.job(target=worker_target(group))
        await self.ok("POST", f"/v1/jobs/{key}/trigger", 202, params={"namespace": "team"},
                      json={})
        for _ in range(20):
            leased = await self.ok("POST", f"/v1/workers/{worker_id}/lease", 200,
                                   json={"max": 1, "wait": 1.0})
            if leased["tasks"]:
                return str(leased["tasks"][0]["task_id"])
        raise AssertionError("the worker got no task")

    async def app(self) -> str:
        name = f"app-{next(_names)}"
        await self.ok("POST", "/v1/apps", 201, json={"name": name})
        return name

    async def token_id(self, app: str = "team") -> str:
        made = await self.ok("POST", f"/v1/apps/{app}/tokens", 201, json={"role": "viewer"})
        return str(made["id"])


def worker_target(group: str = GROUP) -> dict[str, Any]:
    return {"kind": "worker", "group": group, "type": "shell", "spec": {"command": "true"},
            "timeout": 60}


Builder = Callable[[World, bool], Awaitable[Call]]  # (world, permitted) -> the call


def fixed(method: str, path: str, **kwargs: Any) -> Builder:
    async def build(_world: World, _permitted: bool) -> Call:
        return Call(method, path, **kwargs)

    return build


def on_job(method: str, suffix: str, state: str = "active", **kwargs: Any) -> Builder:
    """A call on a fresh job of `team` (paused first when the call needs a paused one)."""

    async def build(world: World, _permitted: bool) -> Call:
        key = await world.job()
        if state == "paused":
            await world.ok("POST", f"/v1/jobs/{key}/pause", 200, params={"namespace": "team"})
        return Call(method, f"/v1/jobs/{key}{suffix}", {"namespace": "team"}, **kwargs)

    return build


def on_worker_job(method: str, suffix: str, **kwargs: Any) -> Builder:
    async def build(world: World, _permitted: bool) -> Call:
        body = kwargs.get("json")
        if body == "switch":
            body = {"workers": {world.worker_name: True}}
        return Call(method, f"/v1/jobs/{world.worker_job}{suffix}", {"namespace": "team"}, body)

    return build


def on_worker_run(suffix: str) -> Builder:
    return fixed_later(lambda world: Call("GET", f"/v1/runs/{world.worker_run}{suffix}"))


def fixed_later(make: Callable[[World], Call]) -> Builder:
    async def build(world: World, _permitted: bool) -> Call:
        return make(world)

    return build


def protocol(suffix: str, json: Any = None, task: bool = False) -> Builder:
    """A worker-protocol call as a fresh worker (with a fresh task when it needs one),
    registered with the worker token: the worker token acts for its own worker, an admin
    for any (tests/integration/test_worker_identity.py covers other tokens' workers)."""

    async def build(world: World, permitted: bool) -> Call:
        group = f"{GROUP}-{next(_names)}"  # its own group: the task can go to no other worker
        worker_id = (await world.worker(group=group, token=str(world.tokens["worker"]))
                     if permitted else "not-checked")
        task_id = await world.task(worker_id, group) if permitted and task else "not-checked"
        path = f"/v1/workers/{worker_id}{suffix}".replace("{task}", task_id)
        return Call("POST", path, json=json)

    return build


async def _create(world: World, _permitted: bool) -> Call:
    return Call("POST", "/v1/jobs", json={"key": f"new-{next(_names)}", "namespace": "team",
                                          "schedule": LATER, "target": HTTP})


async def _batch(world: World, _permitted: bool) -> Call:
    jobs = [{"key": f"new-{next(_names)}", "namespace": "team", "schedule": LATER,
             "target": HTTP} for _ in range(2)]
    return Call("POST", "/v1/jobs/batch", json={"jobs": jobs})


async def _register(world: World, _permitted: bool) -> Call:
    return Call("POST", "/v1/workers", json={"name": f"w-{next(_names)}",
                                             "groups": [f"{GROUP}-{next(_names)}"]})


async def _kill(world: World, permitted: bool) -> Call:
    run_id = await world.waiting_run() if permitted else world.worker_run
    return Call("POST", f"/v1/runs/{run_id}/kill")


async def _remove_run(world: World, permitted: bool) -> Call:
    run_id = await world.held_run() if permitted else world.worker_run
    return Call("POST", f"/v1/runs/{run_id}/remove")


async def _job_run(world: World, _permitted: bool) -> Call:
    return Call("GET", f"/v1/runs/{world.worker_run}")


async def _new_app(world: World, _permitted: bool) -> Call:
    return Call("POST", "/v1/apps", json={"name": f"app-{next(_names)}"})


async def _remove_app(world: World, permitted: bool) -> Call:
    return Call("DELETE", f"/v1/apps/{await world.app() if permitted else 'team'}")


async def _add_claim(world: World, _permitted: bool) -> Call:
    return Call("POST", "/v1/apps/team/namespaces", json={"namespace": f"team-{next(_names)}"})


async def _remove_claim(world: World, permitted: bool) -> Call:
    claim = f"team-{next(_names)}"
    if permitted:
        await world.ok("POST", "/v1/apps/team/namespaces", 201, json={"namespace": claim})
    return Call("DELETE", f"/v1/apps/team/namespaces/{claim}")


async def _revoke(world: World, permitted: bool) -> Call:
    token_id = await world.token_id() if permitted else "abcdefgh"
    return Call("POST", f"/v1/apps/team/tokens/{token_id}/revoke")


def _network() -> str:
    n = next(_names)
    return f"10.{n // 250 % 250}.{n % 250}.0/24"


async def _add_rule(world: World, _permitted: bool) -> Call:
    return Call("POST", "/v1/apps/team/admission", json={
        "dialect": "delayjob", "network": _network(), "namespace": "team"})


async def _remove_rule(world: World, permitted: bool) -> Call:
    network = _network()
    if permitted:
        await world.ok("POST", "/v1/apps/team/admission", 201, json={
            "dialect": "kubernetes", "network": network, "namespace": "team"})
    return Call("DELETE", f"/v1/apps/team/admission/kubernetes/{network}")


async def _add_qschedule(world: World, _permitted: bool) -> Call:
    n = next(_names)
    return Call("POST", "/v1/apps/team/qschedule", json={"id": 1000 + n, "name": f"team-qs{n}"})


async def _remove_qschedule(world: World, permitted: bool) -> Call:
    n = next(_names)
    if permitted:
        await world.ok("POST", "/v1/apps/team/qschedule", 201,
                       json={"id": 1000 + n, "name": f"team-qs{n}"})
    return Call("DELETE", f"/v1/apps/team/qschedule/{1000 + n}")


async def _remove_sentinel_key(world: World, permitted: bool) -> Call:
    if permitted:
        await world.ok("POST", "/v1/apps/team/sentinel-key", 201, json={})
    return Call("DELETE", "/v1/apps/team/sentinel-key")


RATE = {"kind": "rate", "every": "5m"}


def on_two_schedules(method: str) -> Builder:
    """A job with two time expressions ("1" and "2"), so removing one is allowed."""

    async def build(world: World, _permitted: bool) -> Call:
        key = await world.job()
        await world.ok("POST", f"/v1/jobs/{key}/schedules", 201,
                       params={"namespace": "team"}, json=RATE | {"id": "2"})
        return Call(method, f"/v1/jobs/{key}/schedules/2", {"namespace": "team"})

    return build


async def _rerun(world: World, _permitted: bool) -> Call:
    """A backfill of one past hour of an every-5-minutes job."""
    key = await world.job(schedule={"kind": "rate", "every": "5m",
                                    "start": "2026-01-01T00:00:00Z"})
    return Call("POST", f"/v1/jobs/{key}/rerun", {"namespace": "team"},
                {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"})


# (method, path as the spec writes it) -> (policy, success status, how to call it)
ROUTES: dict[tuple[str, str], tuple[str, int, Builder]] = {
    ("POST", "/v1/workers"): ("work", 201, _register),
    ("GET", "/v1/workers"): ("read_any", 200, fixed("GET", "/v1/workers")),
    ("POST", "/v1/workers/{worker_id}/heartbeat"): ("work", 200,
                                                   protocol("/heartbeat", {"running": []})),
    ("POST", "/v1/workers/{worker_id}/lease"): ("work", 200,
                                               protocol("/lease", {"max": 1, "wait": 0})),
    ("POST", "/v1/workers/{worker_id}/tasks/{task_id}/output"): (
        "work", 200, protocol("/tasks/{task}/output", None, task=True)),
    ("POST", "/v1/workers/{worker_id}/tasks/{task_id}/finish"): (
        "work", 200, protocol("/tasks/{task}/finish", {"outcome": "success"}, task=True)),
    ("POST", "/v1/workers/{worker_id}/stop"): ("work", 200, protocol("/stop")),
    ("POST", "/v1/workers/switch"): ("admin", 200, fixed_later(lambda w: Call(
        "POST", "/v1/workers/switch", json={"workers": {w.worker_name: True}}))),
    ("GET", "/v1/workers/{host}/runs"): ("read_any", 200,
                                         fixed("GET", "/v1/workers/127.0.0.1/runs")),
    ("POST", "/v1/runs/{run_id}/kill"): ("write_ns", 202, _kill),
    ("POST", "/v1/runs/{run_id}/remove"): ("write_ns", 200, _remove_run),
    ("GET", "/v1/runs/{run_id}/tasks"): ("read_ns", 200, on_worker_run("/tasks")),
    ("GET", "/v1/runs/{run_id}/log"): ("read_ns", 200, on_worker_run("/log")),
    ("GET", "/v1/runs/{run_id}/log/follow"): ("read_ns", 200, on_worker_run("/log/follow")),
    ("GET", "/v1/jobs/{key}/workers"): ("read_ns", 200, on_worker_job("GET", "/workers")),
    ("POST", "/v1/jobs/{key}/workers"): ("write_ns", 200,
                                         on_worker_job("POST", "/workers", json="switch")),
    ("GET", "/v1/jobs/{key}/alerts"): ("read_ns", 200, on_worker_job("GET", "/alerts")),
    ("POST", "/v1/jobs"): ("create_ns", 201, _create),
    ("GET", "/v1/jobs"): ("read_any", 200, fixed("GET", "/v1/jobs")),
    ("POST", "/v1/jobs/batch"): ("create_ns", 201, _batch),
    ("POST", "/v1/jobs/{key}/disable"): ("write_ns", 200, on_job("POST", "/disable")),
    ("POST", "/v1/jobs/{key}/pause"): ("write_ns", 200, on_job("POST", "/pause")),
    ("POST", "/v1/jobs/{key}/enable"): ("write_ns", 200, on_job("POST", "/enable", "paused")),
    ("POST", "/v1/jobs/{key}/resume"): ("write_ns", 200, on_job("POST", "/resume", "paused")),
    ("POST", "/v1/jobs/{key}/cancel"): ("write_ns", 200, on_job("POST", "/cancel")),
    ("POST", "/v1/jobs/{key}/trigger"): ("write_ns", 202, on_job("POST", "/trigger", json={})),
    ("GET", "/v1/jobs/{key}/runs"): ("read_ns", 200, on_job("GET", "/runs")),
    ("GET", "/v1/jobs/{key}"): ("read_ns", 200, on_job("GET", "")),
    ("DELETE", "/v1/jobs/{key}"): ("write_ns", 200, on_job("DELETE", "")),
    ("GET", "/v1/jobs/{key}/dependencies"): ("read_ns", 200, on_job("GET", "/dependencies")),
    ("GET", "/v1/jobs/{key}/schedules"): ("read_ns", 200, on_job("GET", "/schedules")),
    ("POST", "/v1/jobs/{key}/schedules"): ("write_ns", 201,
                                           on_job("POST", "/schedules", json=RATE)),
    ("PATCH", "/v1/jobs/{key}/schedules"): ("write_ns", 200, on_job(
        "PATCH", "/schedules", json={"changes": [{"op": "add", "schedule": RATE}]})),
    ("PUT", "/v1/jobs/{key}/schedules/{schedule_id}"): ("write_ns", 200,
                                                        on_job("PUT", "/schedules/1", json=RATE)),
    ("DELETE", "/v1/jobs/{key}/schedules/{schedule_id}"): ("write_ns", 200,
                                                           on_two_schedules("DELETE")),
    ("POST", "/v1/jobs/{key}/rerun"): ("write_ns", 202, _rerun),
    ("GET", "/v1/runs/{run_id}"): ("read_ns", 200, _job_run),
    ("GET", "/v1/schedules/preview"): ("any", 200, fixed("GET", "/v1/schedules/preview",
                                                         params={"expr": "every 5m"})),
    ("GET", "/v1/cluster"): ("read_any", 200, fixed("GET", "/v1/cluster")),
    ("GET", "/v1/whoami"): ("any", 200, fixed("GET", "/v1/whoami")),
    ("GET", "/v1/apps"): ("admin", 200, fixed("GET", "/v1/apps")),
    ("POST", "/v1/apps"): ("admin", 201, _new_app),
    ("GET", "/v1/apps/{app}"): ("own_app", 200, fixed("GET", "/v1/apps/team")),
    ("PATCH", "/v1/apps/{app}"): ("admin", 200, fixed("PATCH", "/v1/apps/team",
                                                      json={"note": "changed"})),
    ("DELETE", "/v1/apps/{app}"): ("admin", 204, _remove_app),
    ("GET", "/v1/apps/{app}/namespaces"): ("own_app", 200,
                                           fixed("GET", "/v1/apps/team/namespaces")),
    ("POST", "/v1/apps/{app}/namespaces"): ("admin", 201, _add_claim),
    ("DELETE", "/v1/apps/{app}/namespaces/{claim}"): ("admin", 200, _remove_claim),
    ("POST", "/v1/apps/{app}/tokens"): ("admin", 201, fixed(
        "POST", "/v1/apps/team/tokens", json={"role": "viewer"})),
    ("GET", "/v1/apps/{app}/tokens"): ("admin", 200, fixed("GET", "/v1/apps/team/tokens")),
    ("POST", "/v1/apps/{app}/tokens/{token_id}/revoke"): ("admin", 200, _revoke),
    ("GET", "/v1/apps/{app}/admission"): ("admin", 200, fixed("GET", "/v1/apps/team/admission")),
    ("POST", "/v1/apps/{app}/admission"): ("admin", 201, _add_rule),
    ("DELETE", "/v1/apps/{app}/admission/{dialect}/{network}"): ("admin", 204, _remove_rule),
    ("GET", "/v1/apps/{app}/qschedule"): ("admin", 200, fixed("GET", "/v1/apps/team/qschedule")),
    ("POST", "/v1/apps/{app}/qschedule"): ("admin", 201, _add_qschedule),
    ("DELETE", "/v1/apps/{app}/qschedule/{qid}"): ("admin", 204, _remove_qschedule),
    ("POST", "/v1/apps/{app}/sentinel-key"): ("admin", 201, fixed(
        "POST", "/v1/apps/team/sentinel-key", json={})),
    ("GET", "/v1/apps/{app}/sentinel-key"): ("admin", 200,
                                             fixed("GET", "/v1/apps/team/sentinel-key")),
    ("DELETE", "/v1/apps/{app}/sentinel-key"): ("admin", 204, _remove_sentinel_key),
    ("GET", "/v1/audit"): ("admin", 200, fixed("GET", "/v1/audit")),
}


@pytest.fixture
async def world(tmp_path: Any) -> AsyncIterator[World]:
    async with running_server(tmp_path / "db.sqlite") as server:
        world = World(server)
        await world.ok("POST", "/v1/apps", 201, json={"name": "team",
                                                      "namespaces": ["team", "team-*"]})
        await world.ok("POST", "/v1/apps", 201, json={"name": "other", "namespaces": ["other"]})
        await issue_tokens(world)
        await make_worker_run(world)
        yield world


async def issue_tokens(world: World) -> None:
    async def token(app: str, role: str, **extra: Any) -> str:
        made = await world.ok("POST", f"/v1/apps/{app}/tokens", 201,
                              json={"role": role} | extra)
        return str(made["token"])

    revoked = await token("team", "operator")
    made = await world.ok("GET", "/v1/apps/team/tokens", 200)
    await world.ok("POST", f"/v1/apps/team/tokens/{made['tokens'][0]['id']}/revoke", 200)
    expired, parts = new_token()
    now = world.server.node.clock.now()
    await world.server.node.apps.store.add_token(TokenRecord(
        parts.id, "team", Role.OPERATOR, hash_token(expired), now - 7200 * US_PER_S,
        expires_at=now - 3600 * US_PER_S))
    world.tokens = {
        "none": None, "wrong": new_token()[0], "expired": expired, "revoked": revoked,
        "viewer": await token("team", "viewer"), "other": await token("other", "operator"),
        "operator": await token("team", "operator"), "admin": TEST_ADMIN_TOKEN,
        "worker": await token("team", "worker", groups=[f"{GROUP}*"]),
    }


async def make_worker_run(world: World) -> None:
    """A run of a worker job in `team` whose task wrote a log and finished."""
    world.worker_name = f"w-{next(_names)}"
    worker_id = await world.worker(world.worker_name)  # the only worker of GROUP
    world.worker_job = await world.job(target=worker_target())
    run = await world.ok("POST", f"/v1/jobs/{world.worker_job}/trigger", 202,
                         params={"namespace": "team"}, json={})
    world.worker_run = run["id"]
    for _ in range(20):
        leased = await world.ok("POST", f"/v1/workers/{worker_id}/lease", 200,
                                json={"max": 1, "wait": 1.0})
        if leased["tasks"]:
            break
    task = leased["tasks"][0]["task_id"]
    await world.ok("POST", f"/v1/workers/{worker_id}/tasks/{task}/output", 200,
                   params={"offset": 0}, content=b"hello\n")
    await world.ok("POST", f"/v1/workers/{worker_id}/tasks/{task}/finish", 200,
                   json={"outcome": "success", "exit_code": 0})


async def spec_operations(world: World) -> list[tuple[str, str]]:
    answer = await world.server.client.get("/openapi.json")
    paths: dict[str, dict[str, Any]] = answer.json()["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() for method in ops
                  if path.startswith("/v1"))


async def outcome(world: World, caller: str, call: Call) -> httpx.Response:
    """The answer to `call` sent as `caller` (the shared client's own token left out)."""
    token = world.tokens[caller]
    request = world.admin.build_request(call.method, call.path, params=call.params,
                                        json=call.json)
    del request.headers["Authorization"]
    if token:
        request.headers["Authorization"] = f"Bearer {token}"
    return await world.admin.send(request)


def problem(caller: str, route: tuple[str, str], want: int, got: httpx.Response) -> str | None:
    if got.status_code != want:
        return f"{route} as {caller}: want {want}, got {got.status_code} {got.text[:200]}"
    if want == 401:
        challenge = got.headers.get("www-authenticate", "")
        if not challenge.startswith("Bearer") or got.json()["error"]["code"] != "unauthenticated":
            return f"{route} as {caller}: 401 without a Bearer challenge: {got.headers}"
    codes = {403: "permission_denied", 404: "not_found"}
    if want in codes and got.json()["error"]["code"] != codes[want]:
        return f"{route} as {caller}: {want} with the wrong envelope: {got.text[:200]}"
    return None


async def test_every_route_answers_every_caller_as_its_policy_says(world: World) -> None:
    operations = await spec_operations(world)
    assert sorted(ROUTES) == operations, "a /v1 route without a decided policy (or a stale one)"
    problems: list[str] = []
    for route in operations:
        policy, success, build = ROUTES[route]
        for caller in CALLERS:
            expected = 401 if caller in REFUSED else POLICIES[policy][caller]
            want = success if expected == OK else int(expected)
            call = await build(world, expected == OK)
            found = problem(caller, route, want, await outcome(world, caller, call))
            if found:
                problems.append(found)
    assert not problems, "\n".join(problems)


async def test_the_spec_documents_401_and_403_with_the_bearer_scheme(world: World) -> None:
    spec = (await world.server.client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if not path.startswith("/v1"):
                continue
            policy = ROUTES[(method.upper(), path)][0]
            assert "401" in op["responses"] and op.get("security"), (method, path)
            if policy != "any":
                assert "403" in op["responses"], (method, path)


async def test_a_job_of_another_app_looks_exactly_like_a_missing_one(world: World) -> None:
    key = await world.job()
    for path in (f"/v1/jobs/{key}", f"/v1/jobs/{key}/runs", f"/v1/jobs/{key}/pause"):
        method = "POST" if path.endswith("pause") else "GET"
        there = await outcome(world, "other", Call(method, path, {"namespace": "team"}))
        missing = await outcome(world, "other", Call(method, path.replace(key, key + "-no"),
                                                     {"namespace": "team"}))
        assert there.status_code == missing.status_code == 404
        assert there.json() == {"error": missing.json()["error"] | {
            "message": missing.json()["error"]["message"].replace(f"{key}-no", key)}}


async def test_listings_show_only_what_the_caller_may_read(world: World) -> None:
    home, eu = await world.job("team"), await world.job("team-eu")
    mine = {home, eu}
    theirs = await world.job("other")
    await world.job("default")

    async def keys(caller: str, **params: Any) -> set[str]:
        answer = await outcome(world, caller, Call("GET", "/v1/jobs", params | {"limit": 2}))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found = {j["key"] for j in page["jobs"]}
        while page["next_cursor"]:  # pages of 2 still fill up through the filter
            answer = await outcome(world, caller, Call(
                "GET", "/v1/jobs", params | {"limit": 2, "cursor": page["next_cursor"]}))
            page = answer.json()
            assert page["jobs"] or not page["next_cursor"]
            found |= {j["key"] for j in page["jobs"]}
        return found

    team_keys = await keys("viewer")
    assert mine <= team_keys and theirs not in team_keys
    assert await keys("other") == {theirs}
    assert await keys("viewer", namespace="other") == set()  # not its namespace: empty
    assert await keys("viewer", namespace="team-eu") == {eu}
    assert {theirs} | mine <= await keys("admin")


async def test_a_worker_token_registers_only_for_its_groups(world: World) -> None:
    answer = await outcome(world, "worker", Call("POST", "/v1/workers", json={
        "name": "intruder", "groups": [GROUP, "payments"]}))
    assert answer.status_code == 403
    assert answer.json()["error"]["field"] == "groups"
    assert "payments" in answer.json()["error"]["message"]


async def test_no_credential_is_401_before_the_body_is_even_read(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.server.base_url) as client:
        answer = await client.post("/v1/jobs", content=b"{not json",
                                   headers={"Content-Type": "application/json"})
        assert answer.status_code == 401
        viewer = {"Authorization": f"Bearer {world.tokens['viewer']}"}
        answer = await client.post("/v1/jobs", json={"nonsense": 1}, headers=viewer)
        assert answer.status_code == 403  # its role, before its body


async def test_revocation_holds_from_the_next_request(world: World) -> None:
    made = await world.ok("POST", "/v1/apps/team/tokens", 201, json={"role": "viewer"})
    headers = {"Authorization": f"Bearer {made['token']}"}
    async with httpx.AsyncClient(base_url=world.server.base_url) as client:
        assert (await client.get("/v1/whoami", headers=headers)).status_code == 200
        await world.ok("POST", f"/v1/apps/team/tokens/{made['id']}/revoke", 200)
        assert (await client.get("/v1/whoami", headers=headers)).status_code == 401
    listed = await world.ok("GET", "/v1/apps/team/tokens", 200)
    assert all("token" not in t and "hash" not in t for t in listed["tokens"])
    [entry] = [t for t in listed["tokens"] if t["id"] == made["id"]]
    assert entry["revoked_at"] is not None and entry["live"] is False


async def test_health_is_open_and_metrics_need_a_token_unless_public(tmp_path: Any) -> None:
    for public, want in ((False, 401), (True, 200)):
        async with running_server(tmp_path / f"{public}.db", metrics_public=public) as server, \
                httpx.AsyncClient(base_url=server.base_url) as anonymous:
            assert (await anonymous.get("/healthz")).status_code == 200
            assert (await anonymous.get("/metrics")).status_code == want
            assert (await server.client.get("/metrics")).status_code == 200


async def test_code_running_job_types_need_a_grant(world: World) -> None:
    shell = {"key": "etl", "namespace": "team", "schedule": LATER, "target": worker_target()}
    refused = await outcome(world, "operator", Call("POST", "/v1/jobs", json=shell))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["field"] == "target.type"
    batch = {"jobs": [shell | {"key": "web", "target": HTTP}, shell]}
    refused = await outcome(world, "operator", Call("POST", "/v1/jobs/batch", json=batch))
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "jobs[1].target.type"
    await world.ok("PATCH", "/v1/apps/team", 200, json={"grants": {"job_types": ["shell"]}})
    made = await outcome(world, "operator", Call("POST", "/v1/jobs", json=shell))
    assert made.status_code == 201, made.text
    python = shell | {"key": "py", "target": worker_target() | {
        "type": "python", "spec": {"callable": "json:dumps"}}}
    refused = await outcome(world, "operator", Call("POST", "/v1/jobs", json=python))
    assert refused.status_code == 403, refused.text


async def test_command_types_need_a_grant_naming_them(world: World) -> None:
    """A type the server does not have is a command type: a worker runs code with it."""
    def hive_target(name: str) -> dict[str, Any]:
        return worker_target() | {"type": name, "spec": {"content": "select 1"}}

    hive: dict[str, Any] = {"key": "nightly", "namespace": "team", "schedule": LATER,
                            "target": hive_target("hive")}
    refused = await outcome(world, "operator", Call("POST", "/v1/jobs", json=hive))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["field"] == "target.type"
    assert "'hive'" in refused.json()["error"]["message"]
    for wildcard in ("*", "Hive", "hive*"):  # a grant names one type: there is no wildcard
        bad = await world.admin.patch("/v1/apps/team",
                                      json={"grants": {"job_types": ["shell", wildcard]}})
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["field"] == "grants.job_types"
    await world.ok("PATCH", "/v1/apps/team", 200, json={"grants": {"job_types": ["hive"]}})
    made = await outcome(world, "operator", Call("POST", "/v1/jobs", json=hive))
    assert made.status_code == 201, made.text
    presto = hive | {"key": "presto", "target": hive_target("presto")}
    refused = await outcome(world, "operator", Call("POST", "/v1/jobs", json=presto))
    assert refused.status_code == 403 and "'presto'" in refused.text
    shell = hive | {"key": "sh", "target": worker_target()}
    refused = await outcome(world, "operator", Call("POST", "/v1/jobs", json=shell))
    assert refused.status_code == 403, refused.text  # hive's grant is not shell's


async def test_a_job_may_wait_only_for_jobs_its_caller_may_read(world: World) -> None:
    """Otherwise the dependency graph would show another app's jobs and runs."""
    theirs = await world.job("other")
    mine = await world.job("team")

    def waiting_for(namespace: str, key: str) -> Call:
        return Call("POST", "/v1/jobs", json={
            "key": f"waiter-{next(_names)}", "namespace": "team", "schedule": LATER,
            "target": HTTP, "depends_on": [{"job": key, "namespace": namespace}]})

    refused = await outcome(world, "operator", waiting_for("other", theirs))
    assert refused.status_code == 404, refused.text
    assert refused.json()["error"]["field"] == "depends_on[0].namespace"
    allowed = await outcome(world, "operator", waiting_for("team", mine))
    assert allowed.status_code == 201, allowed.text
