"""Several time expressions per job (cronwheel.domain.union, domain.job_schedules)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cronwheel.domain.errors import Conflict, IllegalTransition, InvalidField
from cronwheel.domain.job_schedules import (
    Change,
    Op,
    add_schedule,
    change_schedules,
    edit_schedule,
    planned_between,
    remove_schedule,
    schedules_of,
)
from cronwheel.domain.jobs import Job, JobSpec, JobState, MisfirePolicy, cancel, new_job, pause
from cronwheel.domain.log_target import LogTarget
from cronwheel.domain.misfire import plan
from cronwheel.domain.schedules import OneShot, Schedule, schedule_from_dict
from cronwheel.domain.time import US_PER_S, Micros, parse_instant, to_iso
from cronwheel.domain.union import Union

S = US_PER_S
H = 3_600 * S
T = parse_instant("2026-11-21T00:00:00Z", "t")  # a Saturday, midnight UTC


def union(*items: dict[str, Any], now: Micros = T) -> Schedule:
    return schedule_from_dict({"kind": "union", "items": list(items)}, now)


def walk(schedule: Schedule, start: Micros, count: int) -> list[str]:
    out: list[str] = []
    at = schedule.first(start)
    while at is not None and len(out) < count:
        out.append(to_iso(at))
        at = schedule.next_after(at)
    return out


EVERY_HOUR = {"id": "h", "kind": "cron", "expr": "0 * * * *"}
EVERY_90M = {"id": "r", "kind": "rate", "every": "90m", "start": "2026-11-21T00:00:00Z"}


class TestUnion:
    def test_fires_at_the_union_and_coincident_instants_once(self) -> None:
        got = walk(union(EVERY_HOUR, EVERY_90M), T, 6)
        # 00:00 (rate start), 01:00, 01:30, 02:00, 03:00 (both: once), 04:00
        assert got == ["2026-11-21T00:00:00Z", "2026-11-21T01:00:00Z", "2026-11-21T01:30:00Z",
                       "2026-11-21T02:00:00Z", "2026-11-21T03:00:00Z", "2026-11-21T04:00:00Z"]

    def test_each_kind_as_an_item(self) -> None:
        schedule = union(
            {"id": "c", "kind": "cron", "expr": "30 6 * * *"},
            {"id": "once", "kind": "once", "at": "2026-11-21T05:00:00Z"},
            {"id": "delay", "kind": "once", "after": "PT2H"},
            {"id": "iso", "kind": "iso8601", "expr": "R2/2026-11-21T04:00:00Z/PT3H"},
            {"id": "simple", "kind": "simple", "interval": 10, "unit": "hour", "repeat": 0,
             "start": "2026-11-21T08:00:00Z"},
            {"id": "rate", "kind": "rate", "every": "1d", "start": "2026-11-21T09:00:00Z"},
        )
        assert walk(schedule, T, 8) == [
            "2026-11-21T02:00:00Z",  # the delay: two hours after the item was added
            "2026-11-21T04:00:00Z", "2026-11-21T05:00:00Z", "2026-11-21T06:30:00Z",
            "2026-11-21T07:00:00Z", "2026-11-21T08:00:00Z", "2026-11-21T09:00:00Z",
            "2026-11-22T06:30:00Z",
        ]

    def test_daylight_saving_per_item(self) -> None:
        # Berlin leaves summer time on 2026-10-25; New York on 2026-11-01.
        start = parse_instant("2026-10-24T00:00:00Z", "t")
        schedule = union(
            {"id": "berlin", "kind": "cron", "expr": "0 9 * * *", "tz": "Europe/Berlin"},
            {"id": "ny", "kind": "cron", "expr": "0 9 * * *", "tz": "America/New_York"},
            now=start,
        )
        assert walk(schedule, start, 4) == [
            "2026-10-24T07:00:00Z", "2026-10-24T13:00:00Z",  # both on summer time
            "2026-10-25T08:00:00Z", "2026-10-25T13:00:00Z",  # Berlin moved, New York not
        ]

    def test_an_item_counts_from_when_it_was_added(self) -> None:
        later = T + 10 * H
        schedule = union(EVERY_HOUR | {"added_at": to_iso(later)})
        assert schedule.first(T) == later + H
        assert schedule.next_after(T) == later + H

    def test_stored_form_round_trips(self) -> None:
        schedule = union(EVERY_HOUR, EVERY_90M)
        again = schedule_from_dict(schedule.to_dict(), T + 99 * H)
        assert again == schedule
        assert [item["id"] for item in schedule.to_dict()["items"]] == ["h", "r"]

    def test_exhausted_items_leave_the_others(self) -> None:
        schedule = union({"id": "a", "kind": "once", "at": "2026-11-21T01:00:00Z"},
                         {"id": "b", "kind": "once", "at": "2026-11-21T03:00:00Z"})
        assert walk(schedule, T, 5) == ["2026-11-21T01:00:00Z", "2026-11-21T03:00:00Z"]

    @pytest.mark.parametrize(("items", "field"), [
        ([], "items"),
        ("cron", "items"),
        ([{"id": "a", "kind": "cron", "expr": "nope"}], "items[0].cron"),
        ([EVERY_HOUR, {"id": "h", "kind": "rate", "every": "5m"}], "items[1].id"),
        ([{"id": "bad id!", "kind": "rate", "every": "5m"}], "items[0].id"),
        ([{"kind": "union", "items": [EVERY_HOUR]}], "items[0].kind"),
        ([{"id": "x", "kind": "rate", "every": "5m", "added_at": 5}], "items[0].added_at"),
        (["cron"], "items[0].kind"),
    ])
    def test_bad_items_name_their_field(self, items: Any, field: str) -> None:
        with pytest.raises(InvalidField) as caught:
            schedule_from_dict({"kind": "union", "items": items}, T)
        assert caught.value.field == field

    def test_items_without_ids_are_numbered(self) -> None:
        schedule = union({"kind": "cron", "expr": "0 * * * *"}, {"kind": "rate", "every": "5m"})
        assert isinstance(schedule, Union)
        assert schedule.ids() == ["1", "2"]


class TestMisfirePerItem:
    def catch_up(self, schedule: Schedule, due: Micros, now: Micros,
                 policy: MisfirePolicy) -> tuple[list[str], list[str], str | None]:
        fired: list[str] = []
        missed: list[str] = []
        upcoming: Micros | None = due
        while upcoming is not None and upcoming <= now:
            step = plan(schedule, upcoming, now, policy, 5 * S)
            (fired if step.fire else missed).append(to_iso(step.scheduled_at))
            upcoming = step.next_fire_at
        return fired, missed, None if upcoming is None else to_iso(upcoming)

    def test_fire_all_fires_every_instant_of_every_item_once(self) -> None:
        schedule = union(EVERY_HOUR, EVERY_90M)
        fired, missed, upcoming = self.catch_up(schedule, T, T + 3 * H + 10 * S,
                                                MisfirePolicy.FIRE_ALL)
        assert fired == ["2026-11-21T00:00:00Z", "2026-11-21T01:00:00Z", "2026-11-21T01:30:00Z",
                         "2026-11-21T02:00:00Z", "2026-11-21T03:00:00Z"]
        assert missed == []
        assert upcoming == "2026-11-21T04:00:00Z"

    def test_skip_passes_over_every_item_to_the_next_instant(self) -> None:
        schedule = union(EVERY_HOUR, EVERY_90M)
        fired, missed, upcoming = self.catch_up(schedule, T, T + 3 * H + 10 * S,
                                                MisfirePolicy.SKIP)
        assert fired == []
        assert missed == ["2026-11-21T00:00:00Z"]
        assert upcoming == "2026-11-21T04:00:00Z"


def a_job(schedule: Schedule, now: Micros = T) -> Job:
    spec = JobSpec(namespace="default", key="k", schedule=schedule, target=LogTarget())
    return new_job("job-1", spec, now)


class TestEditingSchedules:
    def test_a_single_schedule_is_item_one(self) -> None:
        job = a_job(schedule_from_dict({"kind": "cron", "expr": "0 * * * *"}, T))
        assert schedules_of(job).ids() == ["1"]

    def test_add_fires_sooner_and_keeps_the_others(self) -> None:
        job = a_job(schedule_from_dict({"kind": "cron", "expr": "0 0 * * *"}, T))
        assert job.next_fire_at == T + 24 * H
        now = T + 30 * S
        added = add_schedule(job, {"kind": "rate", "every": "1h"}, now)
        assert schedules_of(added).ids() == ["1", "2"]
        assert added.next_fire_at == now + H
        assert added.fingerprint != job.fingerprint
        assert added.id == job.id and added.created_at == job.created_at

    def test_edit_replaces_by_id_and_recomputes(self) -> None:
        job = add_schedule(a_job(schedule_from_dict({"kind": "cron", "expr": "0 0 * * *"}, T)),
                           {"id": "fast", "kind": "cron", "expr": "*/5 * * * *"}, T)
        assert job.next_fire_at == T + 300 * S
        edited = edit_schedule(job, "fast", {"kind": "cron", "expr": "0 12 * * *"}, T)
        assert edited.next_fire_at == T + 12 * H
        assert schedules_of(edited).ids() == ["1", "fast"]

    def test_remove_recomputes_and_refuses_the_last(self) -> None:
        job = add_schedule(a_job(schedule_from_dict({"kind": "cron", "expr": "0 0 * * *"}, T)),
                           {"id": "fast", "kind": "cron", "expr": "*/5 * * * *"}, T)
        removed = remove_schedule(job, "fast", T)
        assert removed.next_fire_at == T + 24 * H
        with pytest.raises(Conflict) as caught:
            remove_schedule(removed, "1", T)
        assert caught.value.field == "schedules"

    def test_occurrences_already_fired_are_not_fired_again(self) -> None:
        job = a_job(schedule_from_dict({"kind": "cron", "expr": "0 * * * *"}, T))
        fired = replace(job, last_fire_at=T + 2 * H, next_fire_at=T + 3 * H)
        edited = add_schedule(fired, {"kind": "once", "at": to_iso(T + H)}, T + 2 * H + S)
        assert edited.next_fire_at == T + 3 * H  # the past one-shot is before the last fire

    def test_adding_to_a_completed_job_makes_it_active(self) -> None:
        job = replace(a_job(OneShot(T + H)), state=JobState.COMPLETED, next_fire_at=None,
                      last_fire_at=T + H)
        revived = add_schedule(job, {"kind": "once", "at": to_iso(T + 5 * H)}, T + 2 * H)
        assert (revived.state, revived.next_fire_at) == (JobState.ACTIVE, T + 5 * H)

    def test_a_paused_job_stays_paused(self) -> None:
        job = pause(a_job(schedule_from_dict({"kind": "cron", "expr": "0 * * * *"}, T)), T)
        edited = add_schedule(job, {"kind": "rate", "every": "5m"}, T)
        assert (edited.state, edited.next_fire_at) == (JobState.PAUSED, None)

    def test_refusals_name_the_field(self) -> None:
        job = a_job(schedule_from_dict({"kind": "cron", "expr": "0 * * * *"}, T))
        with pytest.raises(InvalidField) as caught:
            add_schedule(job, {"id": "1", "kind": "rate", "every": "5m"}, T)
        assert caught.value.field == "id"
        with pytest.raises(InvalidField) as caught:
            edit_schedule(job, "nope", {"kind": "rate", "every": "5m"}, T)
        assert caught.value.field == "id"
        with pytest.raises(InvalidField) as caught:
            edit_schedule(job, "1", {"id": "2", "kind": "rate", "every": "5m"}, T)
        assert caught.value.field == "id"
        with pytest.raises(IllegalTransition):
            add_schedule(cancel(job, T), {"kind": "rate", "every": "5m"}, T)


class TestPlannedBetween:
    def test_both_ends_count_and_the_union_once(self) -> None:
        schedule = union(EVERY_HOUR, EVERY_90M, now=T + 100 * H)  # added later: still counted
        got = planned_between(schedule, T, T + 3 * H, 100)
        assert [to_iso(at) for at in got] == [
            "2026-11-21T00:00:00Z", "2026-11-21T01:00:00Z", "2026-11-21T01:30:00Z",
            "2026-11-21T02:00:00Z", "2026-11-21T03:00:00Z"]

    def test_more_than_the_limit_is_refused_naming_to(self) -> None:
        schedule = union(EVERY_HOUR)
        assert len(planned_between(schedule, T, T + 9 * H, 10)) == 10
        with pytest.raises(InvalidField) as caught:
            planned_between(schedule, T, T + 10 * H, 10)
        assert caught.value.field == "to"


class TestSeveralChangesAtOnce:
    def job(self) -> Job:
        return add_schedule(a_job(schedule_from_dict({"kind": "cron", "expr": "0 0 * * *"}, T)),
                            {"id": "fast", "kind": "cron", "expr": "*/5 * * * *"}, T)

    def test_remove_all_then_add_is_allowed(self) -> None:
        changes = [Change(Op.REMOVE, "1"), Change(Op.REMOVE, "fast"),
                   Change(Op.ADD, "noon", {"kind": "cron", "expr": "0 12 * * *"})]
        changed = change_schedules(self.job(), changes, T)
        assert schedules_of(changed).ids() == ["noon"]
        assert changed.next_fire_at == T + 12 * H

    def test_the_result_must_keep_one(self) -> None:
        with pytest.raises(Conflict) as caught:
            change_schedules(self.job(), [Change(Op.REMOVE, "1"), Change(Op.REMOVE, "fast")], T)
        assert caught.value.field == "schedules"

    @pytest.mark.parametrize(("change", "field"), [
        (Change(Op.EDIT, None, {"kind": "rate", "every": "5m"}), "changes[1].id"),
        (Change(Op.REMOVE, "nope"), "changes[1].id"),
        (Change(Op.ADD, None, None), "changes[1].kind"),
        (Change(Op.ADD, "fast", {"kind": "rate", "every": "5m"}), "changes[1].id"),
        (Change(Op.EDIT, "1", {"kind": "rate", "every": "never"}), "changes[1].every"),
    ])
    def test_a_refused_change_is_named_by_its_place(self, change: Change, field: str) -> None:
        first = Change(Op.ADD, "extra", {"kind": "rate", "every": "1h"})
        with pytest.raises(InvalidField) as caught:
            change_schedules(self.job(), [first, change], T)
        assert caught.value.field == field
