"""The engine through a real node: firing, retries, restarts, back-pressure, real transports.

What depends on engine time alone (exact instants, pause and resume, cancel, wake-ups, misfires)
runs on the manual clock in test_engine_clock.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson

from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server
from tests.support import wait_until


def job(key: str, url: str, after: float = 0.05, **extra: Any) -> dict[str, Any]:
    return {"key": key, "schedule": {"kind": "once", "after": after},
            "target": {"kind": "http", "url": url}, "payload": {"key": key}, **extra}


FAST_RETRY = {"max_attempts": 3, "initial_backoff": 0.05, "max_backoff": 0.2, "jitter": 0}


async def wait_run_state(server: RunningServer, key: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        runs = (await server.client.get(f"/v1/jobs/{key}/runs")).json()["runs"]
        if runs and runs[0]["state"] == state:
            detail: dict[str, Any] = (await server.client.get(f"/v1/runs/{runs[0]['id']}")).json()
            return detail
        await asyncio.sleep(0.02)
    raise AssertionError(f"run of {key} never reached {state}: {runs}")


async def test_failed_deliveries_are_retried_with_the_same_idempotency_key(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    receiver.script = [500, 503]
    await server.client.post("/v1/jobs", json=job("flaky", receiver.url, retry=FAST_RETRY))
    got = await receiver.wait_for(3)
    assert len({r.headers["Idempotency-Key"] for r in got}) == 1
    assert [r.headers["Cronwheel-Attempt"] for r in got] == ["1", "2", "3"]
    run = await wait_run_state(server, "flaky", "succeeded")
    assert run["id"] == got[0].headers["Idempotency-Key"]
    assert [(a["number"], a["outcome"], a["status_code"]) for a in run["attempt_log"]] == [
        (1, "failure", 500), (2, "failure", 503), (3, "success", 200)]


async def test_a_client_error_is_not_retried(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    receiver.script = [404]
    await server.client.post("/v1/jobs", json=job("gone", receiver.url, retry=FAST_RETRY))
    run = await wait_run_state(server, "gone", "failed")  # final: nothing can follow it
    assert run["attempts"] == 1 and run["last_error"] == "HTTP 404"
    assert len(receiver.received) == 1


async def test_retries_stop_at_max_attempts(server: RunningServer, receiver: HttpReceiver) -> None:
    receiver.script = [500, 500, 500]
    retry = FAST_RETRY | {"max_attempts": 2}
    await server.client.post("/v1/jobs", json=job("down", receiver.url, retry=retry))
    run = await wait_run_state(server, "down", "failed")
    assert [a["outcome"] for a in run["attempt_log"]] == ["failure", "failure"]
    assert len(receiver.received) == 2


async def test_unreachable_receiver_records_connection_errors(server: RunningServer) -> None:
    body = job("nobody", "http://127.0.0.1:9/none", retry=FAST_RETRY | {"max_attempts": 2})
    await server.client.post("/v1/jobs", json=body)
    run = await wait_run_state(server, "nobody", "failed")
    assert [a["outcome"] for a in run["attempt_log"]] == ["error", "error"]
    assert run["attempt_log"][0]["error"]


async def test_trigger_now_runs_once_more_with_an_override(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    await server.client.post("/v1/jobs", json=job("manual", receiver.url, after=3600))
    resp = await server.client.post("/v1/jobs/manual/trigger", json={"payload": {"now": 1}})
    assert resp.status_code == 202 and resp.json()["kind"] == "manual"
    [got] = await receiver.wait_for(1)
    assert got.json() == {"now": 1}
    assert got.headers["Idempotency-Key"] == resp.json()["id"]
    still = (await server.client.get("/v1/jobs/manual")).json()
    assert still["state"] == "active" and still["last_fire_at"] is None


async def test_a_slow_receiver_does_not_hold_up_others(tmp_path: Path) -> None:
    slow = await HttpReceiver(delay=2.0).start()
    fast = await HttpReceiver().start()
    try:
        async with running_server(
            tmp_path / "db.sqlite", delivery_per_target=4, shutdown_grace_seconds=0.1
        ) as server:
            batch = [job(f"slow-{i}", slow.url, after=0.2) for i in range(20)]
            batch.append(job("fast", fast.url, after=0.3))
            created = await server.client.post("/v1/jobs/batch", json={"jobs": batch})
            assert created.status_code == 201, created.text
            started = time.time()
            [got] = await fast.wait_for(1, timeout=5)
            assert got.at - started < 1.5  # well before the slow receiver answers anyone
    finally:
        await slow.stop()
        await fast.stop()


async def test_more_due_jobs_than_the_window_and_the_dispatcher_hold(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    async with running_server(tmp_path / "db.sqlite", claim_limit=10,
                              delivery_capacity=10) as server:
        batch = [job(f"j{i:03}", receiver.url, after=0.1) for i in range(150)]
        assert (await server.client.post("/v1/jobs/batch", json={"jobs": batch})).is_success
        got = await receiver.wait_for(150, timeout=20)
        keys = [r.json()["key"] for r in got]
        assert sorted(keys) == [f"j{i:03}" for i in range(150)]
        assert len({r.headers["Idempotency-Key"] for r in got}) == 150


async def test_jobs_pending_across_a_restart_fire_once_after_it(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    database = tmp_path / "restart.sqlite"
    async with running_server(database) as server:
        batch = [job(f"r{i}", receiver.url, after=0.8) for i in range(5)]
        assert (await server.client.post("/v1/jobs/batch", json={"jobs": batch})).is_success
        due = time.time() + 0.8  # no earlier than any job's instant
    await wait_until(lambda: time.time() > due)  # everything came due while no server ran
    assert receiver.received == []
    async with running_server(database) as server:
        got = await receiver.wait_for(5)
        assert sorted(r.json()["key"] for r in got) == [f"r{i}" for i in range(5)]
        for i in range(5):
            runs = (await server.client.get(f"/v1/jobs/r{i}/runs")).json()["runs"]
            assert len(runs) == 1
    assert len(receiver.received) == 5


async def test_tcp_socket_target_through_the_engine(server: RunningServer) -> None:
    lines: list[bytes] = []
    got = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append(await reader.readline())
        writer.write(b"OK\n")
        await writer.drain()
        writer.close()
        got.set()

    sock = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = sock.sockets[0].getsockname()[1]
    try:
        body = {"key": "sock", "schedule": {"kind": "once", "after": 0.05},
                "target": {"kind": "tcp", "host": "127.0.0.1", "port": port},
                "payload": {"line": "one\ntwo"}}
        assert (await server.client.post("/v1/jobs", json=body)).status_code == 201
        await asyncio.wait_for(got.wait(), 10)
        frame = orjson.loads(lines[0])
        assert frame["payload"] == {"line": "one\ntwo"} and frame["job_key"] == "sock"
        run = await wait_run_state(server, "sock", "succeeded")
        assert frame["idempotency_key"] == run["id"]
    finally:
        sock.close()
        await sock.wait_closed()
