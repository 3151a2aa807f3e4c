"""Several time expressions for one job: the job fires at the union of their instants.

Each item is an ordinary schedule with an id (so it can be edited or removed on its own) and
the instant it was added: an item counts from then, as a job counts from its creation, so a
cron added today does not reach back to the job's first fire. Two items meeting on the same
instant make one occurrence, as `next_after` answers each instant once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.schedules import AfterUpstream, Schedule, register, schedule_from_dict
from cronwheel.domain.time import Micros, parse_instant, to_iso

MAX_ITEMS = 100
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ITEM_FIELDS = ("id", "added_at")


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    schedule: Schedule
    added_at: Micros

    def first(self) -> Micros | None:
        return self.schedule.first(self.added_at)

    def next_after(self, instant: Micros) -> Micros | None:
        first = self.first()
        if first is not None and first > instant:
            return first
        return self.schedule.next_after(instant)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.schedule.to_dict(), "added_at": to_iso(self.added_at)}


@dataclass(frozen=True, slots=True)
class Union:
    """Fires at every instant of any item, once per instant."""

    items: tuple[Item, ...]
    kind: ClassVar[str] = "union"

    def next_after(self, instant: Micros) -> Micros | None:
        found = [at for item in self.items if (at := item.next_after(instant)) is not None]
        return min(found, default=None)

    def first(self, created_at: Micros) -> Micros | None:
        found = [at for item in self.items if (at := item.first()) is not None]
        return min(found, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "items": [item.to_dict() for item in self.items]}

    def describe(self) -> str:
        return "; or ".join(f"[{item.id}] {item.schedule.describe()}" for item in self.items)

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise InvalidField(f"no schedule with id {item_id!r}", "id")

    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    def added(self, item: Item) -> Union:
        if item.id in self.ids():
            raise InvalidField(f"a schedule with id {item.id!r} exists already", "id")
        return _checked((*self.items, item))

    def edited(self, item: Item) -> Union:
        self.item(item.id)
        return Union(tuple(item if i.id == item.id else i for i in self.items))

    def removed(self, item_id: str) -> Union:
        """May leave no item: the caller decides whether an empty union is allowed."""
        self.item(item_id)
        return Union(tuple(i for i in self.items if i.id != item_id))


def as_union(schedule: Schedule, created_at: Micros) -> Union:
    """A job's schedule as a union: a single schedule becomes the item with id "1"; a job
    run by its upstreams alone (`dependencies`) has no time expression."""
    if isinstance(schedule, Union):
        return schedule
    if isinstance(schedule, AfterUpstream):
        return Union(())
    return Union((Item("1", schedule, created_at),))


def next_id(union: Union) -> str:
    """The smallest positive number not yet used as an id (Sentinel's ids are numbers)."""
    taken = set(union.ids())
    return next(str(n) for n in range(1, MAX_ITEMS + 2) if str(n) not in taken)


def item_from_dict(
    data: Mapping[str, Any], now: Micros, default_id: str | None = None
) -> Item:
    """One item: a schedule's fields plus `id` (or `default_id`) and, when stored, `added_at`.
    Errors name the field inside the item."""
    if not isinstance(data, Mapping):
        raise InvalidField("a schedule must be an object", "kind")
    item_id = data.get("id", default_id)
    if not isinstance(item_id, str) or not _ID.match(item_id):
        raise InvalidField("id must be 1 to 64 letters, digits, '.', '_' or '-', starting "
                           "with a letter or digit", "id")
    if data.get("kind") == Union.kind:
        raise InvalidField("a union cannot hold another union", "kind")
    if data.get("kind") == AfterUpstream.kind:
        raise InvalidField("dependencies are not a time expression: a job with depends_on "
                           "and no expression runs after its upstreams", "kind")
    added = data.get("added_at")
    added_at = now if added is None else _added_at(added)
    rest = {name: value for name, value in data.items() if name not in _ITEM_FIELDS}
    return Item(item_id, schedule_from_dict(rest, added_at), added_at)


def _added_at(value: Any) -> Micros:
    if not isinstance(value, str):
        raise InvalidField("added_at must be an ISO 8601 instant", "added_at")
    return parse_instant(value, "added_at")


def union_from_items(raw: Any, now: Micros) -> Union:
    """A union from a list of items; a failing item is named `items[i].field`."""
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise InvalidField("items must be a list of schedules", "items")
    items: list[Item] = []
    for index, data in enumerate(raw):
        try:
            items.append(item_from_dict(data, now, default_id=str(index + 1)))
        except InvalidField as exc:
            raise InvalidField(exc.message, f"items[{index}].{exc.field or 'kind'}") from None
    return _checked(tuple(items))


def _checked(items: tuple[Item, ...]) -> Union:
    if not 1 <= len(items) <= MAX_ITEMS:
        raise InvalidField(f"a union holds 1 to {MAX_ITEMS} schedules, got {len(items)}",
                           "items")
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.id in seen:
            raise InvalidField(f"schedule id {item.id!r} is repeated", f"items[{index}].id")
        seen.add(item.id)
    return Union(items)


def _parse_union(data: Mapping[str, Any], now: Micros) -> Schedule:
    return union_from_items(data.get("items"), now)


register(Union.kind, _parse_union)
