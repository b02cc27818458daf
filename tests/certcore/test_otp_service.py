"""OtpService over a migrated SQLite database, a recording sender and a frozen clock: every OTP
rule of DESIGN §3 as the customer meets it (send, type, resend, fail), plus what must never be
kept or logged."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, select

from certcore.audit import Actor, verify_chain
from certcore.clock import FrozenClock
from certcore.config import Settings, load_settings
from certcore.core import open_database
from certcore.errors import (
    ConfigurationError,
    OtpExpired,
    OtpMalformed,
    OtpNoActiveCode,
    OtpResendTooEarly,
    OtpSendFailed,
    OtpSendLimit,
    OtpStalePrefix,
    OtpVoided,
    OtpWrongCode,
)
from certcore.notify import Medium, OutgoingMessage, SendError, SendFailure
from certcore.otp import Binding, Operation, OtpSent, OtpService, SendRefusal
from certcore.storage import Database
from certcore.storage.schema import audit_log, otp_codes

KEY = b"otp-test-key-0123456789abcdef!!!"
CUSTOMER = "A123456789"
MASKED_CUSTOMER = "A123XXX89"
MOBILE = "0936123054"
EMAIL = "abcdef@example.com"
BOT = Actor("bot", "web")
BINDING = Binding(CUSTOMER, "web:conv-1", Operation.APPLY)
CODE_IN_TEXT = re.compile(r"\b([A-Z]{4})-([0-9]{6})\b")


# -- senders and fixtures ------------------------------------------------------------------


@dataclass
class RecordingSender:
    """Keeps every message it is asked to send; the test reads the code from it."""

    sent: list[OutgoingMessage] = field(default_factory=list)

    async def send(self, message: OutgoingMessage) -> str:
        self.sent.append(message)
        return f"receipt-{len(self.sent)}"

    @property
    def last(self) -> OutgoingMessage:
        return self.sent[-1]

    def last_code(self) -> tuple[str, str]:
        """(prefix, six digits) of the newest message."""
        return code_in(self.last.body)


def code_in(body: str) -> tuple[str, str]:
    """(prefix, six digits) of the code in a message."""
    match = CODE_IN_TEXT.search(body)
    assert match is not None, "no code in the message"
    return match.group(1), match.group(2)


@dataclass
class FailingSender:
    reason: SendFailure = SendFailure.TIMEOUT
    tried: list[OutgoingMessage] = field(default_factory=list)

    async def send(self, message: OutgoingMessage) -> str:
        self.tried.append(message)
        raise SendError(self.reason, "the gateway did not answer within 10 s")


@pytest.fixture
def otp_settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(environ={}, data_dir=tmp_path / "var", database_url=database_url or None)


@pytest.fixture
async def db(otp_settings: Settings) -> AsyncIterator[Database]:
    opened = await open_database(otp_settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def sms() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def mail() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def service(
    db: Database,
    otp_settings: Settings,
    clock: FrozenClock,
    rng: random.Random,
    sms: RecordingSender,
    mail: RecordingSender,
) -> OtpService:
    return OtpService(
        db=db,
        settings=otp_settings,
        clock=clock,
        rng=rng,
        senders={Medium.SMS: sms, Medium.EMAIL: mail},
        key=KEY,
    )


async def send_sms(service: OtpService, binding: Binding = BINDING) -> OtpSent:
    return await service.send(
        binding, medium=Medium.SMS, destination=MOBILE, locale="zh_TW", actor=BOT
    )


async def rows(db: Database, table: Table) -> list[dict[str, Any]]:
    """In key order: without ORDER BY, PostgreSQL returns an updated row after the others."""
    query = select(table).order_by(*table.primary_key.columns)
    async with db.read() as conn:
        return [dict(row._mapping) for row in (await conn.execute(query))]


async def audit_actions(db: Database) -> list[str]:
    return [row["action"] for row in await rows(db, audit_log)]


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# -- the message ---------------------------------------------------------------------------

PURPOSE = {
    ("zh_TW", Operation.LINK): "綁定帳號",
    ("zh_TW", Operation.APPLY): "憑證申請",
    ("zh_TW", Operation.RENEW): "憑證延展",
    ("zh_TW", Operation.REVOKE): "憑證註銷",
    ("en", Operation.LINK): "account linking",
    ("en", Operation.APPLY): "certificate application",
    ("en", Operation.RENEW): "certificate renewal",
    ("en", Operation.REVOKE): "certificate revocation",
}
LIFETIME = {"zh_TW": "5分鐘", "en": "5 minutes"}
STAFF_NEVER_ASK = {"zh_TW": "本公司人員不會", "en": "Our staff will never ask you"}
BROKER = {"zh_TW": "CertDesk 示範證券", "en": "CertDesk Demo Securities"}


@pytest.mark.parametrize("locale", ["zh_TW", "en"])
@pytest.mark.parametrize("operation", list(Operation))
async def test_sms_carries_prefix_purpose_lifetime_and_warning(
    service: OtpService, sms: RecordingSender, clock: FrozenClock, locale: str, operation
) -> None:
    binding = Binding(CUSTOMER, "web:conv-1", operation)
    sent = await service.send(
        binding, medium=Medium.SMS, destination=MOBILE, locale=locale, actor=BOT
    )
    message = sms.last
    prefix, code = sms.last_code()
    assert message.medium is Medium.SMS
    assert message.destination == MOBILE
    assert message.subject == ""
    assert prefix == sent.prefix
    assert f"{sent.prefix}-{code}" in message.body
    assert PURPOSE[locale, operation] in message.body
    assert LIFETIME[locale] in message.body
    assert STAFF_NEVER_ASK[locale] in message.body
    assert BROKER[locale] in message.body
    assert sent == OtpSent(
        prefix=prefix,
        medium=Medium.SMS,
        destination="0936XXX054",
        expires_at=clock() + timedelta(minutes=5),
        resend_at=clock() + timedelta(seconds=60),
    )


@pytest.mark.parametrize("locale", ["zh_TW", "en"])
async def test_email_subject_and_body(
    service: OtpService, mail: RecordingSender, sms: RecordingSender, locale: str
) -> None:
    sent = await service.send(
        BINDING, medium=Medium.EMAIL, destination=EMAIL, locale=locale, actor=BOT
    )
    message = mail.last
    prefix, code = mail.last_code()
    assert sms.sent == []
    assert message.medium is Medium.EMAIL
    assert message.destination == EMAIL
    assert sent.destination == "ab***@example.com"
    assert prefix == sent.prefix
    # The subject names the message (prefix, purpose) but never holds the code itself.
    assert sent.prefix in message.subject
    assert PURPOSE[locale, Operation.APPLY] in message.subject
    assert BROKER[locale] in message.subject
    assert code not in message.subject
    assert f"{sent.prefix}-{code}" in message.body
    assert PURPOSE[locale, Operation.APPLY] in message.body
    assert LIFETIME[locale] in message.body
    assert STAFF_NEVER_ASK[locale] in message.body


@pytest.mark.parametrize(("locale", "text"), [("zh_TW", "7分鐘"), ("en", "7 minutes")])
async def test_message_states_the_configured_lifetime(
    db: Database, clock: FrozenClock, rng: random.Random, tmp_path: Path, locale: str, text: str
) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path / "var", otp_lifetime_minutes=7)
    sms = RecordingSender()
    service = OtpService(
        db=db, settings=settings, clock=clock, rng=rng, senders={Medium.SMS: sms}, key=KEY
    )
    sent = await service.send(
        BINDING, medium=Medium.SMS, destination=MOBILE, locale=locale, actor=BOT
    )
    assert text in sms.last.body
    assert sent.expires_at == clock() + timedelta(minutes=7)


# -- typing the code -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    ["{code}", "{prefix}-{code}", "{lower}-{code}", "{prefix} {code}", "  {code}  ", "{wide}"],
)
async def test_verify_accepts_the_code_with_or_without_its_prefix(
    service: OtpService, sms: RecordingSender, db: Database, form: str
) -> None:
    await send_sms(service)
    prefix, code = sms.last_code()
    wide = "".join(chr(ord(ch) + 0xFEE0) for ch in f"{prefix}-{code}")  # full-width
    await service.verify(
        BINDING, form.format(code=code, prefix=prefix, lower=prefix.lower(), wide=wide), actor=BOT
    )
    [row] = await rows(db, otp_codes)
    assert row["state"] == "used"
    assert (await audit_actions(db))[-1] == "otp.verified"


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "code please", "HFC-123456"])
async def test_malformed_entry_is_not_a_guess(
    service: OtpService, sms: RecordingSender, db: Database, typed: str
) -> None:
    await send_sms(service)
    with pytest.raises(OtpMalformed):
        await service.verify(BINDING, typed, actor=BOT)
    [row] = await rows(db, otp_codes)
    assert (row["state"], row["attempts"]) == ("active", 0)
    await service.verify(BINDING, sms.last_code()[1], actor=BOT)


@pytest.mark.parametrize(
    ("after", "outcome"),
    [
        (timedelta(minutes=4, seconds=59), None),
        (timedelta(minutes=5), None),  # valid at exactly +5 min
        (timedelta(minutes=5, seconds=1), OtpExpired),
        (timedelta(hours=1), OtpExpired),
    ],
)
async def test_expiry_edge(
    service: OtpService,
    sms: RecordingSender,
    clock: FrozenClock,
    db: Database,
    after: timedelta,
    outcome: type[Exception] | None,
) -> None:
    await send_sms(service)
    code = sms.last_code()[1]
    clock.advance(seconds=after.total_seconds())
    if outcome is None:
        await service.verify(BINDING, code, actor=BOT)
        return
    with pytest.raises(outcome):
        await service.verify(BINDING, code, actor=BOT)
    [row] = await rows(db, otp_codes)
    assert row["state"] == "expired"
    # An expired code stays dead; the customer is told to ask for a new one.
    with pytest.raises(OtpNoActiveCode):
        await service.verify(BINDING, code, actor=BOT)


async def test_reuse_after_success_is_rejected(service: OtpService, sms: RecordingSender) -> None:
    await send_sms(service)
    prefix, code = sms.last_code()
    await service.verify(BINDING, f"{prefix}-{code}", actor=BOT)
    for typed in (code, f"{prefix}-{code}"):
        with pytest.raises(OtpNoActiveCode):
            await service.verify(BINDING, typed, actor=BOT)


async def test_five_wrong_entries_void_the_code(
    service: OtpService, sms: RecordingSender, db: Database
) -> None:
    await send_sms(service)
    prefix, code = sms.last_code()
    script: list[tuple[str, type[Exception], int | None]] = [
        (wrong(code), OtpWrongCode, 4),
        (f"{prefix}-{wrong(code)}", OtpWrongCode, 3),
        (wrong(code), OtpWrongCode, 2),
        (wrong(code), OtpWrongCode, 1),
        (wrong(code), OtpVoided, None),
        (code, OtpNoActiveCode, None),  # the right code, too late
        (f"{prefix}-{code}", OtpNoActiveCode, None),
    ]
    for typed, error, attempts_left in script:
        with pytest.raises(error) as caught:
            await service.verify(BINDING, typed, actor=BOT)
        assert getattr(caught.value, "attempts_left", None) == attempts_left, typed
    [row] = await rows(db, otp_codes)
    assert (row["state"], row["attempts"]) == ("voided", 5)


async def test_a_wrong_entry_then_the_right_one_is_accepted(
    service: OtpService, sms: RecordingSender
) -> None:
    await send_sms(service)
    code = sms.last_code()[1]
    for _ in range(4):
        with pytest.raises(OtpWrongCode):
            await service.verify(BINDING, wrong(code), actor=BOT)
    await service.verify(BINDING, code, actor=BOT)


@pytest.mark.parametrize(
    ("who", "binding"),
    [
        ("other conversation", Binding(CUSTOMER, "web:conv-2", Operation.APPLY)),
        ("other operation", Binding(CUSTOMER, "web:conv-1", Operation.REVOKE)),
        ("other customer", Binding("B123456780", "web:conv-1", Operation.APPLY)),
    ],
)
async def test_a_code_is_bound_to_customer_conversation_and_operation(
    service: OtpService, sms: RecordingSender, who: str, binding: Binding
) -> None:
    await send_sms(service)
    prefix, code = sms.last_code()
    for typed in (code, f"{prefix}-{code}"):
        with pytest.raises(OtpNoActiveCode):
            await service.verify(binding, typed, actor=BOT)
    # The rejected tries elsewhere cost the real binding nothing.
    await service.verify(BINDING, code, actor=BOT)


async def test_another_bindings_code_is_a_wrong_code_not_a_pass(
    service: OtpService, sms: RecordingSender
) -> None:
    revoke = Binding(CUSTOMER, "web:conv-1", Operation.REVOKE)
    await send_sms(service, BINDING)
    apply_code = sms.last_code()[1]
    await send_sms(service, revoke)
    revoke_code = sms.last_code()[1]
    assert apply_code != revoke_code  # the seeded source gives different codes
    with pytest.raises(OtpWrongCode):
        await service.verify(revoke, apply_code, actor=BOT)
    await service.verify(revoke, revoke_code, actor=BOT)
    await service.verify(BINDING, apply_code, actor=BOT)


# -- the receipt of a verified code --------------------------------------------------------


async def test_a_verified_code_authorises_one_operation_once(
    service: OtpService, sms: RecordingSender, db: Database
) -> None:
    await send_sms(service)
    receipt = await service.verify(BINDING, sms.last_code()[1], actor=BOT)
    await service.spend(BINDING, receipt, actor=BOT, action="test.operation")
    with pytest.raises(OtpNoActiveCode):
        await service.spend(BINDING, receipt, actor=BOT, action="test.operation")
    [row] = await rows(db, otp_codes)
    assert row["state"] == "spent"
    assert (await audit_actions(db))[-1] == "test.operation"


@pytest.mark.parametrize(
    ("case", "binding", "after", "accepted"),
    [
        ("same binding, at once", BINDING, timedelta(0), True),
        ("same binding, 29:59 later", BINDING, timedelta(minutes=29, seconds=59), True),
        ("same binding, 30 min later", BINDING, timedelta(minutes=30), False),
        (
            "other conversation",
            Binding(CUSTOMER, "web:conv-2", Operation.APPLY),
            timedelta(0),
            False,
        ),
        ("other operation", Binding(CUSTOMER, "web:conv-1", Operation.REVOKE), timedelta(0), False),
        (
            "other customer",
            Binding("B123456780", "web:conv-1", Operation.APPLY),
            timedelta(0),
            False,
        ),
    ],
)
async def test_receipt_is_bound_and_short_lived(
    service: OtpService,
    sms: RecordingSender,
    clock: FrozenClock,
    case: str,
    binding: Binding,
    after: timedelta,
    accepted: bool,
) -> None:
    await send_sms(service)
    receipt = await service.verify(BINDING, sms.last_code()[1], actor=BOT)
    clock.advance(seconds=after.total_seconds())
    if accepted:
        await service.spend(binding, receipt, actor=BOT, action="test.operation")
        return
    with pytest.raises(OtpNoActiveCode):
        await service.spend(binding, receipt, actor=BOT, action="test.operation")


async def test_an_unverified_code_is_no_receipt(
    service: OtpService, sms: RecordingSender, db: Database
) -> None:
    await send_sms(service)
    [row] = await rows(db, otp_codes)
    with pytest.raises(OtpNoActiveCode):
        await service.spend(BINDING, row["id"], actor=BOT, action="test.operation")
    await service.verify(BINDING, sms.last_code()[1], actor=BOT)


# -- resending -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after_seconds", "wait_seconds"), [(0, 60), (1, 59), (30, 30), (59, 1), (59.5, 1)]
)
async def test_resend_too_early(
    service: OtpService,
    sms: RecordingSender,
    clock: FrozenClock,
    after_seconds: float,
    wait_seconds: int,
) -> None:
    await send_sms(service)
    code = sms.last_code()[1]
    clock.advance(seconds=after_seconds)
    with pytest.raises(OtpResendTooEarly) as caught:
        await send_sms(service)
    assert caught.value.wait_seconds == wait_seconds
    assert len(sms.sent) == 1  # nothing was sent
    # The refused resend leaves the first code as it was.
    await service.verify(BINDING, code, actor=BOT)


async def test_resend_delay_is_per_binding(service: OtpService, sms: RecordingSender) -> None:
    await send_sms(service)
    await send_sms(service, Binding(CUSTOMER, "web:conv-2", Operation.APPLY))
    await send_sms(service, Binding(CUSTOMER, "web:conv-1", Operation.REVOKE))
    assert len(sms.sent) == 3


async def test_resend_after_60_seconds_invalidates_the_previous_code(
    service: OtpService, sms: RecordingSender, clock: FrozenClock, db: Database
) -> None:
    await send_sms(service)
    old_prefix, old_code = sms.last_code()
    clock.advance(seconds=60)
    second = await send_sms(service)
    new_prefix, new_code = sms.last_code()
    assert (new_prefix, new_code) != (old_prefix, old_code)
    assert second.prefix == new_prefix != old_prefix
    assert [row["state"] for row in await rows(db, otp_codes)] == ["superseded", "active"]

    # The old message, typed with its prefix: a stale code, and the customer is told which
    # prefix to look for. A stale message is not a guess, so it costs no attempt.
    for _ in range(6):
        with pytest.raises(OtpStalePrefix) as caught:
            await service.verify(BINDING, f"{old_prefix}-{old_code}", actor=BOT)
        assert caught.value.expected_prefix == new_prefix
    # The old digits alone are simply not the code.
    with pytest.raises(OtpWrongCode) as wrong_code:
        await service.verify(BINDING, old_code, actor=BOT)
    assert wrong_code.value.attempts_left == 4

    await service.verify(BINDING, f"{new_prefix}-{new_code}", actor=BOT)
    # Once nothing is active, the old message is just a code for nothing.
    with pytest.raises(OtpNoActiveCode):
        await service.verify(BINDING, f"{old_prefix}-{old_code}", actor=BOT)


# -- caps ----------------------------------------------------------------------------------


def conversation(n: int, operation: Operation = Operation.APPLY) -> Binding:
    return Binding(CUSTOMER, f"web:conv-{n}", operation)


async def test_hourly_cap_is_per_customer_across_conversations(
    service: OtpService, sms: RecordingSender, clock: FrozenClock, db: Database
) -> None:
    for n in range(1, 6):  # five conversations, five sends in the same minute
        await send_sms(service, conversation(n))
    with pytest.raises(OtpSendLimit) as caught:
        await send_sms(service, conversation(6))
    assert caught.value.limit == SendRefusal.HOURLY_LIMIT
    assert len(sms.sent) == 5
    assert (await audit_actions(db))[-1] == "otp.send_refused"

    # Another customer is not affected.
    await send_sms(service, Binding("B123456780", "web:conv-1", Operation.APPLY))

    clock.advance(minutes=59, seconds=59)
    with pytest.raises(OtpSendLimit):
        await send_sms(service, conversation(6))
    clock.advance(seconds=1)  # an hour after the first five
    await send_sms(service, conversation(6))


async def test_sends_at_once_from_many_conversations_keep_the_hourly_cap(
    service: OtpService, sms: RecordingSender, db: Database
) -> None:
    """Twelve conversations ask for a code for one customer at the same moment (on PostgreSQL
    truly side by side): five are sent, seven refused, and the count on record agrees."""
    results = await asyncio.gather(
        *(send_sms(service, conversation(n)) for n in range(1, 13)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, OtpSendLimit)]
    assert len(refused) == 7 and all(r.limit == SendRefusal.HOURLY_LIMIT for r in refused)
    assert not [r for r in results if isinstance(r, BaseException) and r not in refused]
    assert len(sms.sent) == 5
    assert len(await rows(db, otp_codes)) == 5
    assert (await audit_actions(db)).count("otp.sent") == 5


async def test_daily_cap_is_per_customer(
    service: OtpService, sms: RecordingSender, clock: FrozenClock
) -> None:
    for n in range(1, 6):
        await send_sms(service, conversation(n))
    clock.advance(hours=1)
    for n in range(6, 11):
        await send_sms(service, conversation(n, Operation.REVOKE))
    clock.advance(hours=1)
    with pytest.raises(OtpSendLimit) as caught:
        await send_sms(service, conversation(11))
    assert caught.value.limit == SendRefusal.DAILY_LIMIT
    assert len(sms.sent) == 10

    clock.advance(hours=21, minutes=59, seconds=59)
    with pytest.raises(OtpSendLimit):
        await send_sms(service, conversation(11))
    clock.advance(seconds=1)  # a day after the first five
    await send_sms(service, conversation(11))


async def test_caps_count_every_channel(
    service: OtpService, sms: RecordingSender, mail: RecordingSender
) -> None:
    for n in range(1, 4):
        await send_sms(service, conversation(n))
    for n in range(4, 6):
        await service.send(
            conversation(n), medium=Medium.EMAIL, destination=EMAIL, locale="en", actor=BOT
        )
    with pytest.raises(OtpSendLimit):
        await service.send(
            conversation(6), medium=Medium.EMAIL, destination=EMAIL, locale="en", actor=BOT
        )


# -- delivery failures ---------------------------------------------------------------------


@pytest.mark.parametrize("reason", list(SendFailure))
async def test_failed_send_voids_the_code_and_is_audited(
    db: Database,
    otp_settings: Settings,
    clock: FrozenClock,
    rng: random.Random,
    reason: SendFailure,
) -> None:
    failing, mail = FailingSender(reason), RecordingSender()
    service = OtpService(
        db=db,
        settings=otp_settings,
        clock=clock,
        rng=rng,
        senders={Medium.SMS: failing, Medium.EMAIL: mail},
        key=KEY,
    )
    with pytest.raises(OtpSendFailed) as caught:
        await send_sms(service)
    assert caught.value.reason == reason
    assert reason.value in str(caught.value)
    code = code_in(failing.tried[0].body)[1]

    [row] = await rows(db, otp_codes)
    assert row["state"] == "voided"
    with pytest.raises(OtpNoActiveCode):
        await service.verify(BINDING, code, actor=BOT)

    [failure] = [r for r in await rows(db, audit_log) if r["action"] == "otp.send_failed"]
    assert failure["subject"] == MASKED_CUSTOMER
    details = json.loads(failure["details"])
    assert details["reason"] == reason.value
    assert details["via"] == "sms"
    assert details["destination"] == "0936XXX054"

    # "Try the other destination": at once, without waiting out the resend delay.
    await service.send(BINDING, medium=Medium.EMAIL, destination=EMAIL, locale="en", actor=BOT)
    await service.verify(BINDING, code_in(mail.last.body)[1], actor=BOT)


async def test_channel_without_sender_is_unavailable(
    db: Database, otp_settings: Settings, clock: FrozenClock, rng: random.Random
) -> None:
    sms = RecordingSender()
    service = OtpService(
        db=db, settings=otp_settings, clock=clock, rng=rng, senders={Medium.SMS: sms}, key=KEY
    )
    with pytest.raises(OtpSendFailed) as caught:
        await service.send(
            BINDING, medium=Medium.EMAIL, destination=EMAIL, locale="zh_TW", actor=BOT
        )
    assert caught.value.reason == SendFailure.UNAVAILABLE
    assert await rows(db, otp_codes) == []
    [record] = await rows(db, audit_log)
    assert record["action"] == "otp.send_failed"
    assert json.loads(record["details"])["reason"] == "unavailable"
    # The other medium still works.
    await send_sms(service)
    assert len(sms.sent) == 1


async def test_cancel_voids_the_active_code(service: OtpService, sms: RecordingSender) -> None:
    await send_sms(service)
    await service.cancel(BINDING)
    with pytest.raises(OtpNoActiveCode):
        await service.verify(BINDING, sms.last_code()[1], actor=BOT)


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(("minutes", "accepted"), [(0, False), (1, True), (10, True), (11, False)])
def test_lifetime_is_never_over_ten_minutes(tmp_path: Path, minutes: int, accepted: bool) -> None:
    def load(**kwargs) -> Settings:
        return load_settings(data_dir=tmp_path, **kwargs)

    if accepted:
        assert load(environ={}, otp_lifetime_minutes=minutes).otp_lifetime_minutes == minutes
        return
    with pytest.raises(ConfigurationError, match="otp_lifetime_minutes"):
        load(environ={}, otp_lifetime_minutes=minutes)
    with pytest.raises(ConfigurationError, match="otp_lifetime_minutes"):
        load(environ={"CERTDESK_OTP_LIFETIME_MINUTES": str(minutes)})


# -- secrets stay secret -------------------------------------------------------------------


async def whole_flow(
    service: OtpService, sms: RecordingSender, mail: RecordingSender, clock: FrozenClock
) -> set[str]:
    """Every kind of step a code goes through; returns every code that was sent."""
    codes: set[str] = set()
    await send_sms(service)
    codes.add(sms.last_code()[1])
    with pytest.raises(OtpWrongCode):
        await service.verify(BINDING, wrong(sms.last_code()[1]), actor=BOT)
    clock.advance(seconds=60)
    await service.send(BINDING, medium=Medium.EMAIL, destination=EMAIL, locale="en", actor=BOT)
    codes.add(mail.last_code()[1])
    with pytest.raises(OtpStalePrefix):
        await service.verify(BINDING, "-".join(sms.last_code()), actor=BOT)
    await service.verify(BINDING, "-".join(mail.last_code()), actor=BOT)
    revoke = Binding(CUSTOMER, "web:conv-1", Operation.REVOKE)
    await send_sms(service, revoke)
    codes.add(sms.last_code()[1])
    for _ in range(5):
        with pytest.raises((OtpWrongCode, OtpVoided)):
            await service.verify(revoke, wrong(sms.last_code()[1]), actor=BOT)
    renew = Binding(CUSTOMER, "web:conv-2", Operation.RENEW)
    await send_sms(service, renew)
    codes.add(sms.last_code()[1])
    clock.advance(minutes=6)
    with pytest.raises(OtpExpired):
        await service.verify(renew, sms.last_code()[1], actor=BOT)
    failing = FailingSender()
    service.senders = {**service.senders, Medium.SMS: failing}
    with pytest.raises(OtpSendFailed):
        await send_sms(service)
    codes.add(code_in(failing.tried[0].body)[1])
    return codes


async def test_no_code_in_clear_in_the_database(
    service: OtpService,
    sms: RecordingSender,
    mail: RecordingSender,
    clock: FrozenClock,
    db: Database,
) -> None:
    codes = await whole_flow(service, sms, mail, clock)
    assert len(codes) == 5
    code_rows, audit_rows = await rows(db, otp_codes), await rows(db, audit_log)
    assert len(code_rows) == 5
    assert {"otp.sent", "otp.verified", "otp.rejected", "otp.send_failed"} <= {
        row["action"] for row in audit_rows
    }
    for row in code_rows + audit_rows:
        for column, value in row.items():
            for code in codes:
                assert code not in str(value), f"code in clear in column {column}"
            assert MOBILE not in str(value) and EMAIL not in str(value), column
    # The audit trail is read by people: the customer appears masked only.
    for row in audit_rows:
        assert row["subject"] == MASKED_CUSTOMER
        assert CUSTOMER not in json.dumps(row)
    async with db.read() as conn:
        assert await verify_chain(conn) == len(audit_rows)


async def test_no_code_and_no_full_id_in_any_log_record(
    service: OtpService,
    sms: RecordingSender,
    mail: RecordingSender,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    codes = await whole_flow(service, sms, mail, clock)
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        for code in codes:
            assert code not in text, f"code in log record from {record.name}"
        assert CUSTOMER not in text, f"full ID in log record from {record.name}"
        assert MOBILE not in text, f"full mobile number in log record from {record.name}"


async def test_a_failed_resend_leaves_the_delivered_code_working(
    db: Database,
    otp_settings: Settings,
    clock: FrozenClock,
    rng: random.Random,
    sms: RecordingSender,
) -> None:
    failing = FailingSender(SendFailure.GATEWAY_ERROR)
    service = OtpService(
        db=db,
        settings=otp_settings,
        clock=clock,
        rng=rng,
        senders={Medium.SMS: sms, Medium.EMAIL: failing},
        key=KEY,
    )
    await send_sms(service)
    _, delivered = sms.last_code()
    clock.advance(seconds=61)
    with pytest.raises(OtpSendFailed):
        await service.send(BINDING, medium=Medium.EMAIL, destination=EMAIL, locale="en", actor=BOT)
    assert await service.verify(BINDING, delivered, actor=BOT)
