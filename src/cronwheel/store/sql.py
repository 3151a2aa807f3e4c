"""The one place that builds SQL. The engine and the services ask; they never write queries.

`SqlStore` is a thin facade over the modules named for what they hold: `connection` (engines,
SQLite pragmas, the file lock), `jobs`, `runs` (fires, claims, results), `dependencies`
(waiting runs), `nodes`, `upkeep`, and beside them `workers`, `alerts` and `apps`, exposed as
attributes typed by their contracts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from cronwheel.contracts import (
    AddOutcome,
    AlertStore,
    AttemptRecord,
    AuditStore,
    Fire,
    FiresRecorded,
    JobFilter,
    KubeRunStore,
    NodeInfo,
    NodeStatus,
    NodeStore,
    Rerun,
    RerunOutcome,
    RunFilter,
    SentinelStore,
    WorkerStore,
)
from cronwheel.dburl import async_url
from cronwheel.domain.jobs import Job
from cronwheel.domain.paging import JobPosition
from cronwheel.domain.runs import Attempt, Run
from cronwheel.domain.time import Micros
from cronwheel.store.admission import SqlAdmissionStore
from cronwheel.store.alerts import SqlAlertStore
from cronwheel.store.apps import SqlAppStore
from cronwheel.store.audit import SqlAuditStore
from cronwheel.store.connection import Database
from cronwheel.store.dependencies import SqlDependencies
from cronwheel.store.jobs import SqlJobs
from cronwheel.store.kubernetes import KubeStore
from cronwheel.store.liveness import PgLiveness
from cronwheel.store.nodes import SqlNodes
from cronwheel.store.overview import SqlOverview
from cronwheel.store.runs import SqlRuns
from cronwheel.store.sentinel import SqlSentinelStore
from cronwheel.store.upkeep import SqlUpkeep
from cronwheel.store.workers import SqlWorkerStore
from cronwheel.store.writer import Note


class SqlStore:
    """Store over SQLite (one writer, group commit) or PostgreSQL (row locks, SKIP LOCKED)."""

    def __init__(self, url: str, node: str = "node") -> None:
        self.url = async_url(url)
        self.node = node
        self._db = Database(self.url)
        self.is_sqlite = self._db.is_sqlite
        self.engine: AsyncEngine = self._db.engine  # for migrations and tests
        self.read_engine: AsyncEngine = self._db.read_engine
        self._jobs = SqlJobs(self._db)
        self._runs = SqlRuns(self._db, node)
        self._nodes = SqlNodes(self._db)
        self._upkeep = SqlUpkeep(self._db)
        self._deps = SqlDependencies(self._db)
        self._overview = SqlOverview(self._db)
        self.workers: WorkerStore = SqlWorkerStore(self._db)
        self.alerts: AlertStore = SqlAlertStore(self._db)
        self.apps = SqlAppStore(self._db)
        self.admission = SqlAdmissionStore(self._db)
        self.sentinel: SentinelStore = SqlSentinelStore(self._db)
        self.audit: AuditStore = SqlAuditStore(self._db)
        self.kube: KubeRunStore = KubeStore(self._db)  # runs on Kubernetes need SQL

    @property
    def single_node(self) -> bool:
        return self.is_sqlite

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, migrate: bool = True) -> None:
        await self._db.start(migrate)

    def split_server(self, send: Callable[[list[Note]], None], holds_lock: bool) -> None:
        """A server in two processes on SQLite: the API process holds the one-server file
        lock (`holds_lock`), the engine process it started opens the file under it, and each
        passes its commits' wake-ups to the other through `send`; the API process writes
        from a thread of its own (store/writer_thread.py). Nothing on PostgreSQL, whose
        NOTIFY reaches both and whose row locks no saturated loop holds for long."""
        if self.is_sqlite:
            self._db.lock_file = holds_lock
            self._db.relay(send, writer_thread=holds_lock)

    def writer_threads(self) -> set[int]:
        """OS ids of the threads that hold the file's write lock while they run: a split
        server's API process leaves them at the server's priority when it lowers its own, so
        the engine never waits for a write that waits for the CPU."""
        thread = self._db.writer_thread
        return set() if thread is None else {thread}

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        await self._db.ping()

    # -- jobs --------------------------------------------------------------------------------

    async def add_jobs(
        self, new: Sequence[Job], all_or_nothing: bool, replace: bool = False,
        revive: bool = False,
    ) -> list[AddOutcome]:
        return await self._jobs.add_jobs(new, all_or_nothing, replace, revive)

    async def change_jobs(
        self, namespace: str, keys: Sequence[str], change: Callable[[Job], Job]
    ) -> list[Job]:
        return await self._jobs.change_jobs(namespace, keys, change)

    async def get_job(self, namespace: str, key: str) -> Job | None:
        return await self._jobs.get_job(namespace, key)

    async def get_job_by_id(self, job_id: str) -> Job | None:
        return await self._jobs.get_job_by_id(job_id)

    async def list_jobs(
        self, where: JobFilter, after: JobPosition | None, limit: int
    ) -> list[Job]:
        return await self._jobs.list_jobs(where, after, limit)

    async def kind_page(
        self, namespace: str, kind: str, offset: int, limit: int
    ) -> tuple[list[Job], int]:
        return await self._jobs.kind_page(namespace, kind, offset, limit)

    async def listing_bound(
        self, where: JobFilter, after: JobPosition | None, scan: int
    ) -> JobPosition | None:
        return await self._jobs.listing_bound(where, after, scan)

    async def change_job(
        self, namespace: str, key: str, change: Callable[[Job], Job], cancel_runs: bool = False
    ) -> Job:
        return await self._jobs.change_job(namespace, key, change, cancel_runs)

    async def acquire_due_jobs(
        self, owner: str, now: Micros, horizon: Micros, limit: int, lease_until: Micros,
        share: tuple[int, int] | None = None, others_than: Collection[str] = (),
    ) -> list[Job]:
        return await self._jobs.acquire_due_jobs(owner, now, horizon, limit, lease_until, share,
                                                 others_than)

    async def delete_job(
        self, namespace: str, key: str, now: Micros, delete_runs: bool = False
    ) -> Job:
        return await self._jobs.delete_job(namespace, key, now, delete_runs)

    # -- runs and attempts -------------------------------------------------------------------

    async def record_fires(
        self, owner: str, now: Micros, fires: Sequence[Fire], lease_until: Micros
    ) -> FiresRecorded:
        return await self._runs.record_fires(owner, now, fires, lease_until)

    async def add_manual_run(
        self, job: Job, run_id: str, now: Micros, payload: Any, has_override: bool
    ) -> Run:
        return await self._runs.add_manual_run(job, run_id, now, payload, has_override)

    async def acquire_due_runs(
        self, owner: str, now: Micros, limit: int, lease_until: Micros,
        others_than: Collection[str] = (),
    ) -> list[tuple[Run, Job]]:
        return await self._runs.acquire_due_runs(owner, now, limit, lease_until, others_than)

    async def rerun_occurrences(self, reruns: Sequence[Rerun], now: Micros) -> RerunOutcome:
        return await self._runs.rerun_occurrences(reruns, now)

    async def remove_run(self, run_id: str, now: Micros) -> Run:
        return await self._runs.remove_run(run_id, now)

    async def record_attempts(self, owner: str, records: Sequence[AttemptRecord]) -> None:
        await self._runs.record_attempts(owner, records)

    async def renew_runs(self, owner: str, run_ids: Sequence[str], lease_until: Micros) -> None:
        await self._runs.renew_runs(owner, run_ids, lease_until)

    async def list_runs(self, job_id: str, before_id: str | None, limit: int) -> list[Run]:
        return await self._runs.list_runs(job_id, before_id, limit)

    async def recent_runs(self, job_ids: Sequence[str], limit: int) -> dict[str, list[Run]]:
        return await self._runs.recent_runs(job_ids, limit)

    async def get_run(self, run_id: str) -> tuple[Run, list[Attempt]] | None:
        return await self._runs.get_run(run_id)

    # -- nodes -------------------------------------------------------------------------------

    async def release(self, owner: str | None) -> None:
        await self._nodes.release(owner)

    def liveness(self, owner: str) -> PgLiveness | None:
        """This node's session lock and its view of the others' (PostgreSQL only)."""
        return None if self.is_sqlite else PgLiveness(self.url, self._db, owner)

    async def db_now(self) -> Micros:
        return await self._nodes.db_now()

    async def heartbeat(self, node: NodeInfo, now: Micros, stopped: bool = False) -> None:
        await self._nodes.heartbeat(node, now, stopped)

    async def list_nodes(self) -> list[NodeStatus]:
        return await self._nodes.list_nodes()

    # -- upkeep ------------------------------------------------------------------------------

    async def purge(self, finished_before: Micros, limit: int) -> int:
        return await self._upkeep.purge(finished_before, limit)

    async def purge_output(self, finished_before: Micros, limit: int) -> int:
        return await self._upkeep.purge_output(finished_before, limit)

    # -- dependencies ------------------------------------------------------------------------

    async def dependents_of(self, namespace: str, key: str) -> list[Job]:
        return await self._deps.dependents_of(namespace, key)

    async def upstream_ids(self) -> set[str]:
        return await self._deps.upstream_ids()

    async def upstream_history(self, job_id: str, start: Micros, end: Micros) -> list[Run]:
        return await self._deps.upstream_history(job_id, start, end)

    async def waiting_runs(self, job_ids: Sequence[str] | None, limit: int) -> list[Run]:
        return await self._deps.waiting_runs(job_ids, limit)

    async def release_waiting(self, run_ids: Sequence[str], now: Micros) -> list[Run]:
        return await self._deps.release_waiting(run_ids, now)

    async def expire_waiting(self, now: Micros, limit: int) -> list[Run]:
        return await self._deps.expire_waiting(now, limit)

    async def add_waiting_run(
        self, job: Job, run_id: str, scheduled_at: Micros, now: Micros
    ) -> Run | None:
        return await self._deps.add_waiting_run(job, run_id, scheduled_at, now)

    async def followers(self, after_id: str | None, limit: int) -> list[Job]:
        return await self._deps.followers(after_id, limit)
    # -- overview (the console) --------------------------------------------------------------

    async def find_runs(self, where: RunFilter, before_id: str | None, limit: int) -> list[Run]:
        return await self._overview.find_runs(where, before_id, limit)

    async def upcoming_jobs(self, limit: int) -> list[Job]:
        return await self._overview.upcoming_jobs(limit)

    async def count_held_jobs(self) -> dict[str, int]:
        return await self._overview.count_held_jobs()


def make_store(url: str, node: str = "node") -> NodeStore:
    return SqlStore(url, node=node)


async def migrate_schema(url: str) -> None:
    """Bring the schema up to date without starting a store: no file lock, so it works beside
    a running server."""
    from cronwheel.store.migrate import upgrade

    store = SqlStore(url)
    try:
        await upgrade(store.engine)
    finally:
        await store.close()
