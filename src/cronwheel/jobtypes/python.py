"""`python`: call a function importable on the worker, in a child process.

Spec: `{"callable": "pkg.module:function", "args"?: [], "kwargs"?: {}}`. The path is checked
only for syntax at submit time (the server cannot import the worker's code). A coroutine
function is awaited; the return value, JSON-encoded, is the result; an exception fails the
task with its traceback in the log.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, BinaryIO

import orjson

from cronwheel.domain.errors import InvalidField
from cronwheel.jobtypes import Launch, LaunchContext, check_keys, dotted, in_child, text

name = "python"
_KEYS = {"callable", "args", "kwargs"}


def parse(spec: dict[str, Any], prefix: str) -> dict[str, Any]:
    check_keys(spec, _KEYS, prefix)
    path = text(spec, "callable", prefix)
    assert path is not None
    module, _, attr = path.partition(":")
    if not module or not attr or not dotted(module) or not dotted(attr):
        raise InvalidField("callable must look like 'package.module:function'",
                           f"{prefix}.callable")
    args = spec.get("args", [])
    if not isinstance(args, list):
        raise InvalidField("args must be a list", f"{prefix}.args")
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise InvalidField("kwargs must be an object", f"{prefix}.kwargs")
    return {"callable": path, "args": args, "kwargs": kwargs}


def launch(spec: dict[str, Any], ctx: LaunchContext) -> Launch:
    return in_child(name, spec, ctx)


def resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    target: Any = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


async def _await(value: Any) -> Any:
    return await value


def run(spec: dict[str, Any], result: BinaryIO) -> None:
    """In the child: import, call (awaiting a coroutine), write the JSON of what it returns."""
    import asyncio

    function = resolve(spec["callable"])
    value = function(*spec.get("args", []), **spec.get("kwargs", {}))
    if inspect.isawaitable(value):
        value = asyncio.run(_await(value))
    result.write(orjson.dumps(value, default=str))
