"""The server's side of workers, driven over the real HTTP protocol (docs/workers.md).

Each test plays one or more workers itself: it registers, heartbeats, leases and reports
through the API a `cronwheel worker` process uses, so every answer of the server is seen
exactly. Real worker processes are in tests/e2e/test_workers.py. Runs on a SQLite file and
on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson
import pytest

from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server
from tests.stores import database_url
from tests.support import wait_until

LEASE_S = 1.0  # a quiet worker is offline after a second here: tests of failover stay short
_keys = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with database_url(request.param, tmp_path) as url, running_server(
        url, worker_lease_seconds=LEASE_S, worker_heartbeat_seconds=0.2,
        heartbeat_seconds=0.2,
    ) as running:
        try:
            yield running
        finally:
            beating = [w.quiet() for w in FakeWorker.alive]
            FakeWorker.alive.clear()
            await asyncio.gather(*beating)


@dataclass
class FakeWorker:
    """A worker played by the test, over the protocol. Like a real worker it heartbeats in the
    background (`alive`, as `worker()` registers it), listing the tasks it holds, so a test slowed
    by a busy machine never loses its workers to the one-second lease; tests of silence pass
    `alive=False`. Whoever makes it alive stops it (`quiet`): this module's fixture does."""

    client: httpx.AsyncClient
    name: str
    id: str = ""
    held: set[str] = field(default_factory=set)
    beating: asyncio.Task[None] | None = None
    alive: ClassVar[list[FakeWorker]] = []

    async def register(self, groups: list[str] | None = None, capacity: int = 4,
                       alive: bool = False) -> FakeWorker:
        answer = await self.client.post("/v1/workers", json={
            "name": self.name, "groups": groups or ["default"], "capacity": capacity,
            "version": "test"})
        assert answer.status_code == 201, answer.text
        self.id = answer.json()["id"]
        if alive:
            self.beating = asyncio.create_task(self._beat_on())
            FakeWorker.alive.append(self)
        return self

    async def _beat_on(self) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                await self.client.post(f"/v1/workers/{self.id}/heartbeat",
                                       json={"running": sorted(self.held)})
            await asyncio.sleep(0.2)

    async def quiet(self) -> None:
        """Stop heartbeating: from now on the worker is silent, as if it had died."""
        beating, self.beating = self.beating, None
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def beat(self, running: list[str] | None = None) -> list[str]:
        answer = await self.client.post(f"/v1/workers/{self.id}/heartbeat",
                                        json={"running": running or []})
        assert answer.status_code == 200, answer.text
        kill: list[str] = answer.json()["kill"]
        return kill

    async def lease(self, limit: int = 10, wait: float = 0.0) -> list[dict[str, Any]]:
        answer = await self.client.post(f"/v1/workers/{self.id}/lease",
                                        json={"max": limit, "wait": wait})
        assert answer.status_code == 200, answer.text
        tasks: list[dict[str, Any]] = answer.json()["tasks"]
        self.held.update(t["task_id"] for t in tasks)
        return tasks

    async def out(self, task: str, data: bytes, offset: int, stream: str = "log") -> httpx.Response:
        return await self.client.post(
            f"/v1/workers/{self.id}/tasks/{task}/output",
            params={"stream": stream, "offset": offset}, content=data)

    async def finish(self, task: str, outcome: str = "success", **extra: Any) -> httpx.Response:
        self.held.discard(task)
        return await self.client.post(f"/v1/workers/{self.id}/tasks/{task}/finish",
                                      json={"outcome": outcome, **extra})


async def worker(server: RunningServer, name: str, groups: list[str] | None = None,
                 capacity: int = 4, alive: bool = True) -> FakeWorker:
    return await FakeWorker(server.client, name).register(groups, capacity, alive)


