"""The lightkube gateway over real HTTP on loopback, against the fake API server: the
contract's promises for answers, refusals, watches, logs and faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cronwheel.delivery.kubernetes.clusters import Clusters
from cronwheel.delivery.kubernetes.gateway import Gone, JobEvent, KubeError, Unavailable
from cronwheel.delivery.kubernetes.lightkube_gateway import LightkubeGateway
from cronwheel.domain.kubernetes import RunRef, job_manifest, job_name_for
from cronwheel.domain.runs import RunState
from cronwheel.domain.tasks import TaskState
from tests.kubernetes.apiserver import FakeApiServer, kubeconfig
from tests.kubernetes.harness import Harness, fake_env, harness, target

RUN = "0194a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
NAME = job_name_for(RUN)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path) as made:
        yield made


@pytest.fixture
async def api(h: Harness) -> AsyncIterator[FakeApiServer]:
    server = await FakeApiServer(h.cluster).start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def gateway(api: FakeApiServer, tmp_path: Path) -> AsyncIterator[LightkubeGateway]:
    made = LightkubeGateway.from_kubeconfig(str(kubeconfig(tmp_path / "kubeconfig", api.url)),
                                            "test", check_namespace="batch")
    try:
        yield made
    finally:
        await made.aclose()


def _manifest(seconds: float = 1, log: str = "hello") -> dict[str, object]:
    made = target(env=fake_env(seconds=seconds, log=log), ttl_after_finished=600)
    return job_manifest(made, RunRef(RUN, "job-1", "default", "k"))


async def test_create_adopts_an_existing_job_and_get_answers_none_for_a_missing_one(
    gateway: LightkubeGateway, api: FakeApiServer,
) -> None:
    created = await gateway.create_job(_manifest())
    again = await gateway.create_job(_manifest())
    assert (created.name, created.adopted) == (NAME, False)
    assert again.adopted and again.uid == created.uid
    assert ("POST", "/apis/batch/v1/namespaces/batch/jobs") in api.requests
    assert api.tokens == {"Bearer t0ken"}  # the chosen context's credentials
    assert created.labels["cronwheel.io/run"] == RUN
    assert await gateway.get_job("batch", "cw-nothing-here") is None


async def test_list_then_watch_from_its_version_sees_the_jobs_changes(
    h: Harness, gateway: LightkubeGateway,
) -> None:
    found, version = await gateway.list_jobs("batch", "app.kubernetes.io/managed-by=cronwheel")
    assert found == []
    seen: list[JobEvent] = []
    arrived = asyncio.Event()

    async def watch() -> None:
        async for event in gateway.watch_jobs("batch", "cronwheel.io/run=" + RUN, version):
            seen.append(event)
            arrived.set()

    watching = asyncio.create_task(watch())
    await gateway.create_job(_manifest(seconds=1))
    await asyncio.wait_for(arrived.wait(), 5)
    h.advance(2)  # the pod succeeds, the Job completes
    async with asyncio.timeout(5):
        while not any(e.job.status.get("conditions") for e in seen):
            arrived.clear()
            await arrived.wait()
    watching.cancel()
    assert seen[0].type == "ADDED" and seen[0].job.name == NAME
    done = [e for e in seen if e.job.status.get("conditions")]
    assert done[-1].job.status["conditions"][0]["type"] == "Complete"
    listed, _ = await gateway.list_jobs("batch", "cronwheel.io/run=" + RUN)
    assert [j.name for j in listed] == [NAME]


async def test_a_watch_from_a_compacted_version_raises_gone(
    h: Harness, gateway: LightkubeGateway,
) -> None:
    await gateway.create_job(_manifest())
    h.cluster.compact()
    h.advance(2)
    with pytest.raises(Gone):
        async for _ in gateway.watch_jobs("batch", "", "1"):
            pass


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_and_throttling_are_unavailable(
    gateway: LightkubeGateway, api: FakeApiServer, status: int,
) -> None:
    api.fail = [status, status, status]
    with pytest.raises(Unavailable):
        await gateway.create_job(_manifest())
    with pytest.raises(Unavailable):
        await gateway.get_job("batch", NAME)
    with pytest.raises(Unavailable):
        await gateway.list_pods("batch", "")
    assert (await gateway.create_job(_manifest())).name == NAME  # and then it answers


async def test_a_refusal_is_a_kube_error_not_unavailable(
    gateway: LightkubeGateway, api: FakeApiServer,
) -> None:
    api.fail = [403]
    with pytest.raises(KubeError) as caught:
        await gateway.create_job(_manifest())
    assert caught.value.status == 403 and not isinstance(caught.value, Unavailable)


async def test_a_dropped_connection_is_unavailable(
    gateway: LightkubeGateway, api: FakeApiServer,
) -> None:
    api.drop = 1
    with pytest.raises(Unavailable):
        await gateway.get_job("batch", NAME)
    assert await gateway.get_job("batch", NAME) is None


async def test_a_watch_whose_connection_drops_raises_unavailable(
    h: Harness, gateway: LightkubeGateway,
) -> None:
    _, version = await gateway.list_jobs("batch", "")

    async def watch() -> None:
        async for _ in gateway.watch_jobs("batch", "", version):
            pass

    watching = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    h.cluster.drop_watches()
    with pytest.raises(Unavailable):
        await asyncio.wait_for(watching, 5)


async def test_pods_logs_and_a_followed_log_stream(
    h: Harness, gateway: LightkubeGateway,
) -> None:
    await gateway.create_job(_manifest(seconds=5, log="working"))
    (pod,) = await gateway.list_pods("batch", "cronwheel.io/run=" + RUN)
    assert pod.phase == "Running" and pod.exit_code is None and pod.started
    stream = gateway.stream_log("batch", pod.name)
    assert await anext(stream) == b"working\n"
    h.advance(6)
    rest = b"".join([piece async for piece in stream])
    assert rest == b"exit 0\n"
    (pod,) = await gateway.list_pods("batch", "cronwheel.io/run=" + RUN)
    assert (pod.phase, pod.exit_code) == ("Succeeded", 0)
    assert await gateway.read_log("batch", pod.name) == b"working\nexit 0\n"
    assert await gateway.read_log("batch", pod.name, limit_bytes=4) == b"work"


async def test_delete_is_foreground_and_a_second_delete_finds_nothing(
    gateway: LightkubeGateway, api: FakeApiServer,
) -> None:
    await gateway.create_job(_manifest(seconds=100))
    assert await gateway.delete_job("batch", NAME)
    assert api.deletes[-1]["propagationPolicy"] == "Foreground"
    assert not await gateway.delete_job("batch", NAME)


async def test_cluster_health_over_http(api: FakeApiServer, gateway: LightkubeGateway) -> None:
    clusters = Clusters({"c1": gateway})
    (health,) = await clusters.health()
    assert health.ok and health.version == "jobs readable in batch"
    await api.stop()
    (health,) = await clusters.health()
    assert not health.ok and health.error


async def test_a_run_followed_to_its_end_over_http(
    h: Harness, gateway: LightkubeGateway, api: FakeApiServer,
) -> None:
    h.clusters = Clusters({"c1": gateway})
    node = h.node()
    run_id = await h.fire(node, target(env=fake_env(seconds=2, exits="3", log="boom"),
                                       backoff_limit=0))
    api.fail = [503]  # the first create meets an overloaded server
    await node.follower.step()
    assert h.cluster.created == 0
    await node.follower.step()
    assert h.cluster.created == 1
    h.advance(3)
    await node.follower.step()
    run, _ = await h.run(run_id)
    assert run.state is RunState.FAILED and "BackoffLimitExceeded" in (run.last_error or "")
    (pod,) = await h.tasks(run_id)
    assert (pod.state, pod.exit_code) == (TaskState.FAILED, 3)
    assert await h.log(pod.id) == "boom\nexit 3\n"
