"""Runs one task as a child process tree: output streaming, timeout, kill.

Every task is a child in a session (and process group) of its own, so stopping it stops every
process it started: SIGTERM to the group, SIGKILL after a short grace, then a check that no
live member is left. The same happens to stragglers when the task ends by itself, so a task's
processes never outlive it. stdout and stderr share one pipe, read in chunks and handed to the
`log` sink as they come; the result goes to the `result` sink after the child exits. A type
whose launch says `stdout="result"` gets two pipes instead: stdout to the result (the
`live_result` sink, uploaded as it comes), stderr to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from cronwheel.domain.errors import InvalidField
from cronwheel.jobtypes import Launch, LaunchContext, LaunchError
from cronwheel.jobtypes.registry import JobTypes, builtin_job_types
from cronwheel.worker.client import Task
from cronwheel.worker.guard import Guard
from cronwheel.worker.settings import DATABASES_ENV

log = logging.getLogger(__name__)
CHUNK = 64 * 1024
RESULT_PIECE = 256 * 1024
DRAIN_STALL_S = 5.0  # a pipe still open this long after the group is gone: someone escaped it
POLL_S = 0.05
# Never handed to a task: the worker's own secrets and the child protocol's variables.
_WITHHELD = (DATABASES_ENV, "CRONWHEEL_SQL_URL", "CRONWHEEL_SQL_DATABASES",
             "CRONWHEEL_CHILD_TYPE", "CRONWHEEL_CHILD_SPEC", "CRONWHEEL_RESULT_FILE")


class Sink(Protocol):
    """Where a stream's bytes go, in order (an OutputStream, or a recorder in tests)."""

    async def write(self, data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a task ended, as the finish call reports it."""

    outcome: str  # success | failure | timeout | killed | error
    exit_code: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"outcome": self.outcome}
        if self.exit_code is not None:
            body["exit_code"] = self.exit_code
        if self.error is not None:
            body["error"] = self.error
        return body


def task_env(task: Task, worker: str = "") -> dict[str, str]:
    """The variables every task's processes see."""
    return {
        "CRONWHEEL_WORKER": worker,
        "CRONWHEEL_RUN_ID": task.run_id,
        "CRONWHEEL_TASK_ID": task.task_id,
        "CRONWHEEL_ATTEMPT": str(task.attempt),
        "CRONWHEEL_JOB_KEY": task.key,
        "CRONWHEEL_NAMESPACE": task.namespace,
        "CRONWHEEL_SCHEDULED_AT": task.scheduled_at,
        "CRONWHEEL_PAYLOAD": orjson.dumps(task.payload).decode(),
    }


@dataclass
class Execution:
    """`outcome = await Execution(task, log, result).run()`; `kill()` from elsewhere stops it."""

    task: Task
    log: Sink
    result: Sink
    databases: Mapping[str, str] = field(default_factory=dict)
    kill_grace_s: float = 2.0
    worker: str = ""  # this worker's name, for CRONWHEEL_WORKER
    guard: Guard | None = None  # kills the task's processes if the worker dies
    job_types: JobTypes = field(default_factory=builtin_job_types)  # the worker's, plugins too
    pgid: int | None = None  # the task's process group, once started
    # where stdout goes when the type sends it to the result: a sink that uploads as it comes
    # (the `result` sink when None)
    live_result: Sink | None = None
    _kill: asyncio.Event = field(default_factory=asyncio.Event)
    _kill_reason: str = "killed on request"
    _progress: float = 0.0
    _writing: int = 0  # pumps handing a chunk to a sink right now

    def kill(self, reason: str = "killed on request") -> None:
        """Ask for the task to be stopped (outcome `killed`); safe before or after it runs."""
        if not self._kill.is_set():
            self._kill_reason = reason
        self._kill.set()

    async def run(self) -> Outcome:
        scratch = Path(tempfile.mkdtemp(prefix="cronwheel-task-"))
        try:
            return await self._run(scratch)
        except asyncio.CancelledError:
            if self.pgid is not None:  # cancelled from outside: still leave nothing behind
                _signal(self.pgid, signal.SIGKILL)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    async def _run(self, scratch: Path) -> Outcome:
        try:
            launch = self._launch(scratch)
            split = launch.stdout == "result"
            proc = await asyncio.create_subprocess_exec(
                *launch.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE if split else asyncio.subprocess.STDOUT,
                cwd=launch.cwd, env=self._env(launch), start_new_session=True, limit=CHUNK,
            )
        except (LaunchError, InvalidField, OSError) as exc:
            message = _start_error(exc)
            await self.log.write(f"cronwheel: cannot start the task: {message}\n".encode())
            return Outcome("error", error=message)
        self.pgid = proc.pid  # a session leader's group id is its pid
        if self.guard is not None:
            self.guard.watch(self.pgid)
        try:
            reason = await self._supervise(proc, split)
        finally:
            if self.guard is not None:
                self.guard.forget(self.pgid)
        if reason == "timeout":
            text = f"timed out after {self.task.timeout:g} s"
            await self.log.write(f"\ncronwheel: {text}: the task's processes were stopped\n"
                                 .encode())
            return Outcome("timeout", error=text)
        if reason == "killed":
            await self.log.write(f"\ncronwheel: {self._kill_reason}\n".encode())
            return Outcome("killed", error=self._kill_reason)
        code = proc.returncode
        assert code is not None
        if not split:  # split: stdout was the result; the exit code goes with the finish call
            await self._send_result(launch, code)
        return _exited(code)

    def _launch(self, scratch: Path) -> Launch:
        try:
            job_type = self.job_types.get(self.task.type)
        except KeyError:
            raise LaunchError(f"this worker has no job type {self.task.type!r} "
                              f"(it has {self.job_types.names()})") from None
        spec = job_type.parse(self.task.spec, "spec")
        return job_type.launch(spec, LaunchContext(scratch, self.databases))

    def _env(self, launch: Launch) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _WITHHELD}
        env.update(launch.env)
        env.update(task_env(self.task, self.worker))
        return env

    async def _supervise(self, proc: asyncio.subprocess.Process, split: bool) -> str:
        """Wait for exit, timeout or kill; stop the group; drain the pipes. Returns which."""
        assert proc.stdout is not None and self.pgid is not None
        self._progress = time.monotonic()
        if split:
            assert proc.stderr is not None
            result = self.live_result if self.live_result is not None else self.result
            pumps = [asyncio.create_task(self._pump(proc.stdout, result)),
                     asyncio.create_task(self._pump(proc.stderr, self.log))]
        else:
            pumps = [asyncio.create_task(self._pump(proc.stdout, self.log))]
        pump = asyncio.ensure_future(asyncio.gather(*pumps))
        exited = asyncio.create_task(proc.wait())
        killed = asyncio.create_task(self._kill.wait())
        try:
            done, _ = await asyncio.wait({exited, killed}, timeout=self.task.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            reason = "exited" if exited in done else "killed" if killed in done else "timeout"
            await kill_group(self.pgid, self.kill_grace_s)
            await exited
            await self._drain(pump)
        finally:
            jobs: list[asyncio.Future[Any]] = [killed, exited, pump, *pumps]
            for job in jobs:
                job.cancel()
        return reason

    async def _pump(self, pipe: asyncio.StreamReader, sink: Sink) -> None:
        while True:
            data = await pipe.read(CHUNK)
            self._progress = time.monotonic()
            if not data:
                return
            self._writing += 1
            try:
                await sink.write(data)
            finally:
                self._writing -= 1
                self._progress = time.monotonic()

    async def _drain(self, pump: asyncio.Future[Any]) -> None:
        """Let the pump read to the end, unless the pipe stays open with no one writing (a
        process that left the group holds it)."""
        while not pump.done():
            await asyncio.wait({pump}, timeout=0.5)
            stalled = time.monotonic() - self._progress > DRAIN_STALL_S
            if not pump.done() and stalled and not self._writing:
                # a process that left the task's group still holds the pipe
                log.warning("worker.output_pipe_open", extra={
                    "task_id": self.task.task_id, "run_id": self.task.run_id})
                return
        if not pump.cancelled() and pump.exception() is not None:
            log.error("worker.output_failed", extra={
                "task_id": self.task.task_id, "run_id": self.task.run_id},
                exc_info=pump.exception())

    async def _send_result(self, launch: Launch, code: int) -> None:
        if launch.result_file is None:
            await self.result.write(orjson.dumps({"exit_code": code}))
            return
        try:
            handle = launch.result_file.open("rb")
        except FileNotFoundError:
            return
        with handle:
            while piece := handle.read(RESULT_PIECE):
                await self.result.write(piece)


def _exited(code: int) -> Outcome:
    if code == 0:
        return Outcome("success", exit_code=0)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return Outcome("failure", exit_code=128 - code, error=f"terminated by signal {name}")
    return Outcome("failure", exit_code=code)


def _start_error(exc: Exception) -> str:
    if isinstance(exc, InvalidField):
        return f"{exc.field}: {exc.message}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


# -- process groups ---------------------------------------------------------------------------


def group_members(pgid: int) -> list[int]:
    """The live processes of a group (zombies do not count: they hold nothing but a pid)."""
    try:
        os.killpg(pgid, 0)  # cheap, and the usual answer once a task has ended: none left
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    if not os.path.isdir("/proc"):
        return [pgid]
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()  # the name may hold spaces and ')'
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry.name))
    return members


def _signal(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _gone_within(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True


async def kill_group(pgid: int, grace: float = 2.0) -> bool:
    """SIGTERM the group, SIGKILL it after `grace` seconds; True once no member is alive."""
    if not group_members(pgid):
        return True
    _signal(pgid, signal.SIGTERM)
    _signal(pgid, signal.SIGCONT)  # a stopped process only acts on SIGTERM once continued
    if await _gone_within(pgid, grace):
        return True
    _signal(pgid, signal.SIGKILL)
    if await _gone_within(pgid, 5.0):
        return True
    log.error("worker.kill_failed", extra={
        "pgid": pgid, "survivors": group_members(pgid), "error": "survived SIGKILL"})
    return False
