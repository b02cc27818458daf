"""The development outbox, the choice of senders, `serve` staying on loopback in outbox mode,
and `certdesk notify test`."""

from __future__ import annotations

import asyncio
import email
import json
import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from bot.cli import NOTIFY_TEST_BODY, NOTIFY_TEST_SUBJECT, main
from bot.serve import serve
from certcore.clock import FrozenClock
from certcore.config import Settings
from certcore.errors import ConfigurationError
from certcore.notify import build_senders, close_senders
from certcore.notify.base import Medium, OutgoingMessage
from certcore.notify.outbox import DevOutbox, is_loopback_host, outbox_since, recent_outbox
from certcore.notify.sms import Every8dSender, MitakeSender
from certcore.notify.smtp import SmtpSender
from certcore.storage.database import Database

MOBILE = "0936123054"
ADDRESS = "abcdef@example.com"
CODE_BODY = "驗證碼 HFCR-123456，5 分鐘內有效。"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.sqlite3'}")
    await database.migrate()
    yield database
    await database.close()


async def test_outbox_stores_and_reads_back(db: Database, clock: FrozenClock) -> None:
    outbox = DevOutbox(db, clock)
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


async def test_outbox_logs_no_code_or_destination(
    db: Database, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    await DevOutbox(db, clock).send(OutgoingMessage(Medium.SMS, MOBILE, "", CODE_BODY))
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


async def test_serve_refuses_a_public_address_in_outbox_mode(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var").validate()
    with pytest.raises(ConfigurationError, match="loopback") as refused:
        await serve(settings, host="0.0.0.0", port=8080)
    assert "listen on 0.0.0.0" in str(refused.value)
    assert not (tmp_path / "var").exists()  # refused before anything was opened


def test_serve_command_says_why_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_delivery_environment(monkeypatch)
    code = main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "var")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "development outbox mode" in err and "configure SMTP or SMS" in err


# -- certdesk notify test ----------------------------------------------------------------


def clear_delivery_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMTP_HOST", "SMTP_USERNAME", "SMS_PROVIDER", "CONFIG"):
        monkeypatch.delenv(f"CERTDESK_{name}", raising=False)


def audit_records(data_dir: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(data_dir / "certdesk.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()


def test_notify_test_in_outbox_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_delivery_environment(monkeypatch)
    data_dir = tmp_path / "var"
    assert (
        main(["notify", "test", "--mobile", "+886 936-123-054", "--data-dir", str(data_dir)]) == 0
    )
    out = capsys.readouterr().out
    assert "outbox-1" in out and "development outbox" in out

    async def read() -> list[Any]:
        database = Database(f"sqlite+aiosqlite:///{data_dir.resolve() / 'certdesk.sqlite3'}")
        try:
            async with database.read() as conn:
                return await recent_outbox(conn)
        finally:
            await database.close()

    [entry] = asyncio.run(read())
    assert (entry.medium, entry.subject, entry.body) == (
        Medium.SMS,
        NOTIFY_TEST_SUBJECT,
        NOTIFY_TEST_BODY,
    )
    [record] = audit_records(data_dir)
    assert record["action"] == "notify.test"
    assert record["subject"] == "0936XXX054"
    assert json.loads(record["details"])["result"] == "sent"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mobile", "0223456789"], "--mobile: not a Taiwanese mobile number"),
        (["--email", "nobody"], "--email: not an e-mail address"),
    ],
)
def test_notify_test_refuses_a_malformed_destination(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["notify", "test", *args, "--data-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_notify_test_needs_exactly_one_destination(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as neither:
        main(["notify", "test", "--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as both:
        main(["notify", "test", "--mobile", MOBILE, "--email", ADDRESS])
    assert neither.value.code == both.value.code == 2


class Recorder:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.contents.append(envelope.content)
        return "250 2.0.0 Ok: queued as CLI42"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Recorder]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, recorder
    controller.stop()


def test_notify_test_by_email_through_smtp(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    smtp_server: tuple[Controller, Recorder],
) -> None:
    controller, recorder = smtp_server
    clear_delivery_environment(monkeypatch)
    monkeypatch.setenv("CERTDESK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CERTDESK_SMTP_PORT", str(controller.port))
    monkeypatch.setenv("CERTDESK_SMTP_STARTTLS", "false")
    monkeypatch.setenv("CERTDESK_SMTP_FROM", "CertDesk <otp@certdesk.example>")
    data_dir = tmp_path / "var"

    assert main(["notify", "test", "--email", ADDRESS, "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "sent to ab***@example.com via email: receipt <" in out
    [content] = recorder.contents
    received = email.message_from_bytes(content, policy=default_policy)
    assert received["Subject"] == NOTIFY_TEST_SUBJECT

    # SMS is not configured alongside SMTP: the medium is unavailable, one line, exit 2
    assert main(["notify", "test", "--mobile", MOBILE, "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unavailable" in err and "CERTDESK_SMS_PROVIDER" in err
    results = [json.loads(row["details"])["result"] for row in audit_records(data_dir)]
    assert results == ["sent", "unavailable"]


def test_notify_test_failure_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_delivery_environment(monkeypatch)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("CERTDESK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CERTDESK_SMTP_PORT", str(closed_port))
    monkeypatch.setenv("CERTDESK_SMTP_STARTTLS", "false")
    monkeypatch.setenv("CERTDESK_SMTP_FROM", "otp@certdesk.example")

    assert main(["notify", "test", "--email", ADDRESS, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "gateway_error" in err and "cannot reach" in err
    assert ADDRESS not in err
