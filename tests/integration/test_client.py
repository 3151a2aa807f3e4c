"""`cronwheel.client` against a real node over HTTP on loopback: typed answers, pages as
iterators, errors naming the field, retries only where a repeat is harmless, the token sent,
and every /v1 route of the app reachable from the client."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from cronwheel.api.app import create_app
from cronwheel.client import (
    ApiError,
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    JobIn,
    NotFound,
    Retry,
    Unauthorized,
    Unreachable,
)
from cronwheel.client.credentials import find_token
from cronwheel.domain.access import SYSTEM_APP, Role
from cronwheel.settings import Settings
from tests.servers import RunningServer, running_server

FAR = {"kind": "once", "at": "2099-01-01T00:00:00Z"}
SINK = {"kind": "http", "url": "http://127.0.0.1:9/callback"}
SHELL = {"kind": "worker", "group": "default", "type": "shell",
         "spec": {"command": "echo hi"}}


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "cw.db", worker_heartbeat_seconds=0.2,
                              heartbeat_seconds=0.2) as running:
        yield running


def job(key: str, **changes: Any) -> dict[str, Any]:
    return {"key": key, "schedule": FAR, "target": SINK} | changes


async def test_sync_client_creates_pages_and_reads_typed_answers(node: RunningServer) -> None:
    def script() -> None:
        with Client(node.base_url, retry=Retry(attempts=1)) as cw:
            first = cw.create_job(JobIn.model_validate(job("a-0", payload={"n": 0})))
            assert first.created and first.job.key == "a-0" and first.job.payload == {"n": 0}
            assert not cw.create_job(job("a-0", payload={"n": 0})).created  # same: a no-op
            batch = cw.create_jobs([job(f"a-{i}") for i in range(1, 7)])
            assert batch.created == 6
            keys = [j.key for j in cw.iter_jobs(namespace="default", page_size=4)]
            assert sorted(keys) == [f"a-{i}" for i in range(7)]  # two pages, each job once
            assert cw.pause_job("a-1").state == "paused"
            assert [j.key for j in cw.iter_jobs(state="paused")] == ["a-1"]
            run = cw.trigger_job("a-2", payload={"once": True})
            assert run.key == "a-2" and run.payload == {"once": True}
            assert cw.get_run(run.id).id == run.id
            assert [r.id for r in cw.iter_runs("a-2", page_size=1)] == [run.id]
            assert cw.delete_job("a-3").runs == "kept"
            with pytest.raises(NotFound) as missing:
                cw.get_job("a-3")
            assert missing.value.status == 404 and missing.value.field == "key"

    await asyncio.to_thread(script)


async def test_errors_carry_the_code_the_field_and_the_status(node: RunningServer) -> None:
    async with AsyncClient(node.base_url) as cw:
        await cw.create_job(job("taken", payload=1))
        with pytest.raises(Conflict) as conflict:
            await cw.create_job(job("taken", payload=2))
        assert conflict.value.status == 409 and conflict.value.code == "conflict"
        assert conflict.value.field == "key"
        assert conflict.value.details["existing"]["payload"] == 1
        with pytest.raises(BadRequest) as bad:
            await cw.create_job(job("bad", target={"kind": "http", "url": "ftp://x/y"}))
        assert bad.value.status == 422 and bad.value.field == "target.url"
        with pytest.raises(BadRequest) as batch:
            await cw.create_jobs([job("fine"), job("bad", target={"kind": "smtp"})])
        assert batch.value.field == "jobs[1].target.kind"
        assert [item["index"] for item in batch.value.details["items"]] == [1]
        with pytest.raises(BadRequest) as preview:
            await cw.preview("not a cron")
        assert preview.value.field == "expr"


async def test_async_iterators_follow_cursors(node: RunningServer) -> None:
    async with AsyncClient(node.base_url) as cw:
        await cw.create_jobs([job(f"p-{i:02}") for i in range(5)])
        keys = [j.key async for j in cw.iter_jobs(key_prefix="p-", page_size=2)]
        assert sorted(keys) == [f"p-{i:02}" for i in range(5)]
        runs = [(await cw.trigger_job("p-00")).id for _ in range(3)]
        listed = [r.id async for r in cw.iter_runs("p-00", page_size=2)]
        assert listed == runs[::-1]  # newest first


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first request of each path, then 200 with a job page."""

    seen: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def _answer(self) -> None:
        with self.lock:
            count = self.seen[self.path] = self.seen.get(self.path, 0) + 1
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, body = (503, b'{"error": {"code": "unavailable", "message": "starting"}}')
        if count > 1:
            status, body = 200, b'{"jobs": [], "next_cursor": null}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    _Flaky.seen = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_reads_are_retried_and_a_trigger_is_not(flaky: str) -> None:
    with Client(flaky, retry=Retry(attempts=3, backoff=0.01)) as cw:
        assert cw.list_jobs().jobs == []  # 503, then 200
        with pytest.raises(ApiError) as refused:
            cw.trigger_job("k")
        assert refused.value.status == 503 and refused.value.code == "unavailable"
    assert _Flaky.seen == {"/v1/jobs?limit=100": 2, "/v1/jobs/k/trigger?namespace=default": 1}


