"""E-mail delivery against a real SMTP server on loopback (aiosmtpd): plain, STARTTLS with a
self-signed certificate, authentication, a refused recipient and a server that never answers."""

from __future__ import annotations

import asyncio
import email
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certcore.clock import FrozenClock
from certcore.config import Settings
from certcore.errors import ConfigurationError
from certcore.notify import Medium, OutgoingMessage, SendError, SendFailure, SmtpSender

SENDER = "CertDesk <otp@certdesk.example>"
RECIPIENT = "abcdef@example.com"
MASKED_RECIPIENT = "ab***@example.com"
SMTP_USER = "certdesk-mailer"
SMTP_PASSWORD = "s3cret-Pa55word!"
SUBJECT = "CertDesk 驗證碼"
BODY = "您的驗證碼為 HFCR-123456，5 分鐘內有效。\n本公司人員不會向您索取驗證碼。"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Recorder:
    """Keeps every message the server accepted."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 Ok: queued as TEST123"


class RefusingRecipients(Recorder):
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # handled=True would leave the 535 unsent


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert file, key file, cert PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("smtp-tls")
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return directory / "cert.pem", directory / "key.pem", cert_pem


@pytest.fixture
def server_tls(tls_files: tuple[Path, Path, bytes]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files[0], tls_files[1])
    return context


@pytest.fixture
def client_tls(tls_files: tuple[Path, Path, bytes]) -> ssl.SSLContext:
    """Trusts exactly the loopback server's self-signed certificate."""
    return ssl.create_default_context(cadata=tls_files[2].decode("ascii"))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 2, 0, 0, tzinfo=UTC))


def start(handler: Any, **kwargs: Any) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def controllers() -> Iterator[list[Controller]]:
    running: list[Controller] = []
    yield running
    for controller in running:
        controller.stop()


def settings_for(port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_from": SENDER,
        "smtp_starttls": False,
        "send_timeout_seconds": 5,
    }
    values.update(overrides)
    return Settings(**values).validate()


def otp_mail(destination: str = RECIPIENT) -> OutgoingMessage:
    return OutgoingMessage(Medium.EMAIL, destination, SUBJECT, BODY)


def assert_no_secrets(text: str) -> None:
    for secret in (SMTP_PASSWORD, RECIPIENT, "123456"):
        assert secret not in text


