"""Taiwanese identity numbers (DESIGN §6), as a specification table.

Every vector below was checked against ``_reference_personal_ok``/``_reference_ubn_ok``,
which restate the checksums independently of certcore, and the notable ones by hand
(the sums in the comments).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certcore.identity import (
    OLD_RESIDENT_LAST_VALID_DAY,
    IdKind,
    IdProblem,
    classify_id,
    id_problem,
    is_valid_id,
    normalise_id,
    personal_id_check_digit,
)

# --- an independent restatement of the checksums, used to check the tables --------------

_CODES = dict(zip("ABCDEFGHJKLMNPQRSTUVXYWZIO", range(10, 36), strict=True))
_REST_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 1, 1)


def _reference_personal_ok(value: str) -> bool:
    """Letter code n contributes n//10 + 9*(n%10); then weights 8..1 and 1 for the rest."""
    n = _CODES[value[0]]
    second = _CODES[value[1]] % 10 if value[1].isalpha() else int(value[1])
    rest = [second] + [int(ch) for ch in value[2:]]
    total = n // 10 + 9 * (n % 10) + sum(d * w for d, w in zip(rest, _REST_WEIGHTS, strict=True))
    return total % 10 == 0


def _reference_ubn_ok(value: str) -> bool:
    """Sum of digit sums of the weighted digits; a 7 in 7th place may count as 28 -> 1 or 0."""
    sums = [sum(map(int, str(int(ch) * int(w)))) for ch, w in zip(value, "12121241", strict=True)]
    total = sum(sums)
    candidates = {total, total - 9} if value[6] == "7" else {total}
    return any(c % 5 == 0 for c in candidates)


def _mod10_ubn_ok(value: str) -> bool:
    """The pre-2023 rule that old libraries still apply: divisible by 10."""
    sums = [sum(map(int, str(int(ch) * int(w)))) for ch, w in zip(value, "12121241", strict=True)]
    total = sum(sums)
    return total % 10 == 0 or (value[6] == "7" and (total + 1) % 10 == 0)


def test_reference_letter_codes_match_design() -> None:
    # DESIGN §6 lists the map explicitly; the reference derives it from the letter order.
    design = "A10 B11 C12 D13 E14 F15 G16 H17 I34 J18 K19 L20 M21 N22 O35 P23 Q24 R25 S26 T27 "
    design += "U28 V29 W32 X30 Y31 Z33"
    assert {item[0]: int(item[1:]) for item in design.split()} == _CODES


# --- valid numbers -------------------------------------------------------------------------

VALID = [
    # value, kind, id
    ("A123456789", IdKind.NATIONAL_ID, "male-textbook-example"),  # 1+129 = 130
    ("M162773050", IdKind.NATIONAL_ID, "check-digit-0"),  # 11+139+0 = 150
    ("B234567894", IdKind.NATIONAL_ID, "female"),  # 10+156+4 = 170
    ("I100000003", IdKind.NATIONAL_ID, "letter-I-is-34"),  # 39+8+3 = 50
    ("O200000006", IdKind.NATIONAL_ID, "letter-O-is-35"),  # 48+16+6 = 70
    ("W100000001", IdKind.NATIONAL_ID, "letter-W-is-32"),  # 21+8+1 = 30
    ("Z299999992", IdKind.NATIONAL_ID, "letter-Z-is-33-all-nines"),  # 30+16+252+2 = 300
    ("A800000014", IdKind.RESIDENT_NEW, "new-resident-8"),  # 1+64+1+4 = 70
    ("F901234566", IdKind.RESIDENT_NEW, "new-resident-9"),  # 46+72+56+6 = 180
    ("AA00000009", IdKind.RESIDENT_OLD, "old-resident-A-is-0"),  # 1+0+9 = 10
    ("AC01234567", IdKind.RESIDENT_OLD, "old-resident-C-is-2"),  # 1+16+56+7 = 80
    ("BD12345672", IdKind.RESIDENT_OLD, "old-resident-D-is-3"),  # 10+24+84+2 = 120
    ("CB98765437", IdKind.RESIDENT_OLD, "old-resident-B-is-1"),  # 19+8+196+7 = 230
    ("22099131", IdKind.UBN, "ubn-valid-under-both-rules"),  # 30
    ("04595252", IdKind.UBN, "ubn-valid-only-since-2023"),  # 35: mod-10 rejects it
    ("10458570", IdKind.UBN, "ubn-7th-digit-7-sum-25"),  # 28 counts 10; 25: mod-10 rejects
    ("02240178", IdKind.UBN, "ubn-7th-digit-7-needs-plus-1"),  # 34, 34+1 = 35
    ("64454973", IdKind.UBN, "ubn-7th-digit-7-only-since-2023"),  # 45, 46: mod-10 rejects
]


