"""Follows runs on Kubernetes to their end: create the Job, watch it, keep its pods' logs,
end the run, send its callback.

Each node runs one follower. `step` claims the runs it follows (its own, and any whose
follower's lease lapsed: a dead node's), renews them, and moves each one on from what the
API server says now; so a step repeated after a crash, an outage or a take-over does the
right thing. Watches (`JobWatch`) only make steps come sooner: when a watch is down the
follower still steps every `poll_s`.

Logs: every pod's log is collected when the Job ends and the run failed (always) or
succeeded with `logs: always`, before the TTL controller removes the pods. With
`logs: always` the logs of running pods are also streamed into the store as they are
written, so `GET /v1/runs/{id}/log/follow` shows them while the Job runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cronwheel.contracts import (
    KUBE_CREATING as CREATING,
)
from cronwheel.contracts import (
    KUBE_ENDED as ENDED,
)
from cronwheel.contracts import (
    Clock,
    Delivery,
    KubeRun,
    KubeRunStore,
    PodRecord,
    Transport,
)
from cronwheel.delivery.kubernetes.clusters import Clusters
from cronwheel.delivery.kubernetes.gateway import (
    Gone,
    JobEvent,
    KubeError,
    KubeGateway,
    PodInfo,
    Unavailable,
)
from cronwheel.domain.jobs import JobSpec
from cronwheel.domain.kubernetes import (
    ANNOTATION_KEEP_FAILED,
    ANNOTATION_KEEP_SUCCEEDED,
    ANNOTATION_KEY,
    ANNOTATION_NAMESPACE,
    LABEL_MANAGED,
    LABEL_RUN,
    MANAGER,
    JobPhase,
    KubernetesTarget,
    job_verdict,
    run_selector,
)
from cronwheel.domain.runs import AttemptOutcome, RunState
from cronwheel.domain.targets import HttpTarget
from cronwheel.domain.tasks import TaskState
from cronwheel.domain.time import US_PER_S, Micros

log = logging.getLogger("cronwheel.kubernetes")
LOG_LIMIT = 16 * 1024 * 1024  # bytes of one pod's log kept


@dataclass(frozen=True, slots=True)
class FollowConfig:
    lease_us: Micros = 30 * US_PER_S  # a follower silent this long loses its runs
    poll_s: float = 5.0  # steps without a watch event
    create_give_up_us: Micros = 600 * US_PER_S  # a Job not created after this fails the run
    stream_logs: bool = True  # with `logs: always`, stream running pods' logs as written
    concurrency: int = 16  # runs moved on at once in a step (API calls under way)
    retention_us: Micros = 30 * 86_400 * US_PER_S  # ended runs' rows kept, as runs are
    purge_every_us: Micros = 3_600 * US_PER_S


def pod_state(pod: PodInfo) -> tuple[TaskState, str | None]:
    """A pod's phase as a task's state, with why it ended and how often it restarted."""
    restarts = f" after {pod.restarts} restarts" if pod.restarts else ""
    if pod.phase == "Succeeded":
        return TaskState.SUCCEEDED, (f"succeeded{restarts}" if restarts else None)
    if pod.phase == "Failed":
        if pod.reason == "DeadlineExceeded":
            return TaskState.TIMEOUT, f"DeadlineExceeded{restarts}"
        if pod.reason == "Deleted":
            return TaskState.KILLED, f"deleted{restarts}"
        return TaskState.FAILED, f"{pod.reason or 'Failed'}{restarts}"
    return TaskState.RUNNING, (f"running{restarts}" if restarts else None)


def admit_clusters(clusters: Clusters) -> Callable[[JobSpec], None]:
    """The service's submit check: a Kubernetes target must name a configured cluster
    (422 naming `target.cluster`, before anything is written)."""

    def admit(spec: JobSpec) -> None:
        if isinstance(spec.target, KubernetesTarget):
            clusters.admit(spec.target.cluster)

    return admit


def _end_of(pod: PodInfo) -> tuple[TaskState, int | None, str | None]:
    state, why = pod_state(pod)
    return state, pod.exit_code, why


class KubeFollower:
    def __init__(
        self, store: KubeRunStore, clusters: Clusters, clock: Clock, owner: str,
        callbacks: Callable[[], Awaitable[Transport]],
        config: FollowConfig = FollowConfig(),
    ) -> None:
        self._store = store
        self._clusters = clusters
        self._clock = clock
        self._owner = owner
        self._callbacks = callbacks
        self._config = config
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watches: dict[tuple[str, str], JobWatch] = {}
        self._watching = False  # started: watch each namespace followed
        self._streams: dict[str, asyncio.Task[None]] = {}  # task id -> its log stream
        self._purged_at: Micros = 0

    def wake(self, _run_id: str = "") -> None:
        self._wakeup.set()

    # -- one step -----------------------------------------------------------------------

    async def step(self) -> list[KubeRun]:
        """Claim, then move every followed run on once; returns the runs claimed."""
        now = self._clock.now()
        held = await self._store.claim(self._owner, now, now + self._config.lease_us)
        live = [r for r in held if r.phase != ENDED]
        if self._watching:
            for run in live:
                self.watch(run.cluster, run.namespace)
        states = await self._store.run_states([r.run_id for r in live])
        gate = asyncio.Semaphore(self._config.concurrency)

        async def advance(run: KubeRun) -> None:
            async with gate:
                await self._advance(run, states.get(run.run_id, RunState.RUNNING))

        ended = await asyncio.gather(*(advance(run) for run in live), return_exceptions=True)
        for run, outcome in zip(live, ended, strict=True):
            if isinstance(outcome, Exception):  # one run's trouble does not stop the others
                log.error("following run %s failed: %r", run.run_id, outcome)
        await self.send_callbacks()
        await self._purge()
        return held

    async def _purge(self) -> None:
        now = self._clock.now()
        if now - self._purged_at >= self._config.purge_every_us:
            self._purged_at = now
            await self._store.purge(now - self._config.retention_us)

    async def _advance(self, run: KubeRun, state: RunState) -> None:
        gateway = self._clusters.get(run.cluster)
        if gateway is None:
            await self._end(run, RunState.FAILED, f"no cluster {run.cluster!r} is configured")
            return
        try:
            if state is not RunState.RUNNING:  # killed or cancelled: the Job goes too
                await self._collect(gateway, run, with_logs=True)
                await gateway.delete_job(run.namespace, run.job_name)
                await self._end(run, RunState.KILLED, f"the run was {state.value}")
                return
            if run.phase == CREATING and not await self._create(gateway, run):
                return
            await self._follow(gateway, run)
        except Unavailable as exc:  # try again on the next step; the lease is renewed
            log.warning("cluster %s unavailable following run %s: %s", run.cluster,
                        run.run_id, exc)

    async def _create(self, gateway: KubeGateway, run: KubeRun) -> bool:
        try:
            await gateway.create_job(run.manifest)
        except Unavailable:
            if self._clock.now() - run.created_at > self._config.create_give_up_us:
                await self._end(run, RunState.FAILED, "the cluster did not answer in time to "
                                "create the Job")
                return False
            raise
        except KubeError as exc:  # refused (forbidden, invalid, quota): the run fails
            await self._end(run, RunState.FAILED, f"the Job was refused: {exc}")
            return False
        await self._store.created(run.run_id)
        return True

    async def _follow(self, gateway: KubeGateway, run: KubeRun) -> None:
        job = await gateway.get_job(run.namespace, run.job_name)
        if job is None:
            await self._end(run, RunState.FAILED, "the Job was deleted before it ended")
            return
        verdict = job_verdict(job.status)
        if verdict.phase is JobPhase.ACTIVE:
            await self._collect(gateway, run, with_logs=run.logs == "always", live=True)
            return
        failed = verdict.phase is JobPhase.FAILED
        await self._collect(gateway, run, with_logs=failed or run.logs == "always")
        if failed:
            reason = verdict.reason or "Failed"
            message = f"{reason}: {verdict.message}" if verdict.message else reason
            await self._end(run, RunState.FAILED, message)
        else:
            await self._end(run, RunState.SUCCEEDED, None)
        await self._trim_history(gateway, run)

    async def _trim_history(self, gateway: KubeGateway, run: KubeRun) -> None:
        """Keep the newest `keep_succeeded` / `keep_failed` finished Jobs of the run's job in
        the cluster; delete the older ones (already gone is fine). The store knows the order
        the runs ended in, whatever the cluster still has."""
        notes = run.manifest["metadata"].get("annotations", {})
        for state, note in ((RunState.SUCCEEDED, ANNOTATION_KEEP_SUCCEEDED),
                            (RunState.FAILED, ANNOTATION_KEEP_FAILED)):
            keep = notes.get(note)
            if keep is None:
                continue
            for namespace, name in await self._store.ended_jobs(run.job_id, state,
                                                                int(keep)):
                await gateway.delete_job(namespace, name)

    async def _collect(
        self, gateway: KubeGateway, run: KubeRun, with_logs: bool, live: bool = False
    ) -> None:
        """Record the run's pods; with logs, store each started pod's log. While the Job
        runs (`live`) a running pod's log is streamed instead, when streaming is on."""
        pods = await gateway.list_pods(run.namespace, run_selector(run.run_id))
        records = [PodRecord(p.name, p.node, *_end_of(p)) for p in pods]
        ids = await self._store.record_pods(run, records, self._clock.now())
        if not with_logs:
            return
        for pod in pods:
            if not pod.started:
                continue
            if live and self._config.stream_logs and pod.phase == "Running":
                self._stream(gateway, run, pod.name, ids[pod.name])
                continue
            try:
                data = await gateway.read_log(run.namespace, pod.name, LOG_LIMIT)
            except KubeError as exc:
                if isinstance(exc, Unavailable):
                    raise
                log.info("no log for pod %s of run %s: %s", pod.name, run.run_id, exc)
                continue
            await self._store.append_log(ids[pod.name], 0, data)

    def _stream(self, gateway: KubeGateway, run: KubeRun, pod: str, task_id: str) -> None:
        """Store a running pod's log as it is written, until the container ends or the
        stream breaks (the next step starts another; stored bytes are not stored twice)."""
        if task_id in self._streams:
            return

        async def pump() -> None:
            offset = 0
            try:
                async for piece in gateway.stream_log(run.namespace, pod):
                    await self._store.append_log(task_id, offset, piece)
                    offset += len(piece)
                    if offset >= LOG_LIMIT:
                        return
            except KubeError as exc:
                log.info("log stream of pod %s of run %s ended: %s", pod, run.run_id, exc)
            finally:
                self._streams.pop(task_id, None)

        self._streams[task_id] = asyncio.create_task(pump(), name="cronwheel-kube-log")

    async def _end(self, run: KubeRun, state: RunState, reason: str | None) -> None:
        if await self._store.settle(self._owner, run, state, reason, self._clock.now()):
            log.info("run %s on %s ended %s%s", run.run_id, run.cluster, state.value,
                     f": {reason}" if reason else "")

    # -- callbacks ----------------------------------------------------------------------

    async def send_callbacks(self) -> None:
        """POST {job_id, success, message} for ended runs, through the HTTP transport (its
        idempotency key, headers and target guard), retried per the job's retry policy."""
        due = await self._store.due_callbacks(self._owner, self._clock.now())
        if not due:
            return
        transport = await self._callbacks()
        for run in due:
            assert run.callback_url is not None
            meta = run.manifest["metadata"].get("annotations", {})
            now = self._clock.now()
            delivery = Delivery(
                run_id=run.run_id, attempt=run.callback_tries + 1, job_id=run.job_id,
                namespace=meta.get(ANNOTATION_NAMESPACE, ""), key=meta.get(ANNOTATION_KEY, ""),
                scheduled_at=run.created_at, fired_at=now, target=HttpTarget(run.callback_url),
                payload={"job_id": meta.get(ANNOTATION_KEY, run.job_id),
                         "success": run.outcome == RunState.SUCCEEDED.value,
                         "message": run.reason or run.outcome or ""},
            )
            result = await transport.deliver(delivery)
            ok = result.outcome is AttemptOutcome.SUCCESS
            await self._store.callback_sent(run, ok, result.retryable, self._clock.now())

    # -- running ------------------------------------------------------------------------

    async def begin(self) -> None:
        """Check every cluster (a bad one is logged, not fatal: it may come back, and its
        runs wait), then follow. A node with no cluster configured follows nothing."""
        if not self._clusters.ids():
            return
        for health in await self._clusters.health():
            if health.ok:
                log.info("kubernetes cluster %s: %s", health.id, health.version)
            else:
                log.error("kubernetes cluster %s is not usable: %s", health.id, health.error)
        self._watching = True
        self._task = asyncio.create_task(self._loop(), name="cronwheel-kube-follow")

    def watch(self, cluster: str, namespace: str) -> None:
        """Watch a namespace's cronwheel Jobs on a cluster: each change wakes the follower."""
        gateway = self._clusters.get(cluster)
        if gateway is not None and (cluster, namespace) not in self._watches:
            watch = JobWatch(gateway, namespace, f"{LABEL_MANAGED}={MANAGER}",
                             lambda _e: self.wake())
            watch.start()
            self._watches[cluster, namespace] = watch

    async def _loop(self) -> None:
        while True:
            # on the node's clock, so a test's manual clock drives the polling too
            await self._clock.sleep_until(
                self._clock.now() + round(self._config.poll_s * US_PER_S), self._wakeup)
            self._wakeup.clear()
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database or a bug: log it, try again next step
                log.exception("following Kubernetes runs failed; trying again")

    async def stop(self) -> None:
        for watch in self._watches.values():
            await watch.stop()
        for stream in list(self._streams.values()):
            stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class JobWatch:
    """Lists, then watches from the list's resource version; on `410 Gone` lists again, on
    a dropped connection or an unavailable server waits `retry_s` and lists again. Every
    event (and every relist) goes to `on_event`, so nothing seen between is lost: the
    follower re-reads each run's Job anyway."""

    def __init__(
        self, gateway: KubeGateway, namespace: str, selector: str,
        on_event: Callable[[JobEvent | None], None], retry_s: float = 1.0,
    ) -> None:
        self._gateway = gateway
        self._namespace = namespace
        self._selector = selector
        self._on_event = on_event
        self._retry_s = retry_s
        self._task: asyncio.Task[None] | None = None
        self.relists = 0
        self.resource_version = ""

    async def relist(self) -> None:
        _, self.resource_version = await self._gateway.list_jobs(self._namespace,
                                                                 self._selector)
        self.relists += 1
        self._on_event(None)

    async def watch_once(self) -> None:
        """Watch from the last resource version until the server ends the stream; raises
        Gone when that version is too old, Unavailable when the connection drops."""
        async for event in self._gateway.watch_jobs(self._namespace, self._selector,
                                                    self.resource_version):
            self.resource_version = event.job.resource_version or self.resource_version
            if event.type != "BOOKMARK" and LABEL_RUN in event.job.labels:
                self._on_event(event)

    async def _loop(self) -> None:
        listed = False
        while True:
            try:
                if not listed:
                    await self.relist()
                    listed = True
                await self.watch_once()  # ended by the server: resume from where it was
            except Gone:
                listed = False
            except Unavailable as exc:
                log.info("watch of %s dropped: %s", self._namespace, exc)
                await asyncio.sleep(self._retry_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="cronwheel-kube-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


