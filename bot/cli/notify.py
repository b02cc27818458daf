"""`certdesk notify test`: a test message through the configured SMS gateway or SMTP server
(or the development outbox), audited with its result."""

from __future__ import annotations

import argparse

from bot.cli.common import Commands, Store, audit_operator, opened, run
from certcore.clock import system_clock
from certcore.config import Settings
from certcore.errors import InvalidInput
from certcore.masking import MASKED, mask_email, mask_mobile
from certcore.notify import (
    Medium,
    OutgoingMessage,
    SendError,
    SendFailure,
    build_senders,
    close_senders,
)

NOTIFY_TEST_SUBJECT = "CertDesk test message / CertDesk 測試訊息"
NOTIFY_TEST_BODY = (
    "CertDesk test message: the delivery of one-time codes works. No action is needed.\n"
    "CertDesk 測試訊息：一次性驗證碼的發送功能正常，無需任何動作。"
)
"""Operator test text for `certdesk notify test`, not customer text: customer messages live in
the locale catalogues. It carries no code, so it is safe in any outbox or gateway log."""


def register(commands: Commands) -> None:
    notify = commands.group("notify", "delivery of one-time codes")
    test = notify.add("test", cmd_test, "send a test message through the configured sender")
    target = test.add_mutually_exclusive_group(required=True)
    target.add_argument("--mobile", help="Taiwanese mobile number (SMS)")
    target.add_argument("--email", help="e-mail address (SMTP)")


def cmd_test(args: argparse.Namespace, settings: Settings) -> int:
    if args.mobile is not None:
        medium, destination, masked = Medium.SMS, args.mobile.strip(), mask_mobile(args.mobile)
        if masked == MASKED:
            raise InvalidInput("--mobile: not a Taiwanese mobile number (09XXXXXXXX)")
    else:
        medium, destination, masked = Medium.EMAIL, args.email.strip(), mask_email(args.email)
        if masked == MASKED:
            raise InvalidInput("--email: not an e-mail address")
    message = OutgoingMessage(medium, destination, NOTIFY_TEST_SUBJECT, NOTIFY_TEST_BODY)

    async def go() -> None:
        async with opened(Store, settings) as store:
            senders = build_senders(settings, store.db, system_clock)
            receipt = ""
            failure: SendError | None = None
            try:
                sender = senders.get(medium)
                if sender is None:
                    failure = SendError(
                        SendFailure.UNAVAILABLE,
                        "no SMS gateway is configured (CERTDESK_SMS_PROVIDER)"
                        if medium is Medium.SMS
                        else "no SMTP server is configured (CERTDESK_SMTP_HOST)",
                    )
                else:
                    try:
                        receipt = await sender.send(message)
                    except SendError as exc:
                        failure = exc
                await audit_operator(
                    store.audit,
                    action="notify.test",
                    subject=masked,
                    details={
                        "via": medium.value,
                        "result": failure.reason.value if failure else "sent",
                        "receipt": receipt,
                    },
                )
            finally:
                await close_senders(senders)
        if failure is not None:
            raise failure
        if settings.outbox_mode:
            print(f"stored in the development outbox as {receipt} (no SMTP or SMS configured)")
        else:
            print(f"sent to {masked} via {medium.value}: receipt {receipt}")

    return run(go())
