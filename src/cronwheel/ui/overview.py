"""The dashboard, the workers and the cluster's nodes."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from cronwheel.api.cluster import cluster
from cronwheel.api.deps import service_of, workers_of
from cronwheel.contracts import RunFilter
from cronwheel.domain.jobs import Job
from cronwheel.domain.runs import Run, RunState
from cronwheel.domain.time import US_PER_S
from cronwheel.service import Service
from cronwheel.ui.charts import SLOTS, lateness_lines, outcome_bars
from cronwheel.ui.render import page
from cronwheel.ui.session import Caller
from cronwheel.ui.trends import OUTCOMES, Trends
from cronwheel.ui.web import ConsoleRoute, caller_of, visible_workers

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
SHOWN = 10
FAILING_WINDOW_US = 3600 * US_PER_S
CACHE_S = 5.0  # the dashboard refreshes itself: its two reads are shared for this long


class _Cached:
    """The dashboard's job lists, read at most once per CACHE_S whoever is looking."""

    def __init__(self) -> None:
        self.at = 0.0
        self.upcoming: list[Job] = []
        self.failing: list[Failing] = []

    async def refresh(self, request: Request) -> _Cached:
        if time.monotonic() - self.at > CACHE_S:
            service = service_of(request)
            self.upcoming = await service.upcoming(50)
            self.failing = await _failing(service)
            self.at = time.monotonic()
        return self


@dataclass(frozen=True, slots=True)
class Failing:
    namespace: str
    key: str
    failed: int  # failed runs among those that ended in the last hour
    last_at: int
    last_run: str
    last_error: str | None


async def _failing(service: Service) -> list[Failing]:
    """Jobs with failed runs that ended in the last hour (the index on when runs end), most
    failures first."""
    since = service.clock.now() - FAILING_WINDOW_US
    found = await service.find_runs(RunFilter(state=RunState.FAILED, finished_from=since),
                                    None, 200)
    by_job: dict[tuple[str, str], list[Run]] = {}
    for run in found:
        by_job.setdefault((run.namespace, run.job_key), []).append(run)
    failing = [Failing(ns, key, len(runs), runs[0].finished_at or runs[0].fired_at,
                       runs[0].id, runs[0].last_error)
               for (ns, key), runs in by_job.items()]
    failing.sort(key=lambda f: (-f.failed, -f.last_at))
    return failing


def _cache(request: Request) -> _Cached:
    state = request.app.state
    if not hasattr(state, "console_dashboard"):
        state.console_dashboard = _Cached()
    found: _Cached = state.console_dashboard
    return found


@router.get("")
async def dashboard(request: Request) -> Response:
    caller = await caller_of(request)
    trends: Trends = request.app.state.console_trends
    steps = list(trends.steps)[-SLOTS:]
    cached = await _cache(request).refresh(request)
    upcoming = [j for j in cached.upcoming if caller.can_read(j.spec.namespace)][:SHOWN]
    failing = [f for f in cached.failing if caller.can_read(f.namespace)][:SHOWN]
    totals = {o: sum(s.outcomes.get(o, 0) for s in steps) for o in OUTCOMES}
    return page(
        request, caller, "dashboard.html", steps=steps[-30:], every=trends.every_s,
        span_min=round(SLOTS * trends.every_s / 60, 1), totals=totals,
        outcome_chart=outcome_bars(steps, "delivery attempts by outcome over time"),
        lateness_chart=lateness_lines(steps, "fire lateness p50 and p99 over time"),
        latest=next((s for s in reversed(steps) if s.fired), None),
        upcoming=upcoming, failing=failing, partial=request.headers.get("HX-Request"),
    )


@router.get("/workers")
async def workers(request: Request) -> Response:
    caller = await caller_of(request)
    found = await visible_workers(request, caller,
                                  await workers_of(request).workers(include_stopped=True),
                                  lambda w: w.info.id)
    found.sort(key=lambda w: (not w.online, w.info.name))
    return page(request, caller, "workers.html", workers=found)


@router.get("/cluster")
async def nodes(request: Request) -> Response:
    caller: Caller = await caller_of(request)
    return page(request, caller, "cluster.html", cluster=await cluster(request))
