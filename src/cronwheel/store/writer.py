"""Group commit: write operations queued by many callers share one transaction.

Each operation runs inside its own savepoint, so one that fails (a conflict, an illegal
transition) is rolled back alone while the rest of the group commits. SQLite has one writer
connection; that is this queue's consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
WriteOp = Callable[[AsyncConnection], Awaitable[T]]


class WriteQueue:
    def __init__(self, engine: AsyncEngine, max_group: int = 512) -> None:
        self._engine = engine
        self._max_group = max_group
        self._queue: asyncio.Queue[tuple[WriteOp[Any], asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._consume(), name="cronwheel-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self, op: WriteOp[T]) -> T:
        if self._task is None:  # not started: run inline (migrations, tools)
            async with self._engine.begin() as conn:
                return await op(conn)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((op, future))
        return await future

    async def _consume(self) -> None:
        async with self._engine.connect() as conn:
            while True:
                group = [await self._queue.get()]
                while len(group) < self._max_group and not self._queue.empty():
                    group.append(self._queue.get_nowait())
                await self._commit_group(conn, group)

    async def _commit_group(
        self, conn: AsyncConnection, group: list[tuple[WriteOp[Any], asyncio.Future[Any]]]
    ) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            async with conn.begin():
                for op, future in group:
                    try:
                        async with conn.begin_nested():
                            outcomes.append((future, await op(conn), None))
                    except Exception as exc:  # the op's own failure, rolled back alone
                        outcomes.append((future, None, exc))
        except Exception as exc:  # the commit itself failed: nobody's write landed
            for _op, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, result, error in outcomes:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
