"""One-time codes: the rules of DESIGN §3 as pure functions.

A code is six digits from the injected CSPRNG with a four-letter identifier prefix
(`HFCR-123456`). The prefix tells the customer which message belongs to the screen in front of
them; a code typed with another prefix is a stale message, not a guess. Only a keyed hash of the
code is ever stored, bound to the customer, the conversation and the operation.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import string
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from certcore.config import Settings

CODE_DIGITS = 6
PREFIX_LETTERS = 4
MAX_ENTRY = 24
"""Longer than any way of typing a code (`HFCR - 123456` with spaces): not read at all."""
# ASCII digits only: `\d` would also take other scripts' digits (Arabic-Indic, Devanagari),
# which NFKC does not fold; such an entry would be counted as a wrong guess at the code.
_ENTRY = re.compile(r"(?:([A-Z]{4})\s*-?\s*)?([0-9]{6})")


class Operation(StrEnum):
    """What a code authorises; a code for one operation never authorises another."""

    LINK = "link"
    APPLY = "apply"
    RENEW = "renew"
    REVOKE = "revoke"


@dataclass(frozen=True)
class OtpPolicy:
    lifetime: timedelta
    resend_after: timedelta
    max_attempts: int
    sends_per_hour: int
    sends_per_day: int

    @classmethod
    def from_settings(cls, settings: Settings) -> OtpPolicy:
        return cls(
            lifetime=timedelta(minutes=settings.otp_lifetime_minutes),
            resend_after=timedelta(seconds=settings.otp_resend_seconds),
            max_attempts=settings.otp_max_attempts,
            sends_per_hour=settings.otp_sends_per_hour,
            sends_per_day=settings.otp_sends_per_day,
        )


@dataclass(frozen=True)
class Binding:
    """The one customer, conversation and operation a code is good for."""

    customer_id: str
    conversation_id: str
    operation: Operation


@dataclass(frozen=True)
class CodeEntry:
    prefix: str | None
    digits: str


def new_code(rng: random.Random) -> str:
    return "".join(rng.choice(string.digits) for _ in range(CODE_DIGITS))


def new_prefix(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(PREFIX_LETTERS))


def parse_entry(text: str) -> CodeEntry | None:
    """Read what the customer typed: `123456`, `HFCR-123456`, `hfcr 123456`, full-width too."""
    if len(text) > MAX_ENTRY and len(text.strip()) > MAX_ENTRY:
        return None
    normalised = unicodedata.normalize("NFKC", text).strip().upper().replace("－", "-")
    match = _ENTRY.fullmatch(normalised)
    if match is None:
        return None
    return CodeEntry(prefix=match.group(1), digits=match.group(2))


def code_digest(key: bytes, binding: Binding, prefix: str, code: str) -> str:
    """HMAC-SHA256 of the code and everything it is bound to; the stored form of a code."""
    message = "\x1f".join(
        (binding.customer_id, binding.conversation_id, binding.operation.value, prefix, code)
    )
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def digests_match(expected: str, actual: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), actual.encode("ascii"))


class SendRefusal(StrEnum):
    RESEND_TOO_EARLY = "resend_too_early"
    HOURLY_LIMIT = "hourly_limit"
    DAILY_LIMIT = "daily_limit"


def send_refusal(
    now: datetime,
    *,
    last_sent_in_binding: datetime | None,
    sent_last_hour: int,
    sent_last_day: int,
    policy: OtpPolicy,
) -> SendRefusal | None:
    """Why a new code may not be sent now, or None when it may."""
    if last_sent_in_binding is not None and now < last_sent_in_binding + policy.resend_after:
        return SendRefusal.RESEND_TOO_EARLY
    if sent_last_day >= policy.sends_per_day:
        return SendRefusal.DAILY_LIMIT
    if sent_last_hour >= policy.sends_per_hour:
        return SendRefusal.HOURLY_LIMIT
    return None
