"""Reads for an operator's overview (the console): runs across jobs and what fires next.
Each is a bounded query on an index or the primary key, newest or soonest first; runs of
some namespaces only read `ix_runs_listing` (namespace, id), one range per namespace span
(migration 0013), and the spans' pages merge newest first.
"""

from __future__ import annotations

import heapq
from itertools import islice
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.sql.elements import ColumnElement

from cronwheel.contracts import RunFilter
from cronwheel.domain.jobs import Job, JobState
from cronwheel.domain.paging import Span, namespace_spans
from cronwheel.domain.runs import Run
from cronwheel.store.connection import Database
from cronwheel.store.rows import job_from_row, run_from_row
from cronwheel.store.tables import jobs, runs


class SqlOverview:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def find_runs(self, where: RunFilter, before_id: str | None, limit: int) -> list[Run]:
        pages: list[list[Run]] = []
        async with self._db.read() as conn:
            for query in self._run_queries(where, before_id, limit):
                rows = (await conn.execute(query)).mappings().all()
                pages.append([run_from_row(row) for row in rows])
        newest = heapq.merge(*pages, key=lambda run: run.id, reverse=True)
        return list(islice(newest, limit))

    def _run_queries(
        self, where: RunFilter, before_id: str | None, limit: int
    ) -> list[Select[Any]]:
        """One query per namespace span the filter reads (one, unscoped, for every namespace)."""
        query = select(runs).order_by(runs.c.id.desc()).limit(limit)
        if where.state is not None:
            query = query.where(runs.c.state == where.state.value)
        if where.fired_from is not None:
            query = query.where(runs.c.fired_at >= where.fired_from)
        if where.fired_to is not None:
            query = query.where(runs.c.fired_at < where.fired_to)
        if where.finished_from is not None:
            query = query.where(runs.c.finished_at >= where.finished_from)
        if before_id is not None:
            query = query.where(runs.c.id < before_id)
        if where.namespace is None and where.claims is None:
            return [query]
        return [query.where(self._in_span(span))
                for span in namespace_spans(where.namespace, where.claims)]

    def _in_span(self, span: Span) -> ColumnElement[bool]:
        namespace = runs.c.namespace if self._db.is_sqlite else runs.c.namespace.collate("C")
        if span.exact:
            return namespace == span.low
        low = namespace >= span.low
        return low if span.high is None else low & (namespace < span.high)

    async def upcoming_jobs(self, limit: int) -> list[Job]:
        query = (select(jobs).where(jobs.c.next_fire_at.is_not(None))
                 .order_by(jobs.c.next_fire_at, jobs.c.id).limit(limit))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [job_from_row(row) for row in rows]

    async def count_held_jobs(self) -> dict[str, int]:
        held = (JobState.ACTIVE.value, JobState.PAUSED.value)
        query = (select(jobs.c.namespace, func.count()).where(jobs.c.state.in_(held))
                 .group_by(jobs.c.namespace))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return {namespace: count for namespace, count in rows}
