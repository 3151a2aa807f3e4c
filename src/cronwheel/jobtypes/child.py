"""The child process of a non-shell task: `python -m cronwheel.jobtypes.child`.

The worker starts it with the type, the spec file and the result file in its environment
(see `cronwheel.jobtypes.in_child`). Running every type in a child of its own makes timeouts,
kills and log capture the same for all types. Exit status 0 is success, 1 failure; what went
wrong is written to stderr, which the worker streams as the task's log.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import orjson

from cronwheel.jobtypes import TaskFailed
from cronwheel.jobtypes.registry import load_job_types


async def _await(value: Any) -> Any:
    return await value


def main() -> int:
    name = os.environ["CRONWHEEL_CHILD_TYPE"]
    spec = orjson.loads(Path(os.environ["CRONWHEEL_CHILD_SPEC"]).read_bytes())
    runner = getattr(load_job_types().get(name), "run", None)
    if runner is None:
        print(f"cronwheel: job type {name!r} cannot run in a child process", file=sys.stderr)
        return 1
    with open(os.environ["CRONWHEEL_RESULT_FILE"], "wb") as result:
        try:
            value = runner(spec, result)
            if inspect.isawaitable(value):
                asyncio.run(_await(value))
        except TaskFailed as exc:
            sys.stdout.flush()
            print(f"cronwheel: {exc}", file=sys.stderr)
            return 1
        except Exception:
            sys.stdout.flush()
            traceback.print_exc()
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
