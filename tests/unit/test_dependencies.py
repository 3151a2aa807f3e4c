"""Strategies over hand-made upstream histories, the planned runs still to come, the
submitted form of `depends_on`, and cycles."""

from __future__ import annotations

import pytest

from cronwheel.domain.cron.schedule import parse_cron_schedule
from cronwheel.domain.dependencies import (
    Strategy,
    UpstreamRun,
    describe_cycle,
    find_cycle,
    holds,
    parse_dependencies,
    planned_in,
    with_plan,
)
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.runs import RunState
from cronwheel.domain.time import US_PER_S, parse_instant
from cronwheel.domain.windows import Window

OK, FAIL, RUN, GONE = RunState.SUCCEEDED, RunState.FAILED, RunState.RUNNING, RunState.CANCELLED
HOUR = 3_600 * US_PER_S


def history(*states: RunState | None) -> list[UpstreamRun]:
    return [UpstreamRun(i * HOUR, f"r{i}", s) for i, s in enumerate(states)]


@pytest.mark.parametrize(("states", "all_", "last", "any_"), [
    ((), False, False, False),
    ((OK,), True, True, True),
    ((OK, OK, OK), True, True, True),
    ((OK, FAIL, OK), False, True, True),
    ((OK, OK, FAIL), False, False, True),
    ((FAIL, FAIL), False, False, False),
    ((OK, RUN), False, False, True),
    ((GONE, OK), True, True, True),  # removed counts as satisfied
    ((OK, None), False, False, True),  # a planned run not made yet
    ((RunState.MISSED, OK), False, True, True),
    ((RunState.EXPIRED,), False, False, False),
])
def test_each_strategy_on_a_history(
    states: tuple[RunState | None, ...], all_: bool, last: bool, any_: bool
) -> None:
    runs = history(*states)
    assert (holds(Strategy.ALL, runs), holds(Strategy.LAST, runs),
            holds(Strategy.ANY, runs)) == (all_, last, any_)


def test_last_goes_by_planned_time_then_id_not_by_list_order() -> None:
    runs = [UpstreamRun(2 * HOUR, "b", FAIL), UpstreamRun(HOUR, "z", OK),
            UpstreamRun(2 * HOUR, "a", OK)]
    ordered = with_plan(runs, [])
    assert [r.id for r in ordered] == ["z", "a", "b"]
    assert not holds(Strategy.LAST, ordered)


def test_planned_instants_without_a_run_are_added_in_order() -> None:
    runs = [UpstreamRun(HOUR, "r1", OK)]
    ordered = with_plan(runs, [0, HOUR, 2 * HOUR])
    assert [(r.planned, r.state) for r in ordered] == [(0, None), (HOUR, OK), (2 * HOUR, None)]
    assert not holds(Strategy.ALL, ordered) and not holds(Strategy.LAST, ordered)
    assert holds(Strategy.ANY, ordered)


def test_planned_in_lists_the_schedule_inside_the_window_from_its_creation() -> None:
    start = parse_instant("2026-06-01T00:00:00Z")
    hourly = parse_cron_schedule({"kind": "cron", "expr": "0 * * * *"}, start)
    day = Window("d").bounds(start, "UTC")
    assert len(planned_in(hourly, *day, since=0)) == 24
    assert planned_in(hourly, *day, since=start + 20 * HOUR) == [
        start + h * HOUR for h in range(20, 24)]


def test_depends_on_is_read_with_defaults_and_errors_name_the_entry() -> None:
    [dep] = parse_dependencies([{"job": "a"}], "ns")
    assert dep.to_dict() == {"job": "a", "namespace": "ns", "strategy": "all", "window": "cd"}
    with pytest.raises(InvalidField) as caught:
        parse_dependencies([{"job": "a"}, {"job": "b", "strategy": "most"}], "ns")
    assert caught.value.field == "depends_on[1].strategy"
    with pytest.raises(InvalidField) as caught:
        parse_dependencies([{"job": "a", "window": "d(x)"}], "ns")
    assert caught.value.field == "depends_on[0].window"
    with pytest.raises(InvalidField) as caught:
        parse_dependencies([{"job": "a"}, {"job": "a", "window": "ch"}], "ns")
    assert caught.value.field == "depends_on"


def test_a_cycle_is_found_and_named() -> None:
    edges = {("n", "a"): [("n", "b")], ("n", "b"): [("n", "c"), ("n", "d")],
             ("n", "c"): [], ("n", "d"): [("n", "a")]}
    cycle = find_cycle(("n", "a"), lambda name: edges.get(name, []))
    assert cycle is not None
    assert describe_cycle(cycle, "n") == "a -> b -> d -> a"
    edges[("n", "d")] = [("m", "x")]
    assert find_cycle(("n", "a"), lambda name: edges.get(name, [])) is None


def test_a_diamond_is_no_cycle() -> None:
    edges = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}
    assert find_cycle(("n", "a"), lambda n: [("n", k) for k in edges[n[1]]]) is None
