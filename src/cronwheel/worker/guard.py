"""A companion process that kills a worker's task processes if the worker itself dies.

A worker killed with SIGKILL (or by the OOM killer) cannot stop what it started: its tasks,
each in a process group of its own, would run on while the server hands their runs to
another worker, and one occurrence would run twice at the same time. The worker starts this
guard once, tells it each task's process group as it starts and ends (`+pgid` / `-pgid`
lines on its stdin), and the guard kills the groups still listed when its stdin reaches
end of file: when the worker is gone, however it went.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time

log = logging.getLogger("cronwheel.worker.guard")
GRACE_S = 2.0


class Guard:
    """The worker's end: start it once, then `watch` and `forget` process groups."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        try:
            self._proc = await asyncio.create_subprocess_exec(
                # Not `-m cronwheel.worker.guard`: the package imports this module first, and
                # running an imported module as __main__ prints a RuntimeWarning.
                sys.executable, "-c", "from cronwheel.worker.guard import main; main()",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            )
        except OSError:  # tasks still run; only the dead-worker cleanup is lost
            log.exception("worker.guard_failed")

    def watch(self, pgid: int) -> None:
        self._say(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        self._say(f"-{pgid}\n")

    def _say(self, line: str) -> None:
        proc = self._proc
        if proc is not None and proc.stdin is not None and proc.returncode is None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                proc.stdin.write(line.encode())  # a few bytes: the pipe never fills

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), GRACE_S + 3)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _kill(groups: set[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
                os.killpg(pgid, signal.SIGCONT)
        if sig is signal.SIGTERM:
            time.sleep(GRACE_S)


def main() -> None:
    # A Ctrl-C or SIGTERM sent to the worker's whole process group must not end the guard:
    # it leaves when the worker does (end of file), after cleaning up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin:
        with contextlib.suppress(ValueError):
            pgid = int(line[1:])
            if line.startswith("+"):
                groups.add(pgid)
            else:
                groups.discard(pgid)
    if groups:
        _kill(groups)


if __name__ == "__main__":
    main()
