"""The job types one process knows: the built-in ones and those installed as plugins.

Nothing registers itself on import. A process's entry point (the server's app factory, the
worker, the task child) calls `load_job_types()` once at start-up and hands the result to what
needs it: the server's API parses worker targets with it (it satisfies the domain's
`SpecParsers`), the worker launches tasks with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import entry_points

from cronwheel.domain.worker_target import SpecParser
from cronwheel.jobtypes import JobType, http, python, shell, sql

ENTRY_POINT_GROUP = "cronwheel.job_types"
BUILTIN: tuple[JobType, ...] = (shell, http, python, sql)
log = logging.getLogger(__name__)


class JobTypes:
    """Job types by name. A later registration under the same name replaces the earlier."""

    def __init__(self, types: Iterable[JobType] = ()) -> None:
        self._types: dict[str, JobType] = {}
        for job_type in types:
            self.register(job_type)

    def register(self, job_type: JobType) -> None:
        self._types[job_type.name] = job_type

    def get(self, name: str) -> JobType:
        """The type called `name`; KeyError when there is none."""
        return self._types[name]

    def names(self) -> list[str]:
        return sorted(self._types)

    def spec_parser(self, name: str) -> SpecParser | None:
        job_type = self._types.get(name)
        return None if job_type is None else job_type.parse

    def discover(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Register the third-party types of the entry-point group; a broken one is logged and
        skipped so it cannot take the server or the worker down."""
        for point in entry_points(group=group):
            try:
                found = point.load()
            except Exception:
                log.exception("cannot load job type %r from %s", point.name, point.value)
                continue
            if not all(hasattr(found, a) for a in ("name", "parse", "launch")):
                log.error("job type %r (%s) lacks name, parse or launch", point.name,
                          point.value)
                continue
            self.register(found)


def builtin_job_types() -> JobTypes:
    """The types that ship with cronwheel, without looking for plugins."""
    return JobTypes(BUILTIN)


def load_job_types() -> JobTypes:
    """The built-in types plus every installed plugin: what a process calls at start-up."""
    types = builtin_job_types()
    types.discover()
    return types
