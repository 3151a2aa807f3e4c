"""`cronwheel serve --engine-process`: the API in the process started, the engine in a child.

What a user depends on: a job fires through the child; when the child is SIGKILLed alone the
API keeps answering reads and writes, the child is started again, and the jobs due meanwhile
fire exactly once; workers long-polling the API process still get their tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cluster_crash import ServeProcess, delivered_keys, once
from tests.e2e.test_workers import finished, submit, until, workers
from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server
from tests.stores import postgres_database
from tests.support import ADMIN_HEADERS

SPLIT = {"CRONWHEEL_ENGINE_PROCESS": "1", "CRONWHEEL_LEASE_SECONDS": "3"}


def children(pid: int) -> list[int]:
    """The live child processes of `pid`, whichever of its threads started them (/proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def thread_niceness(pid: int) -> dict[int, tuple[str, int]]:
    """`pid`'s threads: thread id to (name, nice value), from /proc."""
    found: dict[int, tuple[str, int]] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()  # after the name: field 3 on
            found[int(task.name)] = ((task / "comm").read_text().strip(), int(fields[16]))
    return found


@contextlib.asynccontextmanager
async def database(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'cw.db'}"
    else:
        async with postgres_database() as url:
            yield url


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_the_api_answers_while_a_killed_engine_process_is_restarted(
    tmp_path: Path, kind: str
) -> None:
    receiver = await HttpReceiver().start()
    async with database(kind, tmp_path) as url:
        node = ServeProcess("split", url, tmp_path / "serve.log", env=SPLIT)
        try:
            await node.start()
            assert node.proc is not None
            [engine] = children(node.proc.pid)
            if kind == "sqlite":  # the writer holds the lock the engine waits for
                pid = node.proc.pid

                async def reniced() -> bool:  # once the engine is ready: just after healthz
                    return thread_niceness(pid)[pid][1] == 5  # the main thread's

                await until(reniced, "the API process reniced", timeout=10)
                niceness = thread_niceness(pid)
                assert [nice for name, nice in niceness.values() if name == "cw-writer"] == [0]
            async with httpx.AsyncClient(base_url=node.base_url, timeout=10,
                                         headers=ADMIN_HEADERS) as client:
                answer = await client.post("/v1/jobs", json=once("first", time.time() + 1,
                                                                 receiver.url))
                assert answer.status_code == 201, answer.text
                await receiver.wait_for(1, timeout=15)
                assert delivered_keys(receiver) == {"first"}
                # recorded, so the kill below lands with nothing in flight (a delivery the
                # engine dies in is repeated: at least once, with the same run id)
                await until(lambda: _states(client, "first", ["succeeded"]), "first recorded")

                due = time.time() + 2
                answer = await client.post("/v1/jobs", json=once("during", due, receiver.url))
                assert answer.status_code == 201, answer.text
                os.kill(engine, 9)
                # the API process answers reads and writes while no engine runs
                listed = await client.get("/v1/jobs", params={"limit": 10})
                assert listed.status_code == 200
                assert {"first", "during"} <= {j["key"] for j in listed.json()["jobs"]}
                answer = await client.post("/v1/jobs", json=once("after", due + 1,
                                                                 receiver.url))
                assert answer.status_code == 201, answer.text

                async def restarted() -> bool:
                    view = (await client.get("/v1/cluster")).json()
                    return view["engine"] not in (None, node.owner)

                await until(restarted, "a new engine process", timeout=60)
                assert children(node.proc.pid) not in ([], [engine])
                await until(lambda: _arrived(receiver, {"during", "after"}), "the callbacks",
                            timeout=60)
                await asyncio.sleep(1.0)  # time for a duplicate to show, if one were coming
                for key in ("first", "during", "after"):  # one run per occurrence
                    assert await _states(client, key, ["succeeded"]), key
            assert Counter(r.json()["key"] for r in receiver.received) == {
                "first": 1, "during": 1, "after": 1}
        finally:
            await node.stop()
            await receiver.stop()
    assert node.proc is not None and not children(node.proc.pid)


async def _states(client: httpx.AsyncClient, key: str, states: list[str]) -> bool:
    runs = (await client.get(f"/v1/jobs/{key}/runs")).json()["runs"]
    return [run["state"] for run in runs] == states


async def _arrived(receiver: HttpReceiver, keys: set[str]) -> bool:
    return keys <= delivered_keys(receiver)


async def test_workers_long_polling_the_api_process_get_tasks_the_engine_hands_off(
    tmp_path: Path
) -> None:
    """The API runs in this test's loop without an engine; the engine is a child process on
    the same SQLite file. Its hand-off reaches the worker long-polling the API process, and
    the worker's result, reported to the API process, releases a dependent in the engine (the
    resolver's sweep is an hour apart: only the link can have told it)."""
    receiver = await HttpReceiver().start()
    try:
        # api_nice=0: the API process here is pytest's, which runs other tests after this one
        async with running_server(tmp_path / "cw.db", run_engine=False, engine_process=True,
                                  api_nice=0, worker_lease_seconds=2.0,
                                  dependency_sweep_seconds=3600) as server:
            assert server.node.engine_process is not None
            assert server.node.engine_process.pid is not None
            after = {"key": "after", "schedule": {"kind": "once", "after": 0},
                     "target": {"kind": "http", "url": receiver.url},
                     "payload": {"key": "after"},
                     "depends_on": [{"job": "echo", "strategy": "all", "window": "cd"}]}
            answer = await server.client.post("/v1/jobs", json=after)
            assert answer.status_code == 201, answer.text
            await until(lambda: _waiting(server, "after"), "the dependent run waiting")
            async with workers(server, "w1"):
                run_id = await submit(server, "echo", "shell", {"script": "echo hi"})
                run = await finished(server, run_id)
                assert run["state"] == "succeeded", run
                await receiver.wait_for(1, timeout=30)
            assert delivered_keys(receiver) == {"after"}
            await _metrics_include_engine(server)
    finally:
        await receiver.stop()


async def _waiting(server: RunningServer, key: str) -> bool:
    runs = (await server.client.get(f"/v1/jobs/{key}/runs")).json()["runs"]
    return bool(runs) and runs[0]["state"] == "waiting"


async def _metrics_include_engine(server: RunningServer) -> None:
    """/metrics on the API process shows the engine process's firing."""
    page = (await server.client.get("/metrics")).text
    fired = [line for line in page.splitlines()
             if line.startswith("cronwheel_runs_fired_total")]
    assert fired and sum(float(line.split()[-1]) for line in fired) >= 1, fired
    assert "cronwheel_engine_process_cpu_seconds_total" in page
