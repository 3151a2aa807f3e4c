"""Which worker runs a run: pure choices over a snapshot of the group's online workers."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cronwheel.domain.worker_target import Route


@dataclass(frozen=True, slots=True)
class Candidate:
    """An online worker allowed to run the job, with its load when the choice is made."""

    id: str
    name: str
    busy: int  # tasks assigned or running
    capacity: int
    host: str = ""


def _weight(key: str, name: str) -> bytes:
    return hashlib.blake2b(f"{key}\x00{name}".encode(), digest_size=8).digest()


def choose(
    route: Route, candidates: Sequence[Candidate], job_key: str, turn: int, draw: float
) -> list[Candidate]:
    """The workers to hand the run to: one, or all for broadcast; none when there are none.

    `turn` counts the job's previous choices (round-robin); `draw` is in [0, 1) (random).
    Consistent hashing is rendezvous hashing: each key ranks workers by a hash of (key, name),
    so a worker joining or leaving moves only the keys it wins or held.
    """
    if not candidates:
        return []
    ordered = sorted(candidates, key=lambda c: c.name)
    if route is Route.BROADCAST:
        return ordered
    if route is Route.RANDOM:
        return [ordered[min(int(draw * len(ordered)), len(ordered) - 1)]]
    if route is Route.ROUND_ROBIN:
        return [ordered[turn % len(ordered)]]
    if route is Route.LEAST_BUSY:
        return [min(ordered, key=lambda c: (c.busy / max(1, c.capacity), c.busy))]
    if route is Route.CONSISTENT_HASH:
        return [max(ordered, key=lambda c: _weight(job_key, c.name))]
    return [ordered[0]]  # failover: the first by name; the next takes over when it is gone
