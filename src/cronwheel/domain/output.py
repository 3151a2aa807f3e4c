"""Byte pages of UTF-8 output."""

from __future__ import annotations


def cut_utf8(data: bytes) -> int:
    """Where to end a page so it holds no partial character: before a trailing multi-byte
    sequence that is not complete (the next page starts with it)."""
    end = len(data)
    for back in range(1, min(4, end) + 1):
        byte = data[end - back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): how long should its sequence be?
            need = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 \
                else 4 if byte >> 3 == 0b11110 else 1
            return end if back >= need else end - back
    return end  # not UTF-8 at all: keep the bytes as they are
