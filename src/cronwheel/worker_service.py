"""Use cases of workers and their runs: registration, leases, output, kill, switches, logs.

Shared by the native API, the qschedule dialect and the CLI, like `service.Service`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cronwheel.contracts import (
    ALL_JOBS,
    DEFAULT_TIMINGS,
    Alert,
    Clock,
    NodeStore,
    Settled,
    WorkerTimings,
)
from cronwheel.domain.command_types import check_type_names
from cronwheel.domain.errors import InvalidField, NotFound, UnknownWorker
from cronwheel.domain.jobs import Job
from cronwheel.domain.output import cut_utf8
from cronwheel.domain.runs import Run, RunState
from cronwheel.domain.tasks import FINISH_STATES, Task, TaskWork, WorkerInfo, WorkerStatus
from cronwheel.domain.time import US_PER_S, Micros
from cronwheel.domain.worker_target import WorkerTarget, check_group
from cronwheel.service import NoWakeups, Wakeups

log = logging.getLogger("cronwheel.workers")

STREAMS = ("log", "result")
MAX_LEASE_WAIT_S = 30.0
MAX_CAPACITY = 10_000
RESTART_GRACE_US = 10 * US_PER_S


class WorkerHub:
    """Wakes a worker's long-poll when a task is handed to it on this node. Other nodes'
    hand-offs are seen by the poll's periodic re-check."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.epoch = 0  # bumped when workers or switches change here: caches start over

    def changed(self) -> None:
        self.epoch += 1

    def notify(self, worker_id: str) -> None:
        event = self._events.get(worker_id)
        if event is not None:
            event.set()

    async def wait(self, worker_id: str, timeout: float) -> None:
        event = self._events[worker_id]
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            event.clear()

    def forget(self, worker_id: str) -> None:
        self._events.pop(worker_id, None)


@dataclass(frozen=True, slots=True)
class LogPage:
    run_id: str
    task: Task
    stream: str
    offset: int
    next_offset: int
    size: int
    end: bool
    text: str


@dataclass(frozen=True, slots=True)
class JobWorker:
    """A worker as one job sees it: may it be scheduled there?"""

    status: WorkerStatus
    enabled: bool


