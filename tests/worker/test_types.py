"""The python, http and sql job types, each run by the executor in a real child process."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from cronwheel import __version__
from tests.receivers import HttpReceiver
from tests.stores import postgres_database
from tests.support import free_port
from tests.worker.support import execute, make_task

HELPERS = "tests.worker.helpers"


def _lines(data: bytes | bytearray) -> list[Any]:
    return [orjson.loads(line) for line in bytes(data).splitlines()]


class TestPython:
    async def test_the_return_value_is_the_result(self) -> None:
        ran = await execute(make_task("python", {"callable": f"{HELPERS}:add", "args": [2],
                                                 "kwargs": {"b": 3}}))
        assert ran.outcome.to_json() == {"outcome": "success", "exit_code": 0}
        assert ran.result.json() == 5
        assert "adding 2 and 3" in ran.log.text

    async def test_a_coroutine_function_is_awaited(self) -> None:
        ran = await execute(make_task("python", {"callable": f"{HELPERS}:greet",
                                                 "args": ["ada"]}))
        assert ran.outcome.outcome == "success"
        assert ran.result.json() == {"hello": "ada"}

    async def test_values_json_cannot_hold_become_strings(self) -> None:
        ran = await execute(make_task("python", {"callable": f"{HELPERS}:when"}))
        assert ran.result.json() == "2024-02-29"

    async def test_the_function_sees_the_task_and_its_payload(self) -> None:
        ran = await execute(make_task("python", {"callable": f"{HELPERS}:context"},
                                      payload=[1, 2]))
        seen = ran.result.json()
        assert seen["CRONWHEEL_PAYLOAD"] == "[1,2]"
        assert seen["CRONWHEEL_TASK_ID"] == "task-1"
        assert "CRONWHEEL_RESULT_FILE" in seen  # the child protocol's own variables

    async def test_an_exception_fails_with_its_traceback_in_the_log(self) -> None:
        ran = await execute(make_task("python", {"callable": f"{HELPERS}:boom"}))
        assert ran.outcome.to_json() == {"outcome": "failure", "exit_code": 1}
        assert "Traceback" in ran.log.text
        assert "RuntimeError: this job is meant to fail" in ran.log.text

    async def test_a_missing_module_or_function_fails(self) -> None:
        ran = await execute(make_task("python", {"callable": "no_such_module_xyz:run"}))
        assert ran.outcome.outcome == "failure"
        assert "ModuleNotFoundError" in ran.log.text
        ran = await execute(make_task("python", {"callable": f"{HELPERS}:nothing"}))
        assert "AttributeError" in ran.log.text

    async def test_a_timeout_stops_the_child(self) -> None:
        ran = await execute(make_task("python", {"callable": f"{HELPERS}:greet",
                                                 "args": ["x", 300]}, timeout=1.0))
        assert ran.outcome.outcome == "timeout"


class TestHttp:
    async def test_the_body_is_the_result_and_the_status_is_logged(
        self, receiver: HttpReceiver
    ) -> None:
        spec = {"url": receiver.url, "method": "POST", "headers": {"X-Job": "1"},
                "body": {"invoice": 42}}
        ran = await execute(make_task("http", spec))
        assert ran.outcome.outcome == "success"
        assert bytes(ran.result.data) == b"ok"
        assert "HTTP 200 OK" in ran.log.text
        [request] = receiver.received
        assert request.json() == {"invoice": 42}
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Job"] == "1"
        assert request.headers["User-Agent"] == f"cronwheel/{__version__}"

    async def test_an_unexpected_status_fails(self, receiver: HttpReceiver) -> None:
        receiver.script = [503, 503]
        ran = await execute(make_task("http", {"url": receiver.url}))
        assert ran.outcome.outcome == "failure"
        assert "HTTP 503, expected 2xx" in ran.log.text
        ran = await execute(make_task("http", {"url": receiver.url, "expect": [503]}))
        assert ran.outcome.outcome == "success"
        assert bytes(ran.result.data) == b"no"

    async def test_a_large_body_streams_to_the_result(self) -> None:
        body = b"x" * (3 * 1024 * 1024)

        async def handler(_: web.Request) -> web.Response:
            return web.Response(body=body)

        app = web.Application()
        app.router.add_get("/big", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            ran = await execute(make_task("http", {"url": f"http://127.0.0.1:{port}/big"}))
        finally:
            await runner.cleanup()
        assert ran.outcome.outcome == "success"
        assert ran.result.size == len(body)
        assert ran.result.writes >= 3  # sent in pieces
        assert f"{len(body)} bytes of body" in ran.log.text

    async def test_a_metadata_address_is_refused_without_a_connection(self) -> None:
        ran = await execute(make_task("http", {"url": "http://169.254.169.254/latest/meta-data"}))
        assert ran.outcome.outcome == "failure"
        assert "target refused: 169.254.169.254" in ran.log.text

    async def test_the_workers_own_policy_applies(
        self, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CRONWHEEL_TARGET_ALLOW", "")  # not even loopback
        ran = await execute(make_task("http", {"url": receiver.url}))
        assert ran.outcome.outcome == "failure"
        assert "internal address" in ran.log.text
        assert receiver.received == []

    async def test_the_request_goes_to_the_checked_address_named_as_the_job_named_it(
        self, receiver: HttpReceiver
    ) -> None:
        for host in ("0x7f.1", "localhost"):
            ran = await execute(make_task("http", {"url": f"http://{host}:{receiver.port}/x"}))
            assert ran.outcome.outcome == "success", ran.log.text
            assert receiver.received[-1].headers["Host"] == f"{host}:{receiver.port}"

    async def test_a_refused_connection_fails(self) -> None:
        ran = await execute(make_task("http", {"url": f"http://127.0.0.1:{free_port()}/"}))
        assert ran.outcome.outcome == "failure"
        assert "ConnectError" in ran.log.text


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table items (id integer primary key, name text)")
        conn.executemany("insert into items (name) values (?)",
                         [(f"item {i}",) for i in range(2_500)])
    conn.close()
    return f"sqlite:///{path}"


@pytest.fixture
async def postgres() -> AsyncIterator[str]:
    async with postgres_database() as url:
        yield url


class TestSql:
    async def test_rows_are_json_lines_and_the_count_is_logged(self, sqlite_db: str) -> None:
        spec = {"database": "app", "statement": "select id, name from items where id <= :top",
                "params": {"top": 1_500}}
        ran = await execute(make_task("sql", spec), databases={"app": sqlite_db})
        assert ran.outcome.outcome == "success"
        rows = _lines(ran.result.data)
        assert len(rows) == 1_500
        assert rows[0] == {"id": 1, "name": "item 0"}
        assert "1500 rows" in ran.log.text

    async def test_a_change_is_committed_and_counted(self, sqlite_db: str) -> None:
        spec = {"database": "app", "statement": "delete from items where id > 10"}
        ran = await execute(make_task("sql", spec), databases={"app": sqlite_db})
        assert ran.outcome.outcome == "success"
        assert "2490 rows affected" in ran.log.text
        path = sqlite_db.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            assert conn.execute("select count(*) from items").fetchone() == (10,)
        conn.close()

    async def test_an_unknown_database_fails_clearly(self, sqlite_db: str) -> None:
        spec = {"database": "reports", "statement": "select 1"}
        ran = await execute(make_task("sql", spec), databases={"app": sqlite_db})
        assert ran.outcome.outcome == "failure"
        assert "database 'reports' is not configured on this worker (configured: app)" in (
            ran.log.text)
        assert "Traceback" not in ran.log.text

    async def test_a_bad_statement_fails(self, sqlite_db: str) -> None:
        spec = {"database": "app", "statement": "select nope from items"}
        ran = await execute(make_task("sql", spec), databases={"app": sqlite_db})
        assert ran.outcome.outcome == "failure"
        assert "no such column" in ran.log.text

    async def test_postgresql(self, postgres: str) -> None:
        databases = {"pg": postgres}
        setup = {"database": "pg", "statement":
                 "create table t as select g as n, 'row ' || g as label, now() as at "
                 "from generate_series(1, 5000) g"}
        assert (await execute(make_task("sql", setup), databases=databases)).outcome.outcome \
            == "success"
        update = {"database": "pg", "statement": "update t set label = 'x' where n > :n",
                  "params": {"n": 4000}}
        ran = await execute(make_task("sql", update), databases=databases)
        assert "1000 rows affected" in ran.log.text
        query = {"database": "pg", "statement": "select n, label, at from t order by n"}
        ran = await execute(make_task("sql", query), databases=databases)
        assert ran.outcome.outcome == "success"
        rows = _lines(ran.result.data)
        assert len(rows) == 5_000
        assert rows[0]["n"] == 1 and rows[0]["label"] == "row 1"
        assert rows[-1]["label"] == "x"
        assert "5000 rows" in ran.log.text
