"""Masking of personal data wherever a person can see it, and in logs (DESIGN §3).

Every function here is total: on input it does not recognise it returns
:data:`MASKED` rather than raising or echoing the value, because a mask that leaks
on odd input is worse than one that hides too much.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Final

from certcore.identity import normalise_id, taiwan_mobile

#: What any unrecognised value is masked to.
MASKED: Final = "XXX"

# What changes how the text around it reads without showing itself: controls (C0 and C1, so
# ANSI escapes too), format characters (the bidirectional embeddings, overrides and isolates
# U+202A-U+202E and U+2066-U+2069, zero-width spaces and joiners, the BOM, tag characters),
# lone surrogates and the line and paragraph separators U+2028 and U+2029; and the few
# invisible letters and marks Unicode files elsewhere (the combining grapheme joiner, the
# Hangul fillers, the Khmer inherent vowels).
_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_INVISIBLE: Final = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")

_ID_SHAPE: Final = re.compile(r"[A-Z0-9]{8,}")
_ACCOUNT: Final = re.compile(r"([0-9A-Z]{4})-?([0-9]{5,10})")

# ID-looking tokens in free text: national/resident (letter + [1289A-D] + 8 digits) and
# 8-digit UBNs, half- or full-width, either case, not glued to other letters or digits.
# Checksums are ignored on purpose: a mistyped ID is still somebody's personal data.
_ALNUM: Final = "0-9A-Za-z０-９Ａ-Ｚａ-ｚ"
_DIGIT: Final = "[0-9０-９]"
_LETTER: Final = "[A-Za-zＡ-Ｚａ-ｚ]"
_SECOND: Final = "[1289A-Da-d１２８９Ａ-Ｄａ-ｄ]"
_ID_IN_TEXT: Final = re.compile(
    rf"(?<![{_ALNUM}])(?:{_LETTER}{_SECOND}{_DIGIT}{{8}}|{_DIGIT}{{8}})(?![{_ALNUM}])"
)


def is_hidden(char: str) -> bool:
    """A control, bidirectional, zero-width or other invisible character (see above)."""
    return char in _INVISIBLE or unicodedata.category(char) in _HIDDEN_CATEGORIES


def has_hidden(text: str) -> bool:
    """Whether `text` holds a character that could make it read other than it is, such as
    a right-to-left override turning ``example.com`` into ``moc.elpmaxe`` on screen."""
    return any(is_hidden(char) for char in text)


def escape_hidden(text: str) -> str:
    """`text` with each hidden character spelled as its JSON escape (``\\u202e``), so a
    terminal shows what is there instead of obeying it. Applied to compact JSON (or to each
    line of indented JSON) it keeps the document valid and its values unchanged, because
    outside strings JSON holds no hidden character but the whitespace between tokens."""
    if not has_hidden(text):
        return text
    return "".join(json.dumps(char)[1:-1] if is_hidden(char) else char for char in text)


def mask_id(value: str) -> str:
    """``A120786753`` → ``A120XXX53``: first 4, XXX, last 2; UBNs alike (``0459XXX52``).

    Shape-based, not checksum-based, so that invalid input in an audit record of a
    failed identity check is masked the same way.
    """
    canonical = normalise_id(value)
    if not _ID_SHAPE.fullmatch(canonical):
        return MASKED
    return f"{canonical[:4]}{MASKED}{canonical[-2:]}"


def mask_mobile(value: str) -> str:
    """``0936123054`` → ``0936XXX054``; ``+886 936-123-054`` is read as the same number.

    Only Taiwanese mobile numbers are recognised, as those are the only ones OTP
    messages go to; anything else masks to :data:`MASKED`.
    """
    digits = taiwan_mobile(value)
    if digits is None:
        return MASKED
    return f"{digits[:4]}{MASKED}{digits[-3:]}"


def mask_email(value: str) -> str:
    """``abcdef@example.com`` → ``ab***@example.com``; one character kept if the local part
    has only one or two, so that a two-letter address is not shown whole."""
    address = unicodedata.normalize("NFKC", value).strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(ch.isspace() for ch in address):
        return MASKED
    if has_hidden(address):  # a masked address must not be one an override reverses
        return MASKED
    keep = 1 if len(local) <= 2 else 2
    return f"{local[:keep]}***@{domain}"


def mask_account(value: str) -> str:
    """``1020-0324338`` → ``1020-XXX4338``: branch, XXX, last 4 of the account number.

    Without a dash the first four characters are taken as the branch code.
    """
    canonical = normalise_id(value)
    match = _ACCOUNT.fullmatch(canonical)
    if match is None:
        return MASKED
    branch, number = match.groups()
    return f"{branch}-{MASKED}{number[-4:]}"


def mask_text_ids(text: str) -> str:
    """Mask every ID-looking token in free text such as a log line; the rest is kept."""
    return _ID_IN_TEXT.sub(lambda match: mask_id(match.group()), text)


_LONG_NUMBER: Final = re.compile(r"\d{6,}")
"""Six digits or more, any script's digits: a one-time code, an account or card number."""


def mask_transcript_text(text: str) -> str:
    """Free text as a support agent may read it: ID-looking tokens masked, and every run of six
    or more digits (a one-time code typed where none was asked, an account number) shown as
    dots, so what a customer typed never reaches an agent's screen in clear."""
    return _LONG_NUMBER.sub(lambda m: "•" * len(m.group()), mask_text_ids(text))
