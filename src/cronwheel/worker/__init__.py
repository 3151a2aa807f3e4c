"""The worker process (`cronwheel worker`): pulls tasks of its groups from a server and runs them.

In-process use: `await Worker(WorkerSettings(server=url, groups=("etl",))).run()`, stopped with
`worker.request_stop()`. As a process: `cronwheel worker --server URL --group etl`.
"""

from __future__ import annotations

import logging
import os

from cronwheel.worker.client import ApiError, WorkerClient, credentials
from cronwheel.worker.executor import Execution, Outcome
from cronwheel.worker.runner import Worker, run_worker
from cronwheel.worker.settings import WorkerSettings, parse_databases

__all__ = ["Execution", "Outcome", "Worker", "WorkerClient", "WorkerSettings", "credentials",
           "main", "parse_databases", "run_worker"]


def main(settings: WorkerSettings) -> None:
    """The `cronwheel worker` command: log to stderr, run until SIGTERM/SIGINT."""
    level = os.environ.get("CRONWHEEL_LOG_LEVEL", "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        run_worker(settings)
    except ApiError as exc:
        logging.getLogger(__name__).error("the server refused this worker: %s", exc)
        raise SystemExit(1) from None
    except ValueError as exc:  # --types or --command-type that do not fit its job types
        logging.getLogger(__name__).error("cannot start the worker: %s", exc)
        raise SystemExit(2) from None
