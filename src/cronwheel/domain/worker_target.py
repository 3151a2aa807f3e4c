"""Worker targets: a run executed by a worker process of a group, chosen by a routing rule.

What a worker executes is a job type (shell, http, python, sql, ...). Each type is one module
in `cronwheel.jobtypes` with a pure spec parser, so the server checks a spec at submit time
without importing anything the worker needs to run it. The domain never looks types up: the
process's entry point loads them at start-up (`cronwheel.jobtypes.registry`) and whoever
parses a target passes them in as `SpecParsers`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol

import orjson

from cronwheel.domain.errors import InvalidField

DEFAULT_WORKER_TIMEOUT_S = 3_600.0
MAX_WORKER_TIMEOUT_S = 7 * 86_400.0
DEFAULT_GROUP = "default"
_GROUP = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

SpecParser = Callable[[dict[str, Any], str], dict[str, Any]]
"""Checks a job type's spec and returns it normalised; raises InvalidField naming the field
under the prefix it is given (e.g. `target.spec.command`)."""



class SpecParsers(Protocol):
    """The job types a parse accepts, by name (`cronwheel.jobtypes.registry.JobTypes`)."""

    def spec_parser(self, name: str) -> SpecParser | None:
        """The parser of the type called `name`; None when there is no such type."""
        ...

    def names(self) -> list[str]: ...


class _NoJobTypes:
    def spec_parser(self, name: str) -> SpecParser | None:
        return None

    def names(self) -> list[str]:
        return []


def _as_is(spec: dict[str, Any], prefix: str) -> dict[str, Any]:
    return spec


class _AsStored:
    def spec_parser(self, name: str) -> SpecParser | None:
        return _as_is

    def names(self) -> list[str]:
        return []


NO_JOB_TYPES: SpecParsers = _NoJobTypes()
"""For callers that take no worker targets (a dialect that only builds callback targets)."""

AS_STORED: SpecParsers = _AsStored()
"""For reading targets back from the store: a spec was checked and normalised when its job was
submitted, so it is taken as it is, and a job whose type has since been uninstalled still
loads (its run fails on the worker, which names the missing type)."""


class Route(StrEnum):
    """How a run picks its worker among the online, switched-on workers of its group."""

    RANDOM = "random"
    ROUND_ROBIN = "round-robin"
    LEAST_BUSY = "least-busy"
    CONSISTENT_HASH = "consistent-hash"  # the same job key goes to the same worker
    FAILOVER = "failover"  # the first healthy worker, by name
    BROADCAST = "broadcast"  # every worker; one task each, the run succeeds if all do


def check_group(value: Any, fieldname: str) -> str:
    if not isinstance(value, str) or not _GROUP.match(value):
        raise InvalidField(
            "group must be 1-64 letters, digits, '.', '_', ':' or '-'", fieldname
        )
    return value


@dataclass(frozen=True, slots=True)
class WorkerTarget:
    job_type: str
    spec_json: str  # the normalised spec, canonical JSON (a frozen value that compares equal)
    group: str = DEFAULT_GROUP
    route: Route = Route.ROUND_ROBIN
    timeout: float = DEFAULT_WORKER_TIMEOUT_S
    kind: ClassVar[str] = "worker"

    @property
    def spec(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.spec_json)
        return value

    @property
    def slot(self) -> str:
        return f"worker:{self.group}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "type": self.job_type,
            "spec": self.spec,
            "group": self.group,
            "route": self.route.value,
            "timeout": self.timeout,
        }


def parse_worker_target(data: dict[str, Any], prefix: str,
                        job_types: SpecParsers) -> WorkerTarget:
    """Check `{"kind": "worker", "type", "spec", ...}` against the given job types."""
    name = data.get("type")
    if not isinstance(name, str) or (parser := job_types.spec_parser(name)) is None:
        known = job_types.names()
        command = (", or a command type's name (a-z, 0-9, '_', '.', '-', starting with a "
                   "letter)") if known else ""
        raise InvalidField(f"type must be one of {known}{command}", f"{prefix}.type")
    spec = data.get("spec", {})
    if not isinstance(spec, dict):
        raise InvalidField("spec must be an object", f"{prefix}.spec")
    normalised = parser(spec, f"{prefix}.spec")
    group = check_group(data.get("group", DEFAULT_GROUP), f"{prefix}.group")
    try:
        route = Route(str(data.get("route", Route.ROUND_ROBIN.value)).lower())
    except ValueError:
        raise InvalidField(
            f"route must be one of {[r.value for r in Route]}", f"{prefix}.route"
        ) from None
    raw = data.get("timeout", DEFAULT_WORKER_TIMEOUT_S)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InvalidField("timeout must be a number of seconds", f"{prefix}.timeout")
    if not 0 < raw <= MAX_WORKER_TIMEOUT_S:
        raise InvalidField(
            f"timeout must be above 0 and at most {MAX_WORKER_TIMEOUT_S:g} seconds",
            f"{prefix}.timeout",
        )
    spec_json = orjson.dumps(normalised, option=orjson.OPT_SORT_KEYS).decode()
    return WorkerTarget(name, spec_json, group, route, float(raw))
