"""An expiry reminder as an e-mail to the customer's address in the directory.

The e-mail is a further route beside the chats (issue 11): the fallback when no chat could show
the reminder, or, by setting, always as well. It says what the chat says (expiry date, renewal
window, Taipei time) and how to renew (in any of the broker's chats, or the web chat at the
public address), and nothing secret: the ID number masked, no code, no link that acts.

Its Message-ID is derived from (certificate, milestone), not random: a sender that crashed
after the SMTP server took the message and before the outbox recorded it sends it again on its
retry (at least once: a reminder lost is worse than one seen twice), and the copy carries the
same Message-ID, which mail systems and readers recognise as one message.
"""

from __future__ import annotations

from certcore.clock import taipei_text
from certcore.config import Settings
from certcore.i18n import translate
from certcore.masking import mask_id
from certcore.notify import Medium, OutgoingMessage
from certcore.pki import CertificateRecord


def reminder_message_key(serial: str, milestone_days: int) -> str:
    """The left part of the reminder's Message-ID: the same for the same reminder, always."""
    return f"certdesk-reminder.{serial.lower()}.{milestone_days}d"


def reminder_email(
    *,
    destination: str,
    record: CertificateRecord,
    milestone_days: int,
    locale: str,
    settings: Settings,
) -> OutgoingMessage:
    """The reminder of `record` reaching `milestone_days`, in `locale`, to `destination`."""
    window = record.renewal_window(settings.renewal_window_days)
    not_after = taipei_text(record.not_after)
    subject = translate(locale, "reminder.email.subject", not_after=not_after)
    body = translate(
        locale,
        "reminder.email.body",
        customer=mask_id(record.customer_id),
        serial=record.serial,
        not_after=not_after,
        start=taipei_text(window.start),
        end=taipei_text(window.end),
        days=milestone_days,
        url=settings.public_url.rstrip("/") + "/",
    )
    return OutgoingMessage(
        Medium.EMAIL,
        destination,
        subject,
        body,
        message_key=reminder_message_key(record.serial, milestone_days),
    )