class WorkerService:
    def __init__(
        self, store: NodeStore, clock: Clock, wake: Wakeups | None = None,
        hub: WorkerHub | None = None, timings: WorkerTimings = DEFAULT_TIMINGS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.wake: Wakeups = wake or NoWakeups()
        self.hub = hub or WorkerHub()
        self.timings = timings
        # told of runs whose attempt on workers ended (the resolver: their dependents)
        self.on_settled: Callable[[Sequence[Settled]], Awaitable[None]] | None = None

    @property
    def lease_us(self) -> Micros:
        return self.timings.lease_us

    def online_after(self) -> Micros:
        return self.clock.now() - self.lease_us

    # -- the worker's side -------------------------------------------------------------

    async def register(
        self, name: str, host: str, groups: Sequence[str], capacity: int, version: str,
        worker_id: str, types: Sequence[str] | None = None,
    ) -> WorkerInfo:
        """`worker_id` is chosen by the caller's side of the server (domain/worker_ids.py),
        never by the worker: it binds the worker to its token. `types`: the job types the
        worker accepts; None (a worker that does not say) the built-in ones."""
        if not 1 <= len(name) <= 255:
            raise InvalidField("name must be 1 to 255 characters", "name")
        if not groups:
            raise InvalidField("a worker serves at least one group", "groups")
        checked = tuple(check_group(g, "groups") for g in groups)
        if not 1 <= capacity <= MAX_CAPACITY:
            raise InvalidField(f"capacity must be between 1 and {MAX_CAPACITY}", "capacity")
        accepted = None if types is None else check_type_names(list(types), "types")
        info = WorkerInfo(worker_id, name, host[:255], checked, capacity, version[:32],
                          accepted)
        await self.store.workers.register(info, self.clock.now())
        self.hub.changed()
        return info

    async def heartbeat(self, worker_id: str, running: Sequence[str]) -> list[str]:
        now = self.clock.now()
        kill = await self.store.workers.heartbeat(worker_id, running, now, now + self.lease_us)
        if kill is None:
            raise UnknownWorker()
        return kill

    async def lease(
        self, worker_id: str, limit: int, wait: float,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> list[TaskWork]:
        """Tasks handed to this worker, as soon as there are any, or none after `wait`.
        `gone` tells when the worker hung up: a task leased then would be lost in transit."""
        if limit < 1:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(wait, 0.0), MAX_LEASE_WAIT_S)
        while True:
            if gone is not None and await gone():
                return []
            now = self.clock.now()
            work = await self.store.workers.lease(worker_id, limit, now, now + self.lease_us)
            left = deadline - loop.time()
            if work or left <= 0:
                return work
            await self.hub.wait(worker_id, min(left, self.timings.recheck_s))

    async def output(
        self, worker_id: str, task_id: str, stream: str, offset: int, data: bytes
    ) -> int:
        if stream not in STREAMS:
            raise InvalidField(f"stream must be one of {list(STREAMS)}", "stream")
        if offset < 0:
            raise InvalidField("offset must not be negative", "offset")
        return await self.store.workers.append_output(worker_id, task_id, stream, offset, data)

    async def finish(
        self, worker_id: str, task_id: str, outcome: str, exit_code: int | None,
        error: str | None, result: bytes | None = None,
    ) -> None:
        """A task's end, with its result when small enough to come along."""
        state = FINISH_STATES.get(outcome)
        if state is None:
            raise InvalidField(f"outcome must be one of {sorted(FINISH_STATES)}", "outcome")
        settled = await self.store.workers.finish(
            worker_id, task_id, state, exit_code, error, self.clock.now(), result
        )
        await self._settled([settled] if settled else [])

    async def stop(self, worker_id: str) -> None:
        await self.store.workers.stop(worker_id, self.clock.now())
        self.hub.forget(worker_id)
        self.hub.changed()
        await self.reap()

    async def start(self) -> None:
        """Workers could not heartbeat while no node answered: give them time to come back
        before their tasks are judged lost."""
        await self.store.workers.grace(self.clock.now() + max(self.lease_us, RESTART_GRACE_US))

    async def reap(self) -> None:
        """Settle tasks whose worker went quiet; each node runs it every heartbeat."""
        await self._settled(await self.store.workers.reap(self.clock.now()))

    async def _settled(self, settled: Sequence[Settled]) -> None:
        for _run, _state, due in settled:
            if due is not None:
                self.wake.run_due(due)
        if settled and self.on_settled is not None:
            try:
                await self.on_settled(settled)
            except Exception:  # recorded already; the resolver's sweep catches up
                log.exception("workers.listener_failed", extra={"count": len(settled)})

    # -- the operator's side -----------------------------------------------------------

    async def workers(self, include_stopped: bool = False) -> list[WorkerStatus]:
        return await self.store.workers.statuses(self.online_after(), include_stopped)

    async def kill(self, run_id: str) -> RunState:
        return await self.store.workers.kill(run_id, self.clock.now())

    async def tasks(self, run_id: str) -> list[Task]:
        await self._run(run_id)
        return await self.store.workers.tasks_of(run_id)

    async def _run(self, run_id: str) -> Run:
        found = await self.store.get_run(run_id)
        if found is None:
            raise NotFound(f"no run {run_id!r}", "run_id")
        return found[0]

    async def log(
        self, run_id: str, offset: int, limit: int, stream: str = "log",
        attempt: int | None = None, worker: str | None = None,
    ) -> LogPage:
        """A page of a run's output: by default the latest attempt's, on its first worker."""
        if stream not in STREAMS:
            raise InvalidField(f"stream must be one of {list(STREAMS)}", "stream")
        if offset < 0:
            raise InvalidField("offset must not be negative", "offset")
        task = await self._task_for(run_id, attempt, worker)
        data, task = await self.store.workers.read_output(task.id, stream, offset, limit)
        size = task.log_size if stream == "log" else task.result_size
        finished = task.finished_at is not None
        if offset + len(data) < size:
            data = data[: cut_utf8(data)]  # never split a character across pages
        next_offset = offset + len(data)
        return LogPage(run_id, task, stream, offset, next_offset, size,
                       finished and next_offset >= size,
                       data.decode("utf-8", errors="replace"))

    async def _task_for(self, run_id: str, attempt: int | None, worker: str | None) -> Task:
        found = await self.tasks(run_id)
        if not found:
            raise NotFound("the run has no output: no worker has run it (yet)", "run_id")
        if attempt is None:  # the latest attempt, of the worker (or pod) when one is named
            named = [t for t in found if worker in (t.worker_name, t.host)]
            attempt = max(t.attempt for t in (named or found))
        chosen = [t for t in found if t.attempt == attempt]
        if not chosen:
            raise NotFound(f"the run has no attempt {attempt} on a worker", "attempt")
        if worker is not None:
            chosen = [t for t in chosen if worker in (t.worker_name, t.host)]
            if not chosen:
                raise NotFound(f"worker {worker!r} did not run attempt {attempt}", "worker")
        return chosen[0]

    async def runs_on_host(self, host: str) -> list[tuple[Task, Run, Job]]:
        """What is in progress on a host, so an operator knows whether to restart it."""
        return await self.store.workers.live_on_host(host)

    async def last_outcomes(self, job_ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """Per job: (finished_at, state, started_at) of its latest run that ran and ended."""
        return await self.store.workers.last_outcome(job_ids)

    async def alerts(self, job: Job) -> tuple[int, list[Alert]]:
        """The job's current run of failures, and the alerts it raised (newest first)."""
        return (await self.store.alerts.failures(job.id),
                await self.store.alerts.of_job(job.id))

    # -- per-job worker switches ---------------------------------------------------------

    async def job_workers(self, job: Job) -> list[JobWorker]:
        """The workers of the job's group, each with whether it may run the job."""
        target = job.spec.target
        if not isinstance(target, WorkerTarget):
            raise InvalidField("the job does not run on workers", "target.kind")
        switches = await self.store.workers.switches(job.id)
        return [
            JobWorker(w, switches.get(w.info.name, True))
            for w in await self.workers()
            if target.group in w.info.groups and w.info.accepts(target.job_type)
        ]

    async def switch_for_job(self, job: Job, changes: dict[str, bool]) -> None:
        target = job.spec.target
        if not isinstance(target, WorkerTarget):
            raise InvalidField("the job does not run on workers", "target.kind")
        await self._known(changes, target.group)
        await self.store.workers.set_switches(
            job.id, target.group, changes, self.clock.now(), self.online_after()
        )
        self.hub.changed()

    async def _known(self, changes: dict[str, bool], group: str | None) -> None:
        """Switches name workers that exist (a stopped one too: an operator may keep a
        machine that is down from coming back into rotation)."""
        known = {w.info.name for w in await self.workers(include_stopped=True)
                 if group is None or group in w.info.groups}
        unknown = sorted(set(changes) - known)
        if unknown:
            where = "any worker" if group is None else f"a worker of group {group!r}"
            raise InvalidField(f"not {where}: {', '.join(unknown)}", "workers")

    async def switch_for_all_jobs(self, changes: dict[str, bool]) -> None:
        await self._known(changes, None)
        await self.store.workers.set_switches(
            ALL_JOBS, None, changes, self.clock.now(), self.online_after()
        )
        self.hub.changed()
