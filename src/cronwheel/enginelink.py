"""A server in two processes: the API in the one `cronwheel serve` started, the engine
(scheduler, dispatcher, delivery, resolver) in a child process it starts and restarts, so no
API load takes the engine's CPU or its path to the database (docs/design.md, "Processes").

The two talk over a Unix socket pair, one JSON array per line, `[kind, value]`:

- the wake-ups PostgreSQL's NOTIFY carries between nodes (`store.pg`'s channel names as kinds),
  which SQLite commits pass on here instead (`Database.relay`); on PostgreSQL NOTIFY reaches
  both processes and the link carries none;
- `ready` (engine to API, the engine's owner id) once the engine runs;
- `settled` (API to engine): runs whose attempt on a worker ended, for the resolver to release
  their dependents at once (as `WorkerService.on_settled` does in one process);
- `metrics?` (API to engine) and `metrics` (the engine's Prometheus text), for /metrics.

The engine dies with the API process: Linux kills it when its parent dies (PR_SET_PDEATHSIG),
and elsewhere it exits at once when the socket closes without a stop. So a SIGKILLed server
stops firing as one process would, and SQLite's one-server file lock, held by the API process,
still means one engine per file.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from pydantic import SecretStr

from cronwheel.contracts import Settled
from cronwheel.domain.runs import RunState
from cronwheel.ids import new_id
from cronwheel.settings import Settings
from cronwheel.store.pg import DUE_CHANNEL, RUN_CHANNEL, WORKER_CHANNEL

log = logging.getLogger("cronwheel.engine_process")

READY = "ready"
SETTLED = "settled"  # runs whose attempt on workers ended, reported to the API process
METRICS_ASK = "metrics?"
METRICS = "metrics"
METRICS_MAX_AGE_S = 1.0
LINE_LIMIT = 64 * 1_048_576  # a Prometheus page fits on one line
START_TIMEOUT_S = 120.0  # imports and migrations on a busy machine
RESTART_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0)  # after successive early deaths
STEADY_S = 60.0  # an engine that lived this long starts the delays over
PR_SET_PDEATHSIG = 1


class Link:
    """One end of the socket: `send` writes a message, each message read goes to
    `on_message`; `closed` is set when the other end is gone."""

    def __init__(self, sock: socket.socket, on_message: Callable[[str, str], None]) -> None:
        self._sock = sock
        self._on_message = on_message
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    async def open(self) -> None:
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock,
                                                                  limit=LINE_LIMIT)
        self._task = asyncio.create_task(self._read(reader), name="cronwheel-link")

    def send(self, kind: str, value: str) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(orjson.dumps([kind, value]) + b"\n")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                try:
                    kind, value = orjson.loads(line)
                    self._on_message(str(kind), str(value))
                except Exception:  # one bad message never ends the link
                    log.warning("link.bad_message", exc_info=True)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self.closed.set()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.closed.set()


class LinkChannel:
    """A node's wake-up channel over the link, in the shape of `store.pg.PgChannel`: the
    engine process leads the singleton duties (upkeep), the API process never does."""

    def __init__(self, leader: bool) -> None:
        self._leader = leader
        self._link: Link | None = None
        self._on_due: Callable[[int], None] = _ignore
        self._on_run: Callable[[int], None] = _ignore
        self._on_worker: Callable[[str], None] = _ignore
        self.on_ready: Callable[[str], None] = _ignore
        self.on_settled: Callable[[Sequence[Settled]], Awaitable[None]] | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self.metrics_page: Callable[[], bytes] | None = None  # the engine's: answers metrics?
        self._metrics_wait: asyncio.Future[str] | None = None
        self._asking = asyncio.Lock()
        self._page: tuple[float, str] | None = None  # (when, page): the last page asked for

    def listen(self, on_due: Callable[[int], None], on_run: Callable[[int], None],
               on_worker: Callable[[str], None]) -> None:
        self._on_due, self._on_run, self._on_worker = on_due, on_run, on_worker

    def attach(self, link: Link | None) -> None:
        self._link = link

    def message(self, kind: str, value: str) -> None:
        if kind == DUE_CHANNEL:
            self._on_due(int(value))
        elif kind == RUN_CHANNEL:
            self._on_run(int(value))
        elif kind == WORKER_CHANNEL:
            self._on_worker(value)
        elif kind == READY:
            self.on_ready(value)
        elif kind == SETTLED and self.on_settled is not None:
            items = [(str(r), RunState(s), None if d is None else int(d))
                     for r, s, d in orjson.loads(value)]
            task = asyncio.ensure_future(self.on_settled(items))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == METRICS_ASK and self.metrics_page is not None:
            self.send(METRICS, self.metrics_page().decode())
        elif kind == METRICS and self._metrics_wait is not None \
                and not self._metrics_wait.done():
            self._metrics_wait.set_result(value)

    def send(self, kind: str, value: str) -> None:
        if self._link is not None:
            self._link.send(kind, value)

    async def send_settled(self, settled: Sequence[Settled]) -> None:
        """For `WorkerService.on_settled` in the API process: the engine's resolver hears."""
        self.send(SETTLED, orjson.dumps([[r, s.value, d] for r, s, d in settled]).decode())

    def send_notes(self, notes: list[tuple[str, str]]) -> None:
        """A commit's wake-ups, for the other process (`Database.relay`)."""
        for channel, value in notes:
            self.send(channel, value)

    async def ask_metrics(self, timeout_s: float = 2.0) -> str | None:
        """The engine's metrics page, or None if it does not answer in time. A page less than
        METRICS_MAX_AGE_S old is reused: however often /metrics is read, the engine renders
        at most one page that often."""
        async with self._asking:
            if self._page is not None and time.monotonic() - self._page[0] < METRICS_MAX_AGE_S:
                return self._page[1]
            self._metrics_wait = asyncio.get_running_loop().create_future()
            self.send(METRICS_ASK, "")
            try:
                page = await asyncio.wait_for(self._metrics_wait, timeout_s)
            except TimeoutError:
                return None
            finally:
                self._metrics_wait = None
            self._page = (time.monotonic(), page)
            return page

    # -- what the node asks of a channel -----------------------------------------------------

    @property
    def connected(self) -> bool:
        return True  # the supervisor, not the node, renews the link

    async def connect(self) -> None:
        return None

    async def lead(self) -> bool:
        return self._leader

    async def close(self) -> None:
        return None


