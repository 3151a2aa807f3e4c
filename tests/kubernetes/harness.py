"""A node's Kubernetes parts over a real SQLite store, the in-memory cluster and the manual
clock: what the follower tests drive step by step."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cronwheel.clock import ManualClock
from cronwheel.contracts import Delivery, KubeRunStore, Transport
from cronwheel.delivery.http import HttpTransport
from cronwheel.delivery.kubernetes.clusters import Clusters
from cronwheel.delivery.kubernetes.fake import FakeCluster
from cronwheel.delivery.kubernetes.transport import KubernetesTransport
from cronwheel.domain.jobs import JobSpec, RetryPolicy, new_job
from cronwheel.domain.kubernetes import KubernetesTarget
from cronwheel.domain.runs import Attempt, Run
from cronwheel.domain.schedules import OneShot
from cronwheel.domain.targets import target_from_dict
from cronwheel.domain.tasks import Task
from cronwheel.domain.time import US_PER_S
from cronwheel.domain.worker_target import NO_JOB_TYPES
from cronwheel.engine.kubefollow import FollowConfig, KubeFollower
from cronwheel.ids import new_id
from cronwheel.store import SqlStore
from tests.stores import database_url

START = 1_800_000_000 * US_PER_S
LEASE = 30 * US_PER_S
DEFAULT_RETRY = RetryPolicy()
CONFIG = FollowConfig(lease_us=LEASE, poll_s=0.05, create_give_up_us=120 * US_PER_S,
                      stream_logs=False)  # steps read logs; one test streams


def target(**options: Any) -> KubernetesTarget:
    data = {"kind": "kubernetes", "cluster": "c1", "namespace": "batch",
            "image": "busybox"} | options
    made = target_from_dict(data, job_types=NO_JOB_TYPES)
    assert isinstance(made, KubernetesTarget)
    return made


def fake_env(seconds: float = 1, exits: str = "0", log: str | None = None) -> dict[str, str]:
    env = {"FAKE_SECONDS": str(seconds), "FAKE_EXITS": exits}
    if log is not None:
        env["FAKE_LOG"] = log
    return env


@dataclass
class Node:
    """One node's follower and transport; two share a store and cluster in take-over tests."""

    owner: str
    transport: KubernetesTransport
    follower: KubeFollower


@dataclass
class Harness:
    store: SqlStore
    kube: KubeRunStore
    clock: ManualClock
    cluster: FakeCluster
    clusters: Clusters
    http: HttpTransport

    def node(self, owner: str = "node-a", config: FollowConfig = CONFIG) -> Node:
        async def callbacks() -> Transport:
            return self.http

        follower = KubeFollower(self.kube, self.clusters, self.clock, owner, callbacks, config)
        transport = KubernetesTransport(self.kube, self.clusters, self.clock, owner, LEASE,
                                        follower.wake)
        return Node(owner, transport, follower)

    async def fire(self, node: Node, made: KubernetesTarget, key: str = "job",
                   retry: RetryPolicy = DEFAULT_RETRY) -> str:
        """Submit a job and deliver its run on `node`, as the dispatcher would."""
        now = self.clock.now()
        job = await self.store.get_job("default", key)  # a job's next run, or a new job
        if job is None:
            spec = JobSpec("default", key, OneShot(at=now + 3_600 * US_PER_S), made,
                           retry=retry)
            job = new_job(new_id(), spec, now)
            await self.store.add_jobs([job], True)
        await self.store.add_manual_run(job, new_id(), now, None, False)
        taken = await self.store.acquire_due_runs(node.owner, now, 10, now + LEASE)
        (run, held), = taken
        result = await node.transport.deliver(Delivery(
            run.id, run.attempts, held.id, held.spec.namespace, held.spec.key,
            run.scheduled_at, now, made, None))
        assert result.handed_off
        return run.id

    async def run(self, run_id: str) -> tuple[Run, list[Attempt]]:
        found = await self.store.get_run(run_id)
        assert found is not None
        return found

    async def tasks(self, run_id: str) -> list[Task]:
        return await self.store.workers.tasks_of(run_id)

    async def log(self, task_id: str) -> str:
        data, _ = await self.store.workers.read_output(task_id, "log", 0, 1 << 20)
        return data.decode()

    def advance(self, seconds: float) -> None:
        self.clock.advance(round(seconds * US_PER_S))
        self.cluster.reconcile()


@contextlib.asynccontextmanager
async def harness(tmp_path: Path, backend: str = "sqlite") -> AsyncIterator[Harness]:
    async with database_url(backend, tmp_path) as url, _parts(url) as parts:
        yield parts


@contextlib.asynccontextmanager
async def _parts(url: str) -> AsyncIterator[Harness]:
    store = SqlStore(url, node="test")
    await store.start()
    clock = ManualClock(START)
    cluster = FakeCluster(clock)
    http = HttpTransport()
    try:
        yield Harness(store, store.kube, clock, cluster, Clusters({"c1": cluster}), http)
    finally:
        await http.aclose()
        await store.close()