async def job(server: RunningServer, route: str = "round-robin", group: str = "default",
              **extra: Any) -> str:
    key = f"job-{next(_keys)}"
    target = {"kind": "worker", "group": group, "route": route, "type": "shell",
              "spec": {"command": "true"}, "timeout": 60}
    body = {"key": key, "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"},
            "target": target, "retry": {"max_attempts": 1}} | extra
    answer = await server.client.post("/v1/jobs", json=body)
    assert answer.status_code == 201, answer.text
    return key


async def trigger(server: RunningServer, key: str, payload: Any = None) -> str:
    answer = await server.client.post(f"/v1/jobs/{key}/trigger", json={"payload": payload})
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["id"]
    return run_id


async def run_of(server: RunningServer, run_id: str) -> dict[str, Any]:
    answer = await server.client.get(f"/v1/runs/{run_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def until_state(server: RunningServer, run_id: str, *states: str,
                      timeout: float = 10.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await run_of(server, run_id)
        if found["state"] in states:
            return found
        assert asyncio.get_running_loop().time() < deadline, found
        await asyncio.sleep(0.05)


async def lease_one(w: FakeWorker, wait: float = 5.0) -> dict[str, Any]:
    tasks = await w.lease(1, wait)
    assert len(tasks) == 1, tasks
    return tasks[0]


# -- the happy path ----------------------------------------------------------------------


async def test_a_run_goes_to_a_worker_which_reports_output_and_outcome(
    server: RunningServer,
) -> None:
    w = await worker(server, "127.0.0.1:20010")
    key = await job(server)
    run_id = await trigger(server, key, {"day": 1})
    task = await lease_one(w)
    assert task["run_id"] == run_id and task["attempt"] == 1 and task["key"] == key
    assert task["type"] == "shell" and task["spec"]["command"] == "true"
    assert task["payload"] == {"day": 1} and task["timeout"] == 60
    assert (await run_of(server, run_id))["state"] == "running"
    assert (await w.out(task["task_id"], b"hello ", 0)).json() == {"size": 6}
    assert (await w.out(task["task_id"], "wörld\n".encode(), 6)).json() == {"size": 13}
    assert (await w.finish(task["task_id"], "success", exit_code=0)).json() == {"recorded": True}
    done = await until_state(server, run_id, "succeeded")
    [attempt] = done["attempt_log"]
    assert attempt["outcome"] == "success" and attempt["node"] == "127.0.0.1:20010"
    page = (await server.client.get(f"/v1/runs/{run_id}/log")).json()
    assert page["text"] == "hello wörld\n" and page["end"] is True
    assert page["next_offset"] == page["size"] == 13 and page["worker"] == "127.0.0.1:20010"
    # reporting again is refused: the task is no longer held
    assert (await w.finish(task["task_id"])).status_code == 409


async def test_a_lease_long_polls_until_a_task_is_handed_over(server: RunningServer) -> None:
    w = await worker(server, "poller")
    key = await job(server)
    waiting = asyncio.create_task(w.lease(1, 10.0))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    started = asyncio.get_running_loop().time()
    run_id = await trigger(server, key)
    [task] = await waiting
    assert task["run_id"] == run_id
    assert asyncio.get_running_loop().time() - started < 1.5
    assert await w.lease(1, 0.2) == []  # nothing more


async def test_no_online_worker_fails_the_run_with_a_clear_error(server: RunningServer) -> None:
    key = await job(server, group="nobody-here")
    run_id = await trigger(server, key)
    done = await until_state(server, run_id, "failed")
    assert "no online worker of group 'nobody-here'" in done["last_error"]


async def test_a_worker_never_gets_more_than_it_asks_for(server: RunningServer) -> None:
    w = await worker(server, "w", capacity=2)
    key = await job(server)
    runs = [await trigger(server, key) for _ in range(3)]
    await asyncio.sleep(0.5)
    first = await w.lease(2, 1.0)
    assert len(first) == 2
    rest = await w.lease(5, 1.0)
    assert len(rest) == 1
    assert sorted(t["run_id"] for t in first + rest) == sorted(runs)


# -- routing -----------------------------------------------------------------------------


async def assigned(workers: list[FakeWorker], count: int) -> dict[str, list[dict[str, Any]]]:
    got: dict[str, list[dict[str, Any]]] = {w.name: [] for w in workers}
    deadline = asyncio.get_running_loop().time() + 10
    while sum(map(len, got.values())) < count:
        assert asyncio.get_running_loop().time() < deadline, got
        for w in workers:
            got[w.name].extend(await w.lease(50, 0.0))
        await asyncio.sleep(0.05)
    return got


async def test_round_robin_spreads_runs_evenly(server: RunningServer) -> None:
    ws = [await worker(server, f"rr-{i}", ["rr"]) for i in range(3)]
    key = await job(server, "round-robin", "rr")
    for _ in range(6):
        await trigger(server, key)
    got = await assigned(ws, 6)
    assert sorted(len(v) for v in got.values()) == [2, 2, 2]


async def test_consistent_hash_sends_a_job_to_one_worker(server: RunningServer) -> None:
    ws = [await worker(server, f"ch-{i}", ["ch"]) for i in range(3)]
    key = await job(server, "consistent-hash", "ch")
    for _ in range(5):
        await trigger(server, key)
    got = await assigned(ws, 5)
    assert sorted(len(v) for v in got.values()) == [0, 0, 5]


async def test_random_uses_every_worker_over_many_runs(server: RunningServer) -> None:
    ws = [await worker(server, f"rnd-{i}", ["rnd"]) for i in range(2)]
    key = await job(server, "random", "rnd")
    for _ in range(24):
        await trigger(server, key)
    got = await assigned(ws, 24)
    assert all(len(v) >= 1 for v in got.values())  # p(all 24 on one) = 2^-23


async def test_least_busy_prefers_the_idle_worker(server: RunningServer) -> None:
    busy = await worker(server, "lb-a", ["lb"])
    idle = await worker(server, "lb-b", ["lb"])
    other = await job(server, "failover", "lb")  # failover loads lb-a, the first by name
    for _ in range(3):
        await trigger(server, other)
    await assigned([busy], 3)
    key = await job(server, "least-busy", "lb")
    run_id = await trigger(server, key)
    task = await lease_one(idle)
    assert task["run_id"] == run_id


async def test_failover_uses_the_first_worker_and_the_next_once_it_is_gone(
    server: RunningServer,
) -> None:
    first = await worker(server, "fo-a", ["fo"])
    second = await worker(server, "fo-b", ["fo"])
    key = await job(server, "failover", "fo")
    run_id = await trigger(server, key)
    assert (await lease_one(first))["run_id"] == run_id
    await server.client.post(f"/v1/workers/{first.id}/stop")
    later = await trigger(server, key)
    assert (await lease_one(second))["run_id"] == later


async def test_broadcast_runs_on_every_worker_and_succeeds_only_if_all_do(
    server: RunningServer,
) -> None:
    ws = [await worker(server, f"bc-{i}", ["bc"]) for i in range(3)]
    key = await job(server, "broadcast", "bc")
    run_id = await trigger(server, key)
    got = await assigned(ws, 3)
    tasks = [got[w.name][0] for w in ws]
    assert {t["run_id"] for t in tasks} == {run_id} and len({t["task_id"] for t in tasks}) == 3
    for w, t in zip(ws[:2], tasks[:2], strict=True):
        await w.finish(t["task_id"], "success", exit_code=0)
    assert (await run_of(server, run_id))["state"] == "running"  # one still going
    await ws[2].finish(tasks[2]["task_id"], "failure", exit_code=3)
    done = await until_state(server, run_id, "failed")
    [attempt] = done["attempt_log"]
    assert attempt["outcome"] == "failure" and attempt["status_code"] == 3
    assert "1 of 3 workers failed: bc-2: failed (exit 3)" in attempt["error"]
    listed = (await server.client.get(f"/v1/runs/{run_id}/tasks")).json()["tasks"]
    assert [(t["worker"], t["state"]) for t in listed] == [
        ("bc-0", "succeeded"), ("bc-1", "succeeded"), ("bc-2", "failed")]


# -- retries, lost workers, kill ---------------------------------------------------------


async def test_a_failed_attempt_is_retried_as_the_next_attempt_of_the_same_run(
    server: RunningServer,
) -> None:
    w = await worker(server, "retry")
    key = await job(server, retry={"max_attempts": 3, "initial_backoff": 0.1, "jitter": 0})
    run_id = await trigger(server, key)
    for number in (1, 2):
        task = await lease_one(w)
        assert (task["run_id"], task["attempt"]) == (run_id, number)
        await w.finish(task["task_id"], "failure", exit_code=1, error="boom")
    task = await lease_one(w)
    assert task["attempt"] == 3
    await w.finish(task["task_id"], "success", exit_code=0)
    done = await until_state(server, run_id, "succeeded")
    assert [a["outcome"] for a in done["attempt_log"]] == ["failure", "failure", "success"]
    assert done["attempts"] == 3 and done["id"] == run_id


async def test_a_silent_worker_loses_its_task_to_another(server: RunningServer) -> None:
    dead = await worker(server, "dies", ["lost"], alive=False)
    alive = await worker(server, "lives", ["lost"])
    key = await job(server, "failover", "lost", retry={"max_attempts": 2,
                                                       "initial_backoff": 0.1})
    run_id = await trigger(server, key)
    task = await lease_one(dead)  # dies: never beats again
    second = await lease_one(alive, wait=10.0)
    assert (second["run_id"], second["attempt"]) == (run_id, 2)
    assert (await dead.finish(task["task_id"])).status_code == 409  # too late
    answer = await server.client.post(f"/v1/workers/{dead.id}/heartbeat", json={"running": []})
    assert answer.status_code == 200  # a slow worker is still known; its task is gone
    await alive.finish(second["task_id"], "success", exit_code=0)
    done = await until_state(server, run_id, "succeeded")
    assert [a["outcome"] for a in done["attempt_log"]] == ["abandoned", "success"]
    assert done["attempt_log"][0]["node"] == "dies"


async def test_heartbeats_keep_a_long_task_alive(server: RunningServer) -> None:
    w = await worker(server, "steady", alive=False)  # only its own beats
    key = await job(server)
    run_id = await trigger(server, key)
    task = await lease_one(w)
    for _ in range(15):  # 3 s, three leases long
        await w.beat([task["task_id"]])
        await asyncio.sleep(0.2)
    assert (await run_of(server, run_id))["state"] == "running"
    assert (await w.finish(task["task_id"], "success")).status_code == 200


async def test_an_unknown_worker_is_told_to_register_again(server: RunningServer) -> None:
    for call, body in (("heartbeat", {"running": []}), ("lease", {"max": 1, "wait": 0}),
                       ("tasks/some-task/output", None)):
        answer = await server.client.post(f"/v1/workers/nobody/{call}", json=body)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "unknown_worker"  # what the worker waits for
        assert answer.json()["error"]["field"] == "worker_id"


async def test_kill_reaches_the_worker_in_its_heartbeat_and_ends_the_run_killed(
    server: RunningServer,
) -> None:
    w = await worker(server, "victim")
    key = await job(server, retry={"max_attempts": 5})
    run_id = await trigger(server, key)
    task = await lease_one(w)
    assert await w.beat([task["task_id"]]) == []
    answer = await server.client.post(f"/v1/runs/{run_id}/kill")
    assert answer.status_code == 202 and answer.json()["killing"] is True
    assert await w.beat([task["task_id"]]) == [task["task_id"]]
    await w.finish(task["task_id"], "killed")
    done = await until_state(server, run_id, "killed")
    assert [a["outcome"] for a in done["attempt_log"]] == ["killed"]  # and no retry
    again = await server.client.post(f"/v1/runs/{run_id}/kill")
    assert again.status_code == 409


async def test_killing_a_run_that_waits_for_a_retry_ends_it_at_once(
    server: RunningServer,
) -> None:
    w = await worker(server, "kw")
    key = await job(server, retry={"max_attempts": 3, "initial_backoff": 60})
    run_id = await trigger(server, key)
    task = await lease_one(w)
    await w.finish(task["task_id"], "failure", exit_code=1)
    await until_state(server, run_id, "pending")
    answer = await server.client.post(f"/v1/runs/{run_id}/kill")
    assert answer.json()["state"] == "killed"
    assert (await run_of(server, run_id))["state"] == "killed"


async def test_kill_of_an_unknown_run_is_404(server: RunningServer) -> None:
    answer = await server.client.post("/v1/runs/0190f0c0-0000-7000-8000-000000000000/kill")
    assert answer.status_code == 404 and answer.json()["error"]["field"] == "run_id"


# -- output --------------------------------------------------------------------------------


async def test_output_pages_by_offset_and_resends_are_harmless(server: RunningServer) -> None:
    w = await worker(server, "logger")
    run_id = await trigger(server, await job(server))
    task = (await lease_one(w))["task_id"]
    text = "".join(f"line {i} — ünïcode\n" for i in range(2_000)).encode()
    offset = 0
    for piece in (text[i: i + 7_001] for i in range(0, len(text), 7_001)):
        assert (await w.out(task, piece, offset)).json()["size"] == offset + len(piece)
        assert (await w.out(task, piece, offset)).json()["size"] == offset + len(piece)  # resend
        offset += len(piece)
    gap = await w.out(task, b"x", offset + 10)
    assert gap.status_code == 409 and gap.json()["error"]["field"] == "offset"
    await w.out(task, b'{"rows": 3}', 0, stream="result")
    pages, at = [], 0
    while True:
        page = (await server.client.get(f"/v1/runs/{run_id}/log",
                                         params={"offset": at, "limit": 4_096})).json()
        pages.append(page["text"])
        assert page["end"] is False  # the task has not finished
        at = page["next_offset"]
        if at >= page["size"]:
            break
    assert "".join(pages).encode() == text  # no character split across pages
    await w.finish(task, "success")
    last = (await server.client.get(f"/v1/runs/{run_id}/log", params={"offset": at})).json()
    assert last["text"] == "" and last["end"] is True
    result = (await server.client.get(f"/v1/runs/{run_id}/log",
                                      params={"stream": "result"})).json()
    assert result["text"] == '{"rows": 3}' and result["end"] is True


async def test_output_past_its_retention_is_purged_and_reads_as_ended(
    server: RunningServer,
) -> None:
    w = await worker(server, "old")
    run_id = await trigger(server, await job(server))
    task = (await lease_one(w))["task_id"]
    await w.out(task, b"x" * 100_000, 0)
    await w.finish(task, "success")
    store = server.node.store
    now = server.node.clock.now()
    assert await store.purge_output(now - 60_000_000, 100) == 0  # finished just now: kept
    assert await store.purge_output(now + 1_000_000, 100) == 1
    page = (await server.client.get(f"/v1/runs/{run_id}/log")).json()
    assert (page["text"], page["size"], page["end"]) == ("", 0, True)
    assert (await run_of(server, run_id))["state"] == "succeeded"  # the run itself stays
    assert await store.purge(now + 1_000_000, 100) >= 1  # a purged run takes its tasks along
    answer = await server.client.get(f"/v1/runs/{run_id}/tasks")
    assert answer.status_code == 404


async def test_log_of_a_run_no_worker_ran_names_the_run(server: RunningServer,
                                                       receiver: HttpReceiver) -> None:
    body = {"key": "callback", "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"},
            "target": {"kind": "http", "url": receiver.url}}
    await server.client.post("/v1/jobs", json=body)
    run = {"id": await trigger(server, "callback")}
    answer = await server.client.get(f"/v1/runs/{run['id']}/log")
    assert answer.status_code == 404 and answer.json()["error"]["field"] == "run_id"
    bad = await server.client.get(f"/v1/runs/{run['id']}/log", params={"stream": "other"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "stream"


async def test_follow_streams_output_as_server_sent_events_until_the_end(
    server: RunningServer,
) -> None:
    w = await worker(server, "follow")
    run_id = await trigger(server, await job(server))
    task = (await lease_one(w))["task_id"]
    await w.out(task, b"first\n", 0)
    events: list[tuple[str, dict[str, Any]]] = []

    async def read() -> None:
        async with server.client.stream("GET", f"/v1/runs/{run_id}/log/follow") as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            name = ""
            async for line in answer.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    events.append((name, orjson.loads(line[6:])))

    reader = asyncio.create_task(read())
    await wait_until(lambda: len(events) == 1)
    await w.out(task, b"second\n", 6)
    await wait_until(lambda: len(events) == 2)
    await w.finish(task, "success")
    await asyncio.wait_for(reader, 10)
    assert [n for n, _ in events] == ["output", "output", "end"]
    assert events[0][1]["text"] == "first\n" and events[1][1]["text"] == "second\n"
    assert events[1][1]["next_offset"] == 13 and events[2][1]["state"] == "succeeded"


# -- switches, host check, workers list ----------------------------------------------------


async def test_a_worker_switched_off_for_a_job_gets_none_of_its_runs(
    server: RunningServer,
) -> None:
    on = await worker(server, "on", ["sw"])
    off = await worker(server, "off", ["sw"])
    key = await job(server, "round-robin", "sw")
    answer = await server.client.post(f"/v1/jobs/{key}/workers", json={"workers": {"off": False}})
    assert answer.status_code == 200, answer.text
    shown = {w["name"]: w["enabled"] for w in answer.json()["workers"]}
    assert shown == {"on": True, "off": False}
    for _ in range(4):
        await trigger(server, key)
    got = await assigned([on, off], 4)
    assert len(got["on"]) == 4 and got["off"] == []
    refused = await server.client.post(f"/v1/jobs/{key}/workers", json={"workers": {"on": False}})
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == "every worker of the job would be off line"
    unknown = await server.client.post(f"/v1/jobs/{key}/workers",
                                       json={"workers": {"nobody": False}})
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "workers"
    assert "not a worker of group 'sw': nobody" in unknown.json()["error"]["message"]
    back = await server.client.post(f"/v1/jobs/{key}/workers", json={"workers": {"off": True}})
    assert {w["name"]: w["enabled"] for w in back.json()["workers"]} == {"on": True, "off": True}


async def test_a_worker_switched_off_for_all_jobs_is_skipped_everywhere(
    server: RunningServer,
) -> None:
    a = await worker(server, "all-a", ["all"])
    b = await worker(server, "all-b", ["all"])
    answer = await server.client.post("/v1/workers/switch", json={"workers": {"all-a": False}})
    assert answer.status_code == 200, answer.text
    keys = [await job(server, "round-robin", "all") for _ in range(2)]
    for key in keys:
        await trigger(server, key)
    got = await assigned([a, b], 2)
    assert got["all-a"] == [] and len(got["all-b"]) == 2
    refused = await server.client.post("/v1/workers/switch", json={"workers": {"all-b": False}})
    assert refused.status_code == 409


async def test_runs_in_progress_on_a_host_are_listed(server: RunningServer) -> None:
    w = await worker(server, "127.0.0.1:20011")
    key = await job(server)
    assert (await server.client.get("/v1/workers/127.0.0.1/runs")).json()["runs"] == []
    run_id = await trigger(server, key)
    task = await lease_one(w)
    listed = (await server.client.get("/v1/workers/127.0.0.1/runs")).json()["runs"]
    assert [(r["id"], r["key"], r["task"]["worker"]) for r in listed] == [
        (run_id, key, "127.0.0.1:20011")]
    by_name = (await server.client.get("/v1/workers/127.0.0.1:20011/runs")).json()["runs"]
    assert [r["id"] for r in by_name] == [run_id]
    await w.finish(task["task_id"], "success")
    await until_state(server, run_id, "succeeded")
    assert (await server.client.get("/v1/workers/127.0.0.1/runs")).json()["runs"] == []


async def test_workers_list_shows_load_and_liveness(server: RunningServer) -> None:
    w = await worker(server, "listed", ["a", "b"], capacity=3, alive=False)
    await trigger(server, await job(server, group="a"))
    await lease_one(w)
    [shown] = (await server.client.get("/v1/workers")).json()["workers"]
    assert (shown["name"], shown["groups"], shown["capacity"], shown["busy"], shown["online"]) \
        == ("listed", ["a", "b"], 3, 1, True)
    assert shown["host"] == "127.0.0.1"
    async def offline() -> bool:
        [shown] = (await server.client.get("/v1/workers")).json()["workers"]
        return shown["online"] is False

    await wait_until(offline, timeout=LEASE_S + 5)  # no heartbeat for a lease


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "", "groups": ["a"]}, "name"),
    ({"name": "w", "groups": []}, "groups"),
    ({"name": "w", "groups": ["bad group"]}, "groups"),
    ({"name": "w", "capacity": 0}, "capacity"),
    ({"name": "w", "extra": 1}, "extra"),
])
async def test_bad_registrations_name_their_field(
    server: RunningServer, body: dict[str, Any], field: str
) -> None:
    answer = await server.client.post("/v1/workers", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == field


# -- alerts --------------------------------------------------------------------------------


async def test_consecutive_failures_alert_the_webhook_and_a_success_resets_them(
    server: RunningServer, receiver: HttpReceiver,
) -> None:
    w = await worker(server, "alerting")
    key = await job(server, alert={"after": 2, "webhook": receiver.url})

    async def one(outcome: str) -> None:
        run_id = await trigger(server, key)
        task = await lease_one(w)
        await w.finish(task["task_id"], outcome, exit_code=0 if outcome == "success" else 1)
        await until_state(server, run_id, "succeeded", "failed")

    await one("failure")
    await one("success")  # resets the streak
    await one("failure")
    await asyncio.sleep(1.5)
    assert receiver.received == []
    await one("failure")  # two in a row
    [alert] = await receiver.wait_for(1)
    body = alert.json()
    assert (body["alert"], body["key"], body["failures"]) == ("consecutive_failures", key, 2)
    shown = (await server.client.get(f"/v1/jobs/{key}/alerts")).json()
    assert shown["failures"] == 2

    async def recorded() -> list[tuple[int, str]]:
        alerts = (await server.client.get(f"/v1/jobs/{key}/alerts")).json()["alerts"]
        return [(a["failures"], a["state"]) for a in alerts if a["state"] != "sending"]

    assert await wait_until(recorded) == [(2, "sent")]


async def test_an_alert_the_webhook_refuses_is_kept_to_be_sent_again(
    server: RunningServer, receiver: HttpReceiver,
) -> None:
    receiver.script = [500]
    w = await worker(server, "refused")
    key = await job(server, alert={"after": 1, "webhook": receiver.url})
    run_id = await trigger(server, key)
    task = await lease_one(w)
    await w.finish(task["task_id"], "failure", exit_code=1)
    await until_state(server, run_id, "failed")
    await receiver.wait_for(1)

    async def settled() -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = (
            await server.client.get(f"/v1/jobs/{key}/alerts")).json()["alerts"]
        return alerts if alerts and alerts[0]["state"] != "sending" else []

    deadline = asyncio.get_running_loop().time() + 5
    while not (shown := await settled()):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    [alert] = shown
    assert (alert["state"], alert["tries"], alert["error"]) == (
        "pending", 1, "webhook answered 500")


async def test_callback_jobs_alert_on_failures_too(
    server: RunningServer, receiver: HttpReceiver,
) -> None:
    receiver.script = [500, 500]  # the two callbacks fail; the alert is answered 200
    alert_url = receiver.url.replace("/callback", "/alert")
    body = {"key": "cb-alert", "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"},
            "target": {"kind": "http", "url": receiver.url},
            "retry": {"max_attempts": 1}, "alert": {"after": 2, "webhook": alert_url}}
    assert (await server.client.post("/v1/jobs", json=body)).status_code == 201
    for n in range(2):
        run_id = await trigger(server, "cb-alert")
        await receiver.wait_for(n + 1)
        await until_state(server, run_id, "failed")
    [*_, alert] = await receiver.wait_for(3)
    assert alert.path == "/alert" and alert.json()["failures"] == 2


