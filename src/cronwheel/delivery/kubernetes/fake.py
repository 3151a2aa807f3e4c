"""An in-memory cluster that plays the Job controller, on any cronwheel clock.

It stands in for an API server in tests of the engine (no cluster can run on the build
machines). It keeps the KubeGateway promises and the parts of the Job controller cronwheel
depends on: a pod per attempt (`Never`) or restarts in one pod (`OnFailure`), up to
`parallelism` pods at once until `completions` succeed, `backoffLimit`, the active deadline,
TTL deletion after the end, foreground deletion, resource versions, watches that end in
`Gone` once history is compacted, and an outage switch.

What a pod does comes from its container's environment, read by this fake only:
`FAKE_SECONDS` (how long each run of the container takes, default 1), `FAKE_EXITS` (exit
codes of successive runs, comma-separated, the last repeating; default "0"), `FAKE_LOG`
(a line the container prints when it starts).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from cronwheel.contracts import Clock
from cronwheel.delivery.kubernetes.gateway import Gone, JobEvent, JobInfo, PodInfo, Unavailable
from cronwheel.domain.time import US_PER_S, Micros


def matches(labels: dict[str, str], selector: str) -> bool:
    """Equality selectors (`a=b,c=d`), the only kind cronwheel sends."""
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


@dataclass
class _Pod:
    name: str
    labels: dict[str, str]
    started_at: Micros
    runs: int  # index of this run of the container among the Job's runs
    phase: str = "Running"
    exit_code: int | None = None
    reason: str | None = None
    restarts: int = 0
    log: bytearray = field(default_factory=bytearray)


@dataclass
class _Job:
    manifest: dict[str, Any]
    uid: str
    created_at: Micros
    resource_version: str = "0"
    pods: list[_Pod] = field(default_factory=list)
    runs: int = 0  # container runs started, for FAKE_EXITS
    failed: int = 0
    succeeded: int = 0
    status: dict[str, Any] = field(default_factory=dict)
    finished_at: Micros | None = None

    @property
    def spec(self) -> dict[str, Any]:
        value: dict[str, Any] = self.manifest["spec"]
        return value

    @property
    def env(self) -> dict[str, str]:
        container = self.spec["template"]["spec"]["containers"][0]
        return {e["name"]: e["value"] for e in container.get("env", [])}

    def seconds(self) -> Micros:
        return round(float(self.env.get("FAKE_SECONDS", "1")) * US_PER_S)

    def exit_of(self, run: int) -> int:
        codes = [int(c) for c in self.env.get("FAKE_EXITS", "0").split(",")]
        return codes[min(run, len(codes) - 1)]


class FakeCluster:
    """One cluster. Every call first brings the controller up to the clock's now."""

    def __init__(self, clock: Clock, history: int = 1_000) -> None:
        self._clock = clock
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._events: list[tuple[int, str, str, JobInfo]] = []  # (rv, namespace, type, job)
        self._rv = itertools.count(1)
        self._last_rv = 0
        self._oldest_rv = 0  # watches from before this are Gone
        self._history = history
        self._changed = asyncio.Event()
        self._dropped = False
        self.down = False  # every call raises Unavailable while set
        self.calls: list[str] = []  # the calls made, for tests to check what was asked
        self.created = 0

    # -- the controller ---------------------------------------------------------------

    def reconcile(self) -> None:
        now = self._clock.now()
        for key, job in list(self._jobs.items()):
            if job.finished_at is None:
                self._drive(job, now)
            ttl = job.spec.get("ttlSecondsAfterFinished")
            if job.finished_at is not None and ttl is not None and \
                    now >= job.finished_at + ttl * US_PER_S:
                del self._jobs[key]
                self._emit(job, "DELETED")

    def _drive(self, job: _Job, now: Micros) -> None:
        before = (job.succeeded, job.failed, len(job.pods))
        for pod in job.pods:
            self._run_pod(job, pod, now)
        deadline = job.spec.get("activeDeadlineSeconds")
        if deadline is not None and now >= job.created_at + deadline * US_PER_S:
            self._finish(job, now, "Failed", "DeadlineExceeded",
                         "Job was active longer than specified deadline")
        elif job.failed > job.spec.get("backoffLimit", 6):
            self._finish(job, now, "Failed", "BackoffLimitExceeded",
                         "Job has reached the specified backoff limit")
        elif job.succeeded >= job.spec.get("completions", 1):
            self._finish(job, now, "Complete", "CompletionsReached", "Reached expected number "
                         "of succeeded pods")
        else:
            self._start_pods(job, now)
        if (job.succeeded, job.failed, len(job.pods)) != before or job.finished_at is not None:
            job.status = self._status(job)
            self._emit(job, "MODIFIED")

    def _run_pod(self, job: _Job, pod: _Pod, now: Micros) -> None:
        """Advance a running pod through as many container runs as fit before now."""
        on_failure = job.spec["template"]["spec"]["restartPolicy"] == "OnFailure"
        while pod.phase == "Running" and now >= pod.started_at + job.seconds():
            code = job.exit_of(pod.runs)
            pod.log += f"exit {code}\n".encode()
            pod.exit_code = code
            if code == 0:
                pod.phase = "Succeeded"
                job.succeeded += 1
                return
            job.failed += 1
            if not on_failure or job.failed > job.spec.get("backoffLimit", 6):
                pod.phase, pod.reason = "Failed", "Error"
                return
            pod.restarts += 1  # the kubelet restarts the container in the same pod
            pod.started_at += job.seconds()
            pod.runs = job.runs
            job.runs += 1
            self._print(job, pod)

    def _start_pods(self, job: _Job, now: Micros) -> None:
        running = sum(1 for p in job.pods if p.phase == "Running")
        wanted = min(job.spec.get("parallelism", 1),
                     job.spec.get("completions", 1) - job.succeeded) - running
        for _ in range(max(0, wanted)):
            name = f"{job.manifest['metadata']['name']}-{len(job.pods):05d}"[:63]
            labels = dict(job.spec["template"]["metadata"].get("labels", {}))
            labels["batch.kubernetes.io/job-name"] = job.manifest["metadata"]["name"]
            pod = _Pod(name, labels, now, job.runs)
            job.runs += 1
            job.pods.append(pod)
            self._print(job, pod)

    @staticmethod
    def _print(job: _Job, pod: _Pod) -> None:
        line = job.env.get("FAKE_LOG", f"{pod.name} run {pod.runs}")
        pod.log += f"{line}\n".encode()

    def _finish(self, job: _Job, now: Micros, kind: str, reason: str, message: str) -> None:
        for pod in job.pods:
            if pod.phase == "Running":
                pod.phase, pod.reason = "Failed", reason
        job.finished_at = now
        job.status = self._status(job) | {"conditions": [
            {"type": kind, "status": "True", "reason": reason, "message": message}]}

    @staticmethod
    def _status(job: _Job) -> dict[str, Any]:
        status = dict(job.status)
        status.update(active=sum(1 for p in job.pods if p.phase == "Running"),
                      succeeded=job.succeeded, failed=job.failed)
        return status

    # -- resource versions and watches -------------------------------------------------

    def _emit(self, job: _Job, kind: str) -> None:
        rv = next(self._rv)
        self._last_rv = rv
        job.resource_version = str(rv)
        namespace = job.manifest["metadata"]["namespace"]
        self._events.append((rv, namespace, kind, self._info(job)))
        if len(self._events) > self._history:
            self.compact(self._events[-self._history][0])
        self._changed.set()
        self._changed = asyncio.Event()

    def compact(self, before_rv: int | None = None) -> None:
        """Forget history before a resource version (all of it by default): a watch from
        an older one then ends in Gone, as after an etcd compaction."""
        self._oldest_rv = self._last_rv + 1 if before_rv is None else before_rv
        self._events = [e for e in self._events if e[0] >= self._oldest_rv]

    def drop_watches(self) -> None:
        """End every open watch with a dropped connection."""
        self._dropped = True
        self._changed.set()
        self._changed = asyncio.Event()

    @staticmethod
    def _info(job: _Job, adopted: bool = False) -> JobInfo:
        meta = job.manifest["metadata"]
        return JobInfo(meta["name"], meta["namespace"], job.uid, job.resource_version,
                       dict(meta.get("labels", {})), dict(job.status), adopted)

    def _enter(self, call: str) -> None:
        self.calls.append(call)
        if self.down:
            raise Unavailable(503, "ServiceUnavailable", "the fake API server is down")
        self.reconcile()

    # -- the gateway --------------------------------------------------------------------

    async def create_job(self, manifest: dict[str, Any]) -> JobInfo:
        self._enter("create_job")
        meta = manifest["metadata"]
        key = (meta["namespace"], meta["name"])
        if key in self._jobs:
            return self._info(self._jobs[key], adopted=True)
        self.created += 1
        job = _Job(manifest, f"uid-{self.created}", self._clock.now())
        self._jobs[key] = job
        self._emit(job, "ADDED")
        self._drive(job, job.created_at)
        return self._info(job)

    async def get_job(self, namespace: str, name: str) -> JobInfo | None:
        self._enter("get_job")
        job = self._jobs.get((namespace, name))
        return None if job is None else self._info(job)

    async def list_jobs(self, namespace: str, selector: str) -> tuple[list[JobInfo], str]:
        self._enter("list_jobs")
        found = [self._info(j) for (ns, _), j in self._jobs.items()
                 if ns == namespace and matches(j.manifest["metadata"].get("labels", {}),
                                                selector)]
        return found, str(self._last_rv)

    async def watch_jobs(
        self, namespace: str, selector: str, resource_version: str
    ) -> AsyncIterator[JobEvent]:
        self._enter("watch_jobs")
        after = int(resource_version or 0)
        if after + 1 < self._oldest_rv:
            raise Gone(410, "Expired", f"too old resource version: {after}")
        self._dropped = False
        while True:
            for rv, ns, kind, info in list(self._events):
                if rv > after and ns == namespace and matches(info.labels, selector):
                    after = rv
                    yield JobEvent(kind, info)
            changed = self._changed
            await changed.wait()
            if self._dropped or self.down:
                raise Unavailable(0, "ConnectionReset", "the watch connection dropped")
            if after + 1 < self._oldest_rv:
                raise Gone(410, "Expired", f"too old resource version: {after}")

    def _job_pods(self, namespace: str) -> list[_Pod]:
        return [p for (ns, _), j in self._jobs.items() if ns == namespace for p in j.pods]

    async def list_pods(self, namespace: str, selector: str) -> list[PodInfo]:
        self._enter("list_pods")
        return [PodInfo(p.name, p.phase, "fake-node", p.exit_code, p.reason, p.restarts, True)
                for p in self._job_pods(namespace) if matches(p.labels, selector)]

    def _pod(self, namespace: str, name: str) -> _Pod:
        for pod in self._job_pods(namespace):
            if pod.name == name:
                return pod
        raise KeyError(name)

    async def read_log(self, namespace: str, pod: str, limit_bytes: int | None = None) -> bytes:
        self._enter("read_log")
        try:
            log = bytes(self._pod(namespace, pod).log)
        except KeyError:
            return b""
        return log if limit_bytes is None else log[:limit_bytes]

    async def stream_log(self, namespace: str, pod: str) -> AsyncIterator[bytes]:
        self._enter("stream_log")
        sent = 0
        while True:
            try:
                found = self._pod(namespace, pod)
            except KeyError:
                return
            if len(found.log) > sent:
                yield bytes(found.log[sent:])
                sent = len(found.log)
            if found.phase != "Running":
                return
            await self._changed.wait()
            self.reconcile()

    async def delete_job(self, namespace: str, name: str) -> bool:
        self._enter("delete_job")
        job = self._jobs.pop((namespace, name), None)
        if job is None:
            return False
        for pod in job.pods:  # foreground: the pods go before the Job
            if pod.phase == "Running":
                pod.phase, pod.reason = "Failed", "Deleted"
        self._emit(job, "DELETED")
        return True

    async def version(self) -> str:
        self._enter("version")
        return "v1.31.0-fake"

    async def aclose(self) -> None:
        return None

    # -- for tests ----------------------------------------------------------------------

    def pods_of(self, namespace: str, name: str) -> list[PodInfo]:
        job = self._jobs.get((namespace, name))
        return [] if job is None else [
            PodInfo(p.name, p.phase, "fake-node", p.exit_code, p.reason, p.restarts, True)
            for p in job.pods]

    def manifests(self) -> list[dict[str, Any]]:
        """The manifests of the Jobs there now, oldest first."""
        return [job.manifest for job in self._jobs.values()]

    def manifest_of(self, namespace: str, name: str) -> dict[str, Any] | None:
        job = self._jobs.get((namespace, name))
        return None if job is None else job.manifest