def test_no_server_is_unreachable_after_the_retries(tmp_path: Path) -> None:
    from tests.support import free_port

    with (Client(f"http://127.0.0.1:{free_port()}", retry=Retry(attempts=2, backoff=0.01)) as cw,
          pytest.raises(Unreachable)):
        cw.get_job("k")


def test_the_token_comes_from_the_option_the_environment_then_the_servers_file(
    tmp_path: Path,
) -> None:
    server = "http://127.0.0.1:1989"
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert find_token(server, environ=env) is None
    (tmp_path / "cronwheel" / "tokens").mkdir(parents=True)
    (tmp_path / "cronwheel" / "tokens" / "127.0.0.1_1989").write_text("cw_file_secret\n")
    assert find_token(server, environ=env) == "cw_file_secret"
    assert find_token("http://127.0.0.1:2000", environ=env) is None  # another server's
    assert find_token(server, environ=env | {"CRONWHEEL_TOKEN": "cw_env_x"}) == "cw_env_x"
    assert find_token(server, "cw_flag_y", environ=env | {"CRONWHEEL_TOKEN": "x"}) == "cw_flag_y"
    home = {"HOME": str(tmp_path / "home")}
    (tmp_path / "home" / ".config" / "cronwheel" / "tokens").mkdir(parents=True)
    (tmp_path / "home" / ".config" / "cronwheel" / "tokens" / "example.org_443").write_text("t")
    assert find_token("https://example.org", environ=home) == "t"


async def test_the_token_is_sent_as_a_bearer_header(node: RunningServer) -> None:
    seen: list[httpx.Request] = []

    async def keep(request: httpx.Request) -> None:
        seen.append(request)

    issued = await node.node.apps.create_token(SYSTEM_APP, Role.VIEWER, label="client test")
    async with AsyncClient(node.base_url, token=issued.token) as cw:
        cw._http.event_hooks["request"].append(keep)
        await cw.cluster()
        assert (await cw.whoami())["role"] == "viewer"
    assert seen[0].headers["authorization"] == f"Bearer {issued.token}"
    assert seen[0].headers["user-agent"].startswith("cronwheel-client/")
    async with AsyncClient(node.base_url, token="cw_abc_secret") as cw:
        with pytest.raises(Unauthorized):
            await cw.cluster()


# -- every /v1 route -------------------------------------------------------------------------


def _routes() -> dict[tuple[str, str], re.Pattern[str]]:
    """(METHOD, path template) of every /v1 operation in the app's OpenAPI document."""
    spec = create_app(Settings(database_url="sqlite:///unused.db")).openapi()
    found: dict[tuple[str, str], re.Pattern[str]] = {}
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        for method in operations:
            found[(method.upper(), path)] = pattern
    return found