async def test_a_task_whose_job_left_the_workers_is_never_sent(
    server: RunningServer, receiver: HttpReceiver,
) -> None:
    w = await worker(server, "late")
    key = await job(server)
    run_id = await trigger(server, key)
    await asyncio.sleep(0.3)  # handed to `late`, not leased yet
    body = {"key": key, "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"},
            "target": {"kind": "http", "url": receiver.url}, "retry": {"max_attempts": 1}}
    replaced = await server.client.post("/v1/jobs", json=body, params={"replace": "true"})
    assert replaced.status_code == 200, replaced.text
    assert await w.lease(5, 0.5) == []  # not sent, and no server error
    done = await until_state(server, run_id, "failed")
    assert done["attempt_log"][0]["error"] == "late: error the job no longer runs on workers"


async def test_a_task_of_a_run_killed_before_its_lease_is_never_sent(
    server: RunningServer,
) -> None:
    w = await worker(server, "slowpoke")
    run_id = await trigger(server, await job(server))
    await asyncio.sleep(0.3)
    assert (await server.client.post(f"/v1/runs/{run_id}/kill")).status_code == 202
    assert await w.lease(5, 0.5) == []
    done = await until_state(server, run_id, "killed")
    assert [a["outcome"] for a in done["attempt_log"]] == ["killed"]


