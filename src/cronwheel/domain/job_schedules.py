"""Editing a job's time expressions one by one, and the instants a backfill covers.

A job's schedule becomes a union on its first edit (its single schedule is then item "1").
Every edit recomputes the next fire time from the last occurrence fired, as resuming does,
so an occurrence already fired is never fired again and one not yet fired is not lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cronwheel.domain.errors import Conflict, IllegalTransition, InvalidField
from cronwheel.domain.jobs import Job, JobState
from cronwheel.domain.schedules import Schedule
from cronwheel.domain.time import Micros
from cronwheel.domain.union import Union, as_union, item_from_dict, next_id


def schedules_of(job: Job) -> Union:
    """The job's time expressions, each with its id."""
    return as_union(job.spec.schedule, job.created_at)


def add_schedule(job: Job, data: Mapping[str, Any], now: Micros) -> Job:
    union = schedules_of(job)
    item = item_from_dict(data, now, default_id=next_id(union))
    return _with_schedule(job, union.added(item), now)


def edit_schedule(job: Job, item_id: str, data: Mapping[str, Any], now: Micros) -> Job:
    """The expression with this id replaced; it counts from now, as a new one does."""
    union = schedules_of(job)
    union.item(item_id)
    given = data.get("id", item_id)
    if given != item_id:
        raise InvalidField(f"id {given!r} in the body differs from {item_id!r} in the path",
                           "id")
    item = item_from_dict({**data, "id": item_id}, now)
    return _with_schedule(job, union.edited(item), now)


def remove_schedule(job: Job, item_id: str, now: Micros) -> Job:
    """Refused when it would leave the job with no time expression at all.

    A job that waits only on other jobs' runs needs none: once jobs carry dependencies,
    allow the empty union for a job that has them (here, and in `_with_schedule`)."""
    remaining = schedules_of(job).removed(item_id)
    if not remaining.items:
        raise Conflict("this is the job's only time expression: a job needs at least one "
                       "in schedules (add another first, or cancel the job)", "schedules")
    return _with_schedule(job, remaining, now)


def _with_schedule(job: Job, schedule: Schedule, now: Micros) -> Job:
    if job.state is JobState.CANCELLED:
        raise IllegalTransition("the job is cancelled: its schedules cannot change", "key")
    spec = replace(job.spec, schedule=schedule)
    changed = replace(job, spec=spec, fingerprint=spec.fingerprint(), updated_at=now)
    if job.state is JobState.PAUSED:
        return changed  # resuming computes the next fire time from the new schedules
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
