"""Durable storage: SQLAlchemy Core over aiosqlite (embedded) or asyncpg (cluster)."""

from cronwheel.store.sql import SqlStore, make_store, migrate_schema

__all__ = ["SqlStore", "make_store", "migrate_schema"]
