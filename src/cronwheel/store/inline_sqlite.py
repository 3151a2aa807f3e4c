"""An aiosqlite connection whose calls run at once on the calling thread.

aiosqlite gives each connection a thread and sends it every call: two thread hops and a
turn of the event loop per statement. For the writer of a server split in two processes
(store/writer_thread.py) each of those turns is time the file's write lock is held while the
other process waits; on a thread and a loop that do nothing but write, there is nothing to
hand the time to, so the statements run where they are called and a transaction holds the
lock for about what SQLite needs. SQLAlchemy's aiosqlite dialect still drives the connection
(`create_async_engine(..., async_creator=inline_connect(path))`), so every SQL module works
unchanged. aiosqlite publishes no interface for this: the class below keeps to the calls the
dialect makes (a queue's `put_nowait` of a future and a function), which tests/store cover.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Generator
from queue import SimpleQueue
from typing import Any

import aiosqlite


class _RunNow(SimpleQueue[tuple[asyncio.Future[Any] | None, Callable[[], Any]]]):
    """aiosqlite's queue to its thread, but each call runs when it is queued (nothing is
    ever left in it for a thread to take)."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the caller, as aiosqlite's thread does
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            # aiosqlite's stop() returns a private sentinel; its thread gives None instead
            future.set_result(None if type(result) is object else result)


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection, every call made on the caller's thread (no thread of its own)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no thread to start


def inline_connect(path: str) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    """An `async_creator` for SQLAlchemy: connections to `path` that run calls inline."""

    async def connect() -> aiosqlite.Connection:
        return await InlineConnection(lambda: sqlite3.connect(path, check_same_thread=False))

    return connect