class EngineProcess:
    """The API process's side: starts `cronwheel engine` with one end of a fresh socket pair,
    waits until it runs, and starts another when one dies, until `stop`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.channel = LinkChannel(leader=False)
        self.channel.on_ready = self._ready
        self.owner: str | None = None  # the running engine's owner id
        self.starts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._exited: asyncio.Future[int] | None = None  # the running engine's exit code
        # Engines are started from this thread, never reniced: each is born at the priority
        # the server was started with, and Linux kills it when this thread's process dies.
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="cronwheel-spawner")
        self._reniced = False
        # threads the renice leaves alone: the API process's SQLite writer (it holds the
        # write lock the engine waits for)
        self.keep_priority: Callable[[], set[int]] = set
        self._link: Link | None = None
        self._started = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="cronwheel-engine-sup")

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        owner = f"{self._settings.node_name}:{new_id()[-12:]}"  # fresh per engine start
        self._started.clear()
        argv = [sys.executable, "-m", "cronwheel", "engine", "--link-fd", str(theirs.fileno()),
                "--owner", owner, "--parent", str(os.getpid())]
        loop = asyncio.get_running_loop()
        try:
            self._proc = proc = await loop.run_in_executor(self._spawner, functools.partial(
                subprocess.Popen, argv, env=self._env(), pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL))
        finally:
            theirs.close()
        self._exited = loop.run_in_executor(None, proc.wait)
        if self._link is not None:
            await self._link.close()
        self._link = Link(ours, self.channel.message)
        await self._link.open()
        self.channel.attach(self._link)
        self.starts += 1
        await self._wait_started(owner)
        if not self._reniced:
            self._reniced = True
            await self._lower_own_priority()

    async def _lower_own_priority(self) -> None:
        """Make this process (the API) yield the CPU to the engine under contention: every
        thread but the spawner's and `keep_priority`'s goes `api_nice` steps down (Linux
        keeps a priority per thread; threads started later inherit their starter's)."""
        step = self._settings.api_nice
        if step <= 0 or not sys.platform.startswith("linux"):
            return
        spawner = await asyncio.get_running_loop().run_in_executor(self._spawner,
                                                                    threading.get_native_id)
        kept = {spawner, *self.keep_priority()}
        for entry in os.listdir("/proc/self/task"):
            tid = int(entry)
            if tid in kept:
                continue
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, tid,
                               min(19, os.getpriority(os.PRIO_PROCESS, tid) + step))

    async def _wait_started(self, owner: str) -> None:
        assert self._proc is not None and self._exited is not None
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._started.wait()),
                                            asyncio.shield(self._exited)]
        try:
            await asyncio.wait(waits, timeout=START_TIMEOUT_S,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        if not self._started.is_set():
            code = self._proc.poll()
            await self._end(0.0)
            raise RuntimeError(f"the engine process did not start (exit code {code})")
        log.info("engine.started", extra={"owner": owner, "pid": self._proc.pid})

    def _ready(self, owner: str) -> None:
        self.owner = owner
        self._started.set()

    def _env(self) -> dict[str, str]:
        """The environment, with every setting this process holds written out, so the engine
        runs with the same ones whether they came from the environment, the command line or
        a test (and with the node's name, whose default is per process)."""
        return os.environ | settings_env(self._settings)

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            assert self._exited is not None
            began = time.monotonic()
            code = await asyncio.shield(self._exited)
            if self._stopping:
                return
            self.owner = None
            failures = 0 if time.monotonic() - began > STEADY_S else failures + 1
            delay = RESTART_DELAYS_S[min(failures, len(RESTART_DELAYS_S)) - 1] if failures else 0
            log.error("engine.exited", extra={"code": code, "restart_in_s": delay})
            await asyncio.sleep(delay)
            try:
                await self._spawn()
            except Exception:
                log.exception("engine.restart_failed")
                failures += 1

    async def stop(self, grace_s: float) -> None:
        """SIGTERM the engine (it hands its claims back), SIGKILL if it outlives `grace_s`."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._end(grace_s)
        self._spawner.shutdown(wait=False)

    async def _end(self, grace_s: float) -> None:
        proc, exited = self._proc, self._exited
        if proc is not None and exited is not None and not exited.done():
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), grace_s + 5.0)
            if not exited.done():
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await exited
        if self._link is not None:
            await self._link.close()
            self._link = None
        self.channel.attach(None)


def settings_env(settings: Settings) -> dict[str, str]:
    """`settings` as the CRONWHEEL_* variables that give them back (unset ones left out)."""
    shown = settings.model_dump(mode="json")
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(shown[name], str):
            text = shown[name]
        else:
            text = orjson.dumps(shown[name]).decode()
        env[f"CRONWHEEL_{name.upper()}"] = text
    return env


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc: Any = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(70)


def _ignore(_value: Any) -> None:
    return None
