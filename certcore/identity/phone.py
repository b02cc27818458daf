"""Taiwanese mobile numbers, the only numbers one-time codes are sent to."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

_MOBILE: Final = re.compile(r"09[0-9]{8}")
_PUNCTUATION: Final = str.maketrans("", "", " -().")
_COUNTRY_PREFIXES: Final = ("+886", "00886", "886")


def taiwan_mobile(text: str) -> str | None:
    """`+886 936-123-054`, `886936123054`, `０９３６１２３０５４` → `0936123054`; None if not one.

    "+886 0936…" is a common way of writing it too: the trunk 0 is dropped if it was kept.
    """
    digits = unicodedata.normalize("NFKC", text).strip().translate(_PUNCTUATION)
    for prefix in _COUNTRY_PREFIXES:
        if digits.startswith(prefix):
            digits = "0" + digits.removeprefix(prefix).removeprefix("0")
            break
    return digits if _MOBILE.fullmatch(digits) else None
