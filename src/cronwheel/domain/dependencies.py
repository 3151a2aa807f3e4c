"""Dependencies between jobs: what a downstream run waits for, and when that holds.

A dependency names an upstream job, a window (see `windows`) and a strategy. For a run
planned at T the window gives [start, end); the upstream's scheduled runs planned inside it,
ordered by (planned time, id), each judged by its latest state, decide:

- `all`: at least one, and every one satisfied;
- `last`: the last one satisfied;
- `any`: at least one satisfied.

A run is satisfied when it succeeded or was removed (cancelled). Instants the upstream's
schedule plans inside the window that have no run yet count as runs not yet satisfied, so a
window reaching past now waits for the runs still to come instead of judging a half.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.runs import RunState
from cronwheel.domain.schedules import Schedule
from cronwheel.domain.time import Micros
from cronwheel.domain.windows import Window, parse_window

MAX_DEPENDENCIES = 32
MAX_EXPECTED = 5_000  # planned instants looked at per window; a denser plan judges its runs
CURRENT_DAY = Window("d")
SATISFIED = frozenset({RunState.SUCCEEDED, RunState.CANCELLED})


class Strategy(StrEnum):
    ALL = "all"
    LAST = "last"
    ANY = "any"


Name = tuple[str, str]  # (namespace, key)


@dataclass(frozen=True, slots=True)
class Dependency:
    namespace: str
    job: str
    strategy: Strategy = Strategy.ALL
    window: Window = CURRENT_DAY

    @property
    def upstream(self) -> Name:
        return self.namespace, self.job

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "namespace": self.namespace, "strategy": self.strategy.value,
                "window": str(self.window)}


@dataclass(frozen=True, slots=True)
class UpstreamRun:
    """One upstream run as a window sees it; `state` None is a planned run not made yet."""

    planned: Micros
    id: str
    state: RunState | None


def parse_dependencies(items: Any, namespace: str, field: str = "depends_on"
                       ) -> tuple[Dependency, ...]:
    """The submitted list: `[{"job", "namespace"?, "strategy"?, "window"?}]`; the namespace
    defaults to the downstream job's own."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise InvalidField(f"{field} must be a list", field)
    if len(items) > MAX_DEPENDENCIES:
        raise InvalidField(f"{field} holds at most {MAX_DEPENDENCIES} entries", field)
    found = [_one(item, namespace, f"{field}[{i}]") for i, item in enumerate(items)]
    if len({d.upstream for d in found}) != len(found):
        raise InvalidField(f"{field} names one upstream job twice", field)
    return tuple(found)


def _one(item: Any, namespace: str, field: str) -> Dependency:
    if not isinstance(item, Mapping):
        raise InvalidField(f"{field} must be an object with 'job'", field)
    unknown = set(item) - {"job", "namespace", "strategy", "window"}
    if unknown:
        raise InvalidField(f"{field} has unknown fields: {', '.join(sorted(unknown))}", field)
    job = _name(item.get("job"), f"{field}.job")
    space = _name(item.get("namespace", namespace), f"{field}.namespace")
    strategy = item.get("strategy", "all")
    if strategy not in {s.value for s in Strategy}:
        raise InvalidField(f"{field}.strategy must be all, last or any", f"{field}.strategy")
    window = item.get("window", "cd")
    if window is not None and not isinstance(window, str):
        raise InvalidField(f"{field}.window must be a string such as cd", f"{field}.window")
    return Dependency(space, job, Strategy(strategy), parse_window(window, f"{field}.window"))


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        raise InvalidField(f"{field} must be 1 to 255 characters", field)
    return value


def with_plan(runs: Sequence[UpstreamRun], planned: Iterable[Micros]) -> list[UpstreamRun]:
    """The window's runs plus a not-yet-made run for each planned instant without one,
    ordered by (planned time, id)."""
    made = {run.planned for run in runs}
    missing = [UpstreamRun(at, "", None) for at in planned if at not in made]
    return sorted([*runs, *missing], key=lambda r: (r.planned, r.id))


def holds(strategy: Strategy, history: Sequence[UpstreamRun]) -> bool:
    """Whether the ordered history satisfies the strategy."""
    done = [run.state in SATISFIED for run in history]
    if strategy is Strategy.ALL:
        return bool(done) and all(done)
    if strategy is Strategy.LAST:
        return bool(done) and done[-1]
    return any(done)


def planned_in(schedule: Schedule, start: Micros, end: Micros, since: Micros) -> list[Micros]:
    """The schedule's instants in [max(start, since), end), at most MAX_EXPECTED of them."""
    found: list[Micros] = []
    at = schedule.next_after(max(start, since) - 1)
    while at is not None and at < end and len(found) < MAX_EXPECTED:
        found.append(at)
        at = schedule.next_after(at)
    return found


def find_cycle(start: Name, upstreams: Callable[[Name], Sequence[Name]]) -> list[Name] | None:
    """A path start -> ... -> start following `upstreams`, or None. Depth first, each job
    visited once, so a graph of any shape costs one look per edge."""
    path: list[Name] = [start]
    seen: set[Name] = set()
    stack: list[Iterator[Name]] = [iter(upstreams(start))]
    while stack:
        nxt = next(stack[-1], None)  # each iterator keeps its place between rounds
        if nxt is None:
            stack.pop()
            path.pop()
            continue
        if nxt == start:
            return [*path, start]
        if nxt in seen:
            continue
        seen.add(nxt)
        path.append(nxt)
        stack.append(iter(upstreams(nxt)))
    return None


def describe_cycle(cycle: Sequence[Name], namespace: str) -> str:
    """`a -> b -> a`, with `ns/key` for jobs of another namespace."""
    return " -> ".join(key if space == namespace else f"{space}/{key}" for space, key in cycle)
