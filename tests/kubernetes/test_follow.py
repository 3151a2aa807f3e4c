"""Runs on Kubernetes followed to their end, on the manual clock, against the in-memory
cluster (it stands in for an API server and the Job controller) and a real SQLite file or
PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from cronwheel.delivery.kubernetes.gateway import Gone, JobEvent, Unavailable
from cronwheel.domain.jobs import RetryPolicy
from cronwheel.domain.kubernetes import job_name_for
from cronwheel.domain.runs import AttemptOutcome, RunState
from cronwheel.domain.tasks import TaskState
from cronwheel.domain.time import US_PER_S
from cronwheel.engine.kubefollow import JobWatch
from tests.kubernetes.harness import CONFIG, LEASE, Harness, fake_env, harness, target
from tests.receivers import HttpReceiver


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def h(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """The Kubernetes tables' SQL on both databases cronwheel runs on."""
    async with harness(tmp_path, request.param) as made:
        yield made


async def test_a_run_creates_its_job_and_succeeds_when_the_job_completes(h: Harness) -> None:
    node = h.node()
    run_id = await h.fire(node, target(env=fake_env(seconds=5)))
    run, _ = await h.run(run_id)
    assert run.state is RunState.RUNNING
    await node.follower.step()
    manifest = h.cluster.manifest_of("batch", job_name_for(run_id))
    assert manifest is not None and manifest["metadata"]["labels"]["cronwheel.io/run"] == run_id
    h.advance(3)
    await node.follower.step()
    assert (await h.run(run_id))[0].state is RunState.RUNNING
    (task,) = await h.tasks(run_id)
    assert task.state is TaskState.RUNNING and task.worker_id == "kubernetes:c1"
    h.advance(3)
    await node.follower.step()
    run, attempts = await h.run(run_id)
    assert run.state is RunState.SUCCEEDED
    assert [(a.number, a.outcome, a.node) for a in attempts] == [
        (1, AttemptOutcome.SUCCESS, "kubernetes:c1")]
    (task,) = await h.tasks(run_id)
    assert (task.state, task.exit_code, task.log_size) == (TaskState.SUCCEEDED, 0, 0)
    assert h.cluster.created == 1


async def test_backoff_limit_fails_the_run_with_a_pod_per_attempt_and_their_logs(
    h: Harness,
) -> None:
    node = h.node()
    made = target(env=fake_env(seconds=1, exits="1", log="starting export"), backoff_limit=1)
    run_id = await h.fire(node, made)
    await node.follower.step()
    h.advance(1.5)  # pod 0 fails, pod 1 starts
    await node.follower.step()
    h.advance(1.5)  # pod 1 fails: 2 failures > backoff limit 1
    await node.follower.step()
    run, attempts = await h.run(run_id)
    assert run.state is RunState.FAILED
    assert run.last_error is not None and run.last_error.startswith("BackoffLimitExceeded")
    assert attempts[0].outcome is AttemptOutcome.FAILURE
    pods = await h.tasks(run_id)
    assert [(t.state, t.exit_code) for t in pods] == [(TaskState.FAILED, 1)] * 2
    for pod in pods:  # failed runs keep their logs even without `logs: always`
        assert await h.log(pod.id) == "starting export\nexit 1\n"


async def test_active_deadline_fails_the_run_as_deadline_exceeded(h: Harness) -> None:
    node = h.node()
    run_id = await h.fire(node, target(env=fake_env(seconds=100), active_deadline=10))
    await node.follower.step()
    h.advance(11)
    await node.follower.step()
    run, _ = await h.run(run_id)
    assert run.state is RunState.FAILED
    assert run.last_error is not None and "DeadlineExceeded" in run.last_error
    (pod,) = await h.tasks(run_id)
    assert pod.state is TaskState.TIMEOUT


async def test_on_failure_restarts_are_counted_in_one_pod(h: Harness) -> None:
    node = h.node()
    run_id = await h.fire(node, target(env=fake_env(seconds=1, exits="1,0"),
                                       restart_policy="OnFailure", backoff_limit=2))
    await node.follower.step()
    h.advance(2.5)
    await node.follower.step()
    assert (await h.run(run_id))[0].state is RunState.SUCCEEDED
    (pod,) = await h.tasks(run_id)
    assert pod.state is TaskState.SUCCEEDED and pod.error == "succeeded after 1 restarts"


async def test_logs_are_kept_before_the_ttl_removes_the_pods_and_stream_while_running(
    h: Harness,
) -> None:
    node = h.node()
    run_id = await h.fire(node, target(env=fake_env(seconds=10, log="hello"), logs="always",
                                       ttl_after_finished=60))
    await node.follower.step()
    (pod,) = await h.tasks(run_id)
    assert await h.log(pod.id) == "hello\n" and pod.finished_at is None  # while it runs
    h.advance(11)
    await node.follower.step()
    assert (await h.run(run_id))[0].state is RunState.SUCCEEDED
    h.advance(61)  # the TTL controller deletes the Job and its pods
    assert h.cluster.manifest_of("batch", job_name_for(run_id)) is None
    (pod,) = await h.tasks(run_id)
    assert await h.log(pod.id) == "hello\nexit 0\n" and pod.log_size == len("hello\nexit 0\n")