def client_log(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured line except the fake server's own (aiosmtpd logs what it receives)."""
    return "\n".join(record.getMessage() for record in caplog.records if record.name != "mail.log")


async def test_plain_delivery_builds_a_proper_utf8_message(
    controllers: list[Controller], clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    controllers.append(server := start(recorder))
    sender = SmtpSender(settings_for(server.port), clock=clock)

    receipt = await sender.send(otp_mail())

    [(mail_from, rcpt_tos, message)] = recorder.messages
    assert mail_from == "otp@certdesk.example"
    assert rcpt_tos == [RECIPIENT]
    assert message["To"] == RECIPIENT
    assert message["From"] == SENDER
    assert message["Subject"] == SUBJECT
    assert message["Message-ID"] == receipt
    assert receipt.startswith("<") and receipt.endswith("@certdesk.example>")
    assert message["Date"].datetime == clock.now
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message["Content-Transfer-Encoding"] == "base64"  # 7-bit safe through any relay
    # MIME's canonical text form has CRLF line ends, inside the base64 too
    assert message.get_content().replace("\r\n", "\n").rstrip("\n") == BODY
    assert_no_secrets(client_log(caplog))
    assert MASKED_RECIPIENT in client_log(caplog)


async def test_starttls_is_used_and_required(
    controllers: list[Controller],
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
    clock: FrozenClock,
) -> None:
    recorder = Recorder()
    controllers.append(server := start(recorder, tls_context=server_tls, require_starttls=True))

    secure = SmtpSender(
        settings_for(server.port, smtp_starttls=True), clock=clock, tls_context=client_tls
    )
    await secure.send(otp_mail())
    assert len(recorder.messages) == 1

    plain = SmtpSender(settings_for(server.port), clock=clock)
    with pytest.raises(SendError) as refused:
        await plain.send(otp_mail())
    assert refused.value.reason is SendFailure.GATEWAY_ERROR
    assert len(recorder.messages) == 1


async def test_starttls_refuses_an_untrusted_certificate(
    controllers: list[Controller], server_tls: ssl.SSLContext, clock: FrozenClock
) -> None:
    controllers.append(server := start(Recorder(), tls_context=server_tls, require_starttls=True))
    sender = SmtpSender(settings_for(server.port, smtp_starttls=True), clock=clock)
    with pytest.raises(SendError) as failure:
        await sender.send(otp_mail())
    assert failure.value.reason is SendFailure.GATEWAY_ERROR
    assert "TLS" in str(failure.value)


async def test_authentication_success_and_failure(
    controllers: list[Controller],
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    controllers.append(
        server := start(
            recorder,
            tls_context=server_tls,
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=True,
        )
    )
    good = settings_for(
        server.port, smtp_starttls=True, smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD
    )
    await SmtpSender(good, clock=clock, tls_context=client_tls).send(otp_mail())
    assert len(recorder.messages) == 1

    wrong_password = "Wr0ng-" + SMTP_PASSWORD
    bad = settings_for(
        server.port, smtp_starttls=True, smtp_username=SMTP_USER, smtp_password=wrong_password
    )
    sender = SmtpSender(bad, clock=clock, tls_context=client_tls)
    with pytest.raises(SendError) as failure:
        await sender.send(otp_mail())
    assert failure.value.reason is SendFailure.GATEWAY_ERROR
    assert "login" in str(failure.value)
    for text in (str(failure.value), repr(failure.value), repr(sender), client_log(caplog)):
        assert wrong_password not in text
        assert_no_secrets(text)
    assert len(recorder.messages) == 1


def test_a_password_is_never_sent_in_clear() -> None:
    settings = settings_for(25, smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD)
    with pytest.raises(ConfigurationError, match="in clear"):
        SmtpSender(settings)


async def test_refused_recipient_is_a_rejected_destination(
    controllers: list[Controller], clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    controllers.append(server := start(RefusingRecipients()))
    with pytest.raises(SendError) as failure:
        await SmtpSender(settings_for(server.port), clock=clock).send(otp_mail())
    assert failure.value.reason is SendFailure.REJECTED_DESTINATION
    assert "550" in str(failure.value)
    assert MASKED_RECIPIENT in str(failure.value)  # the server's echo, masked
    assert_no_secrets(str(failure.value))
    assert_no_secrets(client_log(caplog))


async def test_an_invalid_address_is_refused_before_connecting(clock: FrozenClock) -> None:
    sender = SmtpSender(settings_for(free_port()), clock=clock)
    for address in ("not-an-address", "a@example.com\r\nBcc: x@example.net", "a@b.com,c@d.com"):
        with pytest.raises(SendError) as failure:
            await sender.send(otp_mail(address))
        assert failure.value.reason is SendFailure.REJECTED_DESTINATION


async def test_connection_refused_is_a_gateway_error(clock: FrozenClock) -> None:
    sender = SmtpSender(settings_for(free_port()), clock=clock)
    with pytest.raises(SendError) as failure:
        await sender.send(otp_mail())
    assert failure.value.reason is SendFailure.GATEWAY_ERROR
    assert "cannot reach" in str(failure.value)


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts TCP connections and never says a word."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_a_server_that_never_answers_times_out_within_the_bound(
    silent_server: int, clock: FrozenClock
) -> None:
    sender = SmtpSender(settings_for(silent_server, send_timeout_seconds=1), clock=clock)
    started = time.monotonic()
    with pytest.raises(SendError) as failure:
        await sender.send(otp_mail())
    elapsed = time.monotonic() - started
    assert failure.value.reason is SendFailure.TIMEOUT
    assert 0.9 <= elapsed < 2.5
