"""Sending one-time codes and notices to a customer's mobile (SMS) or e-mail."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from certcore.clock import Clock
from certcore.config import Settings
from certcore.notify.base import (
    Medium,
    OutgoingMessage,
    Sender,
    SendError,
    SendFailure,
    mask_destination,
)
from certcore.notify.outbox import (
    DevOutbox,
    OutboxEntry,
    is_loopback_host,
    outbox_since,
    purge_outbox,
    recent_outbox,
)
from certcore.notify.sms import Every8dSender, HttpSmsSender, MitakeSender, sms_sender
from certcore.notify.smtp import SmtpSender
from certcore.storage import Database

__all__ = [
    "DevOutbox",
    "Every8dSender",
    "HttpSmsSender",
    "Medium",
    "MitakeSender",
    "OutboxEntry",
    "OutgoingMessage",
    "SendError",
    "SendFailure",
    "Sender",
    "SmtpSender",
    "build_senders",
    "close_senders",
    "is_loopback_host",
    "mask_destination",
    "outbox_lifetime",
    "outbox_since",
    "purge_outbox",
    "recent_outbox",
    "sms_sender",
]


def build_senders(settings: Settings, db: Database, clock: Clock) -> dict[Medium, Sender]:
    """The sender for each medium the configuration provides.

    With neither SMTP nor SMS configured (outbox mode), the development outbox takes both
    media so that `serve` works with no configuration. Otherwise only real senders are
    used: a medium without one is absent, and the OTP service answers UNAVAILABLE for it
    rather than pretending to send.
    """
    if settings.outbox_mode:
        outbox = DevOutbox(db, clock, lifetime=outbox_lifetime(settings))
        return {Medium.SMS: outbox, Medium.EMAIL: outbox}
    senders: dict[Medium, Sender] = {}
    if settings.smtp_host:
        senders[Medium.EMAIL] = SmtpSender(settings, clock=clock)
    if settings.sms_provider:
        senders[Medium.SMS] = sms_sender(settings)
    return senders


def outbox_lifetime(settings: Settings) -> timedelta:
    """How long the development outbox keeps a message: as long as the code in it lives."""
    return timedelta(minutes=settings.otp_lifetime_minutes)


async def close_senders(senders: Mapping[Medium, Sender]) -> None:
    """Release what the senders hold (the SMS gateway's HTTP session), each sender once."""
    seen: set[int] = set()
    for sender in senders.values():
        close = getattr(sender, "close", None)
        if close is None or id(sender) in seen:
            continue
        seen.add(id(sender))
        await close()
