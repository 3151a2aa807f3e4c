"""Turns at SQLite's write lock for a server split in two processes, the engine's first.

Both processes of a split server write to one SQLite file, and SQLite lets one transaction
write at a time. Left to SQLite, a writer that finds the file locked sleeps and retries
(1, 2, 5, 10, ... up to 100 ms between tries), so a fire can wait long after the lock came
free, and a process that writes back to back can take it again before the sleeper wakes.
Here each transaction first takes a turn on a lock beside the file (`<database>.writer`), on
which the kernel wakes a waiter the moment it is released, and a gate in front of it lets the
engine go first: an engine that is waiting keeps the API process out of its next turn, so a
claim or a fire waits at most for the one API transaction under way.

Two POSIX record locks on one file, byte 0 the gate and byte 1 the turn: the engine takes
the gate, then the turn, then lets the gate go; the API process passes through the gate
(takes it and lets it go) before taking the turn. Neither waits for the gate while holding the
turn, so they cannot deadlock. A blocked wait runs on a thread of its own, so the engine's
event loop goes on delivering meanwhile. SQLite's own busy timeout stays as the fallback for
anything else that opens the file (a CLI, a backup).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from concurrent.futures import Future, ThreadPoolExecutor

GATE, TURN = 0, 1  # byte offsets in the lock file


class WriteTurns:
    """One process's side: `first` for the engine (it may pass the API process at the gate)."""

    def __init__(self, database: str, first: bool) -> None:
        self.path = f"{os.path.abspath(database)}.writer"
        self.first = first
        self._fd: int | None = None
        self._waiter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cronwheel-turns")

    def open(self) -> None:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases any lock this process still held on the file
            self._fd = None
        self._waiter.shutdown(wait=False, cancel_futures=True)

    async def take(self) -> None:
        """Wait for this process's turn to write."""
        if self._fd is None:
            self.open()
        await self._lock(GATE)
        if self.first:
            try:
                await self._lock(TURN)
            finally:
                self._unlock(GATE)
        else:
            self._unlock(GATE)
            await self._lock(TURN)

    def give_back(self) -> None:
        self._unlock(TURN)

    async def _lock(self, byte: int) -> None:
        fd = self._fd
        assert fd is not None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, byte)
        except OSError:  # held by the other process: wait off the event loop
            waiting = self._waiter.submit(fcntl.lockf, fd, fcntl.LOCK_EX, 1, byte)
            try:
                await asyncio.wrap_future(waiting)
            except asyncio.CancelledError:  # the wait goes on: let the lock go once it comes
                waiting.add_done_callback(lambda done: self._let_go(done, byte))
                raise

    def _let_go(self, done: Future[None], byte: int) -> None:
        if not done.cancelled() and done.exception() is None:
            self._unlock(byte)

    def _unlock(self, byte: int) -> None:
        if self._fd is not None:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, byte)
