"""`cronwheel serve` as a real process, killed with SIGKILL mid-window and started again.

Afterwards the history must hold: every accepted job delivered at least once, exactly one run
per occurrence, every repeat of a delivery carrying the same idempotency key, nothing in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.receivers import HttpReceiver
from tests.support import ADMIN_HEADERS, free_port


@contextlib.asynccontextmanager
async def serve(database: Path, port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    env = os.environ | {"CRONWHEEL_DATABASE_URL": f"sqlite:///{database}",
                        "CRONWHEEL_PORT": str(port), "CRONWHEEL_LOG_LEVEL": "warning"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cronwheel", "serve", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_healthy(port, proc)
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 15)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def wait_healthy(port: int, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                err = await proc.stderr.read() if proc.stderr else b""
                raise AssertionError(f"server exited: {err.decode()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("server did not become healthy")


def history(database: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Runs per job key, and state per run id, read straight from the database file."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        per_job = dict(conn.execute("SELECT job_key, count(*) FROM runs GROUP BY job_key"))
        states = dict(conn.execute("SELECT id, state FROM runs"))
    return per_job, states


@pytest.mark.timing
async def test_sigkill_mid_window_loses_nothing_and_fires_nothing_twice(
    tmp_path: Path,
) -> None:
    receiver = await HttpReceiver(delay=0.05).start()
    database = tmp_path / "crash.sqlite"
    port = free_port()
    count = 400
    try:
        async with serve(database, port) as first:
            base = time.time() + 1.0
            jobs = [
                {"key": f"job-{i:04}",
                 "schedule": {"kind": "once", "at": _iso(base + 2.0 * i / count)},
                 "target": {"kind": "http", "url": receiver.url},
                 "payload": {"n": i}}
                for i in range(count)
            ]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                         headers=ADMIN_HEADERS) as client:
                accepted = await client.post("/v1/jobs/batch", json={"jobs": jobs}, timeout=30)
                assert accepted.status_code == 201, accepted.text
            await asyncio.sleep(max(0.0, base + 1.0 - time.time()))  # halfway through
            first.send_signal(signal.SIGKILL)
            await first.wait()
        delivered_before = len(receiver.received)
        assert 0 < delivered_before < count, "the kill should land mid-window"
        async with serve(database, port):
            await receiver.wait_for(count, timeout=30)
            await _settled(database, count)
    finally:
        await receiver.stop()

    keys_by_job: dict[str, set[str]] = defaultdict(set)
    for request in receiver.received:
        keys_by_job[f"job-{request.json()['n']:04}"].add(request.headers["Idempotency-Key"])
    assert len(keys_by_job) == count  # every accepted job delivered
    assert all(len(keys) == 1 for keys in keys_by_job.values())  # repeats share the key
    per_job, states = history(database)
    assert per_job == {f"job-{i:04}": 1 for i in range(count)}  # one run per occurrence
    assert set(states.values()) == {"succeeded"}  # nothing left in flight
    assert set(states) == set().union(*keys_by_job.values())


async def _settled(database: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _per_job, states = history(database)
        if len(states) == count and set(states.values()) == {"succeeded"}:
            return
        await asyncio.sleep(0.1)


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()
