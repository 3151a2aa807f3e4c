"""The worker process (`cronwheel worker`): pulls tasks of its groups from a server and runs them.

In-process use: `await Worker(WorkerSettings(server=url, groups=("etl",))).run()`, stopped with
`worker.request_stop()`. As a process: `cronwheel worker --server URL --group etl`.
"""

from __future__ import annotations

import logging

from cronwheel.worker.client import ApiError, WorkerClient, credentials
from cronwheel.worker.executor import Execution, Outcome
from cronwheel.worker.runner import Worker, run_worker
from cronwheel.worker.settings import WorkerSettings, parse_databases

__all__ = ["Execution", "Outcome", "Worker", "WorkerClient", "WorkerSettings", "credentials",
           "main", "parse_databases", "run_worker"]


def main(settings: WorkerSettings) -> None:
    """The `cronwheel worker` command: run until SIGTERM/SIGINT. Where its log goes and in
    which format is the caller's to set (the CLI sends it through cronwheel.logs)."""
    # one line per lease poll and heartbeat would bury the events
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    log = logging.getLogger(__name__)
    try:
        run_worker(settings)
    except ApiError as exc:
        log.error("worker.refused", extra={"server": settings.server, "error": str(exc)})
        raise SystemExit(1) from None
    except ValueError as exc:  # --types or --command-type that do not fit its job types
        log.error("worker.cannot_start", extra={"error": str(exc)})
        raise SystemExit(2) from None
