"""Understanding what customers type: an intent catalogue the broker edits, and a matcher.

`Understanding.read(text)` says which intent free text most likely means and how sure that is;
the flows decide what to do with it (start a flow, ask 「您是要：」, say it was not understood).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from dialogs.faq import Faq
from dialogs.understanding.catalogue import (
    DEFAULT_INTENTS_FILE,
    OUT_OF_SCOPE,
    Confidence,
    Intent,
    IntentCatalogue,
    IntentKind,
)
from dialogs.understanding.folding import fold
from dialogs.understanding.matcher import Certainty, Guess, Matcher, Reading


def load_matcher(intents_file: Path | None, faq_file: Path | None) -> Matcher:
    """The fitted matcher for these catalogues, made once per process while the files are
    unchanged (each engine of a test suite, and each channel of a process, shares it)."""
    intents = intents_file or DEFAULT_INTENTS_FILE
    return _matcher(intents, faq_file, _stamp(intents), _stamp(faq_file))


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


@cache
def _matcher(
    intents: Path,
    faq_file: Path | None,
    intents_stamp: tuple[int, int] | None,
    faq_stamp: tuple[int, int] | None,
) -> Matcher:
    return Matcher(IntentCatalogue.load(Faq.load(faq_file), intents))


__all__ = [
    "DEFAULT_INTENTS_FILE",
    "OUT_OF_SCOPE",
    "Certainty",
    "Confidence",
    "Guess",
    "Intent",
    "IntentCatalogue",
    "IntentKind",
    "Matcher",
    "Reading",
    "fold",
    "load_matcher",
]
