"""The worker process: register, heartbeat, lease, run tasks, report them, stop gracefully.

Three loops share one registration: the heartbeat (renews the leases of running tasks, brings
kills), the lease loop (long-polls for as many tasks as there are free slots), and one
coroutine per running task (executes, uploads, finishes). A server that forgot the worker
(404 `unknown_worker`) gets a fresh registration; running tasks go on under the new id.

Its log is events as the server's are (cronwheel.logs): the message is the event's name
(`worker.task_started`), the `extra` fields say which task, run, job and attempt, and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable
from typing import Any

from cronwheel.jobtypes.registry import JobTypes, load_job_types
from cronwheel.worker.client import (
    ApiError,
    ClientError,
    InlineResult,
    OutputStream,
    Registration,
    Task,
    TaskGone,
    UnknownWorker,
    Unreachable,
    WorkerClient,
)
from cronwheel.worker.executor import Execution, Outcome
from cronwheel.worker.guard import Guard
from cronwheel.worker.settings import WorkerSettings

log = logging.getLogger(__name__)
STREAM_CLOSE_S = 60.0  # at most this long to upload a finished task's remaining output
REPORT_AFTER_KILL_S = 30.0  # on shutdown: how long killed tasks may take to be reported
STOP_CALL_S = 5.0


class Worker:
    """`await Worker(settings).run()` until `request_stop()` (or SIGTERM via `run_worker`)."""

    def __init__(self, settings: WorkerSettings, client: WorkerClient | None = None,
                 job_types: JobTypes | None = None) -> None:
        self.settings = settings
        # What this worker can run: the built-in types and the installed plugins, found once.
        self.job_types = load_job_types() if job_types is None else job_types
        self.job_types.add_commands(settings.command_types)  # ValueError on a clash
        self.types = accepted_types(settings.types, self.job_types)  # what it registers for
        self.client = client or WorkerClient(settings.server, token=settings.token)
        self._own_client = client is None
        self.registration: Registration | None = None
        self.running: dict[str, Execution] = {}  # task id -> its execution
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()  # stop without the grace period
        self._slot_free = asyncio.Event()
        self._abandon = asyncio.Event()  # give up reporting: the process is leaving
        self._register_lock = asyncio.Lock()
        self.guard = Guard()

    @property
    def worker_id(self) -> str:
        assert self.registration is not None, "the worker has not registered yet"
        return self.registration.id

    def request_stop(self, now: bool = False) -> None:
        """Stop leasing; running tasks get the grace period (none when `now`)."""
        if self._stopping.is_set() or now:
            self._hurry.set()
        self._stopping.set()

    def signal_received(self, signum: int) -> None:
        """The first SIGTERM/SIGINT stops gracefully; a second one stops now."""
        hurry = self._stopping.is_set()
        log.info("worker.stopping", extra={
            "signal": signal.Signals(signum).name, "running": len(self.running),
            "grace_s": 0 if hurry else self.settings.grace_s})
        self.request_stop()

    async def run(self) -> None:
        await self.guard.start()
        try:
            if not await self._register():
                return
            heartbeat = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
            try:
                await self._lease_loop()
                await self._wind_down()
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
            await self._say_stop()
        finally:
            await self.guard.close()
            if self._own_client:
                await self.client.close()

    # -- registration ----------------------------------------------------------------------

    async def _register(self, until: asyncio.Event | None = None) -> bool:
        """Register, retrying while the server cannot be reached; False if `until` (by
        default: a stop request) comes first."""
        until = until or self._stopping
        backoff = 0.5
        settings = self.settings
        while not until.is_set():
            try:
                self.registration = await self.client.register(
                    settings.name, list(settings.groups), settings.concurrency, settings.host,
                    types=list(self.types))
            except Unreachable as exc:
                log.warning("worker.register_failed", extra={
                    "server": self.client.server, "error": str(exc), "retry_in_s": backoff})
                await _first(asyncio.sleep(backoff), until.wait())
                backoff = min(backoff * 2, 10.0)
                continue
            log.info("worker.registered", extra={
                "worker_id": self.registration.id, "worker": settings.name,
                "server": self.client.server, "groups": ",".join(settings.groups),
                "slots": settings.concurrency, "types": ",".join(self.types)})
            return True
        return False

    async def _register_again(self, stale_id: str) -> None:
        """After a 404 unknown_worker: one fresh registration, however many loops saw it."""
        async with self._register_lock:
            if self.registration is not None and self.registration.id != stale_id:
                return
            log.warning("worker.reregistering", extra={"worker_id": stale_id})
            try:
                if await self._register(self._abandon):  # running tasks still need reporting
                    return
            except ApiError as exc:
                log.error("worker.reregister_refused", extra={
                    "worker_id": stale_id, "error": str(exc)})
            await asyncio.sleep(1.0)  # whoever calls next will try again, not in a tight loop

    # -- loops -----------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        quiet = False  # warn once per outage, not every beat
        loop = asyncio.get_running_loop()
        while True:
            registration = self.registration
            assert registration is not None
            started = loop.time()
            try:
                kills = await self.client.heartbeat(registration.id, list(self.running),
                                                    timeout=max(registration.lease_s, 1.0))
            except UnknownWorker:
                await self._register_again(registration.id)
                continue
            except (Unreachable, ApiError) as exc:
                if not quiet:
                    log.warning("worker.heartbeat_failed", extra={"error": str(exc)})
                quiet = True
            except Exception:  # never let the beat stop: leases would lapse
                log.exception("worker.heartbeat_failed")
            else:
                quiet = False
                self._kill(kills)
            await asyncio.sleep(max(0.0, started + registration.heartbeat_s - loop.time()))

    def _kill(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            execution = self.running.get(task_id)
            if execution is not None:
                log.info("worker.kill_requested", extra=task_fields(execution.task))
                execution.kill()

    async def _lease_loop(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            free = self.settings.concurrency - len(self.running)
            if free <= 0:
                self._slot_free.clear()
                await _first(self._slot_free.wait(), self._stopping.wait())
                continue
            registration = self.registration
            assert registration is not None
            try:
                tasks = await _unless(self._stopping, self.client.lease(
                    registration.id, free, self.settings.lease_wait_s))
            except UnknownWorker:
                await self._register_again(registration.id)
                continue
            except (Unreachable, ApiError) as exc:
                log.warning("worker.lease_failed", extra={
                    "worker_id": registration.id, "error": str(exc), "retry_in_s": backoff})
                await self._pause(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            for task in tasks or []:
                self._start(task)

    def _start(self, task: Task) -> None:
        """Take a slot now (not when the coroutine first runs), so the next lease asks for
        no more than is free."""
        def worker_id() -> str:
            return self.worker_id

        logs = OutputStream(self.client, worker_id, task.task_id, "log")
        result = InlineResult(OutputStream(self.client, worker_id, task.task_id, "result",
                                           drop_after=None))
        execution = Execution(task, logs, result, self.settings.databases,
                              self.settings.kill_grace_s, worker=self.settings.name,
                              guard=self.guard, job_types=self.job_types,
                              live_result=result.stream)
        full = len(self.running) >= self.settings.concurrency  # the server sent more than max
        if task.task_id in self.running:
            log.warning("worker.task_leased_twice", extra=task_fields(task))
            return
        self.running[task.task_id] = execution
        job = asyncio.create_task(self._execute(execution, logs, result, full),
                                  name=f"task {task.task_id}")
        self._tasks.add(job)
        job.add_done_callback(self._tasks.discard)

    # -- one task --------------------------------------------------------------------------

    async def _execute(self, execution: Execution, logs: OutputStream, result: InlineResult,
                       full: bool) -> None:
        task = execution.task
        fields = task_fields(task)
        started = time.monotonic()
        try:
            if full:
                outcome = Outcome("error", error="the worker had no free slot for this task")
            else:
                log.info("worker.task_started", extra=fields)
                outcome = await execution.run()
            ended = fields | outcome.to_json() | {  # outcome, exit_code and error when known
                "duration_s": round(time.monotonic() - started, 3)}
            log.log(logging.INFO if outcome.outcome == "success" else logging.WARNING,
                    "worker.task_finished", extra=ended)
            await logs.close(STREAM_CLOSE_S)
            await result.close(STREAM_CLOSE_S)
            await self._finish(task, outcome.to_json() | result.finish_fields())
        except Exception:
            log.exception("worker.task_crashed", extra=fields)
        finally:
            del self.running[task.task_id]
            self._slot_free.set()

    async def _finish(self, task: Task, body: dict[str, Any]) -> None:
        """Report the outcome, retrying until the server answers (or the worker leaves)."""
        backoff = 0.5
        while not self._abandon.is_set():
            worker_id = self.worker_id
            fields = task_fields(task) | {"outcome": body.get("outcome")}
            try:
                await self.client.finish(worker_id, task.task_id, body)
                return
            except TaskGone:  # the server gave it away: its outcome is not recorded
                log.warning("worker.report_gone", extra=fields)
                return
            except UnknownWorker:
                await self._register_again(worker_id)
                await _first(asyncio.sleep(backoff), self._abandon.wait())
            except Unreachable as exc:
                log.warning("worker.report_failed", extra=fields | {
                    "error": str(exc), "retry_in_s": backoff})
                await _first(asyncio.sleep(backoff), self._abandon.wait())
                backoff = min(backoff * 2, 10.0)
            except ApiError as exc:
                log.error("worker.report_refused", extra=fields | {"error": str(exc)})
                return
        log.error("worker.report_abandoned", extra=task_fields(task) | {
            "outcome": body.get("outcome")})

    # -- shutdown --------------------------------------------------------------------------

    async def _wind_down(self) -> None:
        """Let running tasks finish within the grace period, then kill and report the rest."""
        if not self._tasks:
            return
        log.info("worker.draining", extra={"running": len(self._tasks),
                                           "grace_s": self.settings.grace_s})
        await _first(asyncio.wait(set(self._tasks), timeout=self.settings.grace_s),
                     self._hurry.wait())
        if self._tasks:
            log.warning("worker.killing_tasks", extra={
                "task_ids": ",".join(self.running), "running": len(self.running)})
            for execution in list(self.running.values()):
                execution.kill("killed: the worker is stopping")
            await asyncio.wait(set(self._tasks), timeout=REPORT_AFTER_KILL_S)
        if self._tasks:
            self._abandon.set()
            for job in self._tasks:
                job.cancel()
            await asyncio.wait(set(self._tasks), timeout=5.0)

    async def _say_stop(self) -> None:
        if self.registration is None:
            return
        try:
            await asyncio.wait_for(self.client.stop(self.registration.id), STOP_CALL_S)
        except (ClientError, TimeoutError) as exc:
            log.warning("worker.deregister_failed", extra={
                "worker_id": self.registration.id, "error": str(exc) or type(exc).__name__})
        else:
            log.info("worker.deregistered", extra={"worker_id": self.registration.id})

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up when asked to stop."""
        await _first(asyncio.sleep(seconds), self._stopping.wait())