async def test_a_successful_run_keeps_no_log_unless_asked(h: Harness) -> None:
    node = h.node()
    run_id = await h.fire(node, target(env=fake_env(seconds=1)))
    await node.follower.step()
    h.advance(2)
    await node.follower.step()
    (pod,) = await h.tasks(run_id)
    assert pod.state is TaskState.SUCCEEDED and pod.log_size == 0


async def test_an_existing_job_of_the_run_is_adopted_not_duplicated(h: Harness) -> None:
    node = h.node()
    made = target(env=fake_env(seconds=1))
    run_id = await h.fire(node, made)
    stored = await h.kube.get(run_id)
    assert stored is not None
    first = await h.cluster.create_job(stored.manifest)  # a create whose answer was lost
    again = await h.cluster.create_job(stored.manifest)
    assert not first.adopted and again.adopted and again.uid == first.uid
    await node.follower.step()
    h.advance(2)
    await node.follower.step()
    assert (await h.run(run_id))[0].state is RunState.SUCCEEDED
    assert h.cluster.created == 1


async def test_another_node_takes_over_the_runs_of_a_dead_node(h: Harness) -> None:
    dead, alive = h.node("node-a"), h.node("node-b")
    run_id = await h.fire(dead, target(env=fake_env(seconds=5)))  # handed off, never created
    assert await alive.follower.step() == []  # node-a's lease still holds
    h.advance(LEASE / US_PER_S + 1)
    taken = await alive.follower.step()
    assert [r.run_id for r in taken] == [run_id]
    assert h.cluster.created == 1
    h.advance(6)
    await alive.follower.step()
    assert (await h.run(run_id))[0].state is RunState.SUCCEEDED
    assert await dead.follower.step() == []  # the old follower has nothing left to do


async def test_a_killed_run_deletes_its_job_and_pods(h: Harness) -> None:
    node = h.node()
    run_id = await h.fire(node, target(env=fake_env(seconds=100, log="working")))
    await node.follower.step()
    assert await h.store.workers.kill(run_id, h.clock.now()) is RunState.KILLED
    await node.follower.step()
    assert h.cluster.manifest_of("batch", job_name_for(run_id)) is None
    assert "delete_job" in h.cluster.calls
    (pod,) = await h.tasks(run_id)
    assert pod.state is TaskState.KILLED and await h.log(pod.id) == "working\n"
    assert (await h.run(run_id))[0].state is RunState.KILLED


async def test_an_outage_is_waited_out_and_a_long_one_fails_the_create(h: Harness) -> None:
    node = h.node()
    run_id = await h.fire(node, target(env=fake_env(seconds=1)))
    h.cluster.down = True
    await node.follower.step()
    assert (await h.run(run_id))[0].state is RunState.RUNNING
    h.cluster.down = False
    await node.follower.step()
    h.advance(2)
    await node.follower.step()
    assert (await h.run(run_id))[0].state is RunState.SUCCEEDED

    late = await h.fire(node, target(env=fake_env(seconds=1)), key="late")
    h.cluster.down = True
    h.advance(121)
    await node.follower.step()
    run, _ = await h.run(late)
    assert run.state is RunState.FAILED and "did not answer" in (run.last_error or "")


async def test_a_job_deleted_by_someone_else_fails_the_run(h: Harness) -> None:
    node = h.node()
    run_id = await h.fire(node, target(env=fake_env(seconds=100)))
    await node.follower.step()
    await h.cluster.delete_job("batch", job_name_for(run_id))
    await node.follower.step()
    run, _ = await h.run(run_id)
    assert run.state is RunState.FAILED and "deleted" in (run.last_error or "")


async def test_the_callback_reports_the_end_with_retries_and_the_idempotency_key(
    h: Harness, receiver: HttpReceiver,
) -> None:
    receiver.script = [503]
    node = h.node()
    retry = RetryPolicy(max_attempts=3, initial_backoff_us=10 * US_PER_S, jitter=0.0)
    run_id = await h.fire(node, target(env=fake_env(seconds=1, exits="2"),
                                       callback_url=receiver.url), key="export", retry=retry)
    await node.follower.step()
    h.advance(2)
    await node.follower.step()  # ends the run, the first callback is refused
    (first,) = await receiver.wait_for(1)
    assert first.json() == {"job_id": "export", "success": False,
                            "message": "BackoffLimitExceeded: Job has reached the specified "
                                       "backoff limit"}
    assert first.headers["Idempotency-Key"] == run_id
    await node.follower.step()  # not due yet
    assert len(receiver.received) == 1
    h.advance(11)
    await node.follower.step()
    second = (await receiver.wait_for(2))[1]
    assert second.headers["Idempotency-Key"] == run_id and second.json() == first.json()
    stored = await h.kube.get(run_id)
    assert stored is not None and (stored.callback_state, stored.callback_tries) == ("sent", 2)


