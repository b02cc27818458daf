"""Reading what customers type.

Numbers are read only through `small_number`: a line of 5,000 digits (or full-width ones, or a
button's sequence number forged that long) would otherwise reach `int()`, which refuses more
than 4,300 digits with a ValueError — a traceback instead of an answer. Its length is checked
first, and only ASCII digits are accepted, since `str.isdigit` also takes characters `int()`
refuses (᧚, ①).
"""

from __future__ import annotations

import unicodedata

_ASCII_DIGITS = frozenset("0123456789")


def normalise_words(text: str) -> str:
    """Fold typed text for matching: width (全形), case, spaces and trailing punctuation."""
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    return "".join(folded.split()).rstrip("!！?？。.")


def small_number(text: str, *, digits: int) -> int | None:
    """The number written as 1 to `digits` ASCII digits, or None for anything else (longer,
    empty, signed, another script's digits). Callers fold full-width digits first."""
    if not 0 < len(text) <= digits or not _ASCII_DIGITS.issuperset(text):
        return None
    return int(text)
