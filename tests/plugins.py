"""A job-type plugin installed for a test: a dist-info with entry points on sys.path."""

from __future__ import annotations

from pathlib import Path

from cronwheel.jobtypes.registry import ENTRY_POINT_GROUP

ECHO = '''\
name = "echo"


def parse(spec, prefix):
    from cronwheel.domain.errors import InvalidField

    if not isinstance(spec.get("text"), str):
        raise InvalidField("text must be a string", prefix + ".text")
    return {"text": spec["text"]}


def launch(spec, ctx):
    from cronwheel.jobtypes import Launch

    return Launch(["echo", spec["text"]])
'''


def install_plugin(root: Path, entry_points: str = "echo = echo_plugin\n") -> None:
    """Make `root` (to be put on sys.path) hold an installed distribution whose entry points
    in the job-type group are `entry_points`, and the module `echo_plugin`: a job type."""
    (root / "echo_plugin.py").write_text(ECHO)
    info = root / "echo_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}")
