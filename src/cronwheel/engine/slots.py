"""The dispatcher's delivery slots: a receiver's, shared fairly between namespaces
(`FairSlots`), and a plain counting semaphore for the rest (`Slots`).

Both take a free slot by a plain call (`try_take`): `asyncio.Semaphore` makes each take a
coroutine (and `async with` another), three per delivery, thousands a second.

A semaphore serves its waiters first come, first served: a flood to a slow receiver queues
thousands of deliveries there, and another namespace's delivery to the same receiver waits
behind all of them. In `FairSlots` a freed slot goes to the waiting namespace that holds the fewest
(first come within a namespace), so the other namespace waits for one slot to free, not for
the flood's queue; a namespace alone still uses every slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import AsyncIterator


class FairSlots:
    def __init__(self, size: int) -> None:
        self._free = size
        self._held: Counter[str] = Counter()
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, namespace: str) -> AsyncIterator[None]:
        """One slot for one delivery of `namespace`, for the duration of the block."""
        await self.take(namespace)
        try:
            yield
        finally:
            self.release(namespace)

    def try_take(self, namespace: str) -> bool:
        """Take a slot for `namespace` if one is free and nobody waits for one."""
        if self._free > 0 and not self._waiting:
            self._take(namespace)
            return True
        return False

    async def take(self, namespace: str) -> None:
        """A slot for `namespace`, waiting for one if need be; give it back by `release`."""
        if self.try_take(namespace):
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(namespace, deque()).append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():  # given a slot as it was cancelled
                self.release(namespace)
            else:
                self._forget(namespace, granted)
            raise

    def release(self, namespace: str) -> None:
        """Give a slot back: to the waiting namespace that holds the fewest, if any."""
        self._free += 1
        self._held[namespace] -= 1
        if not self._held[namespace]:
            del self._held[namespace]
        while self._free > 0 and self._waiting:
            nxt = min(self._waiting, key=lambda ns: self._held.get(ns, 0))
            queue = self._waiting[nxt]
            granted = queue.popleft()
            if not queue:
                del self._waiting[nxt]
            if granted.done():  # its delivery was cancelled while it waited
                continue
            self._take(nxt)
            granted.set_result(None)

    def _take(self, namespace: str) -> None:
        self._free -= 1
        self._held[namespace] += 1

    def _forget(self, namespace: str, granted: asyncio.Future[None]) -> None:
        queue = self._waiting.get(namespace)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(granted)
        if not queue:
            del self._waiting[namespace]


class Slots:
    """A counting semaphore, first come first served, whose free slot is a plain call."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody waits for one."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting in line for one if need be."""
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # a release hands its slot over by setting this
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot as it was cancelled
                self.release()
            raise

    def release(self) -> None:
        """Give a slot back: to the first waiter still waiting, else to the free count."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