@pytest.mark.parametrize(("value", "kind"), [row[:2] for row in VALID], ids=[r[2] for r in VALID])
def test_valid_numbers_are_classified(value: str, kind: IdKind) -> None:
    assert classify_id(value) is kind
    assert is_valid_id(value)
    assert id_problem(value) is None


@pytest.mark.parametrize("value", [row[0] for row in VALID], ids=[row[2] for row in VALID])
def test_valid_vectors_agree_with_reference(value: str) -> None:
    reference = _reference_ubn_ok if value.isdigit() else _reference_personal_ok
    assert reference(value)


@pytest.mark.parametrize("value", ["04595252", "10458570", "64454973"])
def test_new_rule_ubns_are_the_ones_old_libraries_reject(value: str) -> None:
    assert not _mod10_ubn_ok(value)
    assert is_valid_id(value)


# --- invalid numbers -----------------------------------------------------------------------

INVALID = [
    # value, problem, id
    ("A123456788", IdProblem.BAD_CHECKSUM, "checksum-off-by-one"),
    ("M162773051", IdProblem.BAD_CHECKSUM, "check-digit-0-changed"),
    ("A800000015", IdProblem.BAD_CHECKSUM, "new-resident-checksum"),
    ("AC01234568", IdProblem.BAD_CHECKSUM, "old-resident-checksum"),
    ("04595253", IdProblem.BAD_CHECKSUM, "ubn-checksum"),  # 36
    ("22099130", IdProblem.BAD_CHECKSUM, "ubn-plus-1-only-with-7th-digit-7"),  # 29, 7th is 1
    ("02240177", IdProblem.BAD_CHECKSUM, "ubn-7th-digit-7-still-checked"),  # 33 and 34
    ("a123456789", IdProblem.BAD_FORMAT, "lower-case-is-not-normalised"),
    ("aa00000009", IdProblem.BAD_FORMAT, "lower-case-old-resident"),
    ("Ａ１２３４５６７８９", IdProblem.BAD_FORMAT, "full-width-is-not-normalised"),
    ("０４５９５２５２", IdProblem.BAD_FORMAT, "full-width-ubn-is-not-normalised"),
    ("A323456789", IdProblem.BAD_FORMAT, "second-digit-3"),
    ("A023456789", IdProblem.BAD_FORMAT, "second-digit-0"),
    ("AE12345678", IdProblem.BAD_FORMAT, "old-resident-letter-after-D"),
    ("1123456789", IdProblem.BAD_FORMAT, "ten-digits"),
    ("A12345678X", IdProblem.BAD_FORMAT, "letter-at-the-end"),
    ("A12345678٩", IdProblem.BAD_FORMAT, "arabic-indic-digit"),
    ("0459525A", IdProblem.BAD_FORMAT, "ubn-with-letter"),
    (" A12345678", IdProblem.BAD_FORMAT, "leading-space-not-stripped"),
    ("", IdProblem.WRONG_LENGTH, "empty"),
    ("A12345678", IdProblem.WRONG_LENGTH, "nine-characters"),
    ("A1234567890", IdProblem.WRONG_LENGTH, "eleven-characters"),
    ("0459525", IdProblem.WRONG_LENGTH, "ubn-seven-digits"),
    ("045952520", IdProblem.WRONG_LENGTH, "nine-digits"),
    ("A123456789\n", IdProblem.WRONG_LENGTH, "trailing-newline"),
]


@pytest.mark.parametrize(
    ("value", "problem"), [row[:2] for row in INVALID], ids=[row[2] for row in INVALID]
)
def test_invalid_numbers_say_why(value: str, problem: IdProblem) -> None:
    assert classify_id(value) is None
    assert not is_valid_id(value)
    assert id_problem(value) is problem


# --- normalisation -------------------------------------------------------------------------

NORMALISE = [
    # typed, normalised, id
    ("A123456789", "A123456789", "already-canonical"),
    ("a123456789", "A123456789", "lower-case"),
    ("Ａ１２３４５６７８９", "A123456789", "full-width"),
    ("ａ１２３４５６７８９", "A123456789", "full-width-lower-case"),
    ("  A12 345 6789 ", "A123456789", "spaces-anywhere"),
    ("A123456789\u3000", "A123456789", "ideographic-space"),
    ("\ufeffA123\u200b456789", "A123456789", "bom-and-zero-width-space"),
    ("\tA123456789\n", "A123456789", "tab-and-newline"),
    ("０４５９５２５２", "04595252", "full-width-ubn"),
    ("ac01234567", "AC01234567", "lower-case-old-resident"),
    ("\u0131123456789", "\u0131123456789", "dotless-i-is-not-upper-cased-to-I"),
    ("", "", "empty"),
]