async def test_a_small_result_comes_inline_with_the_finish(server: RunningServer) -> None:
    w = await worker(server, "inline")
    key = await job(server)
    first, second, third = [await trigger(server, key) for _ in range(3)]
    got = await assigned([w], 3)
    tasks = {t["run_id"]: t["task_id"] for t in got["inline"]}
    bad = await w.finish(tasks[first], "success", result="not base64!")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "result"
    await w.finish(tasks[first], "success", result=base64.b64encode(b'{"rows": 1}').decode())
    await w.out(tasks[second], b"uploaded", 0, stream="result")  # an upload wins
    await w.finish(tasks[second], "success", result=base64.b64encode(b"inline").decode())
    await w.finish(tasks[third], "success")
    for run_id, expected in ((first, '{"rows": 1}'), (second, "uploaded"), (third, "")):
        await until_state(server, run_id, "succeeded")
        page = (await server.client.get(f"/v1/runs/{run_id}/log",
                                        params={"stream": "result"})).json()
        assert (page["text"], page["end"]) == (expected, True)


async def test_a_hand_off_on_one_node_wakes_a_lease_waiting_on_another() -> None:
    """PostgreSQL: the worker long-polls node B; node A fires and hands the run over; B's
    poll is woken by NOTIFY, not by its (here very slow) re-read of the database."""
    from tests.stores import postgres_database

    async with postgres_database() as url, running_server(url) as a, running_server(
        url, run_engine=False, worker_poll_seconds=20
    ) as b:
        w = await FakeWorker(b.client, "far").register()
        key = await job(a)
        await wait_until(lambda: b.node.channel is not None and b.node.channel.connected)
        waiting = asyncio.create_task(w.lease(1, 15.0))
        await asyncio.sleep(0.3)
        started = asyncio.get_running_loop().time()
        run_id = await trigger(a, key)
        [task] = await asyncio.wait_for(waiting, 20)
        assert task["run_id"] == run_id
        assert asyncio.get_running_loop().time() - started < 5  # not the 15 s poll
