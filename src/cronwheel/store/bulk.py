"""Changes of many jobs at once, all or nothing, inside one write transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace as replace_fields

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.contracts import AddOutcome
from cronwheel.domain.errors import DomainError, ItemErrors, NotFound
from cronwheel.domain.jobs import Job, JobState
from cronwheel.store.batches import chunks
from cronwheel.store.rows import job_from_row
from cronwheel.store.tables import jobs


async def read_for_change(
    conn: AsyncConnection, namespace: str, keys: Sequence[str], lock: bool
) -> dict[str, Job]:
    """The named jobs of a namespace, locked for the transaction when `lock` (PostgreSQL;
    SQLite's single writer already excludes every other change)."""
    found: dict[str, Job] = {}
    for chunk in chunks(sorted(set(keys))):  # one lock order for every caller: no deadlock
        query = select(jobs).where(jobs.c.namespace == namespace, jobs.c.key.in_(chunk))
        if lock:
            query = query.order_by(jobs.c.key).with_for_update()
        for row in (await conn.execute(query)).mappings():
            found[row["key"]] = job_from_row(row)
    return found


def apply_change(
    namespace: str, keys: Sequence[str], found: dict[str, Job], change: Callable[[Job], Job]
) -> list[Job]:
    """Each named job after `change`, in the order of `keys`; every failure is collected and
    raised together (as `ItemErrors`) before anything is written."""
    changed: list[Job] = []
    failures: list[tuple[int, DomainError]] = []
    for index, key in enumerate(keys):
        job = found.get(key)
        if job is None:
            failures.append((index, NotFound(f"no job {key!r} in namespace {namespace!r}",
                                             "key")))
            continue
        try:
            changed.append(change(job))
        except DomainError as exc:
            failures.append((index, exc))
    if failures:
        raise ItemErrors(failures)
    return changed


def rewrite_of(job: Job, outcome: AddOutcome, overwrite: bool) -> Job | None:
    """What an add writes over the job it found (same id, same history): a cancelled job comes
    back with the new definition, a conflicting one is overwritten only with `overwrite`;
    None leaves it as it is."""
    revive = not outcome.created and outcome.job.state is JobState.CANCELLED
    if not ((outcome.conflict and overwrite) or revive):
        return None
    return replace_fields(job, id=outcome.job.id, created_at=outcome.job.created_at)
