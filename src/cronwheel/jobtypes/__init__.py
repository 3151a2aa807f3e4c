"""Job types: what a worker executes (shell, http, python, sql, and third-party ones).

One module per type holds its pure spec parser and how it runs, so adding a type is adding one
module. This package holds what every type shares (Launch, LaunchContext, the JobType
protocol, helpers for parsers); `cronwheel.jobtypes.registry` gathers the built-in types and
the installed ones (entry-point group `cronwheel.job_types`) when a process starts. It stays
light (no httpx, aiohttp or SQLAlchemy) because the server and CLI import it too.
"""

from __future__ import annotations

import keyword
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

from cronwheel.domain.errors import InvalidField


@dataclass(frozen=True, slots=True)
class LaunchContext:
    """What a type may use to build its child process: a private scratch directory (removed
    after the task) and the worker's configured SQL databases (name -> URL)."""

    scratch: Path
    databases: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start a task's child process. `env` is added to the worker's environment.

    When `result_file` is set, the worker streams that file as the task's result after the
    child exits; otherwise the result is `{"exit_code": N}`. `stdout` "result" sends the
    child's stdout to the result stream as it comes, and its stderr alone to the log (no
    other result is then sent: the exit code travels in the finish call).
    """

    argv: list[str]
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    result_file: Path | None = None
    stdout: str = "log"  # "log" (with stderr) or "result"


class LaunchError(Exception):
    """The task cannot be started (its outcome is `error`)."""


class TaskFailed(Exception):
    """Raised in a child: the task failed for a reason the message says in full (no
    traceback is logged)."""


class JobType(Protocol):
    """What a job type provides; a module with these attributes qualifies."""

    @property
    def name(self) -> str: ...

    def parse(self, spec: dict[str, Any], prefix: str) -> dict[str, Any]:
        """Check a spec and return it normalised; raise InvalidField naming `prefix.<key>`."""
        ...

    def launch(self, spec: dict[str, Any], ctx: LaunchContext) -> Launch:
        """The child process for one task of this type (spec already normalised)."""
        ...


class RunsInChild(Protocol):
    """A type launched with `in_child` also has `run`, called in the child process: it writes
    its result to `result` and raises to fail (TaskFailed for a clean message). It may return
    an awaitable, which the child awaits."""

    def run(self, spec: dict[str, Any], result: BinaryIO) -> object: ...


def in_child(job_type: str, spec: dict[str, Any], ctx: LaunchContext,
             env: Mapping[str, str] | None = None) -> Launch:
    """A Launch that runs `job_type`'s `run` in a child Python process (cronwheel.jobtypes.
    child), so timeouts, kills and logs work the same as for shell tasks."""
    spec_file = ctx.scratch / "spec.json"
    spec_file.write_bytes(orjson.dumps(spec))
    result_file = ctx.scratch / "result"
    child_env = {
        "CRONWHEEL_CHILD_TYPE": job_type,
        "CRONWHEEL_CHILD_SPEC": str(spec_file),
        "CRONWHEEL_RESULT_FILE": str(result_file),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    return Launch([sys.executable, "-m", "cronwheel.jobtypes.child"], None, child_env,
                  result_file)


# -- helpers for parsers ----------------------------------------------------------------------


def check_keys(spec: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    """Reject unknown keys: a misspelt option must not be silently ignored."""
    for key in spec:
        if key not in allowed:
            raise InvalidField(f"unknown field; expected one of {sorted(allowed)}",
                               f"{prefix}.{key}")


def text(spec: Mapping[str, Any], key: str, prefix: str, *, required: bool = True) -> str | None:
    """A non-empty string at `key` (None when absent and not required)."""
    value = spec.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(f"{key} must be a non-empty string", f"{prefix}.{key}")
    return value


def string_map(spec: Mapping[str, Any], key: str, prefix: str) -> dict[str, str]:
    """An object of string values at `key` ({} when absent)."""
    value = spec.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidField(f"{key} must be an object of strings", f"{prefix}.{key}")
    return dict(value)


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_map(spec: Mapping[str, Any], prefix: str) -> dict[str, str]:
    env = string_map(spec, "env", prefix)
    for name in env:
        if not _ENV_NAME.match(name):
            raise InvalidField(f"{name!r} is not a valid environment variable name",
                               f"{prefix}.env")
    return env


def dotted(value: str) -> bool:
    """`a.b.c` where every part is a Python identifier and not a keyword."""
    return all(p.isidentifier() and not keyword.iskeyword(p) for p in value.split("."))