async def _first(*waits: Awaitable[Any]) -> None:
    """Wait until the first of `waits` is done; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        pending = [t for t in tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _unless(stop: asyncio.Event, call: Awaitable[list[Task]]) -> list[Task] | None:
    """The call's answer, or None when `stop` is set first (the call is then cancelled: tasks
    it might have been given are declared lost by the server and retried elsewhere)."""
    job = asyncio.ensure_future(call)
    await _first(job, stop.wait())
    if job.cancelled():
        return None
    return job.result()


def task_fields(task: Task) -> dict[str, Any]:
    """Which task a log event is about, named as the server's events name them."""
    return {"task_id": task.task_id, "run_id": task.run_id, "job_key": task.key,
            "namespace": task.namespace, "attempt": task.attempt, "type": task.type}


def accepted_types(wanted: tuple[str, ...] | None, job_types: JobTypes) -> tuple[str, ...]:
    """The types a worker registers for: those asked (`--types`), which it must be able to
    run, or every one it can. ValueError names the types it cannot run."""
    can = job_types.names()
    if wanted is None:
        return tuple(can)
    unknown = [t for t in wanted if t not in can]
    if unknown:
        raise ValueError(f"--types names {', '.join(unknown)}, which this worker cannot run "
                         f"(it has {', '.join(can)}; add a --command-type for a new one)")
    return wanted


def run_worker(settings: WorkerSettings) -> None:
    """Run a worker in this process until SIGTERM or SIGINT (a second one skips the grace)."""

    async def main() -> None:
        worker = Worker(settings)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.signal_received, signum)
        await worker.run()

    asyncio.run(main())
