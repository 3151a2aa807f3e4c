"""Secrets sealed under the server key: AES-GCM, bound to their row, keys by id."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest

from cronwheel.secretbox import (
    SecretBox,
    SecretKeyError,
    key_id,
    key_path,
    load_or_create,
    new_key_text,
    parse_key,
)

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def test_a_sealed_secret_opens_under_its_key_and_context_only() -> None:
    box = SecretBox(KEY)
    sealed = box.seal("the-app-key", "app a")
    assert "the-app-key" not in sealed and sealed.startswith(f"{key_id(KEY)}:")
    assert box.open(sealed, "app a") == "the-app-key"
    assert box.seal("the-app-key", "app a") != sealed  # a fresh nonce each time
    with pytest.raises(SecretKeyError, match="another row"):
        box.open(sealed, "app b")
    with pytest.raises(SecretKeyError, match="does not hold"):
        SecretBox(OTHER).open(sealed, "app a")
    damaged = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SecretKeyError):
        box.open(damaged, "app a")


def test_a_rotation_opens_old_secrets_and_seals_under_the_new_key() -> None:
    old = SecretBox(KEY).seal("s", "c")
    box = SecretBox(OTHER, previous=[KEY])
    assert box.open(old, "c") == "s" and not box.current(old)
    assert box.current(box.seal("s", "c"))


def test_the_setting_is_base64_of_32_bytes() -> None:
    text = new_key_text()
    assert len(parse_key(text)) == 32
    assert parse_key(base64.urlsafe_b64encode(KEY).decode()) == KEY
    for bad in ("", "not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(SecretKeyError, match="CRONWHEEL_SECRET_KEY"):
            parse_key(bad)


def test_the_key_file_is_made_once_readable_by_its_user_only(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens" / "127.0.0.1_8080"
    path = key_path(token_file)
    assert path.parent == token_file.parent
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(load_or_create(path)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1  # processes starting together agree on one key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create(path) == keys[0]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staged file left
