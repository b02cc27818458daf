"""Outbox mode from the operator's side: `serve` staying on loopback, and `certdesk notify
test` through the outbox and through a real SMTP server."""

from __future__ import annotations

import asyncio
import email
import io
import json
import socket
import sqlite3
from collections.abc import Iterator
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from bot.channels.console import chat
from bot.cli import NOTIFY_TEST_BODY, NOTIFY_TEST_SUBJECT, main
from bot.jobs import upkeep
from bot.serve import serve
from certcore.clock import FrozenClock
from certcore.config import Settings
from certcore.core import Core, open_database
from certcore.errors import ConfigurationError
from certcore.notify import DevOutbox, Medium, OutgoingMessage, outbox_lifetime, recent_outbox
from certcore.storage import Database

MOBILE = "0936123054"
ADDRESS = "abcdef@example.com"


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


# -- the outbox forgets expired codes, in every process -----------------------------------


CODE_MESSAGE = OutgoingMessage(Medium.SMS, MOBILE, "", "驗證碼 HFCR-123456，5 分鐘內有效。")


class NoInput:
    """`certdesk chat` with nothing to say: it opens the core, then ends at EOF."""

    def readline(self) -> str:
        return ""

    def isatty(self) -> bool:
        return False


async def stored_ids(settings: Settings) -> list[int]:
    db = await open_database(settings)
    try:
        async with db.read() as conn:
            return [entry.id for entry in await recent_outbox(conn)]
    finally:
        await db.close()


async def test_serve_upkeep_forgets_expired_outbox_messages(core: Core, clock: FrozenClock) -> None:
    assert core.outbox is not None
    await core.outbox.send(CODE_MESSAGE)
    clock.advance(seconds=60)
    await core.outbox.send(CODE_MESSAGE)
    clock.advance(seconds=core.settings.otp_lifetime_minutes * 60 - 59)
    await upkeep(core)
    assert [entry.id for entry in await core.outbox.since(0)] == [2]


def test_chat_forgets_expired_outbox_messages_when_it_opens(
    settings: Settings, environ: dict[str, str], clock: FrozenClock, tmp_path: Path
) -> None:
    async def seed() -> None:
        db = await open_database(settings)
        try:
            outbox = DevOutbox(db, clock, lifetime=outbox_lifetime(settings))
            await outbox.send(CODE_MESSAGE)
            clock.advance(seconds=60)
            await outbox.send(CODE_MESSAGE)
        finally:
            await db.close()

    asyncio.run(seed())
    assert asyncio.run(stored_ids(settings)) == [2, 1]
    clock.advance(seconds=settings.otp_lifetime_minutes * 60 - 59)
    out = io.StringIO()
    code = chat(
        settings, stdin=NoInput(), stdout=out, workdir=tmp_path, environ=environ, clock=clock
    )
    assert code == 0
    assert asyncio.run(stored_ids(settings)) == [2]


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
