"""`shell`: a command (`/bin/sh -c`) or a script (written to a file, run by an interpreter).

Spec: `{"command": str}` or `{"script": str, "interpreter"?: "/bin/bash"}`, plus `"cwd"?` and
`"env"?: {name: value}` and `"stdout"?: "log"|"result"`. Exit code 0 is success; the result is
`{"exit_code": N}`, or with `"stdout": "result"` the command's stdout (stderr is the log).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.output import stdout_option
from cronwheel.jobtypes import Launch, LaunchContext, LaunchError, check_keys, env_map, text

name = "shell"
DEFAULT_INTERPRETER = "/bin/bash"
_KEYS = {"command", "script", "interpreter", "cwd", "env", "stdout"}


def parse(spec: dict[str, Any], prefix: str) -> dict[str, Any]:
    check_keys(spec, _KEYS, prefix)
    if ("command" in spec) == ("script" in spec):
        field = "script" if "command" in spec else "command"
        raise InvalidField("give exactly one of command or script", f"{prefix}.{field}")
    out: dict[str, Any] = {}
    if "command" in spec:
        out["command"] = text(spec, "command", prefix)
        if "interpreter" in spec:
            raise InvalidField("interpreter goes with script, not command",
                               f"{prefix}.interpreter")
    else:
        out["script"] = text(spec, "script", prefix)
        interpreter = text(spec, "interpreter", prefix, required=False) or DEFAULT_INTERPRETER
        try:
            shlex.split(interpreter)
        except ValueError as exc:
            raise InvalidField(f"interpreter: {exc}", f"{prefix}.interpreter") from None
        out["interpreter"] = interpreter
    cwd = text(spec, "cwd", prefix, required=False)
    if cwd is not None:
        out["cwd"] = cwd
    out["env"] = env_map(spec, prefix)
    out.update(stdout_option(spec, prefix))
    return out


def launch(spec: dict[str, Any], ctx: LaunchContext) -> Launch:
    if "command" in spec:
        argv = ["/bin/sh", "-c", spec["command"]]
    else:
        path = ctx.scratch / "script"
        path.write_text(spec["script"])
        path.chmod(0o700)
        argv = [*shlex.split(spec.get("interpreter", DEFAULT_INTERPRETER)), str(path)]
    cwd = spec.get("cwd")
    if cwd is not None and not Path(cwd).is_dir():
        raise LaunchError(f"cwd {cwd!r} is not a directory on this worker")
    return Launch(argv, cwd, dict(spec.get("env", {})), stdout=spec.get("stdout", "log"))
