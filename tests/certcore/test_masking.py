"""Masking of personal data on screen and in logs (DESIGN §3), as a specification table."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certcore.identity import personal_id_check_digit
from certcore.masking import (
    MASKED,
    escape_hidden,
    has_hidden,
    mask_account,
    mask_email,
    mask_id,
    mask_mobile,
    mask_text_ids,
)

MASK_ID = [
    # value, masked, id
    ("A120786753", "A120XXX53", "design-example"),
    ("M162773050", "M162XXX50", "check-digit-0"),
    ("AC01234567", "AC01XXX67", "old-resident"),
    ("A800000014", "A800XXX14", "new-resident"),
    ("04595252", "0459XXX52", "ubn"),
    ("a120786753", "A120XXX53", "lower-case-is-normalised"),
    ("Ａ１２０７８６７５３", "A120XXX53", "full-width-is-normalised"),
    (" A120 786 753 ", "A120XXX53", "spaces"),
    ("A123456788", "A123XXX88", "bad-checksum-still-masked-alike"),
    ("", MASKED, "empty"),
    ("A1234", MASKED, "too-short-to-mask-safely"),
    ("A12345-678", MASKED, "punctuation"),
    ("張小明", MASKED, "not-an-id"),
]


@pytest.mark.parametrize(
    ("value", "masked"), [row[:2] for row in MASK_ID], ids=[row[2] for row in MASK_ID]
)
def test_mask_id(value: str, masked: str) -> None:
    assert mask_id(value) == masked


MASK_MOBILE = [
    # value, masked, id
    ("0936123054", "0936XXX054", "design-example"),
    ("+886936123054", "0936XXX054", "international"),
    ("+886 936-123-054", "0936XXX054", "international-with-punctuation"),
    ("+886-0936-123-054", "0936XXX054", "international-with-trunk-zero"),
    ("00886936123054", "0936XXX054", "international-dialling-prefix"),
    ("0936-123-054", "0936XXX054", "dashes"),
    ("0936 123 054", "0936XXX054", "spaces"),
    ("(0936)123.054", "0936XXX054", "brackets-and-dots"),
    ("０９３６１２３０５４", "0936XXX054", "full-width"),
    ("", MASKED, "empty"),
    ("0936", MASKED, "too-short"),
    ("09361230545", MASKED, "eleven-digits"),
    ("02-2345-6789", MASKED, "landline"),
    ("886936123054", "0936XXX054", "country-code-without-plus"),
    ("+81 90 1234 5678", MASKED, "foreign-mobile"),
    ("0936l23054", MASKED, "letter-l-for-one"),
]


@pytest.mark.parametrize(
    ("value", "masked"), [row[:2] for row in MASK_MOBILE], ids=[row[2] for row in MASK_MOBILE]
)
def test_mask_mobile(value: str, masked: str) -> None:
    assert mask_mobile(value) == masked


MASK_EMAIL = [
    # value, masked, id
    ("abcdef@example.com", "ab***@example.com", "design-example"),
    ("abc@example.com", "ab***@example.com", "three-characters-keep-two"),
    ("ab@example.com", "a***@example.com", "two-characters-keep-one"),
    ("a@example.com", "a***@example.com", "one-character-keep-one"),
    ("first.last+tag@mail.example.com.tw", "fi***@mail.example.com.tw", "subaddress"),
    ("  abcdef@example.com\n", "ab***@example.com", "surrounding-whitespace"),
    ("ａｂｃ＠example.com", "ab***@example.com", "full-width-at-sign"),
    ('"a@b"@example.com', '"a***@example.com', "quoted-at-in-local-part"),
    ("王小明@例子.台灣", "王小***@例子.台灣", "unicode"),
    ("", MASKED, "empty"),
    ("abcdef", MASKED, "no-at-sign"),
    ("@example.com", MASKED, "empty-local-part"),
    ("abcdef@", MASKED, "empty-domain"),
    ("ab cd@example.com", MASKED, "inner-space"),
    ("a@\u202emoc.elpmaxe", MASKED, "right-to-left-override"),
    ("abcd@exam\u2066ple.com", MASKED, "bidi-isolate"),
    ("ab\u200bcd@example.com", MASKED, "zero-width-space"),
    ("abcd@example.com\x1b[2J", MASKED, "ansi-escape"),
    ("abcd@example.com\U000e0041", MASKED, "tag-character"),
]


@pytest.mark.parametrize(
    ("value", "masked"), [row[:2] for row in MASK_EMAIL], ids=[row[2] for row in MASK_EMAIL]
)
def test_mask_email(value: str, masked: str) -> None:
    assert mask_email(value) == masked


MASK_ACCOUNT = [
    # value, masked, id
    ("1020-1230545", "1020-XXX0545", "design-example"),
    ("1020-0324338", "1020-XXX4338", "branch-and-last-4"),
    ("10200324338", "1020-XXX4338", "no-dash-first-4-are-branch"),
    ("１０２０－０３２４３３８", "1020-XXX4338", "full-width"),
    (" 1020 - 0324338 ", "1020-XXX4338", "spaces"),
    ("9a9x-0324338", "9A9X-XXX4338", "alphanumeric-branch"),
    ("1020-12345", "1020-XXX2345", "shortest-account-that-hides-something"),
    ("", MASKED, "empty"),
    ("1020", MASKED, "branch-only"),
    ("1020-1234", MASKED, "four-digit-account-would-show-whole"),
    ("1020-0324338-1", MASKED, "extra-part"),
    ("102-0324338", MASKED, "three-character-branch"),
]


@pytest.mark.parametrize(
    ("value", "masked"), [row[:2] for row in MASK_ACCOUNT], ids=[row[2] for row in MASK_ACCOUNT]
)
def test_mask_account(value: str, masked: str) -> None:
    assert mask_account(value) == masked


MASK_TEXT = [
    # text, masked, id
    ("login ok id=A120786753", "login ok id=A120XXX53", "national-id"),
    ("身分證A120786753驗證失敗", "身分證A120XXX53驗證失敗", "between-chinese-characters"),
    ("ids A120786753, B234567894.", "ids A120XXX53, B234XXX94.", "two-ids"),
    ("ubn=04595252;", "ubn=0459XXX52;", "ubn"),
    ("resident AC01234567 / A800000014", "resident AC01XXX67 / A800XXX14", "resident"),
    ("typed a120786753", "typed A120XXX53", "lower-case"),
    ("typed Ａ１２０７８６７５３!", "typed A120XXX53!", "full-width"),
    ("failed A123456788", "failed A123XXX88", "checksum-ignored"),
    ("A120786753", "A120XXX53", "whole-text"),
    (
        "A120786753-HFCR(20250425).pfx",
        "A120XXX53-HFCR(2025XXX25).pfx",
        "any-8-digit-run-is-a-possible-ubn",
    ),
    ("no ids here", "no ids here", "nothing-to-mask"),
    ("otp 123456 serial 123456789", "otp 123456 serial 123456789", "other-digit-runs"),
    ("mobile 0936123054", "mobile 0936123054", "ten-digits-are-not-an-id"),
    ("hash 3FA120786753B", "hash 3FA120786753B", "inside-a-longer-token"),
    ("A120XXX53 0459XXX52", "A120XXX53 0459XXX52", "already-masked"),
]


@pytest.mark.parametrize(
    ("text", "masked"), [row[:2] for row in MASK_TEXT], ids=[row[2] for row in MASK_TEXT]
)
def test_mask_text_ids(text: str, masked: str) -> None:
    assert mask_text_ids(text) == masked


ESCAPE_HIDDEN = [
    # text, shown, id
    ("王三 wang@example.com", "王三 wang@example.com", "nothing-hidden"),
    ("a@\u202emoc.elpmaxe", "a@\\u202emoc.elpmaxe", "right-to-left-override"),
    ("王\u2028三", "王\\u2028三", "line-separator"),
    ("\x1b[2Jx\x9b", "\\u001b[2Jx\\u009b", "c0-and-c1-controls"),
    ("a\u200bb\ufeff", "a\\u200bb\\ufeff", "zero-width"),
    ("x\U000e0041", "x\\udb40\\udc41", "tag-character-as-a-json-surrogate-pair"),
]


@pytest.mark.parametrize(
    ("text", "shown"), [row[:2] for row in ESCAPE_HIDDEN], ids=[row[2] for row in ESCAPE_HIDDEN]
)
def test_escape_hidden(text: str, shown: str) -> None:
    assert escape_hidden(text) == shown
    assert not has_hidden(shown)


# --- properties ----------------------------------------------------------------------------


@st.composite
def personal_ids(draw: st.DrawFn) -> str:
    letter = draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    serial = draw(st.text("0123456789", min_size=7, max_size=7))
    prefix = letter + draw(st.sampled_from("1289ABCD")) + serial
    return prefix + personal_id_check_digit(prefix)


_words = st.text(alphabet="abc xyz,.=:;/()-_中文", max_size=8)


@given(st.lists(st.one_of(personal_ids(), _words), max_size=6))
def test_no_id_survives_in_log_text(parts: list[str]) -> None:
    text = " ".join(parts)
    masked = mask_text_ids(text)
    for part in parts:
        if len(part) == 10 and part[2:].isdigit():
            assert part not in masked
    assert mask_text_ids(masked) == masked


_ANY_MASK_OUTPUT: dict[Callable[[str], str], re.Pattern[str]] = {
    mask_id: re.compile(r"XXX|[0-9A-Z]{4}XXX[0-9A-Z]{2}"),
    mask_mobile: re.compile(r"XXX|09[0-9]{2}XXX[0-9]{3}"),
    mask_email: re.compile(r"XXX|.{1,2}\*\*\*@\S+"),
    mask_account: re.compile(r"XXX|[0-9A-Z]{4}-XXX[0-9]{4}"),
}


@pytest.mark.parametrize("mask", list(_ANY_MASK_OUTPUT), ids=lambda mask: mask.__name__)
@given(text=st.text(max_size=40))
def test_masks_never_raise_and_always_mask(mask: Callable[[str], str], text: str) -> None:
    assert _ANY_MASK_OUTPUT[mask].fullmatch(mask(text))


@given(st.text(max_size=60))
def test_mask_text_never_raises_and_is_idempotent(text: str) -> None:
    once = mask_text_ids(text)
    assert mask_text_ids(once) == once


@given(st.text(max_size=40))
def test_escaped_json_is_the_same_json_with_nothing_hidden(text: str) -> None:
    document = json.dumps({"name": text, "list": [text]}, ensure_ascii=False)
    shown = escape_hidden(document)
    assert not has_hidden(shown)
    assert json.loads(shown) == {"name": text, "list": [text]}
