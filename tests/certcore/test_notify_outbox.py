"""The development outbox, the choice of senders, and which hosts count as loopback (the only
ones `serve` listens on in outbox mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from certcore.clock import FrozenClock
from certcore.config import Settings
from certcore.notify import (
    DevOutbox,
    Every8dSender,
    Medium,
    MitakeSender,
    OutgoingMessage,
    SmtpSender,
    build_senders,
    close_senders,
    is_loopback_host,
    outbox_since,
    recent_outbox,
)
from certcore.storage import Database

MOBILE = "0936123054"
ADDRESS = "abcdef@example.com"
CODE_BODY = "驗證碼 HFCR-123456，5 分鐘內有效。"
LIFETIME = timedelta(minutes=5)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.sqlite3'}")
    await database.migrate()
    yield database
    await database.close()


async def test_outbox_stores_and_reads_back(db: Database, clock: FrozenClock) -> None:
    outbox = DevOutbox(db, clock, lifetime=LIFETIME)
    first = await outbox.send(OutgoingMessage(Medium.SMS, MOBILE, "", CODE_BODY))
    clock.advance(seconds=30)
    second = await outbox.send(OutgoingMessage(Medium.EMAIL, ADDRESS, "CertDesk 驗證碼", "body"))
    assert (first, second) == ("outbox-1", "outbox-2")

    async with db.read() as conn:
        newest = await recent_outbox(conn, limit=10)
        only_one = await recent_outbox(conn, limit=1)
        after_first = await outbox_since(conn, 1)
        everything = await outbox_since(conn, 0)

    assert [entry.receipt for entry in newest] == ["outbox-2", "outbox-1"]
    assert [entry.id for entry in only_one] == [2]
    assert [entry.id for entry in after_first] == [2]
    assert [entry.id for entry in everything] == [1, 2]
    sms, mail = everything
    assert (sms.medium, sms.destination, sms.body) == (Medium.SMS, MOBILE, CODE_BODY)
    assert sms.created_at == clock.now - timedelta(seconds=30)
    assert (mail.medium, mail.subject) == (Medium.EMAIL, "CertDesk 驗證碼")
    assert sms.masked_destination == "0936XXX054"
    assert mail.masked_destination == "ab***@example.com"
    for entry in everything:
        assert entry.destination not in repr(entry)
        assert entry.body not in repr(entry)


async def test_outbox_forgets_a_message_once_its_code_has_expired(
    db: Database, clock: FrozenClock
) -> None:
    """Codes are in clear there: kept as long as a code lives, forgotten on the next store
    or purge after that."""
    outbox = DevOutbox(db, clock, lifetime=LIFETIME)
    await outbox.send(OutgoingMessage(Medium.SMS, MOBILE, "", CODE_BODY))
    clock.advance(seconds=60)
    await outbox.send(OutgoingMessage(Medium.EMAIL, ADDRESS, "CertDesk 驗證碼", CODE_BODY))
    clock.advance(seconds=4 * 60)
    assert await outbox.purge() == 0  # the first is exactly as old as its code's life
    assert [entry.id for entry in await outbox.since(0)] == [1, 2]

    clock.advance(seconds=1)
    await outbox.send(OutgoingMessage(Medium.SMS, MOBILE, "", "third"))
    assert [entry.id for entry in await outbox.since(0)] == [2, 3]  # forgotten on a store
    clock.advance(seconds=60)
    assert await outbox.purge() == 1
    async with db.read() as conn:
        assert [entry.id for entry in await recent_outbox(conn)] == [3]
    assert await outbox.last_id() == 3
    clock.advance(seconds=5 * 60)
    assert await outbox.purge() == 1
    assert await outbox.since(0) == []
    # An emptied outbox numbers on: the console follows it by id.
    assert await outbox.send(OutgoingMessage(Medium.SMS, MOBILE, "", "fourth")) == "outbox-4"
    assert [entry.id for entry in await outbox.since(3)] == [4]


async def test_outbox_logs_no_code_or_destination(
    db: Database, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    await DevOutbox(db, clock, lifetime=LIFETIME).send(
        OutgoingMessage(Medium.SMS, MOBILE, "", CODE_BODY)
    )
    assert "0936XXX054" in caplog.text
    for secret in (MOBILE, "123456", CODE_BODY):
        assert secret not in caplog.text


# -- build_senders -----------------------------------------------------------------------

SMTP = {"smtp_host": "mail.example", "smtp_from": "otp@example.com", "smtp_starttls": True}
SMS = {
    "sms_url": "https://gw.example/send",
    "sms_username": "u",
    "sms_password": "p",
}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, {Medium.SMS: DevOutbox, Medium.EMAIL: DevOutbox}),
        (SMTP, {Medium.EMAIL: SmtpSender}),
        ({**SMS, "sms_provider": "mitake"}, {Medium.SMS: MitakeSender}),
        ({**SMS, "sms_provider": "every8d"}, {Medium.SMS: Every8dSender}),
        (
            {**SMTP, **SMS, "sms_provider": "every8d"},
            {Medium.EMAIL: SmtpSender, Medium.SMS: Every8dSender},
        ),
    ],
    ids=["outbox", "smtp-only", "mitake-only", "every8d-only", "both"],
)
async def test_build_senders(
    db: Database, clock: FrozenClock, values: dict[str, Any], expected: dict[Medium, type]
) -> None:
    settings = Settings(**values).validate()
    senders = build_senders(settings, db, clock)
    assert {medium: type(sender) for medium, sender in senders.items()} == expected
    if settings.outbox_mode:
        assert senders[Medium.SMS] is senders[Medium.EMAIL]
        outbox = senders[Medium.SMS]
        assert isinstance(outbox, DevOutbox)
        assert outbox.lifetime == timedelta(minutes=settings.otp_lifetime_minutes)
    await close_senders(senders)


async def test_close_senders_closes_each_once() -> None:
    class Counting:
        closed = 0

        async def send(self, message: OutgoingMessage) -> str:
            return "x"

        async def close(self) -> None:
            self.closed += 1

    class WithoutClose:
        async def send(self, message: OutgoingMessage) -> str:
            return "y"

    shared = Counting()
    await close_senders({Medium.SMS: shared, Medium.EMAIL: shared})
    await close_senders({Medium.SMS: WithoutClose()})
    assert shared.closed == 1


# -- serve stays on loopback in outbox mode ----------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.20", False),
        ("certdesk.example", False),
        ("localhost.example", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
