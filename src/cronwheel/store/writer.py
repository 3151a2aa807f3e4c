"""Group commit: write operations queued by many callers share one transaction.

The contract for an operation: it may raise an expected error (not found, illegal state)
only before it writes anything, so the rest of its group can still commit. Any other failure
rolls the group back and replays each operation in a transaction of its own, so one bad
operation fails alone. Rows an operation only adds (audit entries) can wait for the end of
the transaction (`insert_at_commit`): a group's go in one statement, still before its commit,
so they commit with their changes or not at all. An operation may bring a `Prelude`, work it
needs done first (the rows it inserts): consecutive operations of a group whose preludes are
of one class have theirs done in one go, just before the first of them runs (one INSERT for
the jobs of many single submits). Engine operations (claims, fires, results) take an urgent
lane, so a fire never waits behind a queue of submits. SQLite has one writer connection: this
queue's consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cronwheel.domain.errors import DomainError
from cronwheel.store.write_turns import WriteTurns

T = TypeVar("T")
NOTES = "cronwheel_notes"  # conn.info key: wake-ups a transaction holds until it commits
Note = tuple[str, str]  # (channel, value), as PostgreSQL's NOTIFY carries them
AT_COMMIT = "cronwheel_at_commit"  # conn.info key: {table: [row, ...]} to insert at commit
WriteOp = Callable[[AsyncConnection], Awaitable[T]]


class Prelude(ABC):
    """Work an operation needs done before it runs, in its transaction. `run_all` does that of
    several preludes of its class at once, setting `done` on each; the operation does its own
    if it finds it not done (run alone, or replayed after its group rolled back)."""

    done = False

    @classmethod
    @abstractmethod
    async def run_all(cls, conn: AsyncConnection, preludes: list[Any]) -> None:
        """Do the work of `preludes` (all of this class) in one go, on `conn`."""


Pending = tuple[WriteOp[Any], asyncio.Future[Any], Prelude | None]

log = logging.getLogger("cronwheel.writer")


def insert_at_commit(conn: AsyncConnection, table: Table, row: dict[str, Any]) -> None:
    """Insert `row` into `table` just before this transaction commits (with the rows other
    operations of its group add there, in one statement)."""
    conn.info.setdefault(AT_COMMIT, {}).setdefault(table, []).append(row)


async def _insert_waiting(conn: AsyncConnection) -> None:
    for table, rows in conn.info.pop(AT_COMMIT, {}).items():
        await conn.execute(insert(table), rows)


def _forget(conn: AsyncConnection) -> None:
    """A transaction rolled back: what it held for its commit goes with it (the replay notes
    it again). Not on a lost connection: reading `info` there would make SQLAlchemy reconnect
    from synchronous code (and what it held went with the connection)."""
    if not (conn.closed or conn.invalidated):
        conn.info.pop(NOTES, None)
        conn.info.pop(AT_COMMIT, None)


class WriteQueue:
    def __init__(self, engine: AsyncEngine, max_group: int = 256,
                 turns: WriteTurns | None = None) -> None:
        self._engine = engine
        self.turns = turns  # a split server's two writers take turns at the file (write_turns)
        # told the wake-ups of each committed transaction (SQLite's engine process link)
        self.on_commit: Callable[[list[Note]], None] | None = None
        self._max_group = max_group
        self._urgent: deque[Pending] = deque()
        self._normal: deque[Pending] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._consume(), name="cronwheel-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.turns is not None:
            self.turns.close()

    async def run(self, op: WriteOp[T], urgent: bool = False,
                  prelude: Prelude | None = None) -> T:
        if self._task is None:  # not started: run inline (migrations, tools)
            async with self._engine.connect() as conn:
                try:
                    async with conn.begin():
                        result = await op(conn)
                        await _insert_waiting(conn)
                except BaseException:
                    _forget(conn)
                    raise
                self._committed(conn)
                return result
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append((op, future, prelude))
        self._ready.set()
        return await future

    def _take_group(self) -> list[Pending]:
        group: list[Pending] = []
        for lane in (self._urgent, self._normal):
            while lane and len(group) < self._max_group:
                group.append(lane.popleft())
        return group

    async def _consume(self) -> None:
        """Groups, one after another, on one connection held between them: checking it out
        and back in (a reset ROLLBACK, one more thread hop on SQLite) per group cost more
        than many a group's statements. A failed connection is dropped for a new one."""
        conn: AsyncConnection | None = None
        try:
            while True:
                await self._ready.wait()
                group = self._take_group()
                if not self._urgent and not self._normal:
                    self._ready.clear()
                if not group:
                    continue
                try:
                    if conn is None:
                        conn = await self._engine.connect()
                    await self._write_group(conn, group)
                    if conn.closed or conn.invalidated:  # lost: its ops failed one by one
                        await _dropped(conn)
                        conn = None
                except Exception as exc:  # the connection itself failed
                    log.exception("writer.connection_failed")
                    _fail_all(group, exc)
                    await _dropped(conn)
                    conn = None
                    await asyncio.sleep(0.1)
        finally:
            await _dropped(conn)

    async def _write_group(self, conn: AsyncConnection, group: list[Pending]) -> None:
        turns = self.turns
        if turns is not None:
            await turns.take()
        try:
            if not await self._commit_group(conn, group):
                await self._replay_alone(conn, group)
        finally:
            if turns is not None:
                turns.give_back()

    async def _commit_group(self, conn: AsyncConnection, group: list[Pending]) -> bool:
        """One transaction for the group; False when it had to be rolled back."""
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            async with conn.begin():
                for index, (op, future, prelude) in enumerate(group):
                    if prelude is not None and not prelude.done:
                        await _run_preludes(conn, group, index, prelude)
                    try:
                        outcomes.append((future, await op(conn), None))
                    except DomainError as exc:  # raised before the op wrote anything
                        outcomes.append((future, None, exc))
                await _insert_waiting(conn)
        except Exception:
            log.warning("writer.group_rolled_back", exc_info=True, extra={"size": len(group)})
            _forget(conn)
            for _op, _future, prelude in group:  # what they did was rolled back
                if prelude is not None:
                    prelude.done = False
            return False
        self._committed(conn)
        for future, result, error in outcomes:
            _settle(future, result, error)
        return True

    async def _replay_alone(self, conn: AsyncConnection, group: list[Pending]) -> None:
        for op, future, prelude in group:
            try:
                async with conn.begin():
                    result = await op(conn)  # does its prelude's work itself
                    await _insert_waiting(conn)
            except Exception as exc:
                _forget(conn)
                if prelude is not None:
                    prelude.done = False
                _settle(future, None, exc)
            else:
                self._committed(conn)
                _settle(future, result, None)

    def _committed(self, conn: AsyncConnection) -> None:
        """Pass on the wake-ups the committed transaction noted (never before its commit: a
        woken reader must see the rows)."""
        notes: list[Note] | None = conn.info.pop(NOTES, None)
        if notes and self.on_commit is not None:
            self.on_commit(notes)


async def _run_preludes(conn: AsyncConnection, group: list[Pending], start: int,
                        first: Prelude) -> None:
    """`first` and the preludes of its class on the operations right after it, at once: only
    consecutive ones, so no other operation of the group sees their work done early."""
    kind = type(first)
    together = [first]
    for _op, _future, prelude in group[start + 1:]:
        if prelude is None or type(prelude) is not kind or prelude.done:
            break
        together.append(prelude)
    await kind.run_all(conn, together)


async def _dropped(conn: AsyncConnection | None) -> None:
    """Give a connection back to the pool (which closes it if it is broken)."""
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _fail_all(group: list[Pending], exc: Exception) -> None:
    for _op, future, _prelude in group:
        _settle(future, None, exc)
