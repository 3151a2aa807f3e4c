"""Where the first admin token is written for the CLI on the same machine, and how.

The server writes it once, at first start, to `<config>/cronwheel/tokens/<host>_<port>` where
`<config>` is `$XDG_CONFIG_HOME` or `~/.config`; the CLI derives the same path from the server
address it talks to. The directory is 0700 and the file 0600: only the server's user (and
root) can read the token.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

WILDCARDS = {"", "0.0.0.0", "::", "[::]"}
LOOPBACK_NAMES = {"localhost": "127.0.0.1", "[::1]": "::1"}


def config_home() -> Path:
    configured = os.environ.get("XDG_CONFIG_HOME")
    return Path(configured) if configured else Path.home() / ".config"


def token_path(host: str, port: int, override: str | None = None) -> Path:
    """The token file for a server at host:port (a wildcard bind is reached on loopback)."""
    if override:
        return Path(override).expanduser()
    return config_home() / "cronwheel" / "tokens" / file_name(host, port)


def file_name(host: str, port: int) -> str:
    """`<host>_<port>`, a wildcard or `localhost` named as the loopback address it is reached
    on; the client (`cronwheel.client.credentials`) finds the file by this same name."""
    host = "127.0.0.1" if host in WILDCARDS else LOOPBACK_NAMES.get(host, host)
    return f"{host.strip('[]')}_{port}"


def stage(path: Path, token: str) -> Path:
    """Write the token beside `path` under a temporary name, readable by this user only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    staged = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, f"{token}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return staged


def publish(staged: Path, path: Path) -> None:
    os.replace(staged, path)


def discard(staged: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()


def read_token(path: Path) -> str | None:
    """The token in the file, or None when there is no readable file."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text or None
