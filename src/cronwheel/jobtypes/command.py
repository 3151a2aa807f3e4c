"""Command types: a worker runs a job type with a command line its operator configured.

`cronwheel worker --command-type hive='beeline -u jdbc:hive2://db:10000 -f {script}'` makes
the worker run `hive` jobs (spec in cronwheel.domain.command_types) by writing the job's
content to a private file and running the template with `{script}` replaced by its path.

The template is split into words once, when the worker starts, the way a POSIX shell would
(shlex); placeholders are then replaced inside the words, and the words are the program's
argv: no shell ever reads the content or the params, and a value cannot add or split a word
however many quotes, `$(...)` or newlines it holds. Placeholders:

- `{script}`: the path of a file holding the content (mode 0600, removed after the task);
- `{jar}`: the content itself, stripped, as one word (content_type "jar" only: the content
  names a jar the program fetches or finds, e.g. `spark-submit {jar}`);
- `{content_type}`: "text", "script" or "jar";
- `{params.NAME}`: the job's param NAME (a task whose job lacks it ends in error);
- `{{` and `}}`: literal braces.

With `"stdout": "result"` in the spec the program's stdout is the task's result and its stderr
the log (see cronwheel.worker.executor).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cronwheel.domain.command_types import PARAM_NAME, check_type_name, parse_command_spec
from cronwheel.domain.errors import InvalidField
from cronwheel.jobtypes import Launch, LaunchContext, LaunchError

_PIECE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[^{}]+|[{}]")
_FIXED = frozenset({"script", "jar", "content_type"})
CONTENT_FILE = "content"

Piece = tuple[bool, str]  # (is a placeholder, its name or the literal text)


@dataclass(frozen=True, slots=True)
class CommandTemplate:
    """A command line with placeholders, split into words (see the module's docstring)."""

    text: str
    words: tuple[tuple[Piece, ...], ...]

    @property
    def placeholders(self) -> set[str]:
        return {value for word in self.words for placeholder, value in word if placeholder}

    def argv(self, values: Mapping[str, str]) -> list[str]:
        """The words with every placeholder replaced; KeyError names a missing value."""
        return ["".join(values[v] if placeholder else v for placeholder, v in word)
                for word in self.words]


def parse_template(text: str) -> CommandTemplate:
    """Split and check a template; ValueError says what is wrong."""
    try:
        split = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot split the command: {exc}") from None
    if not split:
        raise ValueError("the command is empty")
    words = tuple(_pieces(word) for word in split)
    template = CommandTemplate(text, words)
    if not template.placeholders & {"script", "jar"}:
        raise ValueError("the command never hands over the job's content: use {script} "
                         "(a file holding it) or {jar}")
    if words[0] and words[0][0][0]:
        raise ValueError("the program must be named by the template, not by a placeholder")
    return template


def _pieces(word: str) -> tuple[Piece, ...]:
    pieces: list[Piece] = []
    for match in _PIECE.finditer(word):
        token = match.group(0)
        if token in ("{{", "}}"):
            pieces.append((False, token[0]))
        elif token in ("{", "}"):
            raise ValueError(f"a lone {token!r} in {word!r}: write {token * 2} for a brace")
        elif match.group(1) is not None:
            name = match.group(1)
            param = name.removeprefix("params.")
            if name not in _FIXED and not (name.startswith("params.") and
                                           PARAM_NAME.match(param)):
                raise ValueError(f"unknown placeholder {{{name}}}: use {{script}}, {{jar}}, "
                                 "{content_type} or {params.NAME}")
            pieces.append((True, name))
        else:
            pieces.append((False, token))
    return tuple(pieces)


def parse_command_type(pair: str) -> tuple[str, CommandTemplate]:
    """`NAME=TEMPLATE` (as given to `--command-type`); ValueError says what is wrong."""
    name, sep, text = pair.partition("=")
    if not sep:
        raise ValueError(f"a command type is NAME=COMMAND: bad {pair!r}")
    return checked_command_type(name.strip(), text)


def checked_command_type(name: str, text: str) -> tuple[str, CommandTemplate]:
    try:
        check_type_name(name, "command type")
    except InvalidField as exc:
        raise ValueError(exc.message) from None
    try:
        return name, parse_template(text)
    except ValueError as exc:
        raise ValueError(f"command type {name!r}: {exc}") from None


class CommandType:
    """A JobType (cronwheel.jobtypes.JobType) made from a template."""

    def __init__(self, name: str, template: CommandTemplate) -> None:
        self.name = name
        self.template = template

    def parse(self, spec: dict[str, Any], prefix: str) -> dict[str, Any]:
        return parse_command_spec(spec, prefix)

    def launch(self, spec: dict[str, Any], ctx: LaunchContext) -> Launch:
        content: str = spec["content"]
        content_type: str = spec.get("content_type", "text")
        values = {"content_type": content_type}
        values.update({f"params.{k}": v for k, v in spec.get("params", {}).items()})
        if "jar" in self.template.placeholders:
            if content_type != "jar":
                raise LaunchError(f"the {self.name} command takes a jar ({{jar}}), but the "
                                  f"job's content_type is {content_type!r}")
            values["jar"] = content.strip()
        if "script" in self.template.placeholders:
            values["script"] = str(_private_file(ctx, content))
        missing = sorted(p.removeprefix("params.") for p in self.template.placeholders
                         if p not in values)
        if missing:
            raise LaunchError(f"the {self.name} command needs the param(s) "
                              f"{', '.join(missing)}, which the job does not give")
        return Launch(self.template.argv(values), stdout=spec.get("stdout", "log"))


def _private_file(ctx: LaunchContext, content: str) -> os.PathLike[str]:
    """The content in a file only the worker's user can read; the scratch directory it is in
    is removed after the task."""
    path = ctx.scratch / CONTENT_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(content)
    return path


def describe(templates: Mapping[str, CommandTemplate]) -> str:
    """For logs: `hive='beeline -f {script}', ...`."""
    return ", ".join(f"{name}={shlex.quote(t.text)}" for name, t in sorted(templates.items()))
