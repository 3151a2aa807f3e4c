"""The server key, and secrets sealed under it with AES-256-GCM (Sentinel appKeys).

A secret a client needs in clear to compute its credential (an appKey: MD5 needs the key
itself) cannot be stored hashed; it is stored sealed. The key comes from the setting
`CRONWHEEL_SECRET_KEY` (base64 of 32 bytes) or, when unset, from a key file made at first start
(mode 0600, beside the admin token file). Every node of a cluster must hold the same key:
set the setting on each, or copy the file.

A sealed value is `<key id>:<base64 of nonce + ciphertext>`, the key id being the first 8
hex characters of SHA-256 of the key: a node with another key says so instead of failing
obscurely, and older keys (`CRONWHEEL_PREVIOUS_SECRET_KEYS`) still open what they sealed
during a rotation. The app's name and the secret's kind are the associated data, so a
sealed value copied to another app's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12


class SecretKeyError(Exception):
    """The server key is missing, malformed, or not the one a secret was sealed with."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def parse_key(text: str, name: str = "CRONWHEEL_SECRET_KEY") -> bytes:
    """A key as the setting holds it: base64 (standard or URL-safe) of 32 bytes."""
    raw = text.strip()
    try:
        key = base64.b64decode(raw.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise SecretKeyError(f"{name} is not base64") from None
    if len(key) != KEY_BYTES:
        raise SecretKeyError(f"{name} must be {KEY_BYTES} bytes once base64-decoded, "
                             f"got {len(key)}")
    return key


def new_key_text() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def key_path(admin_token_path: Path) -> Path:
    """The key file beside the admin token file (same 0700 directory)."""
    return admin_token_path.with_name(f"{admin_token_path.name}.secret-key")


def load_or_create(path: Path) -> bytes:
    """The key in `path`, made now (0600, written once, atomically) if there is none. Two
    processes starting together agree: the file is created exclusively, the loser reads it."""
    try:
        return parse_key(path.read_text(), str(path))
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, f"{new_key_text()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(staged, path)  # fails if another process made it first: theirs wins
    except FileExistsError:
        pass
    finally:
        staged.unlink(missing_ok=True)
    return parse_key(path.read_text(), str(path))


class SecretBox:
    """Seals with the current key; opens with it or any previous key."""

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        if len(key) != KEY_BYTES or any(len(k) != KEY_BYTES for k in previous):
            raise SecretKeyError(f"a server key is {KEY_BYTES} bytes")
        self.key_id = key_id(key)
        self._current = AESGCM(key)
        self._keys = {key_id(k): AESGCM(k) for k in (*previous, key)}

    def seal(self, secret: str, context: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._current.encrypt(nonce, secret.encode(), context.encode())
        return f"{self.key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, context: str) -> str:
        kid, _, body = sealed.partition(":")
        aead = self._keys.get(kid)
        if aead is None:
            raise SecretKeyError(f"the secret was sealed under server key {kid}, which this "
                                 f"node does not hold (its key is {self.key_id}): every node "
                                 "needs the same CRONWHEEL_SECRET_KEY")
        try:
            data = base64.b64decode(body, validate=True)
            return aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:],
                                context.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag):
            raise SecretKeyError("a sealed secret does not open: damaged, or moved to "
                                 "another row") from None

    def current(self, sealed: str) -> bool:
        """Whether `sealed` is under the current key (a rotation re-seals the others)."""
        return sealed.partition(":")[0] == self.key_id
