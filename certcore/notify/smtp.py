"""E-mail delivery over SMTP with aiosmtplib.

One connection per message: codes are rare (a few per customer per hour), and a fresh
connection never trips over a server that silently dropped an idle one.

How failures map (SendFailure):

- no answer within `send_timeout_seconds` (connect, banner, any command) → TIMEOUT;
- connection refused, reset or a TLS failure → GATEWAY_ERROR: the server is unreachable or
  misconfigured, which an operator must fix; waiting does not help the customer, trying the
  other destination may;
- the recipient refused with a 5xx on RCPT → REJECTED_DESTINATION (the address is wrong or gone);
  a 4xx on RCPT is temporary (greylisting, full mailbox) → GATEWAY_ERROR;
- authentication refused, sender refused, anything else the server says no to → GATEWAY_ERROR.

Port 465 means implicit TLS (RFC 8314); any other port is plain SMTP, upgraded with STARTTLS
when `smtp_starttls` is set (then a server without STARTTLS is an error, never a silent
downgrade). A user name without either would send the password in clear, so it is refused.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid, parseaddr

import aiosmtplib

from certcore.clock import TAIPEI, Clock, system_clock
from certcore.config import Settings
from certcore.errors import ConfigurationError
from certcore.masking import mask_email
from certcore.notify.base import (
    Medium,
    OutgoingMessage,
    SendError,
    SendFailure,
)
from certcore.notify.redaction import BODY, SECRET, scrub

log = logging.getLogger("certdesk.notify.smtp")

IMPLICIT_TLS_PORT = 465
FALLBACK_MESSAGE_ID_DOMAIN = "certdesk.invalid"


class SmtpSender:
    """Sends e-mail through the configured SMTP server; returns the Message-ID as receipt."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """`tls_context` replaces the system trust store (tests trust a loopback certificate)."""
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.implicit_tls = settings.smtp_port == IMPLICIT_TLS_PORT
        self.starttls = settings.smtp_starttls and not self.implicit_tls
        self.username = settings.smtp_username
        self._password = settings.smtp_password
        self.sender = settings.smtp_from
        self.timeout = settings.send_timeout_seconds
        self.clock = clock
        self.tls_context = tls_context
        if self.username and not (self.starttls or self.implicit_tls):
            raise ConfigurationError(
                "smtp_username is set but neither smtp_starttls nor port 465 (implicit TLS) "
                "is: the SMTP password would cross the network in clear"
            )

    def __repr__(self) -> str:
        return f"SmtpSender(host={self.host!r}, port={self.port}, starttls={self.starttls})"

    async def send(self, message: OutgoingMessage) -> str:
        if message.medium is not Medium.EMAIL:
            raise ValueError("SmtpSender sends e-mail only")
        masked = mask_email(message.destination)
        if not _is_single_address(message.destination):
            raise self._failed(
                masked,
                SendFailure.REJECTED_DESTINATION,
                "not a single plain e-mail address; nothing was sent",
            )
        try:
            email = self._build(message)
        except (ValueError, TypeError) as exc:  # a header the email package refuses
            raise self._failed(
                masked, SendFailure.GATEWAY_ERROR, f"cannot build the e-mail ({exc})"
            ) from None
        try:
            async with asyncio.timeout(self.timeout):
                _, answer = await aiosmtplib.send(
                    email,
                    hostname=self.host,
                    port=self.port,
                    username=self.username or None,
                    password=self._password or None,
                    use_tls=self.implicit_tls,
                    start_tls=self.starttls,
                    tls_context=self.tls_context,
                    timeout=self.timeout,
                )
        except Exception as exc:  # every failure becomes a SendError the caller can act on
            reason, detail = self._explain(exc)
            raise self._failed(
                masked, reason, self._scrub(detail, message.destination, message.body)
            ) from None
        receipt = str(email["Message-ID"])
        log.info(
            "e-mail to %s accepted by %s: %s (%s)",
            masked,
            self.host,
            receipt,
            self._scrub(answer, message.destination, message.body),
        )
        return receipt

    async def close(self) -> None:
        """Nothing to release: every send opens and closes its own connection."""

    def _build(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage(policy=SMTP_POLICY)
        email["Subject"] = message.subject
        email["From"] = self.sender
        email["To"] = message.destination
        email["Date"] = format_datetime(self.clock().astimezone(TAIPEI))
        domain = _domain_of(self.sender)
        key = message.message_key
        email["Message-ID"] = f"<{key}@{domain}>" if key else make_msgid(domain=domain)
        email.set_content(message.body, charset="utf-8", cte="base64")
        return email

    def _explain(self, exc: Exception) -> tuple[SendFailure, str]:
        where = f"SMTP server {self.host}:{self.port}"
        if isinstance(exc, TimeoutError):  # asyncio's bound and aiosmtplib's own timeouts
            return SendFailure.TIMEOUT, f"{where} did not answer within {self.timeout} s"
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
            exc = exc.recipients[0]
        if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
            permanent = 500 <= exc.code < 600
            reason = SendFailure.REJECTED_DESTINATION if permanent else SendFailure.GATEWAY_ERROR
            state = "refused" if permanent else "temporarily refused"
            return reason, f"{where} {state} the recipient: {exc.code} {exc.message}"
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return SendFailure.GATEWAY_ERROR, (
                f"{where} refused the login (check smtp_username and smtp_password): "
                f"{exc.code} {exc.message}"
            )
        if isinstance(exc, aiosmtplib.SMTPSenderRefused):
            return SendFailure.GATEWAY_ERROR, (
                f"{where} refused the sender address (check smtp_from): {exc.code} {exc.message}"
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return SendFailure.GATEWAY_ERROR, f"{where} answered {exc.code} {exc.message}"
        if isinstance(exc, ssl.SSLError):
            return SendFailure.GATEWAY_ERROR, f"TLS with {where} failed: {exc.reason or exc}"
        if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
            return SendFailure.GATEWAY_ERROR, f"{where} closed the connection"
        if isinstance(exc, OSError):  # refused, reset, no route, unknown host
            return SendFailure.GATEWAY_ERROR, f"cannot reach {where}: {_os_reason(exc)}"
        if isinstance(exc, aiosmtplib.SMTPException):
            return SendFailure.GATEWAY_ERROR, f"{where}: {exc}"
        log.warning("unexpected %s while sending e-mail", type(exc).__name__)
        return SendFailure.GATEWAY_ERROR, f"unexpected {type(exc).__name__} talking to {where}"

    def _scrub(self, text: str, destination: str, body: str) -> str:
        return scrub(
            text,
            {
                self._password: SECRET,
                self.username: SECRET,
                body: BODY,
                destination: mask_email(destination),
            },
        )

    def _failed(self, masked: str, reason: SendFailure, detail: str) -> SendError:
        log.warning("e-mail to %s failed (%s): %s", masked, reason.value, detail)
        return SendError(reason, f"e-mail to {masked}: {detail}")


def _is_single_address(value: str) -> bool:
    """One bare `local@domain`: no display name, no list, no header-breaking characters."""
    if not value or any(ch.isspace() or ch in ',;<>"()' for ch in value):
        return False
    try:
        address = Address(addr_spec=value)
    except Exception:  # HeaderParseError and friends: not an address we can send to
        return False
    return bool(address.username and address.domain and "." in address.domain)


def _domain_of(sender: str) -> str:
    """The right-hand side for Message-ID: the sender's domain (never a slow getfqdn())."""
    _, address = parseaddr(sender)
    domain = address.rpartition("@")[2].strip()
    return domain or FALLBACK_MESSAGE_ID_DOMAIN


def _os_reason(exc: BaseException) -> str:
    """The OS's words (\"Connection refused\"), not aiosmtplib's sentence around them."""
    cause = exc.__cause__ or exc.__context__
    for candidate in (exc, cause):
        if isinstance(candidate, OSError) and candidate.strerror:
            return candidate.strerror
    return str(exc) or type(exc).__name__
