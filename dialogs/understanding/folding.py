"""What typed text is folded to before it is compared with the intent catalogue.

Customers type full-width letters, capitals, Simplified characters, variant and mistyped forms
of 憑證, emoji and punctuation. All of that says nothing about what they want, so it is folded
away first, the same way for the catalogue's phrasings and for what is typed: NFKC (full-width
to half-width), case, Simplified to Taiwan Traditional with OpenCC's phrase table (凭证 → 憑證,
软件 → 軟體), the catalogue's own variant table (憑証 → 憑證, 註消 → 註銷), and everything that
is not a letter or a digit turned into a space.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import cache

import opencc

_NOT_WORD = re.compile(r"[\W_]+")
_LATIN_WORD = re.compile(r"[a-z]+")


@cache
def _simplified_to_traditional() -> opencc.OpenCC:
    """OpenCC's Simplified → Taiwan Traditional with Taiwanese phrases; loaded once (~60 ms)."""
    return opencc.OpenCC("s2twp")


def fold(text: str, variants: Mapping[str, str] = {}) -> str:
    """The text as the matcher compares it: one form for every way of typing the same words."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if any(ord(char) > 0x2E7F for char in folded):  # CJK present: Simplified → Traditional
        folded = _simplified_to_traditional().convert(folded)
    for variant, standard in variants.items():
        if variant in folded:
            folded = folded.replace(variant, standard)
    return " ".join(_NOT_WORD.sub(" ", folded).split())


def latin_words(folded: str) -> list[str]:
    """The runs of Latin letters in folded text ("我要renew" → ["renew"])."""
    return _LATIN_WORD.findall(folded)
