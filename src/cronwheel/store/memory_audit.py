"""The audit trail in a list (`AuditStore` for the memory store and tests).

The memory store has no transactions: the API records a change's entry once the change has
succeeded, which is what a transaction would have made of it."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from cronwheel.domain.audit import AuditCursor, AuditEntry, AuditFilter, matches, older
from cronwheel.domain.time import Micros


class MemoryAuditStore:
    transactional = False

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []  # oldest first, by (at, id)

    async def record(self, entries: Sequence[AuditEntry]) -> None:
        for entry in entries:
            bisect.insort(self._entries, entry, key=lambda e: (e.at, e.id))

    async def find(
        self, where: AuditFilter, after: AuditCursor | None, limit: int
    ) -> list[AuditEntry]:
        found: list[AuditEntry] = []
        for entry in reversed(self._entries):
            if len(found) == limit:
                break
            if older(entry, after) and matches(entry, where):
                found.append(entry)
        return found

    async def purge(self, before: Micros, limit: int) -> int:
        gone = 0
        while gone < limit and self._entries and self._entries[0].at < before:
            self._entries.pop(0)
            gone += 1
        return gone
