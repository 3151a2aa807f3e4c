"""For the executor tests: a sink that records what a task streams, and a task maker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson

from cronwheel.worker.client import Task
from cronwheel.worker.executor import Execution, Outcome


@dataclass
class Recorder:
    """Keeps what it is sent (or, with keep=False, only counts it)."""

    keep: bool = True
    data: bytearray = field(default_factory=bytearray)
    size: int = 0
    writes: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # the first bytes came

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        self.writes += 1
        self.arrived.set()
        if self.keep:
            self.data += data

    @property
    def text(self) -> str:
        return self.data.decode(errors="replace")

    def json(self) -> Any:
        return orjson.loads(bytes(self.data))


@dataclass
class Ran:
    outcome: Outcome
    log: Recorder
    result: Recorder
    execution: Execution


def make_task(job_type: str, spec: dict[str, Any], timeout: float = 30.0,
              payload: Any = None) -> Task:
    return Task(task_id="task-1", run_id="run-1", attempt=2, job_id="job-1", namespace="ns",
                key="nightly", type=job_type, spec=spec, timeout=timeout, payload=payload,
                scheduled_at="2024-01-02T03:04:05Z")


async def execute(task: Task, *, keep: bool = True, databases: dict[str, str] | None = None,
                  kill_grace_s: float = 2.0) -> Ran:
    log, result = Recorder(keep), Recorder()
    execution = Execution(task, log, result, databases or {}, kill_grace_s)
    outcome = await execution.run()
    return Ran(outcome, log, result, execution)
