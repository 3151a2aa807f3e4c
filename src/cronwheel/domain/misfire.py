"""How a due occurrence is handled when it comes late, one occurrence per pass."""

from __future__ import annotations

from dataclasses import dataclass

from cronwheel.domain.jobs import MisfirePolicy
from cronwheel.domain.schedules import Schedule
from cronwheel.domain.time import Micros


@dataclass(frozen=True, slots=True)
class FirePlan:
    fire: bool  # create a run for `scheduled_at` and deliver it
    scheduled_at: Micros
    next_fire_at: Micros | None  # None: the schedule is exhausted


def plan(
    schedule: Schedule,
    due_at: Micros,
    now: Micros,
    policy: MisfirePolicy,
    grace_us: Micros,
) -> FirePlan:
    late = now - due_at > grace_us
    if not late or policy is MisfirePolicy.FIRE_ALL:
        return FirePlan(True, due_at, schedule.next_after(due_at))
    upcoming = schedule.next_after(max(now, due_at))
    return FirePlan(policy is MisfirePolicy.FIRE_ONCE, due_at, upcoming)
