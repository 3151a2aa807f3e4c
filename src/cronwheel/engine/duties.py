"""Per-node duties beside the scheduler: heartbeats with clock sync, and singleton upkeep.

Every node heartbeats (so `/v1/cluster` shows who is alive and what it holds) and re-reads the
database's clock. One node at a time, the holder of the singleton lock, purges runs older
than the retention period; when it dies, its lock dies with its connection and another
node takes the duty on its next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cronwheel.clock import DatabaseClock
from cronwheel.contracts import NodeInfo, Store
from cronwheel.domain.time import US_PER_S, Micros

log = logging.getLogger("cronwheel.duties")
PURGE_BATCH = 1_000
PURGE_ROUNDS = 100  # at most this many batches per round; the next round goes on


@dataclass(frozen=True, slots=True)
class DutyConfig:
    heartbeat_s: float = 1.0
    upkeep_s: float = 60.0
    retention_us: Micros = 30 * 86_400 * US_PER_S
    log_retention_us: Micros = 7 * 86_400 * US_PER_S
    audit_retention_us: Micros = 90 * 86_400 * US_PER_S


class Duties:
    def __init__(
        self,
        store: Store,
        clock: DatabaseClock,
        info: NodeInfo,
        lead: Callable[[], Awaitable[bool]],
        config: DutyConfig = DutyConfig(),
        reconnect: Callable[[], Awaitable[None]] | None = None,
        every_beat: Sequence[Callable[[], Awaitable[None]]] = (),
        purge_audit: Callable[[Micros, int], Awaitable[int]] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._info = info
        self._lead = lead
        self._config = config
        self._reconnect = reconnect
        self._every_beat = list(every_beat)  # more duties at the heartbeat's pace
        self._purge_audit = purge_audit  # the audit trail's retention (AuditStore.purge)
        self._tasks: list[asyncio.Task[None]] = []
        self.leader = False

    async def start(self) -> None:
        await self.beat()
        try:
            await self.upkeep()  # so a lone node leads from the start, not a minute later
        except Exception:
            log.warning("duty.failed", exc_info=True, extra={"duty": "upkeep"})
        self._tasks = [
            asyncio.create_task(self._every(self._config.heartbeat_s, self.beat), name="beat"),
            asyncio.create_task(self._every(self._config.upkeep_s, self.upkeep), name="upkeep"),
            *(asyncio.create_task(self._every(self._config.heartbeat_s, duty),
                                  name=getattr(duty, "__name__", "duty"))
              for duty in self._every_beat),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self._store.heartbeat(self._info, self._clock.now(), stopped=True)

    async def _every(self, seconds: float, duty: Callable[[], Awaitable[None]]) -> None:
        while True:
            await self._clock.sleep_until(self._clock.now() + round(seconds * US_PER_S))
            try:
                await duty()
            except Exception:
                log.warning("duty.failed", exc_info=True, extra={"duty": duty.__name__})

    async def beat(self) -> None:
        await self._clock.sync(self._store.db_now)
        await self._store.heartbeat(self._info, self._clock.now())
        if self._reconnect is not None:
            await self._reconnect()

    async def upkeep(self) -> None:
        self.leader = await self._lead()
        if not self.leader:
            return
        before = self._clock.now() - self._config.retention_us
        for _round in range(PURGE_ROUNDS):  # each batch is its own write: the engine's go between
            if await self._store.purge(before, PURGE_BATCH) < PURGE_BATCH:
                break
        logs_before = self._clock.now() - self._config.log_retention_us
        for _round in range(PURGE_ROUNDS):
            if await self._store.purge_output(logs_before, PURGE_BATCH) < PURGE_BATCH:
                break
        if self._purge_audit is not None:
            audit_before = self._clock.now() - self._config.audit_retention_us
            for _round in range(PURGE_ROUNDS):
                if await self._purge_audit(audit_before, PURGE_BATCH) < PURGE_BATCH:
                    break
