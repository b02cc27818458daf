"""Taiwanese identity numbers: national ID, resident certificate numbers and UBN.

Validators take the exact string they are given: user input goes through
:func:`normalise_id` first, so that what is stored, compared and put into a
certificate's CN is always the canonical form and never a look-alike of it.
Results are enums; wording is the caller's business (locales/).
"""

from __future__ import annotations

import datetime
import enum
import re
import unicodedata
from typing import Final


class IdKind(enum.Enum):
    """Which kind of identity number a value is (values are stable reason codes)."""

    NATIONAL_ID = "national_id"  # 身分證字號
    RESIDENT_NEW = "resident_new"  # 新式居留證號 (2021 on)
    RESIDENT_OLD = "resident_old"  # 舊式居留證號
    UBN = "ubn"  # 統一編號


class IdProblem(enum.Enum):
    """Why a value is not a valid identity number, for operator tools' hints."""

    WRONG_LENGTH = "wrong_length"
    BAD_FORMAT = "bad_format"
    BAD_CHECKSUM = "bad_checksum"


#: Old-form resident numbers stay valid until this day (inclusive). Kept as data, not
#: applied by the validators, because "today" belongs to the caller.
OLD_RESIDENT_LAST_VALID_DAY: Final = datetime.date(2030, 12, 31)

# The letter codes are not alphabetical (I, O, W, Z were added later), hence a table.
_LETTER_CODES: Final[dict[str, int]] = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17, "I": 34,
    "J": 18, "K": 19, "L": 20, "M": 21, "N": 22, "O": 35, "P": 23, "Q": 24, "R": 25,
    "S": 26, "T": 27, "U": 28, "V": 29, "W": 32, "X": 30, "Y": 31, "Z": 33,
}  # fmt: skip
_PERSONAL_WEIGHTS: Final = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)
_UBN_WEIGHTS: Final = (1, 2, 1, 2, 1, 2, 4, 1)
_ID_LENGTHS: Final = frozenset({8, 10})

# ASCII-only classes on purpose: ``\d`` would also accept other scripts' digits.
_FORMATS: Final = (
    (IdKind.NATIONAL_ID, re.compile(r"[A-Z][12][0-9]{8}")),
    (IdKind.RESIDENT_NEW, re.compile(r"[A-Z][89][0-9]{8}")),
    (IdKind.RESIDENT_OLD, re.compile(r"[A-Z][A-D][0-9]{8}")),
    (IdKind.UBN, re.compile(r"[0-9]{8}")),
)
# Only ASCII letters are upper-cased: str.upper() maps e.g. "ı" (dotless i) to "I".
_ASCII_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def normalise_id(text: str) -> str:
    """Fold what customers actually type (full-width, spaces, lower case) to canonical form.

    Invisible format characters (zero-width space, BOM) that ride along with copy and
    paste are dropped too. The result is not validated.
    """
    folded = unicodedata.normalize("NFKC", text)
    visible = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    compact = "".join(visible.split()).translate(_ASCII_UPPER)
    # Again: dropping a space can put a combining mark (from "¯", say) next to a letter.
    return unicodedata.normalize("NFKC", compact)


def _kind_by_format(value: str) -> IdKind | None:
    for kind, pattern in _FORMATS:
        if pattern.fullmatch(value):
            return kind
    return None


def _personal_digits(kind: IdKind, value: str) -> list[int]:
    """The 11 digits the personal-ID checksum runs over (letter expanded to two digits)."""
    code = _LETTER_CODES[value[0]]
    if kind is IdKind.RESIDENT_OLD:
        # Old resident numbers: the second letter contributes its code's units digit.
        head = [code // 10, code % 10, _LETTER_CODES[value[1]] % 10]
        return head + [int(ch) for ch in value[2:]]
    return [code // 10, code % 10] + [int(ch) for ch in value[1:]]


def _personal_checksum_ok(kind: IdKind, value: str) -> bool:
    digits = _personal_digits(kind, value)
    return sum(w * d for w, d in zip(_PERSONAL_WEIGHTS, digits, strict=True)) % 10 == 0


def _ubn_checksum_ok(value: str) -> bool:
    """UBN rule since 2023 (divisible by 5), which also accepts every older number."""
    products = (w * int(ch) for w, ch in zip(_UBN_WEIGHTS, value, strict=True))
    # One level of digit sum: 7 x 4 = 28 contributes 10, which the 7th-digit rule relies on.
    total = sum(p // 10 + p % 10 for p in products)
    return total % 5 == 0 or (value[6] == "7" and (total + 1) % 5 == 0)


def _checksum_ok(kind: IdKind, value: str) -> bool:
    if kind is IdKind.UBN:
        return _ubn_checksum_ok(value)
    return _personal_checksum_ok(kind, value)


def classify_id(value: str) -> IdKind | None:
    """The kind of ``value`` if it is well-formed and its checksum holds, else None."""
    kind = _kind_by_format(value)
    if kind is None or not _checksum_ok(kind, value):
        return None
    return kind


def is_valid_id(value: str) -> bool:
    """Whether ``value`` is exactly a valid identity number of any kind."""
    return classify_id(value) is not None


def id_problem(value: str) -> IdProblem | None:
    """What is wrong with ``value`` (None when valid), so operator tools can be precise."""
    kind = _kind_by_format(value)
    if kind is None:
        return IdProblem.WRONG_LENGTH if len(value) not in _ID_LENGTHS else IdProblem.BAD_FORMAT
    return None if _checksum_ok(kind, value) else IdProblem.BAD_CHECKSUM


def personal_id_check_digit(prefix9: str) -> str:
    """The digit completing a national or resident ID, for generating demo and test data.

    Raises ValueError if ``prefix9`` is not the first nine characters of such an ID.
    (UBNs have no single check digit: some prefixes have none, some two.)
    """
    kind = _kind_by_format(prefix9 + "0") if len(prefix9) == 9 else None
    if kind is None or kind is IdKind.UBN:
        raise ValueError("not a national or resident ID prefix")
    partial = _personal_digits(kind, prefix9 + "0")
    total = sum(w * d for w, d in zip(_PERSONAL_WEIGHTS, partial, strict=True))
    # The check digit's weight is 1, so it must bring the sum to a multiple of 10.
    return str(-total % 10)
