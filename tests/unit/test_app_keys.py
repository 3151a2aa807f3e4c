"""Sentinel's appToken, checked purely: 10-digit seconds + MD5(appKey + seconds), ±180 s."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.app_keys import (
    WINDOW_S,
    TokenVerdict,
    app_token,
    check_app_key,
    check_app_token,
    new_app_key,
)
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.time import US_PER_S

KEY = "k3y-of-the-etl-team-0123456789"
NOW_S = 1_800_000_000
NOW = NOW_S * US_PER_S + 999_999  # late in its second: the window is in whole seconds


def test_the_token_is_the_seconds_then_the_md5_of_key_and_seconds() -> None:
    token = app_token(KEY, NOW_S)
    assert token == f"{NOW_S}" + hashlib.md5(f"{KEY}{NOW_S}".encode()).hexdigest()
    assert len(token) == 42 and token[10:].islower()
    assert check_app_token(token, KEY, NOW) is TokenVerdict.OK


@pytest.mark.parametrize(("offset", "verdict"), [
    (0, TokenVerdict.OK), (WINDOW_S, TokenVerdict.OK), (-WINDOW_S, TokenVerdict.OK),
    (WINDOW_S + 1, TokenVerdict.STALE), (-WINDOW_S - 1, TokenVerdict.STALE),
    (86_400, TokenVerdict.STALE),
])
def test_the_window_is_180_seconds_either_side_edges_included(
    offset: int, verdict: TokenVerdict
) -> None:
    assert check_app_token(app_token(KEY, NOW_S + offset), KEY, NOW) is verdict


def test_a_stale_token_is_refused_even_with_the_right_digest() -> None:
    old = app_token(KEY, NOW_S - 3600)
    assert check_app_token(old, KEY, NOW) is TokenVerdict.STALE


def test_a_digest_of_another_key_or_another_time_is_forged() -> None:
    assert check_app_token(app_token("another-key-0123456", NOW_S), KEY, NOW) \
        is TokenVerdict.FORGED
    moved = f"{NOW_S + 1}" + app_token(KEY, NOW_S)[10:]  # the digest of another second
    assert check_app_token(moved, KEY, NOW) is TokenVerdict.FORGED


@pytest.mark.parametrize("token", [
    "", "1800000000", app_token(KEY, NOW_S).upper(), app_token(KEY, NOW_S) + "0",
    " " + app_token(KEY, NOW_S), "abcdefghij" + "0" * 32,
    "１８００００００００" + "0" * 32,  # full-width digits are not digits here
])
def test_malformed_tokens_are_refused(token: str) -> None:
    assert check_app_token(token, KEY, NOW) is TokenVerdict.MALFORMED


@given(st.text(max_size=60))
def test_any_text_is_judged_without_raising(token: str) -> None:
    assert check_app_token(token, KEY, NOW) in TokenVerdict


def test_new_keys_are_random_hex_and_chosen_keys_are_checked() -> None:
    assert new_app_key() != new_app_key() and len(new_app_key()) == 32
    assert check_app_key(KEY) == KEY
    for bad in ("short", "has a space in it!!", "x" * 129, "tab\there-0123456789"):
        with pytest.raises(InvalidField) as refused:
            check_app_key(bad)
        assert refused.value.field == "app_key"
