"""The dependency graph as the services read it: cycles refused at submit, the jobs
downstream of one in dependency order (for reruns), and the graph around a job with its
runs in a window (the API's and the CLI's view)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cronwheel.contracts import Store
from cronwheel.domain.dependencies import Name, describe_cycle, find_cycle
from cronwheel.domain.errors import DomainError, InvalidField
from cronwheel.domain.jobs import Job, JobSpec
from cronwheel.domain.runs import Run
from cronwheel.domain.time import Micros

MAX_NODES = 1_000  # jobs read to check or draw one graph; beyond it the walk stops


async def check_cycles(store: Store, specs: Sequence[JobSpec]) -> list[tuple[int, DomainError]]:
    """Each submitted spec that would close a dependency cycle, with the cycle named: the
    batch's own definitions stand in for the stored ones of the same name."""
    submitted = {(s.namespace, s.key): s for s in specs}
    edges: dict[Name, list[Name]] = {}

    async def load(name: Name) -> None:
        todo = [name]
        while todo and len(edges) < MAX_NODES:
            current = todo.pop()
            if current in edges:
                continue
            spec = submitted.get(current)
            if spec is None:
                job = await store.get_job(*current)
                spec = None if job is None else job.spec
            edges[current] = [] if spec is None else [d.upstream for d in spec.depends_on]
            todo.extend(edges[current])

    problems: list[tuple[int, DomainError]] = []
    for index, spec in enumerate(specs):
        if not spec.depends_on:
            continue
        name = (spec.namespace, spec.key)
        await load(name)
        cycle = find_cycle(name, lambda n: edges.get(n, []))
        if cycle is not None:
            text = describe_cycle(cycle, spec.namespace)
            problems.append((index, InvalidField(f"depends_on: cycle {text}", "depends_on")))
    return problems


async def downstream_order(store: Store, namespace: str, key: str) -> list[Job]:
    """Every job that depends on this one, directly or not, each after all of its own
    upstreams that are in the list (a topological order; ties by namespace and key)."""
    found: dict[Name, Job] = {}
    todo: list[Name] = [(namespace, key)]
    while todo and len(found) < MAX_NODES:
        for job in await store.dependents_of(*todo.pop()):
            name = (job.spec.namespace, job.spec.key)
            if name not in found:
                found[name] = job
                todo.append(name)
    ordered: list[Job] = []
    placed: set[Name] = {(namespace, key)}
    while len(ordered) < len(found):
        ready = sorted(n for n, job in found.items() if n not in placed and all(
            d.upstream in placed or d.upstream not in found for d in job.spec.depends_on))
        if not ready:  # a cycle written before the check existed: take the rest by name
            ready = sorted(n for n in found if n not in placed)
        for name in ready:
            placed.add(name)
            ordered.append(found[name])
    return ordered


@dataclass(slots=True)
class GraphNode:
    """One job in the drawing; `job` None is an upstream that does not exist (missing)."""

    namespace: str
    key: str
    job: Job | None
    runs: list[Run] = field(default_factory=list)
    strategy: str | None = None  # of the edge that led here
    window: str | None = None
    children: list[GraphNode] = field(default_factory=list)
    repeated: bool = False  # drawn already elsewhere in this tree: not expanded again


async def dependency_graph(
    store: Store, root: Job, start: Micros, end: Micros, depth: int = 10
) -> tuple[list[GraphNode], list[GraphNode]]:
    """The upstream tree and the downstream tree of `root`, each job with its scheduled
    runs planned in [start, end)."""
    budget = [MAX_NODES]
    seen_up: set[Name] = set()
    seen_down: set[Name] = set()
    up = await _upstream(store, root, start, end, depth, seen_up, budget)
    down = await _downstream(store, root, start, end, depth, seen_down, budget)
    return up, down


async def _upstream(store: Store, job: Job, start: Micros, end: Micros, depth: int,
                    seen: set[Name], budget: list[int]) -> list[GraphNode]:
    nodes: list[GraphNode] = []
    for dep in job.spec.depends_on:
        upstream = await store.get_job(*dep.upstream)
        node = GraphNode(dep.namespace, dep.job, upstream, strategy=dep.strategy.value,
                         window=str(dep.window))
        nodes.append(node)
        if upstream is None:
            continue
        node.runs = await store.upstream_history(upstream.id, start, end)
        budget[0] -= 1
        if dep.upstream in seen or depth <= 1 or budget[0] <= 0:
            node.repeated = dep.upstream in seen
            continue
        seen.add(dep.upstream)
        node.children = await _upstream(store, upstream, start, end, depth - 1, seen, budget)
    return nodes


async def _downstream(store: Store, job: Job, start: Micros, end: Micros, depth: int,
                      seen: set[Name], budget: list[int]) -> list[GraphNode]:
    nodes: list[GraphNode] = []
    for child in await store.dependents_of(job.spec.namespace, job.spec.key):
        name = (child.spec.namespace, child.spec.key)
        edge = next(d for d in child.spec.depends_on
                    if d.upstream == (job.spec.namespace, job.spec.key))
        node = GraphNode(*name, child, strategy=edge.strategy.value, window=str(edge.window))
        node.runs = await store.upstream_history(child.id, start, end)
        nodes.append(node)
        budget[0] -= 1
        if name in seen or depth <= 1 or budget[0] <= 0:
            node.repeated = name in seen
            continue
        seen.add(name)
        node.children = await _downstream(store, child, start, end, depth - 1, seen, budget)
    return nodes