async def test_the_watch_relists_on_gone_and_resumes_after_a_drop(h: Harness) -> None:
    seen: list[JobEvent | None] = []
    watch = JobWatch(h.cluster, "batch", "app.kubernetes.io/managed-by=cronwheel", seen.append)
    node = h.node()
    await watch.relist()
    run_id = await h.fire(node, target(env=fake_env(seconds=1)))

    async def watch_until_dropped() -> None:
        with pytest.raises(Unavailable):
            await watch.watch_once()

    watching = asyncio.create_task(watch_until_dropped())
    await node.follower.step()  # creates the Job: ADDED, MODIFIED
    await asyncio.sleep(0)
    h.cluster.drop_watches()
    await watching
    events = [e for e in seen if e is not None]
    assert events and events[0].type == "ADDED" and events[0].job.labels[
        "cronwheel.io/run"] == run_id
    version = watch.resource_version
    h.cluster.compact()
    h.advance(2)  # the pod ends: a change after the compaction
    with pytest.raises(Gone):
        async for _ in h.cluster.watch_jobs("batch", "", "1"):  # long compacted
            pass
    await watch.relist()
    assert watch.relists == 2 and int(watch.resource_version) > int(version)


async def test_history_limits_keep_the_newest_finished_jobs_of_a_job(h: Harness) -> None:
    node = h.node()
    made = target(env=fake_env(seconds=1, exits="0"), keep_succeeded=2, keep_failed=0,
                  ttl_after_finished=86_400)
    names = []
    for _ in range(4):
        run_id = await h.fire(node, made, key="nightly")
        names.append(job_name_for(run_id))
        await node.follower.step()
        h.advance(2)
        await node.follower.step()
        assert (await h.run(run_id))[0].state is RunState.SUCCEEDED
    kept = [n for n in names if h.cluster.manifest_of("batch", n) is not None]
    assert kept == names[-2:]
    failing = target(env=fake_env(seconds=1, exits="1"), keep_succeeded=2, keep_failed=0,
                     ttl_after_finished=86_400)
    run_id = await h.fire(node, failing, key="nightly-failing")
    await node.follower.step()
    h.advance(2)
    await node.follower.step()
    assert (await h.run(run_id))[0].state is RunState.FAILED
    assert h.cluster.manifest_of("batch", job_name_for(run_id)) is None  # keep_failed 0
    assert all(h.cluster.manifest_of("batch", n) is not None for n in names[-2:])



async def test_a_running_pods_log_is_streamed_into_the_store_as_it_is_written(
    h: Harness,
) -> None:
    node = h.node(config=replace(CONFIG, stream_logs=True))
    run_id = await h.fire(node, target(env=fake_env(seconds=10, log="hello"), logs="always"))
    try:
        await node.follower.step()
        (pod,) = await h.tasks(run_id)
        await _until_log(h, pod.id, "hello\n")
        h.advance(11)  # the container ends: its last line arrives on the stream, no step
        await _until_log(h, pod.id, "hello\nexit 0\n")
        await node.follower.step()
        assert (await h.run(run_id))[0].state is RunState.SUCCEEDED
        assert await h.log(pod.id) == "hello\nexit 0\n"  # the final read added nothing twice
    finally:
        await node.follower.stop()


async def _until_log(h: Harness, task_id: str, text: str) -> None:
    async with asyncio.timeout(5):
        while True:
            if await h.log(task_id) == text:
                return
            await asyncio.sleep(0.01)


async def test_a_follower_renews_all_its_runs_and_takes_lapsed_ones_a_batch_at_a_time(
    h: Harness,
) -> None:
    node = h.node("node-a")
    fired = [await h.fire(node, target(env=fake_env(seconds=100)), key=f"k{i}")
             for i in range(3)]
    now = h.clock.now()
    mine = await h.kube.claim("node-a", now, now + LEASE, limit=1)
    assert sorted(r.run_id for r in mine) == sorted(fired)  # the limit is for taking over
    later = now + LEASE + 1
    first = await h.kube.claim("node-b", later, later + LEASE, limit=2)
    assert len(first) == 2
    second = await h.kube.claim("node-b", later, later + LEASE, limit=2)
    assert sorted(r.run_id for r in second) == sorted(fired)
    assert await h.kube.claim("node-a", later, later + LEASE) == []


async def test_ended_runs_are_forgotten_after_the_retention_period(h: Harness) -> None:
    node = h.node()
    run_id = await h.fire(node, target(env=fake_env(seconds=1)))
    await node.follower.step()
    h.advance(2)
    await node.follower.step()
    assert await h.kube.get(run_id) is not None
    h.advance(CONFIG.retention_us / US_PER_S + 3_600)
    await node.follower.step()
    assert await h.kube.get(run_id) is None
