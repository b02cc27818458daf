"""Reading what customers type."""

from __future__ import annotations

import unicodedata


def normalise_words(text: str) -> str:
    """Fold typed text for matching: width (全形), case, spaces and trailing punctuation."""
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    return "".join(folded.split()).rstrip("!！?？。.")
