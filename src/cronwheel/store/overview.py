"""Reads for an operator's overview (the console): runs across jobs and what fires next.
Each is a bounded query on an index or the primary key, newest or soonest first; runs of
some namespaces only read `ix_runs_listing` (namespace, id) (migration 0013), one namespace
at a time, newest first, and the pages merge.
"""

from __future__ import annotations

import heapq
from itertools import islice
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from cronwheel.contracts import RunFilter
from cronwheel.domain.jobs import Job, JobState
from cronwheel.domain.paging import Span, namespace_spans
from cronwheel.domain.runs import Run
from cronwheel.store.connection import Database
from cronwheel.store.rows import job_from_row, run_from_row
from cronwheel.store.tables import jobs, runs

SPAN_NAMESPACES = 32  # namespaces of a prefix claim read one by one, then as one range


class SqlOverview:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def find_runs(self, where: RunFilter, before_id: str | None, limit: int) -> list[Run]:
        query = self._filtered(where, before_id, limit)
        pages: list[list[Run]] = []
        async with self._db.read() as conn:
            for scope in await self._scopes(conn, where):
                scoped = query if scope is None else query.where(scope)
                rows = (await conn.execute(scoped)).mappings().all()
                pages.append([run_from_row(row) for row in rows])
        newest = heapq.merge(*pages, key=lambda run: run.id, reverse=True)
        return list(islice(newest, limit))

    @staticmethod
    def _filtered(where: RunFilter, before_id: str | None, limit: int) -> Select[Any]:
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
        return query

    async def _scopes(
        self, conn: AsyncConnection, where: RunFilter
    ) -> list[ColumnElement[bool] | None]:
        """Where each query of a page reads: one namespace each, newest first on
        ix_runs_listing. A prefix claim is first read as the namespaces it holds (one index
        probe each); one holding more than SPAN_NAMESPACES is read as a range instead."""
        if where.namespace is None and where.claims is None:
            return [None]
        scopes: list[ColumnElement[bool] | None] = []
        for span in namespace_spans(where.namespace, where.claims):
            if span.exact:
                scopes.append(self._namespace() == span.low)
                continue
            names = await self._names_in(conn, span)
            if len(names) > SPAN_NAMESPACES:
                low = self._namespace() >= span.low
                scopes.append(low if span.high is None else low & (self._namespace() < span.high))
            else:
                scopes += [self._namespace() == name for name in names]
        return scopes

    async def _names_in(self, conn: AsyncConnection, span: Span) -> list[str]:
        """Up to SPAN_NAMESPACES + 1 namespaces of runs in the span, skipping along the index."""
        names: list[str] = []
        while len(names) <= SPAN_NAMESPACES:
            probe = select(runs.c.namespace).order_by(self._namespace()).limit(1)
            probe = probe.where(self._namespace() > names[-1] if names
                                else self._namespace() >= span.low)
            if span.high is not None:
                probe = probe.where(self._namespace() < span.high)
            name = (await conn.execute(probe)).scalar()
            if name is None:
                break
            names.append(name)
        return names

    def _namespace(self) -> ColumnElement[str]:
        return runs.c.namespace if self._db.is_sqlite else runs.c.namespace.collate("C")

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
