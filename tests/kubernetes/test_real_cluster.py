"""Against a real cluster, only when asked: CRONWHEEL_TEST_KUBECONFIG names a kubeconfig
(CRONWHEEL_TEST_KUBECONTEXT its context, CRONWHEEL_TEST_KUBENAMESPACE the namespace,
default "default"), and `-m kubernetes_real` selects these tests. CI sets none of them.
The cluster must pull busybox; the service account needs the role in docs/kubernetes.md."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from cronwheel.clock import SystemClock
from cronwheel.delivery.kubernetes.clusters import Clusters
from cronwheel.delivery.kubernetes.lightkube_gateway import LightkubeGateway
from cronwheel.domain.runs import RunState
from tests.kubernetes.harness import harness, target

KUBECONFIG = os.environ.get("CRONWHEEL_TEST_KUBECONFIG")
NAMESPACE = os.environ.get("CRONWHEEL_TEST_KUBENAMESPACE", "default")
pytestmark = [
    pytest.mark.kubernetes_real,
    pytest.mark.skipif(not KUBECONFIG, reason="no real cluster: CRONWHEEL_TEST_KUBECONFIG "
                       "is not set (opt-in, see docs/kubernetes.md)"),
]


async def test_a_real_job_runs_to_its_end_with_its_log(tmp_path: Path) -> None:
    assert KUBECONFIG is not None
    gateway = LightkubeGateway.from_kubeconfig(
        KUBECONFIG, os.environ.get("CRONWHEEL_TEST_KUBECONTEXT"), NAMESPACE)
    async with harness(tmp_path) as h:
        h.clock = SystemClock()  # type: ignore[assignment]
        h.clusters = Clusters({"c1": gateway})
        node = h.node()
        made = target(namespace=NAMESPACE, image="busybox:1.36",
                      command=["sh", "-c", "echo hello from cronwheel; exit 3"],
                      logs="always", ttl_after_finished=120)
        run_id = await h.fire(node, made)
        async with asyncio.timeout(300):
            while (await h.run(run_id))[0].state is RunState.RUNNING:
                await node.follower.step()
                await asyncio.sleep(2)
        run, _ = await h.run(run_id)
        assert run.state is RunState.FAILED and "BackoffLimitExceeded" in (run.last_error or "")
        (pod,) = await h.tasks(run_id)
        assert pod.exit_code == 3
        assert await h.log(pod.id) == "hello from cronwheel\n"
    await gateway.aclose()
