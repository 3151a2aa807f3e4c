"""The Python client of cronwheel's native API, sync and async, typed with the server's own
request and response models.

    from cronwheel.client import Client

    with Client("http://127.0.0.1:1989") as cw:
        cw.create_job({"key": "invoice-42", "schedule": {"kind": "once", "after": "PT1H"},
                       "target": {"kind": "http", "url": "https://billing.example/due"}})
        for job in cw.iter_jobs(namespace="default"):
            print(job.key, job.next_fire_at)

`AsyncClient` has the same methods, awaited. Errors are `ApiError` (with `status`, `code`,
`field`; subclasses `BadRequest`, `Unauthorized`, `NotFound`, `Conflict`) and `Unreachable`.
"""

from cronwheel.api.schemas import (
    AlertIn,
    AlertOut,
    AttemptOut,
    BatchOut,
    ClusterOut,
    DeletedOut,
    HostRuns,
    JobAlerts,
    JobIn,
    JobOut,
    JobPage,
    JobWorkers,
    KillOut,
    LogPageOut,
    MisfireIn,
    NodeOut,
    PreviewOut,
    RetryIn,
    RunDetail,
    RunOut,
    RunPage,
    RunTasks,
    TaskOut,
    WorkerList,
    WorkerOut,
)
from cronwheel.client.aio import AsyncClient
from cronwheel.client.calls import Created
from cronwheel.client.credentials import find_token
from cronwheel.client.errors import (
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    NotFound,
    Unauthorized,
    Unreachable,
)
from cronwheel.client.sync import Client
from cronwheel.client.wire import DEFAULT_SERVER, Event, Retry

__all__ = [
    "DEFAULT_SERVER",
    "AlertIn",
    "AlertOut",
    "ApiError",
    "AsyncClient",
    "AttemptOut",
    "BadRequest",
    "BatchOut",
    "Client",
    "ClientError",
    "ClusterOut",
    "Conflict",
    "Created",
    "DeletedOut",
    "Event",
    "HostRuns",
    "JobAlerts",
    "JobIn",
    "JobOut",
    "JobPage",
    "JobWorkers",
    "KillOut",
    "LogPageOut",
    "MisfireIn",
    "NodeOut",
    "NotFound",
    "PreviewOut",
    "Retry",
    "RetryIn",
    "RunDetail",
    "RunOut",
    "RunPage",
    "RunTasks",
    "TaskOut",
    "Unauthorized",
    "Unreachable",
    "WorkerList",
    "WorkerOut",
    "find_token",
]
