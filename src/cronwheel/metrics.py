"""Prometheus metrics, process-wide (one server per process)."""

from __future__ import annotations

import functools

from prometheus_client import Counter, Gauge, Histogram

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
