"""The transport of Kubernetes targets: it hands a run to the cluster's followers.

Delivering writes the Job's manifest and the hand-off in one transaction and wakes this
node's follower, which creates the Job at once. The run's outcome comes later, when the Job
ends (see `engine/kubefollow.py`). Writing first and creating second means a node that dies
in between leaves a row another node's follower picks up and creates (or adopts).
"""

from __future__ import annotations

from collections.abc import Callable

from cronwheel.contracts import KUBE_CREATING as CREATING
from cronwheel.contracts import Clock, Delivery, DeliveryResult, KubeRun, KubeRunStore
from cronwheel.delivery.kubernetes.clusters import Clusters
from cronwheel.domain.kubernetes import KubernetesTarget, RunRef, job_manifest, job_name_for
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.time import Micros


class KubernetesTransport:
    def __init__(
        self, store: KubeRunStore, clusters: Clusters, clock: Clock, owner: str,
        follow_us: Micros, wake: Callable[[str], None],
    ) -> None:
        self._store = store
        self._clusters = clusters
        self._clock = clock
        self._owner = owner
        self._follow_us = follow_us
        self._wake = wake

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        target = delivery.target
        assert isinstance(target, KubernetesTarget)
        if self._clusters.get(target.cluster) is None:
            return DeliveryResult(AttemptOutcome.ERROR, retryable=False,
                                  error=f"no cluster {target.cluster!r} is configured")
        ref = RunRef(delivery.run_id, delivery.job_id, delivery.namespace, delivery.key)
        now = self._clock.now()
        run = KubeRun(
            run_id=delivery.run_id, attempt=delivery.attempt, job_id=delivery.job_id,
            cluster=target.cluster, namespace=target.namespace,
            job_name=job_name_for(delivery.run_id), manifest=job_manifest(target, ref),
            logs=target.logs.value, phase=CREATING, created_at=now, outcome=None, reason=None,
            callback_url=target.callback_url, callback_state="none", callback_tries=0,
        )
        if await self._store.hand_off(self._owner, run, now, now + self._follow_us):
            self._wake(run.run_id)
        return DeliveryResult(AttemptOutcome.SUCCESS, handed_off=True)

    async def aclose(self) -> None:
        return None
