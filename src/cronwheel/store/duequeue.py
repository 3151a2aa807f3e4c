"""Ids ordered by when they come due, for the in-memory store's claims.

A heap with lazy removal: changing an id's sort key pushes a new entry and leaves the old one
behind, to be dropped when met. A claim then reads only the due entries, never every row.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

SortKey = tuple[Any, ...]  # first element: the instant the id is due


class DueQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[SortKey, str]] = []
        self._keys: dict[str, SortKey] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def set(self, item: str, key: SortKey | None) -> None:
        """Order `item` by `key` from now on; None takes it out of the queue."""
        if key is None:
            self._keys.pop(item, None)
            return
        if self._keys.get(item) == key:
            return
        self._keys[item] = key
        heapq.heappush(self._heap, (key, item))
        if len(self._heap) > 2 * len(self._keys) + 64:
            self._compact()

    def take(self, limit: int, until: Any, eligible: Callable[[str], bool]) -> list[str]:
        """Up to `limit` eligible ids due at or before `until`, earliest first. They stay
        queued: the caller changes their keys if it changes when they are due."""
        chosen: list[str] = []
        seen: list[tuple[SortKey, str]] = []
        while self._heap and len(chosen) < limit and self._heap[0][0][0] <= until:
            key, item = heapq.heappop(self._heap)
            if self._keys.get(item) != key or (key, item) in seen[-1:]:
                continue  # stale, or a twin entry of the one just read
            seen.append((key, item))
            if eligible(item):
                chosen.append(item)
        for entry in seen:
            heapq.heappush(self._heap, entry)
        return chosen

    def _compact(self) -> None:
        self._heap = [(key, item) for item, key in self._keys.items()]
        heapq.heapify(self._heap)
