"""What cronwheel needs from a Kubernetes API server, and the promises each call keeps.

KubeGateway (one per configured cluster)
    `create_job` creates a `batch/v1` Job from a manifest. If a Job of that name exists it is
    adopted, not an error: the answer is the existing Job with `adopted` set. Creating is
    therefore safe to repeat after a lost answer, a crash or a take-over by another node.
    `get_job` answers None for a Job that is not there (404 is not an error).
    `list_jobs` answers the Jobs matching a label selector and the list's resource version;
    `watch_jobs` yields changes after that version and raises `Gone` when the server no
    longer has it (410): the caller lists again and watches from the new version.
    `list_pods` answers the pods matching a label selector, oldest first.
    `read_log` answers a container's whole log (up to `limit_bytes`); `stream_log` yields it
    as it is written until the container ends.
    `delete_job` deletes with foreground propagation (the pods go first); False when the Job
    was already gone.
    A server that cannot be reached, or answers 5xx or 429, raises `Unavailable`: the caller
    tries again later. Any other refusal raises `KubeError` with the server's status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


class KubeError(Exception):
    """The API server refused a request (4xx other than 404/409/410 where they have a
    meaning of their own)."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message


class Unavailable(KubeError):
    """No answer, a dropped connection, 5xx or 429: worth trying again."""


class Gone(KubeError):
    """410: the watch's resource version is too old; list again."""


@dataclass(frozen=True, slots=True)
class JobInfo:
    name: str
    namespace: str
    uid: str
    resource_version: str
    labels: dict[str, str] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    adopted: bool = False  # create_job found it already there


@dataclass(frozen=True, slots=True)
class JobEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    job: JobInfo


@dataclass(frozen=True, slots=True)
class PodInfo:
    name: str
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    node: str = ""
    exit_code: int | None = None
    reason: str | None = None
    restarts: int = 0
    started: bool = False  # a container has started: its log can be read


class KubeGateway(Protocol):
    async def create_job(self, manifest: dict[str, Any]) -> JobInfo: ...

    async def get_job(self, namespace: str, name: str) -> JobInfo | None: ...

    async def list_jobs(self, namespace: str, selector: str) -> tuple[list[JobInfo], str]: ...

    def watch_jobs(
        self, namespace: str, selector: str, resource_version: str
    ) -> AsyncIterator[JobEvent]: ...

    async def list_pods(self, namespace: str, selector: str) -> list[PodInfo]: ...

    async def read_log(
        self, namespace: str, pod: str, limit_bytes: int | None = None
    ) -> bytes: ...

    def stream_log(self, namespace: str, pod: str) -> AsyncIterator[bytes]: ...

    async def delete_job(self, namespace: str, name: str) -> bool: ...

    async def version(self) -> str:
        """The server's version: the start-up and health check."""
        ...

    async def aclose(self) -> None: ...
