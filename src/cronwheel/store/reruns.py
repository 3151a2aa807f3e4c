"""What a backfill does with each occurrence, decided the same way by every store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from cronwheel.contracts import Rerun
from cronwheel.domain.runs import TERMINAL, Run, RunKind, RunState
from cronwheel.domain.time import Micros


def sort_reruns(
    reruns: Sequence[Rerun], have: Mapping[tuple[str, Micros], Run], now: Micros
) -> tuple[list[Run], list[Run], list[Run]]:
    """(runs to create, ended runs to make pending again, runs in flight to leave alone).

    A rerun keeps one run per occurrence: the ended run gets a new attempt, due now; its
    attempt count goes on from where it was, so its attempt log keeps every try. A run of a
    job with dependencies (a downstream job of the backfill) waits for them again: the
    resolver releases it once its upstream's runs, rerun in the same backfill, hold; its
    expiry counts from now (`fired_at`), not from its planned time long past."""
    created: list[Run] = []
    again: list[Run] = []
    in_flight: list[Run] = []
    for rerun in reruns:
        run = have.get((rerun.job.id, rerun.scheduled_at))
        if run is None:
            created.append(_new_run(rerun, now))
        elif run.state not in TERMINAL:
            in_flight.append(run)
        elif rerun.job.spec.depends_on:
            again.append(replace(run, state=RunState.WAITING, due_at=None, fired_at=now,
                                 finished_at=None, last_error=None))
        else:
            again.append(replace(run, state=RunState.PENDING, due_at=now, finished_at=None,
                                 last_error=None))
    return created, again, in_flight


def _new_run(rerun: Rerun, now: Micros) -> Run:
    """An ordinary scheduled run of the occurrence, so whatever counts an occurrence's runs
    (dependency windows, the unique index) counts it."""
    job = rerun.job
    waits = bool(job.spec.depends_on)
    return Run(id=rerun.run_id, job_id=job.id, namespace=job.spec.namespace,
               job_key=job.spec.key, kind=RunKind.SCHEDULED,
               state=RunState.WAITING if waits else RunState.PENDING,
               scheduled_at=rerun.scheduled_at, fired_at=now, due_at=None if waits else now)
