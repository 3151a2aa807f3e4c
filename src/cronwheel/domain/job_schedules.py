"""Editing a job's time expressions one by one, and the instants a backfill covers.

A job's schedule becomes a union on its first edit (its single schedule is then item "1").
Every edit recomputes the next fire time from the last occurrence fired, as resuming does,
so an occurrence already fired is never fired again and one not yet fired is not lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from cronwheel.domain.errors import Conflict, IllegalTransition, InvalidField
from cronwheel.domain.jobs import Job, JobState
from cronwheel.domain.schedules import AfterUpstream, Schedule
from cronwheel.domain.time import Micros
from cronwheel.domain.union import Union, as_union, item_from_dict, next_id


def schedules_of(job: Job) -> Union:
    """The job's time expressions, each with its id."""
    return as_union(job.spec.schedule, job.created_at)


class Op(StrEnum):
    """Sentinel's operatorMode: 1 ADD, 2 EDIT, 3 DELETE."""

    ADD = "add"
    EDIT = "edit"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class Change:
    op: Op
    id: str | None = None  # required to edit or remove; to add, the item's id if given
    data: Mapping[str, Any] | None = None  # the expression, to add or edit


def add_schedule(job: Job, data: Mapping[str, Any], now: Micros) -> Job:
    return _single(job, Change(Op.ADD, None, data), now)


def edit_schedule(job: Job, item_id: str, data: Mapping[str, Any], now: Micros) -> Job:
    """The expression with this id replaced; it counts from now, as a new one does."""
    return _single(job, Change(Op.EDIT, item_id, data), now)


def remove_schedule(job: Job, item_id: str, now: Micros) -> Job:
    return _single(job, Change(Op.REMOVE, item_id), now)


def _single(job: Job, change: Change, now: Micros) -> Job:
    return _with_schedule(job, _checked_nonempty(job, _apply(schedules_of(job), change, now)),
                          now)


def change_schedules(job: Job, changes: Sequence[Change], now: Micros) -> Job:
    """Several changes at once, in order (as Sentinel's scheduleExpressionList sends them);
    only the end result must keep an expression, so removing one and adding another in the
    same call is allowed. A refused change is named `changes[i].field`."""
    union = schedules_of(job)
    for index, change in enumerate(changes):
        try:
            union = _apply(union, change, now)
        except InvalidField as exc:
            raise InvalidField(exc.message, f"changes[{index}].{exc.field or 'op'}") from None
    return _with_schedule(job, _checked_nonempty(job, union), now)


def _apply(union: Union, change: Change, now: Micros) -> Union:
    if change.op is Op.REMOVE:
        return union.removed(_id_of(change))
    data = change.data
    if not isinstance(data, Mapping):
        raise InvalidField("the expression is missing: give a schedule object", "kind")
    if change.op is Op.ADD:
        given = {**data, "id": change.id} if change.id is not None else data
        return union.added(item_from_dict(given, now, default_id=next_id(union)))
    item_id = _id_of(change)
    union.item(item_id)
    named = data.get("id", item_id)
    if named != item_id:
        raise InvalidField(f"id {named!r} in the body differs from {item_id!r} in the path",
                           "id")
    return union.edited(item_from_dict({**data, "id": item_id}, now))


def _id_of(change: Change) -> str:
    if change.id is None:
        raise InvalidField(f"to {change.op.value} an expression, name its id", "id")
    return change.id


def _checked_nonempty(job: Job, union: Union) -> Schedule:
    """A job that waits only on other jobs' runs needs no expression: with `depends_on`, no
    expression left makes it a `dependencies` job (one run per upstream run), as submitted
    with that schedule; without, the last expression cannot go."""
    if not union.items and job.spec.depends_on:
        return AfterUpstream()
    if not union.items:
        raise Conflict("this is the job's only time expression: a job needs at least one "
                       "in schedules (add another first, or cancel the job)", "schedules")
    return union


def _with_schedule(job: Job, schedule: Schedule, now: Micros) -> Job:
    if job.state is JobState.CANCELLED:
        raise IllegalTransition("the job is cancelled: its schedules cannot change", "key")
    spec = replace(job.spec, schedule=schedule)
    changed = replace(job, spec=spec, fingerprint=spec.fingerprint(), updated_at=now)
    if job.state is JobState.PAUSED:
        return changed  # resuming computes the next fire time from the new schedules
    if isinstance(schedule, AfterUpstream):  # fired by its upstreams' runs, never by time
        return replace(changed, next_fire_at=None, state=JobState.ACTIVE)
    if job.last_fire_at is None:
        upcoming = schedule.first(job.created_at)
    else:
        upcoming = schedule.next_after(job.last_fire_at)
    state = JobState.ACTIVE if upcoming is not None else JobState.COMPLETED
    return replace(changed, next_fire_at=upcoming, state=state)


def planned_between(schedule: Schedule, start: Micros, end: Micros, most: int) -> list[Micros]:
    """Every planned instant in [start, end], in order; more than `most` is refused (naming
    `to`), so a backfill is bounded before anything is written. A union's items count here
    from their own start, not from when they were added: a backfill is for the past."""
    found: list[Micros] = []
    at = _raw_next(schedule, start - 1)
    while at is not None and at <= end:
        if len(found) == most:
            raise InvalidField(f"the range holds more than {most} planned instants: narrow "
                               "it", "to")
        found.append(at)
        at = _raw_next(schedule, at)
    return found


def _raw_next(schedule: Schedule, instant: Micros) -> Micros | None:
    if not isinstance(schedule, Union):
        return schedule.next_after(instant)
    found = [at for item in schedule.items
             if (at := item.schedule.next_after(instant)) is not None]
    return min(found, default=None)
