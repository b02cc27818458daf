"""憑證資料檢核: the customer sends a certificate file and learns its status and what to do next.

The file (.cer/.crt/.pem/.der, or PEM text pasted into the chat) is read and checked against
this CA by `certcore.pki.inspection`, and looked up in the certificate records; the answer is
the portal's table and the next possible action. A certificate the customer holds is public, so
the check works without a linked chat; a linked chat is not shown another customer's
certificate. A .pfx (or any file with a private key in it) is not read at all: the customer is
told not to share it and asked for the certificate file instead.
"""

from __future__ import annotations

import logging

from certcore.pki import (
    MAX_FILE_BYTES,
    CertificateStatus,
    FileKind,
    issued_by,
    read_certificate_file,
    serial_hex,
)
from dialogs.flows.query import certificate_table
from dialogs.turn import Flow, Input, Step, Turn

log = logging.getLogger("certdesk.dialogs.check")

FILE, RESULT = "file", "result"

NEXT_ACTIONS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    CertificateStatus.VALID.value: ("check.next.valid", ()),
    CertificateStatus.RENEWAL_DUE.value: (
        "check.next.renewal_due",
        (("renew", "check.action.renew"),),
    ),
    CertificateStatus.EXPIRED.value: ("check.next.expired", (("apply", "check.action.apply"),)),
    CertificateStatus.REVOKED.value: ("check.next.revoked", (("apply", "check.action.apply"),)),
    "replaced": ("check.next.replaced", (("query", "check.action.query"),)),
}
"""The question after a result, and the actions it offers besides the main menu."""

MENU_OPTION = ("menu", "check.action.menu")


async def ask_file(turn: Turn) -> None:
    turn.ask("check.prompt", [MENU_OPTION])


async def reply_at_file_step(turn: Turn, key: str, /, **params: object) -> None:
    """An answer that leaves the customer at the file step, with a way back to the menu."""
    turn.conversation.step = FILE
    turn.ask(key, [MENU_OPTION], **params)


async def on_file(turn: Turn, answer: Input) -> None:
    if answer.choice == "menu":
        await turn.menu()
        return
    if answer.choice in ("renew", "apply", "query"):
        if answer.choice in turn.flows:
            await turn.start(answer.choice)
        else:  # a flow this deployment does not offer
            await turn.menu()
        return
    if answer.file is not None:
        await check(turn, answer.file, answer.filename)
    elif "-----BEGIN" in answer.text:
        await check(turn, answer.text.encode("utf-8", "replace"), "")
    else:
        await reply_at_file_step(turn, "check.send_file")


async def check(turn: Turn, data: bytes, filename: str) -> None:
    reading = read_certificate_file(data, filename)
    if reading.kind is FileKind.TOO_LARGE:
        await reply_at_file_step(turn, "check.too_large", limit=MAX_FILE_BYTES // 1024)
        return
    if reading.kind is FileKind.PRIVATE_KEY:
        await reply_at_file_step(turn, "check.private_key")
        return
    if reading.certificate is None:
        await reply_at_file_step(turn, "check.not_certificate")
        return
    certificate = reading.certificate
    ca_certificate = turn.services.certificates.ca.certificate
    if certificate == ca_certificate:
        await reply_at_file_step(turn, "check.ca_certificate")
        return
    if not issued_by(certificate, ca_certificate):
        await reply_at_file_step(turn, "check.not_issued_by_us")
        return
    record = await turn.services.certificates.record_of(certificate)
    if record is None:
        log.warning(
            "a certificate signed by this CA is not in the records (serial %s)",
            serial_hex(certificate.serial_number),
        )
        await reply_at_file_step(turn, "check.not_issued_by_us")
        return
    linked = turn.customer_id
    if linked is not None and record.customer_id != linked:
        await reply_at_file_step(turn, "check.not_yours")
        return
    status = record.status(turn.now, turn.services.settings.renewal_window_days)
    assert status is not None  # an issued record always has one
    turn.say("check.heading")
    turn.send(certificate_table(turn, record))
    result = status.value
    turn.data.pop("current_serial", None)
    if linked is not None and status in (CertificateStatus.EXPIRED, CertificateStatus.REVOKED):
        current = await turn.services.certificates.current_of(linked, turn.now)
        if current is not None and current.serial != record.serial:
            result = "replaced"
            turn.data["current_serial"] = current.serial
    turn.data["result"] = result
    await turn.goto(RESULT)


async def ask_next(turn: Turn) -> None:
    key, actions = NEXT_ACTIONS[turn.data["result"]]
    turn.ask(key, [*actions, MENU_OPTION], serial=turn.data.get("current_serial", ""))


FLOW = Flow(
    name="check",
    first_step=FILE,
    steps={FILE: Step(ask_file, on_file), RESULT: Step(ask_next, on_file)},
)


async def check_sent_file(turn: Turn, answer: Input) -> None:
    """A file sent when no flow runs: check it at once, as if 憑證資料檢核 had asked for it."""
    turn.end()
    conversation = turn.conversation
    conversation.flow, conversation.step, conversation.flow_started_at = FLOW.name, FILE, turn.now
    await on_file(turn, answer)
