"""Fair shares between namespaces, pure: who is crowding a shared window, and how much room
one namespace may take of a shared capacity.

The engine shares three things between namespaces: the claimed look-ahead window, the
deliveries held in memory, and the attempts under way. One rule serves them all: with `n`
namespaces holding some of a capacity, each may hold up to `capacity // (n + 1)`, so one
share is always left for a namespace that holds none yet. A namespace that floods is held to
its share and waits on its own backlog; the others find room at once. Priority orders jobs
within a namespace only (`by_priority_within`), never one namespace before another.

Everything here is O(namespaces) or O(items): nothing sorts a whole batch unless some
namespace is over its share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")


def share(capacity: int, holders: int) -> int:
    """The most one namespace may hold when `holders` namespaces (itself included) hold
    some: a share for each and one kept for a newcomer, at least 1."""
    return max(1, capacity // (holders + 1))


def room_for(namespace: str, held: Mapping[str, int], total: int, capacity: int) -> int:
    """How many more `namespace` may take: its share less what it holds, and never past
    what is left of the capacity. `held` counts per namespace (only those holding some);
    `total` is their sum."""
    mine = held.get(namespace, 0)
    holders = len(held) + (0 if mine else 1)
    return max(0, min(capacity - total, share(capacity, holders) - mine))


def crowding(held: Mapping[str, int], capacity: int) -> frozenset[str]:
    """The namespaces holding more than their share of `capacity`: the ones to leave out when
    looking for the others' work (a lone holder's share is half the capacity)."""
    fair = share(capacity, len(held))
    return frozenset(ns for ns, count in held.items() if count > fair)


def by_priority_within(
    items: Sequence[T], namespace_of: Callable[[T], str], priority_of: Callable[[T], int],
    room: Callable[[str], int],
) -> tuple[list[T], list[T]]:
    """Split `items` into those taking room now and those left over, each namespace getting
    at most `room(namespace)`; within a namespace that has less room than items, the highest
    priorities first (a stable sort of that namespace's items only). Order otherwise kept."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(namespace_of(item), []).append(item)
    taken: list[T] = []
    left: list[T] = []
    for namespace, group in groups.items():
        allowed = room(namespace)
        if allowed >= len(group):
            taken.extend(group)
            continue
        ranked = sorted(group, key=lambda item: -priority_of(item))
        taken.extend(ranked[:allowed])
        left.extend(ranked[allowed:])
    return taken, left


def split(budget: int, wants: Mapping[str, int]) -> dict[str, int]:
    """Share `budget` between namespaces wanting `wants`: the smallest wants first, each
    getting all it wants up to an even share of what is left (water-filling), so a namespace
    with a few items is never cut for one with thousands. Each gets at least 1."""
    given: dict[str, int] = {}
    left = budget
    ranked = sorted(wants.items(), key=lambda item: item[1])
    for index, (namespace, want) in enumerate(ranked):
        given[namespace] = max(1, min(want, left // (len(ranked) - index)))
        left -= given[namespace]
    return given


def count_by(items: Iterable[T], namespace_of: Callable[[T], str]) -> dict[str, int]:
    """How many of `items` each namespace has."""
    counts: dict[str, int] = {}
    for item in items:
        namespace = namespace_of(item)
        counts[namespace] = counts.get(namespace, 0) + 1
    return counts
