"""Time-ordered ids in the UUID version 7 layout (cronwheel.ids)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from cronwheel import ids
from cronwheel.ids import new_id

# 0x0123456789AB milliseconds after the epoch (a date in 2009), in nanoseconds.
FIXED_MS = 0x0123456789AB
FIXED_NS = FIXED_MS * 1_000_000


@pytest.fixture(autouse=True)
def _fresh_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process would: no id made yet."""
    monkeypatch.setattr(ids, "_last_ms", -1)


def _fixed_bytes(value: bytes) -> Callable[[int], bytes]:
    def urandom(n: int) -> bytes:
        assert n == len(value)
        return value

    return urandom


def _set_clock(monkeypatch: pytest.MonkeyPatch, time_ns: Callable[[], int]) -> None:
    # Replace the module's view of `time` only, so nothing else sees the fake clock.
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=time_ns))


def _set_random(monkeypatch: pytest.MonkeyPatch, urandom: Callable[[int], bytes]) -> None:
    monkeypatch.setattr(ids, "os", SimpleNamespace(urandom=urandom))


def _clock(ms_values: list[int]) -> Callable[[], int]:
    values: Iterator[int] = iter(ms_values)

    def time_ns() -> int:
        return next(values) * 1_000_000 + 999_999  # the sub-millisecond part must not leak

    return time_ns


class TestLayout:
    def test_is_a_uuid_version_7_with_the_rfc_variant(self) -> None:
        value = uuid.UUID(new_id())
        assert value.version == 7
        assert value.variant == uuid.RFC_4122

    def test_canonical_lowercase_text_form(self) -> None:
        text = new_id()
        assert len(text) == 36
        assert str(uuid.UUID(text)) == text
        assert [len(group) for group in text.split("-")] == [8, 4, 4, 4, 12]

    def test_all_random_bits_set(self, monkeypatch: pytest.MonkeyPatch) -> None:
        _set_clock(monkeypatch, lambda: FIXED_NS)
        _set_random(monkeypatch, _fixed_bytes(b"\xff" * 10))
        # 48-bit ms | version 7 + 12 random bits | variant 0b10 + 62 random bits
        assert new_id() == "01234567-89ab-7fff-bfff-ffffffffffff"

    def test_no_random_bits_set(self, monkeypatch: pytest.MonkeyPatch) -> None:
        _set_clock(monkeypatch, lambda: FIXED_NS)
        _set_random(monkeypatch, _fixed_bytes(b"\x00" * 10))
        assert new_id() == "01234567-89ab-7000-8000-000000000000"

    def test_timestamp_is_the_current_unix_millisecond(self) -> None:
        before = time.time_ns() // 1_000_000
        value = uuid.UUID(new_id())
        after = time.time_ns() // 1_000_000
        assert before <= value.int >> 80 <= after


class TestUniqueness:
    def test_unique_over_many_calls(self) -> None:
        made = [new_id() for _ in range(20_000)]
        assert len(set(made)) == len(made)

    def test_unique_within_one_millisecond(self, monkeypatch: pytest.MonkeyPatch) -> None:
        _set_clock(monkeypatch, lambda: FIXED_NS)
        made = [new_id() for _ in range(5_000)]
        assert len(set(made)) == len(made)
        assert {text[:13] for text in made} == {"01234567-89ab"}


class TestOrdering:
    def test_later_milliseconds_sort_after_earlier_ones(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Includes a carry across the first hyphen and a big jump, so string order must
        # follow numeric order of the timestamp everywhere.
        ms_values = [1, 2, 0xFFFF, 0x10000, 0xFFFFFFFF, 0x100000000, FIXED_MS, 2**48 - 1]
        _set_clock(monkeypatch, _clock(ms_values))
        made = [new_id() for _ in ms_values]
        assert sorted(made) == made
        assert [uuid.UUID(text).int >> 80 for text in made] == ms_values

    def test_random_bits_never_outrank_the_timestamp(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Earliest millisecond with every random bit set vs next millisecond with none.
        _set_clock(monkeypatch, lambda: FIXED_NS)
        _set_random(monkeypatch, _fixed_bytes(b"\xff" * 10))
        earlier = new_id()
        _set_clock(monkeypatch, lambda: FIXED_NS + 1_000_000)
        _set_random(monkeypatch, _fixed_bytes(b"\x00" * 10))
        later = new_id()
        assert earlier < later

    def test_real_clock_ids_sort_in_creation_order_across_milliseconds(self) -> None:
        made: list[str] = []
        for _ in range(5):
            made.append(new_id())
            start = time.time_ns() // 1_000_000
            while time.time_ns() // 1_000_000 == start:  # wait for the next millisecond
                pass
        assert sorted(made) == made


def test_ids_made_in_one_millisecond_are_still_ordered() -> None:
    """Newest-first listings order by id: ids made back to back must not swap."""
    made = [new_id() for _ in range(20_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(uuid.UUID(i).version == 7 for i in made[:100])
