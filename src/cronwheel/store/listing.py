"""The query of one page of jobs over one namespace span, in (namespace, key) order.

Each page starts where the last one ended, on the index over (namespace, key): SQLite's unique
index (BINARY, byte order) or PostgreSQL's `ix_jobs_listing` (COLLATE "C", migration 0012),
so the order, the prefix ranges and the plans are the same on both backends whatever the
database's default collation.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, cast, func, select, tuple_
from sqlalchemy.dialects.postgresql import JSONB
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
        query = self._range(select(jobs), span, after).limit(limit)
        key = self._ordered(jobs.c.key)
        if where.until is not None:
            query = query.where(tuple_(self._ordered(jobs.c.namespace), key) <= tuple_(
                *where.until))
        if where.state is not None:
            query = query.where(jobs.c.state == where.state.value)
        if where.key_prefix:
            end = prefix_end(where.key_prefix)
            query = query.where(key >= where.key_prefix)
            if end is not None:
                query = query.where(key < end)
        return query

    def of_kind(
        self, namespace: str, kind: str, offset: int, limit: int
    ) -> tuple[Select[Any], Select[Any]]:
        """A numbered page of one namespace's jobs of a payload kind, and their count."""
        named = self._payload_kind() == kind
        page = (select(jobs).where(jobs.c.namespace == namespace, named)
                .order_by(self._ordered(jobs.c.key)).offset(offset).limit(limit))
        count = select(func.count()).select_from(jobs).where(jobs.c.namespace == namespace, named)
        return page, count

    def _payload_kind(self) -> ColumnElement[Any]:
        if self._sqlite:
            return func.json_extract(jobs.c.payload, "$.kind")
        kind: ColumnElement[Any] = cast(jobs.c.payload, JSONB)["kind"].astext
        return kind

    def count(self, span: Span, after: JobPosition | None, most: int) -> Select[Any]:
        """How many jobs (up to `most`) follow `after` in the span: an index-only read."""
        window = self._range(select(jobs.c.namespace), span, after).limit(most).subquery()
        return select(func.count()).select_from(window)

    def nth(self, span: Span, after: JobPosition | None, n: int) -> Select[Any]:
        """The position of the `n`th job after `after` in the span."""
        query = self._range(select(jobs.c.namespace, jobs.c.key), span, after)
        return query.offset(n - 1).limit(1)

    def _range(self, query: Select[Any], span: Span, after: JobPosition | None) -> Select[Any]:
        """`query` over the span's jobs after `after`, in listing order."""
        namespace, key = self._ordered(jobs.c.namespace), self._ordered(jobs.c.key)
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
        return query
