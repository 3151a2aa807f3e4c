"""The query of one page of jobs over one namespace span, in (namespace, key) order.

Each page starts where the last one ended, on the index over (namespace, key): SQLite's unique
index (BINARY, byte order) or PostgreSQL's `ix_jobs_listing` (COLLATE "C", migration 0012),
so the order, the prefix ranges and the plans are the same on both backends whatever the
database's default collation.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from cronwheel.contracts import JobFilter
from cronwheel.domain.paging import JobPosition, Span, prefix_end
from cronwheel.store.tables import jobs


class JobListing:
    def __init__(self, sqlite: bool) -> None:
        self._sqlite = sqlite

    def _ordered(self, column: ColumnElement[str]) -> ColumnElement[str]:
        return column if self._sqlite else column.collate("C")

    def page(
        self, span: Span, where: JobFilter, after: JobPosition | None, limit: int
    ) -> Select[Any]:
        namespace, key = self._ordered(jobs.c.namespace), self._ordered(jobs.c.key)
        query = select(jobs).limit(limit)
        if span.exact:
            query = query.where(namespace == span.low).order_by(key)
            if after is not None and after[0] == span.low:
                query = query.where(key > after[1])
        else:
            query = query.order_by(namespace, key)
            if after is not None and after[0] >= span.low:
                # the position implies the span's low bound, and starts the index range
                query = query.where(tuple_(namespace, key) > tuple_(*after))
            elif span.low:
                query = query.where(namespace >= span.low)
            if span.high is not None:
                query = query.where(namespace < span.high)
        if where.state is not None:
            query = query.where(jobs.c.state == where.state.value)
        if where.key_prefix:
            end = prefix_end(where.key_prefix)
            query = query.where(key >= where.key_prefix)
            if end is not None:
                query = query.where(key < end)
        return query
