"""Where a token comes from, in order: given (`--token`), CRONWHEEL_TOKEN, then the file a
server wrote for its own address: `$XDG_CONFIG_HOME` (or ~/.config) +
`/cronwheel/tokens/<host>_<port>`. The CLI and the Python client both use this one function."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from cronwheel import tokenfile

TOKEN_ENV = "CRONWHEEL_TOKEN"
FILE_ENV = "CRONWHEEL_ADMIN_TOKEN_FILE"  # where the server was told to write it
_DEFAULT_PORTS = {"http": 80, "https": 443}


def tokens_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "cronwheel" / "tokens"


def token_file(server: str, environ: dict[str, str] | None = None) -> Path | None:
    """The file a server at `server` (a base URL) writes its first token to: the path the
    server itself uses (`tokenfile.file_name`), or CRONWHEEL_ADMIN_TOKEN_FILE when set."""
    try:
        parts = urlsplit(server)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    env = os.environ if environ is None else environ
    if env.get(FILE_ENV):
        return Path(env[FILE_ENV]).expanduser()
    return tokens_dir(environ) / tokenfile.file_name(parts.hostname, port)


def find_token(
    server: str, token: str | None = None, environ: dict[str, str] | None = None
) -> str | None:
    """The token to send to `server`, or None when there is none anywhere."""
    if token:
        return token.strip()
    env = os.environ if environ is None else environ
    if env.get(TOKEN_ENV, "").strip():
        return env[TOKEN_ENV].strip()
    path = token_file(server, environ)
    if path is None:
        return None
    try:
        found = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return found or None
