"""Fuzzing the worker endpoints and worker targets: never a 5xx, always a named field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_native_api import JSON
from tests.servers import RunningServer, running_server

WORKER_TARGET = st.fixed_dictionaries(
    {"kind": st.just("worker"),
     "type": st.sampled_from(["shell", "http", "python", "sql", "nope"]) | JSON},
    optional={
        "spec": st.fixed_dictionaries({}, optional={
            "command": st.text(max_size=20) | JSON, "script": JSON, "cwd": JSON, "env": JSON,
            "url": st.text(max_size=30) | JSON, "method": JSON, "expect": JSON,
            "callable": st.text(max_size=30) | JSON, "args": JSON, "kwargs": JSON,
            "database": JSON, "statement": JSON, "params": JSON}) | JSON,
        "group": st.text(max_size=70) | JSON,
        "route": st.sampled_from(["random", "broadcast", "x"]) | JSON,
        "timeout": JSON,
    },
)
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "fuzz.db") as running:
        yield running


def named(answer: Any) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert error["message"] and error.get("field")


@FUZZ
@given(target=WORKER_TARGET, alert=JSON)
async def test_fuzzed_worker_jobs(server: RunningServer, target: Any, alert: Any) -> None:
    body = {"key": "fuzz", "schedule": {"kind": "once", "at": "2099-01-01T00:00:00Z"},
            "target": target, "alert": alert}
    answer = await server.client.post("/v1/jobs", json=body, params={"replace": "true"})
    named(answer)


@FUZZ
@given(register=JSON, beat=JSON, lease=JSON, finish=JSON, switch=JSON,
       offset=st.integers(min_value=-5, max_value=2**70) | st.text(max_size=5),
       stream=st.text(max_size=8))
async def test_fuzzed_protocol_bodies(
    server: RunningServer, register: Any, beat: Any, lease: Any, finish: Any, switch: Any,
    offset: Any, stream: str,
) -> None:
    client = server.client
    named(await client.post("/v1/workers", json=register))
    ok = await client.post("/v1/workers", json={"name": "fuzzer", "groups": ["default"]})
    worker = ok.json()["id"]
    named(await client.post(f"/v1/workers/{worker}/heartbeat", json=beat))
    named(await client.post(f"/v1/workers/{worker}/lease", json=lease))
    named(await client.post(f"/v1/workers/{worker}/tasks/none/finish", json=finish))
    named(await client.post(f"/v1/workers/{worker}/tasks/none/output",
                            params={"offset": offset, "stream": stream}, content=b"x"))
    named(await client.post("/v1/workers/switch", json=switch))
    named(await client.get("/v1/runs/none/log", params={"offset": offset, "stream": stream}))
