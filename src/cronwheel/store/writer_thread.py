"""The write queue on a thread of its own, with its own event loop and connection.

Why: on SQLite a write transaction holds the file's one write lock from BEGIN IMMEDIATE to
COMMIT, and with aiosqlite every statement in between is a round trip through the event loop
that runs the transaction. In a server split in two processes, the API process's loop can be
saturated by reads (fifty clients listing jobs): each of those round trips then waits a full
turn of a crowded loop, a submit's transaction holds the lock for hundreds of milliseconds,
and the engine process's claims and fires wait behind it (bench/README.md, session 11). Here
the transaction's round trips go through a loop that does nothing else, so the lock is held
for about the time SQLite needs; the API's loop only hands the operation over and is handed
its result.

An operation runs on the writer's loop: it must use only the connection it is given and
values it closed over (the store's operations do: they are SQL and pure functions), never
the caller's loop (its futures, locks or tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from cronwheel.store.write_turns import WriteTurns
from cronwheel.store.writer import Note, Prelude, WriteOp, WriteQueue

T = TypeVar("T")
START_TIMEOUT_S = 10.0
OS_NAME = "cw-writer"  # what `top -H` and /proc show for the thread


def _name_for_the_os(tid: int) -> None:
    """Linux: name the thread, so an operator (and a test) can tell it from the others."""
    with contextlib.suppress(OSError):
        Path(f"/proc/self/task/{tid}/comm").write_text(OS_NAME)


_Handed = tuple[WriteOp[Any], bool, Prelude | None, asyncio.Future[Any]]


async def _stopped() -> None:
    raise RuntimeError("the writer thread stopped")


class ThreadedWriteQueue:
    """`WriteQueue`'s interface (`run`, `start`, `close`, `on_commit`), its consumer and its
    connection on a thread: `make_engine` is called there, so the engine's pool and its
    driver's futures belong to that thread's loop."""

    def __init__(self, make_engine: Callable[[], AsyncEngine], max_group: int = 256,
                 turns: WriteTurns | None = None) -> None:
        self._make_engine = make_engine
        self._max_group = max_group
        self._turns = turns
        self.on_commit: Callable[[list[Note]], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: WriteQueue | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None  # set on the writer's loop to end it
        self.native_id: int | None = None  # the thread's, for the OS (its priority)
        # Hand-overs each way go in batches: one wake-up of the other loop (a self-pipe write
        # and a thread switch) for all the operations, or results, queued since the last one.
        self._caller: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._inbox: list[_Handed] = []
        self._outbox: list[tuple[asyncio.Future[Any], asyncio.Task[Any]]] = []
        self._inbox_woken = False
        self._outbox_woken = False

    def start(self) -> None:
        caller = self._caller = asyncio.get_running_loop()
        started: Future[None] = Future()

        def relay(notes: list[Note]) -> None:  # on the writer's thread, after each commit
            send = self.on_commit
            if send is not None:
                caller.call_soon_threadsafe(send, notes)

        async def serve() -> None:
            engine = self._make_engine()
            self._queue = WriteQueue(engine, self._max_group, self._turns)
            self._queue.on_commit = relay
            self._queue.start()
            self._stopped = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            self.native_id = threading.get_native_id()
            _name_for_the_os(self.native_id)
            started.set_result(None)
            try:
                await self._stopped.wait()
            finally:
                await self._queue.close()
                await engine.dispose()

        def main() -> None:
            try:
                asyncio.run(serve())
            except BaseException as exc:  # reported to start() if it never got going
                if not started.done():
                    started.set_exception(exc)
                raise

        self._thread = threading.Thread(target=main, name="cronwheel-writer", daemon=True)
        self._thread.start()
        started.result(START_TIMEOUT_S)

    async def run(self, op: WriteOp[T], urgent: bool = False,
                  prelude: Prelude | None = None) -> T:
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            raise RuntimeError("the writer thread is not running")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._inbox.append((op, urgent, prelude, future))
            wake, self._inbox_woken = not self._inbox_woken, True
        if wake:
            loop.call_soon_threadsafe(self._take_inbox)
        return await future

    def _take_inbox(self) -> None:
        """On the writer's loop: queue every operation handed over since the last call."""
        with self._lock:
            handed, self._inbox = self._inbox, []
            self._inbox_woken = False
        queue = self._queue
        for op, urgent, prelude, future in handed:
            work = queue.run(op, urgent, prelude) if queue is not None else _stopped()
            task = asyncio.ensure_future(work)
            task.add_done_callback(functools.partial(self._finish, future))

    def _finish(self, future: asyncio.Future[Any], task: asyncio.Task[Any]) -> None:
        """On the writer's loop: an operation is done; its caller hears in the next batch."""
        with self._lock:
            self._outbox.append((future, task))
            wake, self._outbox_woken = not self._outbox_woken, True
        if wake and self._caller is not None:
            self._caller.call_soon_threadsafe(self._take_outbox)

    def _take_outbox(self) -> None:
        """On the caller's loop: settle every result handed back since the last call."""
        with self._lock:
            results, self._outbox = self._outbox, []
            self._outbox_woken = False
        for future, task in results:
            if future.done():  # the caller gave up waiting
                continue
            if task.cancelled():
                future.cancel()
            elif (exc := task.exception()) is not None:
                future.set_exception(exc)
            else:
                future.set_result(task.result())

    async def close(self) -> None:
        loop, stopped, thread = self._loop, self._stopped, self._thread
        if loop is not None and stopped is not None and loop.is_running():
            loop.call_soon_threadsafe(stopped.set)
        if thread is not None:
            await asyncio.to_thread(thread.join)
        self._loop = self._queue = self._thread = None
