"""Prometheus metrics, process-wide (one server per process)."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

_LATENESS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300)

JOBS_SUBMITTED = Counter("cronwheel_jobs_submitted_total", "Jobs created", ["namespace"])
RUNS_FIRED = Counter("cronwheel_runs_fired_total", "Runs created by the scheduler", ["kind"])
RUNS_MISSED = Counter("cronwheel_runs_missed_total", "Occurrences skipped by misfire policy")
FIRES_DELAYED = Counter("cronwheel_fires_delayed_total",
                        "Fires held back by their app's fires_per_second limit")
FIRE_LATENESS = Histogram(
    "cronwheel_fire_lateness_seconds",
    "Time from an occurrence's scheduled instant to the start of its delivery",
    buckets=_LATENESS_BUCKETS,
)
DELIVERIES = Counter(
    "cronwheel_deliveries_total", "Delivery attempts by outcome", ["target", "outcome"]
)
DELIVERY_SECONDS = Histogram(
    "cronwheel_delivery_seconds", "Duration of delivery attempts", ["target"],
    buckets=_LATENESS_BUCKETS,
)


# The labelled children the dispatcher touches on every attempt, looked up once: a `labels()`
# call costs a lock and a few microseconds, at thousands of callbacks a second.
@functools.cache
def deliveries(kind: str, outcome: str) -> Counter:
    return DELIVERIES.labels(kind, outcome)


@functools.cache
def delivery_seconds(kind: str) -> Histogram:
    return DELIVERY_SECONDS.labels(kind)


INFLIGHT = Gauge("cronwheel_deliveries_in_flight", "Deliveries held in memory")
LOOKAHEAD = Gauge("cronwheel_lookahead_jobs", "Claimed jobs waiting in the look-ahead window")
AUDIT_DROPPED = Counter(
    "cronwheel_audit_dropped_total",
    "Audit entries of refused requests dropped because too many waited to be written",
)


def merge_pages(api: str, engine: str) -> bytes:
    """One /metrics page for a server in two processes (`serve --engine-process`): each
    sample is the sum of both processes' (each counts its own work; the other's copy of a
    metric stays at zero), creation times the earliest, and the engine process's own
    platform metrics (process_*, python_*) renamed cronwheel_engine_*."""
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    heads: dict[str, Metric] = {}
    for page, prefix in ((api, ""), (engine, "cronwheel_engine_")):
        for family in text_string_to_metric_families(page):
            renamed = prefix if family.name.startswith(("process_", "python_")) else ""
            name = renamed + family.name
            heads.setdefault(name, Metric(name, family.documentation, family.type))
            samples = values.setdefault(name, {})
            for sample in family.samples:
                key = (renamed + sample.name, tuple(sorted(sample.labels.items())))
                if key not in samples:
                    samples[key] = sample.value
                elif sample.name.endswith("_created"):
                    samples[key] = min(samples[key], sample.value)
                else:
                    samples[key] += sample.value
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged([_filled(heads[n], values[n]) for n in heads]))
    return generate_latest(registry)


class MergedPages:
    """The API process's /metrics in a split server: its own page merged with the engine's.
    The engine's page is reused for up to a second (`LinkChannel.ask_metrics`), and so is the
    merge made with it: parsing both pages cost more than any other read when fifty clients
    polled /metrics (bench/README.md, session 11). A page is at most about a second old."""

    def __init__(self) -> None:
        self._made: tuple[str, bytes] | None = None  # (the engine page, the merged page)

    def page(self, engine: str | None) -> bytes:
        if engine is None:  # the engine did not answer: this process's samples alone
            return generate_latest()
        if self._made is None or self._made[0] is not engine:
            self._made = (engine, merge_pages(generate_latest().decode(), engine))
        return self._made[1]


def _filled(head: Metric, samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]
            ) -> Metric:
    for (name, labels), value in samples.items():
        head.add_sample(name, dict(labels), value)
    return head


class _Merged(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families
