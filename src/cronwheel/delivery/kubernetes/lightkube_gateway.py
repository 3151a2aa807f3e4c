"""The KubeGateway on lightkube's async client.

Why lightkube: it is asyncio-native (the official `kubernetes` client is synchronous and
`kubernetes_asyncio` is a generated port of it), its models are typed (it ships py.typed,
so mypy strict checks our use of it), it streams watches and pod logs, resumes a watch from
its last resource version when the server ends the stream, and it is small and kept up
with each Kubernetes release (lightkube-models follows the API versions).

Errors are mapped to the contract's: no answer, a dropped connection, 5xx and 429 are
`Unavailable`; 410 is `Gone`; 409 on create means the Job is there (adopted); 404 on get
and delete means it is not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ApiError
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod
from lightkube.types import CascadeType

from cronwheel.delivery.kubernetes.gateway import (
    Gone,
    JobEvent,
    JobInfo,
    KubeError,
    PodInfo,
    Unavailable,
)

TIMEOUT_S = 10.0


def status_of(exc: Exception) -> int:
    """The HTTP status of a refusal; 0 when there was no answer."""
    if isinstance(exc, ApiError) and exc.status.code:
        return int(exc.status.code)
    response = getattr(exc, "response", None) if isinstance(exc, httpx2.HTTPStatusError) \
        else None
    return int(response.status_code) if response is not None else 0


def _error(exc: Exception) -> KubeError:
    code = status_of(exc)
    reason, message = type(exc).__name__, str(exc)
    if isinstance(exc, ApiError):
        reason, message = str(exc.status.reason or reason), str(exc.status.message or "")
    if code == 410:
        return Gone(code, reason, message)
    if code == 0 or code >= 500 or code == 429:
        return Unavailable(code, reason, message)
    return KubeError(code, reason, message)


def _selector(selector: str) -> dict[str, Any]:
    pairs = (term.partition("=") for term in selector.split(",") if term)
    return {key: value for key, _, value in pairs}


def _job_info(job: Job, adopted: bool = False) -> JobInfo:
    meta = job.metadata
    assert meta is not None
    status = job.status.to_dict() if job.status is not None else {}
    return JobInfo(meta.name or "", meta.namespace or "", meta.uid or "",
                   meta.resourceVersion or "", dict(meta.labels or {}), status, adopted)


def _pod_info(pod: Pod) -> PodInfo:
    meta, status = pod.metadata, pod.status
    assert meta is not None
    node = pod.spec.nodeName if pod.spec is not None else None
    if status is None:
        return PodInfo(meta.name or "", "Pending", node or "")
    exit_code, reason, restarts, started = None, status.reason, 0, False
    for container in status.containerStatuses or []:
        restarts += container.restartCount
        state = container.state
        started = started or bool(state and (state.running or state.terminated))
        if state is not None and state.terminated is not None:
            exit_code = state.terminated.exitCode
            reason = reason or state.terminated.reason
    return PodInfo(meta.name or "", status.phase or "Unknown", node or "", exit_code, reason,
                   restarts, started)


class LightkubeGateway:
    def __init__(self, config: SingleConfig | KubeConfig, check_namespace: str = "default",
                 transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self._client = AsyncClient(config, timeout=httpx2.Timeout(TIMEOUT_S),
                                   field_manager="cronwheel", trust_env=False,
                                   transport=transport)
        self._check_namespace = check_namespace

    @classmethod
    def from_kubeconfig(cls, path: str, context: str | None,
                        check_namespace: str = "default") -> LightkubeGateway:
        found = KubeConfig.from_file(path).get(context_name=context)
        if found is None:
            raise ValueError(f"kubeconfig {path} has no context {context!r}")
        return cls(found, check_namespace)

    @classmethod
    def in_cluster(cls, check_namespace: str = "default") -> LightkubeGateway:
        return cls(KubeConfig.from_service_account(), check_namespace)

    async def create_job(self, manifest: dict[str, Any]) -> JobInfo:
        job = cast(Job, Job.from_dict(manifest))
        meta = manifest["metadata"]
        try:
            return _job_info(await self._client.create(job))
        except httpx2.HTTPError as exc:
            if status_of(exc) != 409:
                raise _error(exc) from exc
        found = await self.get_job(meta["namespace"], meta["name"])
        if found is None:  # deleted between the two calls: let the caller try again
            raise Unavailable(409, "AlreadyExists", "the Job went away while adopting it")
        return JobInfo(found.name, found.namespace, found.uid, found.resource_version,
                       found.labels, found.status, adopted=True)

    async def get_job(self, namespace: str, name: str) -> JobInfo | None:
        try:
            return _job_info(await self._client.get(Job, name, namespace=namespace))
        except httpx2.HTTPError as exc:
            if status_of(exc) == 404:
                return None
            raise _error(exc) from exc

    async def list_jobs(self, namespace: str, selector: str) -> tuple[list[JobInfo], str]:
        listing = self._client.list(Job, namespace=namespace, labels=_selector(selector))
        try:
            found = [_job_info(job) async for job in listing]
            return found, listing.resourceVersion
        except httpx2.HTTPError as exc:
            raise _error(exc) from exc

    async def watch_jobs(
        self, namespace: str, selector: str, resource_version: str
    ) -> AsyncIterator[JobEvent]:
        events = self._client.watch(Job, namespace=namespace, labels=_selector(selector),
                                    resource_version=resource_version or None)
        try:
            async for kind, job in events:
                yield JobEvent(kind, _job_info(job))
        except httpx2.HTTPError as exc:
            raise _error(exc) from exc

    async def list_pods(self, namespace: str, selector: str) -> list[PodInfo]:
        try:
            pods = [p async for p in self._client.list(Pod, namespace=namespace,
                                                       labels=_selector(selector))]
        except httpx2.HTTPError as exc:
            raise _error(exc) from exc
        pods.sort(key=lambda p: (p.metadata.creationTimestamp.isoformat()
                                 if p.metadata and p.metadata.creationTimestamp else "",
                                 p.metadata.name if p.metadata else ""))
        return [_pod_info(p) for p in pods]

    async def read_log(self, namespace: str, pod: str, limit_bytes: int | None = None) -> bytes:
        out = bytearray()
        try:
            async for line in self._client.log(pod, namespace=namespace):
                out += line.encode()
                if limit_bytes is not None and len(out) >= limit_bytes:
                    return bytes(out[:limit_bytes])
        except httpx2.HTTPError as exc:
            raise _error(exc) from exc
        return bytes(out)

    async def stream_log(self, namespace: str, pod: str) -> AsyncIterator[bytes]:
        try:
            async for line in self._client.log(pod, namespace=namespace, follow=True):
                yield line.encode()
        except httpx2.HTTPError as exc:
            raise _error(exc) from exc

    async def delete_job(self, namespace: str, name: str) -> bool:
        try:
            await self._client.delete(Job, name, namespace=namespace,
                                      cascade=CascadeType.FOREGROUND)
        except httpx2.HTTPError as exc:
            if status_of(exc) == 404:
                return False
            raise _error(exc) from exc
        return True

    async def version(self) -> str:
        """Whether Jobs can be listed where the service account is meant to work: an
        answer proves the address, the credentials and the RBAC role at once."""
        listing = self._client.list(Job, namespace=self._check_namespace, chunk_size=1)
        try:
            async for _ in listing:
                break
        except httpx2.HTTPError as exc:
            raise _error(exc) from exc
        return f"jobs readable in {self._check_namespace}"

    async def aclose(self) -> None:
        await self._client.close()
