"""The writes of a server split in two processes on SQLite: the API process's transactions
run on a thread of their own with the connection's calls made inline, so a crowded event loop
cannot hold the file's write lock, and the two processes take turns at the lock with the
engine first. Real SQLite files, real processes for the lock."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from cronwheel.dburl import async_url
from cronwheel.domain.errors import NotFound
from cronwheel.store.connection import Database
from cronwheel.store.inline_sqlite import inline_connect
from cronwheel.store.pg import DUE_CHANNEL
from cronwheel.store.write_turns import WriteTurns
from cronwheel.store.writer_thread import ThreadedWriteQueue


def _table(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")


async def test_an_inline_connection_never_lets_the_loop_run_inside_a_transaction(
    tmp_path: Path
) -> None:
    path = tmp_path / "inline.db"
    _table(path)
    engine = create_async_engine("sqlite+aiosqlite://", async_creator=inline_connect(str(path)))
    turns: list[str] = []

    async def other() -> None:  # would run at the transaction's first await on aiosqlite
        turns.append("other task")

    threads = threading.active_count()
    try:
        async with engine.begin() as conn:
            task = asyncio.ensure_future(other())
            for i in range(20):
                await conn.execute(text("INSERT INTO t VALUES (:k, :v)"), {"k": f"k{i}", "v": i})
            turns.append("committed")
            assert threading.active_count() == threads  # no thread per connection
        await task
        assert turns == ["committed", "other task"]
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT sum(v) FROM t"))).scalar() == 190
            with pytest.raises(IntegrityError):  # the driver's errors reach the caller
                await conn.execute(text("INSERT INTO t VALUES ('k1', 0)"))
            await conn.rollback()
    finally:
        await engine.dispose()


async def test_writes_on_their_thread_commit_while_the_callers_loop_is_blocked(
    tmp_path: Path
) -> None:
    """The point of the thread: a caller's loop busy for 300 ms (fifty reads being served)
    does not keep a queued write, and so the file's write lock, waiting for it."""
    db = Database(async_url(f"sqlite:///{tmp_path / 'cw.db'}"))
    notes: list[tuple[str, str]] = []
    db.relay(notes.extend, writer_thread=True)
    await db.start()
    try:
        async def add(conn: AsyncConnection) -> str:
            await conn.execute(text(
                "INSERT INTO nodes (owner, name, address, version, started_at, heartbeat_at)"
                " VALUES ('n1', 'n', 'a', 'v', 0, 0)"))
            await db.notify(conn, DUE_CHANNEL, 5)
            return "added"

        written = asyncio.ensure_future(db.write(add))
        await asyncio.sleep(0)  # the op is handed to the writer's thread
        assert _blocking_wait_for_a_node(tmp_path / "cw.db", 0.3)  # the loop blocked meanwhile
        assert await written == "added"
        assert notes == [(DUE_CHANNEL, "5")]  # passed on once committed, on the caller's loop

        async def missing(conn: AsyncConnection) -> None:
            raise NotFound("no such job", "key")

        with pytest.raises(NotFound):  # the op's own errors reach the caller as they are
            await db.write(missing)
    finally:
        await db.close()
    assert not any(t.name == "cronwheel-writer" for t in threading.enumerate())


async def test_many_writes_handed_over_together_each_get_their_own_answer(
    tmp_path: Path
) -> None:
    """Hand-overs to the writer's thread and back go in batches: a hundred concurrent writes,
    every tenth refused, each caller gets its own result or its own error."""
    db = Database(async_url(f"sqlite:///{tmp_path / 'cw.db'}"))
    db.relay(lambda _notes: None, writer_thread=True)
    await db.start()
    try:
        def op(i: int) -> Callable[[AsyncConnection], Awaitable[int]]:
            async def write(conn: AsyncConnection) -> int:
                if i % 10 == 0:
                    raise NotFound(f"no job {i}", "key")
                await conn.execute(text(
                    "INSERT INTO nodes (owner, name, address, version, started_at, heartbeat_at)"
                    " VALUES (:o, 'n', 'a', 'v', 0, 0)"), {"o": f"n{i}"})
                return i
            return write

        answers = await asyncio.gather(*(db.write(op(i)) for i in range(100)),
                                       return_exceptions=True)
        for i, answer in enumerate(answers):
            if i % 10 == 0:
                assert isinstance(answer, NotFound) and str(i) in answer.message
            else:
                assert answer == i
        with sqlite3.connect(tmp_path / "cw.db") as conn:
            assert conn.execute("SELECT count(*) FROM nodes").fetchone()[0] == 90
    finally:
        await db.close()


def _blocking_wait_for_a_node(path: Path, seconds: float) -> bool:
    """Blocks the calling thread (the event loop's): whether a row shows up in `nodes`."""
    end = time.monotonic() + seconds
    with sqlite3.connect(path) as watcher:
        while time.monotonic() < end:
            if watcher.execute("SELECT count(*) FROM nodes").fetchone()[0]:
                return True
            time.sleep(0.002)
    return False


async def test_a_threaded_queue_refuses_work_before_it_starts(tmp_path: Path) -> None:
    queue = ThreadedWriteQueue(lambda: create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/x"))

    async def nothing(conn: AsyncConnection) -> None:
        return None

    with pytest.raises(RuntimeError, match="not running"):
        await queue.run(nothing)
    await queue.close()  # closing what never started is fine


HOLDER = textwrap.dedent("""
    import asyncio, sys, time
    from cronwheel.store.write_turns import WriteTurns

    async def main() -> None:
        turns = WriteTurns(sys.argv[1], first=False)
        await turns.take()
        print("holding", flush=True)
        sys.stdin.readline()  # hold the turn until told
        turns.give_back()
        await turns.take()  # the API process wants its next turn at once
        print("again", time.monotonic(), flush=True)
        turns.give_back()
        turns.close()

    asyncio.run(main())
""")


def _api_process_holding_the_turn(database: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", HOLDER, database], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(Path(__file__).parents[2] / "src")})


async def test_the_engine_gets_the_turn_the_moment_the_api_process_lets_it_go(
    tmp_path: Path
) -> None:
    """An API process that writes back to back cannot take the turn from a waiting engine,
    and the engine is not left sleeping once the turn is free (SQLite's busy handler would
    sleep up to 100 ms between tries)."""
    database = str(tmp_path / "cw.db")
    api = _api_process_holding_the_turn(database)
    engine = WriteTurns(database, first=True)
    try:
        assert api.stdout is not None and api.stdin is not None
        assert api.stdout.readline().strip() == "holding"
        waiting = asyncio.ensure_future(engine.take())
        await asyncio.sleep(0.2)
        assert not waiting.done()  # the API process holds the turn
        api.stdin.write("go\n")
        api.stdin.flush()
        await asyncio.wait_for(waiting, 5)
        got_it = time.monotonic()
        await asyncio.sleep(0.2)  # the engine's transaction: the API process must wait
        engine.give_back()
        line = await asyncio.to_thread(api.stdout.readline)
        word, when = line.split()
        assert word == "again" and float(when) >= got_it + 0.2
        assert api.wait(5) == 0
    finally:
        engine.close()
        if api.poll() is None:
            api.kill()