async def _walk_the_api(cw: AsyncClient) -> None:
    """Use every method of the client once, as a user would."""
    await cw.preview("*/5 * * * *")
    await cw.create_job(job("w", target=SHELL))
    await cw.create_jobs([job("b1"), job("b2")])
    await cw.list_jobs()
    await cw.get_job("b1")
    for change in (cw.pause_job, cw.resume_job, cw.disable_job, cw.enable_job, cw.cancel_job):
        await change("b1")
    await cw.delete_job("b2", delete_runs=True)
    await _walk_the_schedules(cw)
    await _walk_the_dependencies(cw)
    worker = await cw.register_worker("walker", version="test", types=["shell", "hive"])
    await cw.worker_heartbeat(worker["id"])
    run = await cw.trigger_job("w")
    [task] = (await cw.lease_tasks(worker["id"], most=1, wait=5))["tasks"]
    await cw.runs_on_host("walker")
    await cw.task_output(worker["id"], task["task_id"], b"hi\n", 0)
    await cw.finish_task(worker["id"], task["task_id"], "success", exit_code=0)
    await cw.run_tasks(run.id)
    await cw.run_log(run.id)
    events = [event async for event in cw.follow_log(run.id)]
    assert events[-1].name == "end"
    assert "".join(e.data["text"] for e in events if e.name == "output") == "hi\n"
    await cw.job_runs("w")
    await cw.get_run(run.id)
    await cw.job_workers("w")
    await cw.switch_job_workers("w", {"walker": True})
    await cw.switch_workers({"walker": True})
    await cw.job_alerts("w")
    await cw.workers()
    pending = await cw.trigger_job("w")
    await cw.kill_run(pending.id)
    await _remove_a_waiting_run(cw)
    await cw.cluster()
    await cw.stop_worker(worker["id"])
    await _walk_the_apps(cw)


async def _walk_the_apps(cw: AsyncClient) -> None:
    """The admin's calls: apps, their namespaces and tokens, and who the caller is."""
    assert (await cw.whoami())["role"] == "admin"
    await cw.create_app({"name": "walkers", "namespaces": ["walk"]})
    assert "walkers" in [a["name"] for a in (await cw.apps())["apps"]]
    await cw.update_app("walkers", {"note": "walked"})
    assert (await cw.get_app("walkers"))["note"] == "walked"
    await cw.add_namespace("walkers", "walk-*")
    assert "walk-*" in (await cw.namespaces("walkers"))["namespaces"]
    await cw.remove_namespace("walkers", "walk-*")
    made = await cw.create_token("walkers", {"role": "viewer"})
    assert made["token"].startswith("cw_")
    await cw.tokens("walkers")
    await cw.revoke_token("walkers", made["id"])
    rule = {"dialect": "delayjob", "network": "10.0.0.0/8", "namespace": "walk"}
    assert (await cw.add_admission_rule("walkers", rule))["network"] == "10.0.0.0/8"
    assert len((await cw.admission_rules("walkers"))["rules"]) == 1
    await cw.remove_admission_rule("walkers", "delayjob", "10.0.0.0/8")
    issued = await cw.add_qschedule_app("walkers", {"id": 9, "name": "walk"})
    assert issued["token"] and (await cw.qschedule_apps("walkers"))["qschedule"][0]["id"] == 9
    await cw.remove_qschedule_app("walkers", 9)
    key = (await cw.set_sentinel_key("walkers"))["app_key"]
    assert len(key) == 32 and (await cw.sentinel_key("walkers"))["set"] is True
    await cw.remove_sentinel_key("walkers")
    assert (await cw.sentinel_key("walkers"))["set"] is False
    await cw.remove_app("walkers")
    assert "walkers" not in [a["name"] for a in (await cw.apps())["apps"]]
    # the audit trail saw each change, newest first, under the admin's app
    page = await cw.audit(action="create_app", limit=1)
    assert [(e.action, e.target) for e in page.entries] == [("create_app", "walkers")]
    actions = [e.action async for e in cw.iter_audit(app="system", page_size=2)]
    assert actions[:9] == ["remove_app", "remove_sentinel_key", "set_sentinel_key",
                           "remove_qschedule", "add_qschedule", "remove_rule", "add_rule",
                           "revoke_token", "create_token"]


