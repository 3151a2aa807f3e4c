"""`cronwheel serve` as an operator runs it: JSON log lines carrying each event's fields, an
access log that can be turned off, one line (exit 2) for a wrong setting, /docs offline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_crash_restart import wait_healthy
from tests.support import ADMIN_HEADERS, TEST_ADMIN_TOKEN, free_port


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, **env: str) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A node whose JSON log lines are collected, parsed, as they come."""
    port = free_port()
    variables = {k: v for k, v in os.environ.items() if not k.startswith("CRONWHEEL_")} | {
        "CRONWHEEL_DATABASE_URL": f"sqlite:///{tmp_path / 'cw.db'}",
        "CRONWHEEL_PORT": str(port), "CRONWHEEL_DELAYJOB_GRPC_PORT": "0",
        "CRONWHEEL_LOG_FORMAT": "json", "CRONWHEEL_ADMIN_TOKEN": TEST_ADMIN_TOKEN} | env
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cronwheel", "serve", env=variables,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    lines: list[dict[str, Any]] = []

    async def collect() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            lines.append(json.loads(raw))  # every line is one JSON object

    reader = asyncio.create_task(collect())
    try:
        await wait_healthy(port, proc)
        yield f"http://127.0.0.1:{port}", lines
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
        await reader


async def _event(lines: list[dict[str, Any]], name: str, timeout: float = 10,
                 **fields: Any) -> dict[str, Any]:
    """The first line of event `name` with these `fields`, once it is logged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in lines if line.get("event") == name
                 and all(line.get(k) == v for k, v in fields.items())]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {name} event in {[line.get('event') for line in lines]}")


async def test_a_failed_delivery_is_one_json_line_with_its_fields(tmp_path: Path) -> None:
    closed = free_port()
    async with (serve(tmp_path) as (base, lines),
                httpx.AsyncClient(base_url=base, headers=ADMIN_HEADERS) as http):
        job = {"key": "invoice-42", "namespace": "billing",
               "schedule": {"kind": "once", "after": 0},
               "target": {"kind": "http", "url": f"http://127.0.0.1:{closed}/due"},
               "retry": {"max_attempts": 1}}
        assert (await http.post("/v1/jobs", json=job)).status_code == 201
        failed = await _event(lines, "delivery.failed")
        request = await _event(lines, "http.request", method="POST")
    assert failed["job_key"] == "invoice-42" and failed["namespace"] == "billing"
    assert failed["attempt"] == 1 and failed["run_id"]
    assert failed["target"] == f"http http://127.0.0.1:{closed}/due"
    assert failed["error"]
    assert (request["method"], request["path"], request["status"]) == ("POST", "/v1/jobs", 201)


async def test_the_access_log_can_be_turned_off(tmp_path: Path) -> None:
    async with serve(tmp_path, CRONWHEEL_ACCESS_LOG="false") as (base, lines):
        async with httpx.AsyncClient(base_url=base, headers=ADMIN_HEADERS) as http:
            for _ in range(3):
                assert (await http.get("/v1/jobs")).status_code == 200
        await asyncio.sleep(0.3)
    assert lines, "the node logged nothing at all"
    assert not [line for line in lines if line.get("event") == "http.request"]


async def test_docs_are_served_without_the_internet(tmp_path: Path) -> None:
    async with serve(tmp_path) as (base, _lines), httpx.AsyncClient(base_url=base) as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        assets = [part.split('"')[0] for part in page.text.split('src="')[1:]]
        assets += [part.split('"')[0] for part in page.text.split('href="')[1:]]
        assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
        for asset in assets:
            assert (await http.get(asset)).status_code == 200, asset
        spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")  # Swagger UI 5 is needed to show it


async def test_a_wrong_setting_stops_serve_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRONWHEEL_")}
    for name, value, expected in (
        ("CRONWHEEL_PORT", "eighty", "error: CRONWHEEL_PORT: Input should be a valid integer"),
        ("CRONWHEEL_LOG_FORMAT", "yaml", "error: CRONWHEEL_LOG_FORMAT: Input should be 'text'"),
        ("CRONWHEEL_DATABASE_URL", "mysql://db/x",
         "error: CRONWHEEL_DATABASE_URL: 'mysql' databases are not supported"),
    ):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cronwheel", "serve", env=env | {name: value},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert out == b""
        assert proc.returncode == 2, err
        assert err.decode().count("\n") == 1 and err.decode().startswith(expected), err
