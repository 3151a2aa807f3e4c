"""Job list positions: opaque cursors, and the namespace spans a caller's claims read."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.access import claim_matches
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.paging import (
    MAX_CURSOR,
    decode_cursor,
    encode_cursor,
    namespace_spans,
    prefix_end,
)

NAMES = st.text(st.characters(codec="utf-8", exclude_characters="*\0"), min_size=1,
                max_size=6)
CLAIMS = st.one_of(NAMES, NAMES.map(lambda n: n + "*"), st.just("*"))


@given(NAMES, NAMES)
def test_a_cursor_decodes_to_the_position_it_was_made_of(namespace: str, key: str) -> None:
    cursor = encode_cursor((namespace, key))
    assert decode_cursor(cursor) == (namespace, key)
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor


@pytest.mark.parametrize("cursor", [
    "garbage!", "bm90IGpzb24", encode_cursor(("a", "b"))[:-3],
    "WyJhIl0",  # ["a"]
    "WyJhIiwxXQ",  # ["a",1]
    "WyIiLCJiIl0",  # ["","b"]
    "eyJhIjoxfQ",  # {"a":1}
    "A" * (MAX_CURSOR + 1),
])
def test_a_tampered_cursor_is_refused_naming_the_field(cursor: str) -> None:
    with pytest.raises(InvalidField) as refused:
        decode_cursor(cursor)
    assert refused.value.field == "cursor"


def test_prefix_end_is_the_least_string_above_the_prefix() -> None:
    assert prefix_end("team-") == "team."
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\U0010ffff") is None


def test_claims_merge_into_ordered_disjoint_spans() -> None:
    spans = namespace_spans(None, ("b*", "a", "ba", "c", "bz*"))
    assert [(s.low, s.high, s.exact) for s in spans] == [
        ("a", "a\0", True), ("b", "c", False), ("c", "c\0", True)]
    assert namespace_spans(None, ("x", "*")) == namespace_spans(None, None)
    assert namespace_spans("b", ("a*",)) == []
    assert [s.exact for s in namespace_spans("ab", ("a*",))] == [True]


@given(st.lists(CLAIMS, max_size=5), st.lists(NAMES, max_size=20))
def test_spans_hold_exactly_the_names_the_claims_match(
    claims: list[str], names: list[str]
) -> None:
    spans = namespace_spans(None, tuple(claims))
    assert all(a.high is not None and a.high <= b.low for a, b in itertools.pairwise(spans))
    for name in names:
        inside = any(s.low <= name and (s.high is None or name < s.high) for s in spans)
        assert inside == any(claim_matches(c, name) for c in claims)
