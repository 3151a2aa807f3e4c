"""What a worker process is told on its command line and in its environment."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import orjson

from cronwheel.domain.command_types import check_type_names
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.worker_target import DEFAULT_GROUP, check_group
from cronwheel.jobtypes.command import CommandTemplate, checked_command_type, parse_command_type
from cronwheel.jobtypes.sql import DATABASE_NAME
from cronwheel.worker.client import DEFAULT_SERVER

DATABASES_ENV = "CRONWHEEL_WORKER_DATABASES"
COMMAND_TYPES_ENV = "CRONWHEEL_WORKER_COMMAND_TYPES"


@dataclass(frozen=True)
class WorkerSettings:
    server: str = DEFAULT_SERVER
    groups: tuple[str, ...] = (DEFAULT_GROUP,)
    concurrency: int = 4
    name: str = field(default_factory=lambda: default_name())
    host: str | None = None  # what to report; the server uses the address it sees otherwise
    databases: dict[str, str] = field(default_factory=dict)  # sql type: name -> URL
    grace_s: float = 30.0  # on SIGTERM: how long running tasks may go on before being killed
    lease_wait_s: float = 20.0  # long-poll wait of one lease call (the protocol allows 30)
    kill_grace_s: float = 2.0  # SIGTERM to SIGKILL of a task's process group
    token: str | None = field(default=None, repr=False)  # sent as Authorization: Bearer
    # the job types it accepts; None: every type it can run (built-in, plugin, command)
    types: tuple[str, ...] | None = None
    command_types: dict[str, CommandTemplate] = field(default_factory=dict)  # name -> command

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not self.groups:
            raise ValueError("a worker needs at least one group")
        for group in self.groups:
            try:
                check_group(group, "group")
            except InvalidField as exc:
                raise ValueError(f"bad group {group!r}: {exc.message}") from None
        if not self.name.strip():
            raise ValueError("the worker's name must not be empty")
        if self.types is not None:
            try:
                check_type_names(list(self.types), "types")
            except InvalidField as exc:
                raise ValueError(f"--types: {exc.message}") from None


def default_name() -> str:
    """`<host>:<pid>`: unique among running workers, unlike a bare host name."""
    return f"{socket.gethostname()}:{os.getpid()}"


def parse_databases(pairs: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """The SQL databases: CRONWHEEL_WORKER_DATABASES (a JSON object of NAME: URL), then the
    `--database NAME=URL` options, which win. ValueError says what is wrong."""
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    raw = env.get(DATABASES_ENV, "").strip()
    if raw:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValueError(f"{DATABASES_ENV} must be a JSON object of NAME: URL")
        found.update(value)
    for pair in pairs:
        key, sep, url = pair.partition("=")
        found[key.strip()] = url.strip() if sep else ""
    for key, url in found.items():
        if not DATABASE_NAME.match(key) or not url:
            raise ValueError(f"a database is NAME=URL with a NAME of 1-64 letters, digits, "
                             f"'.', '_' or '-': bad {key!r}")
    return found


def parse_types(values: list[str]) -> tuple[str, ...] | None:
    """`--types shell,http` (repeatable, commas or not); None when not given."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return tuple(dict.fromkeys(names)) if values else None


def parse_command_types(
    pairs: list[str], environ: dict[str, str] | None = None
) -> dict[str, CommandTemplate]:
    """The command types: CRONWHEEL_WORKER_COMMAND_TYPES (a JSON object of NAME: COMMAND),
    then the `--command-type NAME=COMMAND` options, which win. ValueError says what is wrong."""
    env = os.environ if environ is None else environ
    found: dict[str, CommandTemplate] = {}
    raw = env.get(COMMAND_TYPES_ENV, "").strip()
    if raw:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValueError(f"{COMMAND_TYPES_ENV} must be a JSON object of NAME: COMMAND")
        for name, text in value.items():
            found.update([checked_command_type(name, text)])
    for pair in pairs:
        found.update([parse_command_type(pair)])
    return found
