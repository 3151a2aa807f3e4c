"""Sentinel's app credential, checked purely: `appToken` = 10-digit unix seconds followed by
the lowercase hex MD5 of `appKey + those digits`.

The appKey is a shared secret the client holds (MD5 needs it in clear, so the server keeps
it encrypted, never hashed: see cronwheel.secretbox). A token is good for `WINDOW_S` seconds
either side of the server's clock, both edges included: a client whose clock is off by more
is refused as stale, as Jarvis refuses it. The digest is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from enum import StrEnum

from cronwheel.domain.errors import DomainError, InvalidField
from cronwheel.domain.time import US_PER_S, Micros

WINDOW_S = 180
_TOKEN = re.compile(r"^([0-9]{10})([0-9a-f]{32})$")
MIN_KEY, MAX_KEY = 16, 128
_KEY = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII without spaces: easy to paste


class TokenVerdict(StrEnum):
    OK = "ok"
    MALFORMED = "malformed"  # not 10 digits + 32 lowercase hex characters
    STALE = "stale"  # its time is more than WINDOW_S from the server's clock
    FORGED = "forged"  # the digest is not MD5(appKey + seconds)


def app_token(app_key: str, seconds: int) -> str:
    """The token a client sends at unix time `seconds` (what Jarvis clients compute)."""
    stamp = f"{seconds:010d}"
    return stamp + hashlib.md5((app_key + stamp).encode()).hexdigest()


def check_app_token(token: str, app_key: str, now: Micros) -> TokenVerdict:
    """Whether `token` was made from `app_key` within WINDOW_S seconds of `now`."""
    found = _TOKEN.match(token)
    if found is None:
        return TokenVerdict.MALFORMED
    stamp, digest = found.group(1), found.group(2)
    if abs(int(stamp) - now // US_PER_S) > WINDOW_S:
        return TokenVerdict.STALE
    expected = hashlib.md5((app_key + stamp).encode()).hexdigest()
    if not hmac.compare_digest(expected.encode(), digest.encode()):
        return TokenVerdict.FORGED
    return TokenVerdict.OK


def new_app_key() -> str:
    """A fresh appKey: 128 random bits as 32 hex characters."""
    return secrets.token_hex(16)


def check_app_key(key: str, field: str = "app_key") -> str:
    """An appKey an admin chose: 16 to 128 printable ASCII characters, no spaces."""
    if not (MIN_KEY <= len(key) <= MAX_KEY and _KEY.match(key)):
        raise InvalidField(f"an appKey is {MIN_KEY} to {MAX_KEY} printable ASCII characters "
                           "without spaces", field)
    return key


class CredentialRefused(DomainError):
    """A dialect credential that does not hold: unknown app, no key, stale or forged token.
    The message says which (the client's own clock may be wrong); never the key."""

    code = "unauthenticated"
