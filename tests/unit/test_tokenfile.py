"""Where the first admin token is written, and read back by the CLI."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cronwheel import tokenfile


def test_the_path_comes_from_the_server_address(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    tokens = tmp_path / "cronwheel" / "tokens"
    assert tokenfile.token_path("127.0.0.1", 1989) == tokens / "127.0.0.1_1989"
    # a wildcard bind and the loopback names are all reached as the CLI's default address
    for host in ("0.0.0.0", "localhost", "::", ""):
        assert tokenfile.token_path(host, 1989) == tokens / "127.0.0.1_1989"
    assert tokenfile.token_path("[::1]", 7) == tokens / "::1_7"
    assert tokenfile.token_path("h", 1, override="~/x") == Path.home() / "x"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert tokenfile.token_path("h", 1) == Path.home() / ".config/cronwheel/tokens/h_1"


def test_a_staged_token_is_private_and_published_whole(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "token"
    staged = tokenfile.stage(path, "cw_x")
    assert stat.S_IMODE(staged.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert tokenfile.read_token(path) is None
    tokenfile.publish(staged, path)
    assert tokenfile.read_token(path) == "cw_x" and not staged.exists()
    tokenfile.discard(staged)  # gone already: no error