async def _walk_the_schedules(cw: AsyncClient) -> None:
    """A job's time expressions by id, and a backfill over a past range."""
    await cw.create_job(job("s"))
    assert [item.id for item in (await cw.job_schedules("s")).schedules] == ["1"]
    noon = {"kind": "cron", "expr": "0 12 * * *", "tz": "UTC"}
    added = await cw.add_schedule("s", noon | {"id": "noon"})
    assert (added.schedule.id, added.schedule.kind) == ("noon", "cron")
    edited = await cw.edit_schedule("s", "noon", noon | {"expr": "0 13 * * *"})
    assert [item["id"] for item in edited.job.schedule["items"]] == ["1", "noon"]
    hourly = {"kind": "rate", "every": "1h"}
    changed = await cw.change_schedules("s", [{"op": "add", "id": "hourly", "schedule": hourly},
                                              {"op": "remove", "id": "1"}])
    assert [item["id"] for item in changed.schedule["items"]] == ["noon", "hourly"]
    left = await cw.remove_schedule("s", "hourly")
    assert [item["id"] for item in left.schedule["items"]] == ["noon"]
    with pytest.raises(Conflict):
        await cw.remove_schedule("s", "noon")  # a job keeps one expression
    # a backfill plans the expressions over the past range: one 13:00 in this day
    done = await cw.rerun_job("s", "2026-01-01T00:00:00Z", "2026-01-01T23:59:59Z")
    assert (done.created, done.rerun, done.in_flight) == (1, 0, 0)
    assert [(run.key, run.scheduled_at) for run in done.runs] == [("s", "2026-01-01T13:00:00Z")]


async def _walk_the_dependencies(cw: AsyncClient) -> None:
    """A job waiting on "s" shows in s's graph, downstream, with its edge."""
    await cw.create_job(job("after-s", depends_on=[{"job": "s", "strategy": "all"}]))
    graph = await cw.job_dependencies("s", window="d(1)")
    assert (graph.key, graph.window, graph.upstream) == ("s", "d(1)", [])
    assert [(n.key, n.strategy) for n in graph.downstream] == [("after-s", "all")]


async def test_every_v1_route_is_reachable_from_the_client(node: RunningServer) -> None:
    routes = _routes()
    hit: set[tuple[str, str]] = set()

    async def record(request: httpx.Request) -> None:
        path = request.url.raw_path.decode().split("?")[0]
        matches = [route for route, pattern in routes.items()
                   if route[0] == request.method and pattern.match(path)]
        assert matches, f"{request.method} {path} is no route of the app"
        hit.update(matches)

    async with AsyncClient(node.base_url) as cw:
        cw._http.event_hooks["request"].append(record)
        await _walk_the_api(cw)
    assert len(routes) >= 25  # the document was read
    missing = sorted(set(routes) - hit)
    assert not missing, f"routes the client cannot reach: {missing}"


async def _remove_a_waiting_run(cw: AsyncClient) -> None:
    """A run waiting for an upstream that never runs is removed: cancelled, still listed."""
    await cw.create_job(job("held", schedule={"kind": "once", "after": 0},
                            depends_on=[{"job": "never-made", "strategy": "all"}]))
    for _ in range(200):
        runs = (await cw.job_runs("held")).runs
        if runs:
            break
        await asyncio.sleep(0.05)
    assert runs[0].state == "waiting"
    removed = await cw.remove_run(runs[0].id)
    assert removed.state == "cancelled" and removed.last_error == "removed on request"
    assert [run.state for run in (await cw.job_runs("held")).runs] == ["cancelled"]
