"""Pages of UTF-8 output never split a character (cronwheel.domain.output)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.output import cut_utf8


def test_a_trailing_partial_character_is_left_for_the_next_page() -> None:
    euro = "€".encode()  # 3 bytes
    assert cut_utf8(b"ab" + euro[:1]) == 2
    assert cut_utf8(b"ab" + euro[:2]) == 2
    assert cut_utf8(b"ab" + euro) == 5
    assert cut_utf8(b"plain") == 5
    assert cut_utf8(b"") == 0
    face = "😀".encode()  # 4 bytes
    assert cut_utf8(face[:3]) == 0
    assert cut_utf8(face) == 4


@given(st.text(min_size=1, max_size=200), st.integers(min_value=1, max_value=64))
def test_paging_any_text_at_any_size_gives_back_the_text(text: str, size: int) -> None:
    data = text.encode()
    pages, offset = [], 0
    while offset < len(data):
        piece = data[offset: offset + max(size, 4)]
        if offset + len(piece) < len(data):
            piece = piece[: cut_utf8(piece)]
        pages.append(piece.decode())  # every page decodes on its own
        offset += len(piece)
    assert "".join(pages) == text
