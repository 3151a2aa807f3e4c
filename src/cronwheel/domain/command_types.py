"""Command types: worker job types a worker runs with a command line its operator configured.

A data platform's job has a type (hive, presto, spark-sql, ...) and content (a query, a
script, a jar). The server knows no such type: any worker job type that is neither built in
nor an installed plugin is a command type, with the spec checked here. A worker that declares
`--command-type hive='beeline -f {script}'` runs it (cronwheel.jobtypes.command). Command
types run code on the worker, so an app needs an admin's grant to create them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.output import stdout_option

BUILTIN_TYPES = frozenset({"shell", "http", "python", "sql"})
"""What a worker that declares no types (one older than declared types) is given."""

CONTENT_TYPES = ("text", "script", "jar")
MAX_CONTENT = 1_048_576  # characters of content: a query or a script, not a data file
MAX_PARAMS = 64
TYPE_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# a type a worker declares may also be a plugin's, named by its entry point: looser, but never
# a comma (the store's separator) nor a space
DECLARED_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_KEYS = {"content", "content_type", "params", "stdout"}
MAX_TYPES = 64  # types a worker may declare


def check_type_name(value: Any, field: str) -> str:
    """A job type's name: lower-case letters, digits, '_', '.', '-', starting with a letter."""
    if not isinstance(value, str) or not TYPE_NAME.match(value):
        raise InvalidField("a job type name is 1-63 characters of a-z, 0-9, '_', '.', '-', "
                           f"starting with a letter: bad {value!r}", field)
    return value


def check_type_names(values: Any, field: str) -> tuple[str, ...]:
    """The job types a worker declares, without repeats, in the order given."""
    if not isinstance(values, list | tuple) or not values or len(values) > MAX_TYPES:
        raise InvalidField(f"give 1 to {MAX_TYPES} job type names", field)
    for value in values:
        if not isinstance(value, str) or not DECLARED_NAME.match(value):
            raise InvalidField("a declared job type is 1-64 letters, digits, '_', '.', ':' or "
                               f"'-': bad {value!r}", field)
    return tuple(dict.fromkeys(values))


def parse_command_spec(spec: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """`{"content": str, "content_type": "text"|"script"|"jar", "params"?: {str: str},
    "stdout"?: "log"|"result"}`.

    content_type defaults to "text"; params are named like identifiers, so that a command
    template can refer to them as `{params.NAME}`."""
    for key in spec:
        if key not in _KEYS:
            raise InvalidField(f"unknown field; a command type's spec has {sorted(_KEYS)}",
                               f"{prefix}.{key}")
    content = spec.get("content")
    if not isinstance(content, str) or not content.strip():
        raise InvalidField("content must be a non-empty string (the query, script or jar "
                           "this type's command runs)", f"{prefix}.content")
    if len(content) > MAX_CONTENT:
        raise InvalidField(f"content must be at most {MAX_CONTENT} characters",
                           f"{prefix}.content")
    content_type = spec.get("content_type", "text")
    if content_type not in CONTENT_TYPES:
        raise InvalidField(f"content_type must be one of {list(CONTENT_TYPES)}",
                           f"{prefix}.content_type")
    if "\x00" in content:  # {jar} makes it a program's argument
        raise InvalidField("content must not contain NUL characters", f"{prefix}.content")
    return {"content": content, "content_type": content_type,
            "params": _params(spec.get("params", {}), f"{prefix}.params"),
            **stdout_option(spec, prefix)}


def _params(params: Any, field: str) -> dict[str, str]:
    if not isinstance(params, dict) or len(params) > MAX_PARAMS:
        raise InvalidField(f"params must be an object of at most {MAX_PARAMS} strings", field)
    for name, value in params.items():
        if not PARAM_NAME.match(name):
            raise InvalidField(f"a param name is letters, digits and '_': bad {name!r}", field)
        if not isinstance(value, str) or "\x00" in value:
            raise InvalidField(f"param {name!r} must be a string without NUL",
                               f"{field}.{name}")
    return dict(params)
