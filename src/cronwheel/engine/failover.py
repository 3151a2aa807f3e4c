"""Failover in about a second, and each live node's share of the claims (PostgreSQL).

Every CHECK interval a node confirms its own session lock and reads which other nodes hold
theirs. A node whose lock is free has lost its connection (killed, or cut off by the server):
its claimed jobs and the runs it was delivering are handed back at once, instead of after
their lease. A node that is alive but unreachable keeps its lock and is still covered by the
lease.

The other way round, a node that loses its own lock stops: it no longer claims, fires or
starts a delivery (another node may already have its work), and drops its window. When it
holds its lock again, it hands back what it held before resuming, so nothing waits for a lease.
`epoch` counts the losses: work fetched under one epoch is not started in the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from cronwheel.contracts import Clock, Liveness
from cronwheel.domain.time import US_PER_MS, Micros

log = logging.getLogger("cronwheel.failover")
CHECK_US: Micros = 250 * US_PER_MS


class Failover:
    def __init__(
        self,
        liveness: Liveness,
        release_own: Callable[[], Awaitable[None]],
        clock: Clock,
        owner: str,
        lease_us: Micros,
        check_us: Micros = CHECK_US,
    ) -> None:
        self._liveness = liveness
        self._release_own = release_own
        self._clock = clock
        self._owner = owner
        self._lease_us = lease_us
        self._check_us = check_us
        self.holding = False  # this node holds its lock: it may claim, fire and deliver
        self.epoch = 0
        self.share: tuple[int, int] | None = None  # (index, live nodes) when more than one
        self.on_lost: list[Callable[[], None]] = []  # drop what is held in memory
        self.on_released: list[Callable[[], None]] = []  # claim and poll again now
        self._released: set[str] = set()  # dead owners already handed back, by this node
        self._task: asyncio.Task[None] | None = None
        liveness.on_lost = self.lost

    async def start(self) -> None:
        await self.check()
        self._task = asyncio.create_task(self._loop(), name="cronwheel-failover")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.holding = False
        await self._liveness.close()

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep_until(self._clock.now() + self._check_us)
            await self.check()

    def lost(self) -> None:
        """Our lock (or the means to confirm it) is gone: stop acting on what we held."""
        if not self.holding:
            return
        self.holding = False
        self.epoch += 1
        self.share = None
        log.warning("failover.lock_lost", extra={"owner": self._owner})
        for hook in self.on_lost:
            hook()

    async def check(self) -> None:
        try:
            survey = await self._liveness.survey(self._clock.now() - self._lease_us)
        except Exception:  # slow or failed, but the session (so the lock) is still there
            log.warning("failover.check_failed", exc_info=True)
            return
        if survey is None:
            self.lost()
            return
        if not self.holding:
            try:  # what we held before is handed back; then we start afresh
                await self._release_own()
            except Exception:
                log.warning("failover.release_own_failed", exc_info=True)
                return
            self.holding = True
        alive = sorted({owner for owner, live in survey if live} | {self._owner})
        self.share = (alive.index(self._owner), len(alive)) if len(alive) > 1 else None
        dead = {owner for owner, live in survey if not live and owner != self._owner}
        self._released &= dead  # alive again, or past its lease: forget it
        for owner in sorted(dead - self._released):
            await self._release(owner)

    async def _release(self, owner: str) -> None:
        try:
            if not await self._liveness.release_dead(owner):
                return
        except Exception:
            log.warning("failover.release_failed", exc_info=True, extra={"dead": owner})
            return
        self._released.add(owner)
        log.info("failover.released", extra={"dead": owner})
        for hook in self.on_released:
            hook()
