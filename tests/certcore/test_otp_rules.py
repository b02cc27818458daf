"""The one-time-code rules of DESIGN §3 as pure functions: what a customer may type, what a code
and its prefix look like, what is stored, and when a new code may be sent."""

from __future__ import annotations

import random
import re
import secrets
from datetime import timedelta

import pytest

from certcore.clock import taipei
from certcore.config import Settings
from certcore.otp import (
    Binding,
    CodeEntry,
    Operation,
    OtpPolicy,
    SendRefusal,
    code_digest,
    digests_match,
    new_code,
    new_prefix,
    parse_entry,
    send_refusal,
)

# -- what the customer types ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("123456", CodeEntry(None, "123456")),
        ("HFCR-123456", CodeEntry("HFCR", "123456")),
        ("hfcr-123456", CodeEntry("HFCR", "123456")),
        ("HfCr-123456", CodeEntry("HFCR", "123456")),
        ("HFCR 123456", CodeEntry("HFCR", "123456")),
        ("HFCR123456", CodeEntry("HFCR", "123456")),
        ("HFCR - 123456", CodeEntry("HFCR", "123456")),
        ("１２３４５６", CodeEntry(None, "123456")),  # full-width digits
        ("ＨＦＣＲ－１２３４５６", CodeEntry("HFCR", "123456")),  # full-width letters and dash
        ("HFCR－123456", CodeEntry("HFCR", "123456")),  # full-width dash U+FF0D
        ("HFCR　123456", CodeEntry("HFCR", "123456")),  # ideographic space
        ("  123456  ", CodeEntry(None, "123456")),
        ("\tHFCR-123456\n", CodeEntry("HFCR", "123456")),
        ("　１２３４５６　", CodeEntry(None, "123456")),
        ("000000", CodeEntry(None, "000000")),
    ],
)
def test_parse_entry_accepts(typed: str, expected: CodeEntry) -> None:
    assert parse_entry(typed) == expected


def test_spaces_around_a_code_are_not_counted_against_its_length() -> None:
    assert parse_entry(" " * 100 + "HFCR-123456" + "\n" * 100) == CodeEntry("HFCR", "123456")


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "12345",  # 5 digits
        "1234567",  # 7 digits
        "HFCR-12345",
        "HFCR-1234567",
        "12a456",  # a letter inside the digits
        "123 456",
        "123-456",
        "HFC-123456",  # three-letter prefix
        "HFCRX-123456",  # five-letter prefix
        "HF1R-123456",
        "HFCR--123456",
        "-123456",
        "123456-HFCR",
        "HFCR-",
        "HFCR",
        "١٢٣٤٥٦",  # Arabic-Indic digits: not what a customer means by a code
        "HFCR-١٢٣٤٥٦",
        "１２３４５６７",
        "1" * 5000,  # a very long number is not read at all (int() refuses 4,300 digits)
        "１" * 5000,
        "HFCR-" + "1" * 5000,
    ],
)
def test_parse_entry_rejects(typed: str) -> None:
    assert parse_entry(typed) is None


# -- what a code looks like ----------------------------------------------------------------

SEEDS = range(300)


@pytest.mark.parametrize("source", ["seeded", "system"])
def test_new_code_is_six_ascii_digits_and_prefix_four_capital_letters(source: str) -> None:
    codes, prefixes = [], []
    for seed in SEEDS:
        rng = random.Random(seed) if source == "seeded" else secrets.SystemRandom()
        codes.append(new_code(rng))
        prefixes.append(new_prefix(rng))
    assert all(re.fullmatch(r"[0-9]{6}", code) for code in codes)
    assert all(re.fullmatch(r"[A-Z]{4}", prefix) for prefix in prefixes)
    # Every digit and every letter turns up: the whole alphabet is used, not a subset.
    assert set("".join(codes)) == set("0123456789")
    assert set("".join(prefixes)) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    # And they are not all the same value.
    assert len(set(codes)) > len(SEEDS) * 0.9
    assert len(set(prefixes)) > len(SEEDS) * 0.9


def test_codes_and_prefixes_come_from_the_injected_source() -> None:
    first, second = random.Random(7), random.Random(7)
    assert [new_code(first) for _ in range(5)] == [new_code(second) for _ in range(5)]
    assert new_prefix(first) == new_prefix(second)


def test_a_code_always_parses_back() -> None:
    rng = random.Random(1)
    for _ in range(100):
        prefix, code = new_prefix(rng), new_code(rng)
        assert parse_entry(f"{prefix}-{code}") == CodeEntry(prefix, code)
        assert parse_entry(code) == CodeEntry(None, code)


# -- the stored form -----------------------------------------------------------------------

KEY = b"k" * 32
BINDING = Binding("A123456789", "line:U123", Operation.APPLY)


def test_code_digest_is_a_stable_hex_hmac() -> None:
    digest = code_digest(KEY, BINDING, "HFCR", "123456")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == code_digest(KEY, BINDING, "HFCR", "123456")
    assert "123456" not in digest
    assert digests_match(digest, code_digest(KEY, BINDING, "HFCR", "123456"))