@pytest.mark.parametrize(
    ("typed", "expected"), [row[:2] for row in NORMALISE], ids=[row[2] for row in NORMALISE]
)
def test_normalise_id(typed: str, expected: str) -> None:
    assert normalise_id(typed) == expected


def test_old_resident_numbers_carry_their_end_date_as_data() -> None:
    assert OLD_RESIDENT_LAST_VALID_DAY.isoformat() == "2030-12-31"


# --- check digit helper --------------------------------------------------------------------

CHECK_DIGITS = [
    ("A12345678", "9", "national"),
    ("M16277305", "0", "check-digit-0"),
    ("A80000001", "4", "new-resident"),
    ("AC0123456", "7", "old-resident"),
]


@pytest.mark.parametrize(
    ("prefix", "digit"), [row[:2] for row in CHECK_DIGITS], ids=[row[2] for row in CHECK_DIGITS]
)
def test_personal_id_check_digit(prefix: str, digit: str) -> None:
    assert personal_id_check_digit(prefix) == digit


@pytest.mark.parametrize("prefix", ["A1234567", "A123456789", "a12345678", "A32345678", "1234567"])
def test_personal_id_check_digit_rejects_non_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError):
        personal_id_check_digit(prefix)


# --- properties ----------------------------------------------------------------------------

_letters = st.sampled_from(sorted(_CODES))
_serials = st.text(alphabet="0123456789", min_size=7, max_size=7)


@st.composite
def national_ids(draw: st.DrawFn) -> str:
    prefix = draw(_letters) + draw(st.sampled_from("12")) + draw(_serials)
    return prefix + personal_id_check_digit(prefix)


@st.composite
def personal_ids(draw: st.DrawFn) -> str:
    second = draw(st.sampled_from("1289ABCD"))
    prefix = draw(_letters) + second + draw(_serials)
    return prefix + personal_id_check_digit(prefix)


@given(personal_ids())
def test_generated_ids_pass_both_implementations(value: str) -> None:
    assert is_valid_id(value)
    assert _reference_personal_ok(value)


# Checksum weight of each digit of a national ID, by position in the string.
_WEIGHTS = {1: 8, 2: 7, 3: 6, 4: 5, 5: 4, 6: 3, 7: 2, 8: 1, 9: 1}


@given(national_ids(), st.sampled_from([2, 6, 8, 9]), st.integers(1, 9))
def test_changing_a_digit_with_weight_coprime_to_10_is_always_caught(
    value: str, position: int, delta: int
) -> None:
    # Positions 2, 6, 8 and 9 carry weights 7, 3, 1 and 1: every single-digit change shows.
    changed = value[:position] + str((int(value[position]) + delta) % 10) + value[position + 1 :]
    assert not is_valid_id(changed)


@given(national_ids(), st.integers(1, 9), st.integers(1, 9))
def test_a_single_digit_change_is_caught_unless_weight_times_change_is_a_multiple_of_10(
    value: str, position: int, delta: int
) -> None:
    # The checksum is mod 10 with weights 8,7,6,5,4,3,2,1,1, so it cannot catch everything:
    # a change of 5 at an even weight, or an even change at weight 5, keeps the sum.
    digit = (int(value[position]) + delta) % 10
    changed = value[:position] + str(digit) + value[position + 1 :]
    # A second digit of 8 or 9 would make it a (new) resident number, same checksum.
    still_well_formed = position != 1 or str(digit) in "1289"
    undetected = (_WEIGHTS[position] * (digit - int(value[position]))) % 10 == 0
    assert is_valid_id(changed) == (still_well_formed and undetected)


def test_the_checksum_misses_some_single_digit_changes() -> None:
    # Spelled out so nobody mistakes the checksum for error-correcting: 3 -> 8 at weight 6.
    assert is_valid_id("A123456789")
    assert is_valid_id("A128456789")


@given(personal_ids(), st.data())
def test_typing_variants_normalise_back(value: str, data: st.DataObject) -> None:
    full_width = data.draw(st.booleans())
    lower = data.draw(st.booleans())
    typed = value.lower() if lower else value
    if full_width:
        typed = "".join(chr(ord(ch) + 0xFEE0) for ch in typed)
    typed = " " + typed[:4] + " " + typed[4:] + " "
    assert normalise_id(typed) == value
    assert classify_id(normalise_id(typed)) is classify_id(value)


@given(st.text(max_size=12))
def test_normalise_is_idempotent_and_validators_never_raise(text: str) -> None:
    once = normalise_id(text)
    assert normalise_id(once) == once
    assert (id_problem(text) is None) == is_valid_id(text)


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_ubn_agrees_with_reference(value: str) -> None:
    assert is_valid_id(value) == _reference_ubn_ok(value)
