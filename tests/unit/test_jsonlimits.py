"""Integers the store can hold: 64 bits, found wherever they sit in a JSON value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.jsonlimits import HIGHEST, LOWEST, check_json_ints, wide_int_path

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(LOWEST, HIGHEST) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_values_within_64_bits_pass(value: object) -> None:
    assert wide_int_path(value) is None
    assert check_json_ints(value) is value


@pytest.mark.parametrize(("value", "path"), [
    (HIGHEST + 1, ""),
    (LOWEST - 1, ""),
    ({"a": {"b": [1, 2, 2**70]}}, "a.b[2]"),
    ([{"x": 1}, {"y": -(2**64)}], "[1].y"),
])
def test_the_first_wide_integer_is_named(value: object, path: str) -> None:
    assert wide_int_path(value) == path
    with pytest.raises(ValueError, match="64 bits"):
        check_json_ints(value)