@pytest.mark.parametrize(
    ("what", "key", "binding", "prefix", "code"),
    [
        ("customer", KEY, Binding("B123456780", "line:U123", Operation.APPLY), "HFCR", "123456"),
        (
            "conversation",
            KEY,
            Binding("A123456789", "line:U124", Operation.APPLY),
            "HFCR",
            "123456",
        ),
        ("operation", KEY, Binding("A123456789", "line:U123", Operation.REVOKE), "HFCR", "123456"),
        ("prefix", KEY, BINDING, "HFCS", "123456"),
        ("code", KEY, BINDING, "HFCR", "123457"),
        ("key", b"K" * 32, BINDING, "HFCR", "123456"),
        # The fields are separated, so moving characters between them changes the digest.
        (
            "field boundary",
            KEY,
            Binding("A12345678", "9line:U123", Operation.APPLY),
            "HFCR",
            "123456",
        ),
    ],
)
def test_code_digest_differs_when_anything_bound_differs(
    what: str, key: bytes, binding: Binding, prefix: str, code: str
) -> None:
    reference = code_digest(KEY, BINDING, "HFCR", "123456")
    other = code_digest(key, binding, prefix, code)
    assert other != reference, what
    assert not digests_match(reference, other)


@pytest.mark.parametrize("operation", list(Operation))
def test_each_operation_gives_its_own_digest(operation: Operation) -> None:
    digests = {
        op: code_digest(KEY, Binding("A123456789", "c", op), "HFCR", "123456") for op in Operation
    }
    assert len(set(digests.values())) == len(Operation)
    assert digests[operation] == code_digest(
        KEY, Binding("A123456789", "c", operation), "HFCR", "123456"
    )


# -- when a new code may be sent -----------------------------------------------------------

NOW = taipei(2026, 11, 24, 10, 0, 0)
POLICY = OtpPolicy(
    lifetime=timedelta(minutes=5),
    resend_after=timedelta(seconds=60),
    max_attempts=5,
    sends_per_hour=5,
    sends_per_day=10,
)


def test_policy_defaults_are_the_design_numbers() -> None:
    assert OtpPolicy.from_settings(Settings()) == POLICY


@pytest.mark.parametrize(
    ("case", "last_sent_ago", "sent_last_hour", "sent_last_day", "expected"),
    [
        ("first code of the day", None, 0, 0, None),
        ("resend at exactly +60 s", timedelta(seconds=60), 1, 1, None),
        ("resend at +59 s", timedelta(seconds=59), 1, 1, SendRefusal.RESEND_TOO_EARLY),
        ("resend at +59.999 s", timedelta(seconds=59.999), 1, 1, SendRefusal.RESEND_TOO_EARLY),
        ("resend at once", timedelta(0), 1, 1, SendRefusal.RESEND_TOO_EARLY),
        ("5th of the hour", None, 4, 4, None),
        ("6th of the hour", None, 5, 5, SendRefusal.HOURLY_LIMIT),
        (
            "6th of the hour, resend delay passed",
            timedelta(minutes=2),
            5,
            5,
            SendRefusal.HOURLY_LIMIT,
        ),
        ("10th of the day", None, 0, 9, None),
        ("11th of the day", None, 0, 10, SendRefusal.DAILY_LIMIT),
        (
            "11th of the day, resend delay passed",
            timedelta(hours=2),
            0,
            10,
            SendRefusal.DAILY_LIMIT,
        ),
        ("day and hour both full", None, 5, 10, SendRefusal.DAILY_LIMIT),
        ("too early and day full", timedelta(seconds=10), 5, 10, SendRefusal.RESEND_TOO_EARLY),
    ],
)
def test_send_refusal(
    case: str,
    last_sent_ago: timedelta | None,
    sent_last_hour: int,
    sent_last_day: int,
    expected: SendRefusal | None,
) -> None:
    last = None if last_sent_ago is None else NOW - last_sent_ago
    refusal = send_refusal(
        NOW,
        last_sent_in_binding=last,
        sent_last_hour=sent_last_hour,
        sent_last_day=sent_last_day,
        policy=POLICY,
    )
    assert refusal is expected, case


@pytest.mark.parametrize(
    ("sends_per_hour", "sends_per_day", "hour", "day", "expected"),
    [
        (3, 4, 2, 2, None),
        (3, 4, 3, 3, SendRefusal.HOURLY_LIMIT),
        (3, 4, 0, 3, None),
        (3, 4, 0, 4, SendRefusal.DAILY_LIMIT),
    ],
)
def test_send_refusal_follows_configured_caps(
    sends_per_hour: int, sends_per_day: int, hour: int, day: int, expected: SendRefusal | None
) -> None:
    policy = OtpPolicy(
        lifetime=timedelta(minutes=5),
        resend_after=timedelta(seconds=60),
        max_attempts=5,
        sends_per_hour=sends_per_hour,
        sends_per_day=sends_per_day,
    )
    refusal = send_refusal(
        NOW, last_sent_in_binding=None, sent_last_hour=hour, sent_last_day=day, policy=policy
    )
    assert refusal is expected
