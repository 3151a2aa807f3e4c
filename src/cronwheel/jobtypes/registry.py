"""The job types one process knows: the built-in ones and those installed as plugins.

Nothing registers itself on import. A process's entry point (the server's app factory, the
worker, the task child) calls `load_job_types()` once at start-up and hands the result to what
needs it: the server's API parses worker targets with it (it satisfies the domain's
`SpecParsers`), the worker launches tasks with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from cronwheel.domain.command_types import TYPE_NAME, parse_command_spec
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.worker_target import SpecParser
from cronwheel.jobtypes import JobType, http, python, shell, sql
from cronwheel.jobtypes.command import CommandTemplate, CommandType

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
        """The type's parser; for a well-named type this process does not have, the command
        types' (cronwheel.domain.command_types): a worker may run it with a command line."""
        job_type = self._types.get(name)
        if job_type is not None:
            return job_type.parse
        return self._command_parser(name) if TYPE_NAME.match(name) else None

    def _command_parser(self, name: str) -> SpecParser:
        def parse(spec: dict[str, Any], prefix: str) -> dict[str, Any]:
            try:
                return parse_command_spec(spec, prefix)
            except InvalidField as exc:  # say why a misspelt "shel" wants content
                raise InvalidField(f"{exc.message} ({name!r} is not one of {self.names()}, "
                                   "so it is a command type)", exc.field) from None

        return parse

    def add_commands(self, templates: Mapping[str, CommandTemplate]) -> None:
        """A worker's command types; ValueError when one is named like a type it has."""
        taken = sorted(set(templates) & set(self._types))
        if taken:
            raise ValueError(f"command type(s) {', '.join(taken)} would replace a built-in or "
                             "plugin job type of the same name")
        for name, template in templates.items():
            self.register(CommandType(name, template))

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
