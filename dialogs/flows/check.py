"""憑證資料檢核: the customer sends a certificate file and learns its status and what to do next.

The file (.cer/.crt/.pem/.der, or PEM text pasted into the chat) is read, checked against this
CA (issuer name, authority key identifier and signature) and looked up in the certificate
records; the answer is the portal's table and the next possible action. A certificate the
customer holds is public, so the check works without a linked chat; a linked chat is not shown
another customer's certificate. A .pfx (or any file with a private key in it) is not read at
all: the customer is told not to share it and asked for the certificate file instead.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certcore.pki.authority import serial_hex
from certcore.pki.records import CertificateRecord, RecordState, get_certificate
from certcore.pki.rules import CertificateStatus
from dialogs.flows.common import current_certificate
from dialogs.flows.query import certificate_table
from dialogs.turn import Flow, Input, Step, Turn

log = logging.getLogger("certdesk.dialogs.check")

MAX_FILE_BYTES = 64 * 1024
"""A certificate is 1–2 KiB; anything much larger is not one (and is not read)."""

PRIVATE_KEY_EXTENSIONS = (".pfx", ".p12")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_CERTIFICATE_LABELS = (b"CERTIFICATE", b"X509 CERTIFICATE")
_PKCS7_DATA_OID = bytes.fromhex("06092a864886f70d010701")
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/=\s]+")

FILE, RESULT = "file", "result"


class FileKind(StrEnum):
    CERTIFICATE = "certificate"
    PRIVATE_KEY = "private_key"
    """A PKCS#12 (.pfx/.p12) or a PEM private key: never read, never kept."""
    TOO_LARGE = "too_large"
    NOT_CERTIFICATE = "not_certificate"


@dataclass(frozen=True)
class Reading:
    kind: FileKind
    certificate: x509.Certificate | None = None


def read_certificate_file(data: bytes, filename: str = "") -> Reading:
    """What a file the customer sent is: a certificate (PEM, DER or bare base64), or not."""
    if len(data) > MAX_FILE_BYTES:
        return Reading(FileKind.TOO_LARGE)
    if filename.strip().lower().endswith(PRIVATE_KEY_EXTENSIONS) or _looks_like_pkcs12(data):
        return Reading(FileKind.PRIVATE_KEY)
    blocks = _PEM_BLOCK.findall(data)
    if blocks:
        if any(label.endswith(b"PRIVATE KEY") for label, _ in blocks):
            return Reading(FileKind.PRIVATE_KEY)
        found = [
            certificate
            for label, body in blocks
            if label in _CERTIFICATE_LABELS
            for certificate in [_load_der(_unbase64(body))]
            if certificate is not None
        ]
        # A chain file may put the CA first: the customer's own certificate is the end entity.
        chosen = next((c for c in found if not _is_ca(c)), found[0] if found else None)
        return _reading(chosen)
    certificate = _load_der(data)
    if certificate is None and _BASE64_TEXT.fullmatch(data.strip() or b"-"):
        decoded = _unbase64(data)
        if _looks_like_pkcs12(decoded):
            return Reading(FileKind.PRIVATE_KEY)
        certificate = _load_der(decoded)
    return _reading(certificate)


def _reading(certificate: x509.Certificate | None) -> Reading:
    if certificate is None:
        return Reading(FileKind.NOT_CERTIFICATE)
    return Reading(FileKind.CERTIFICATE, certificate)


def _unbase64(text: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _load_der(data: bytes) -> x509.Certificate | None:
    if not data or data[0] != 0x30:
        return None
    try:
        certificate = x509.load_der_x509_certificate(data)
        certificate.serial_number  # noqa: B018 - parsing is lazy; touch a field to be sure
    except ValueError:
        return None
    return certificate


def _looks_like_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo (pkcs7-data), … }."""
    if len(data) < 16 or data[0] != 0x30:
        return False
    length_octet = data[1]
    offset = 2 if length_octet < 0x80 else 2 + (length_octet & 0x7F)
    return (
        data[offset : offset + 3] == b"\x02\x01\x03"
        and _PKCS7_DATA_OID in data[offset + 3 : offset + 24]
    )


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return constraints.value.ca


def issued_by(certificate: x509.Certificate, ca_certificate: x509.Certificate) -> bool:
    """Whether this CA signed the certificate: the name, the key identifier and the signature."""
    try:
        if certificate.issuer != ca_certificate.subject:
            return False
        try:
            aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
            ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            pass
        else:
            key_id = aki.value.key_identifier
            if key_id is not None and key_id != ski.value.digest:
                return False
        certificate.verify_directly_issued_by(ca_certificate)
    except Exception:  # malformed extensions, unsupported algorithms, a bad signature: not ours
        return False
    return True


# -- the flow ----------------------------------------------------------------------------------


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
    record = await _record_of(turn, certificate)
    if record is None:
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
        current = await current_certificate(turn, linked)
        if current is not None and current.serial != record.serial:
            result = "replaced"
            turn.data["current_serial"] = current.serial
    turn.data["result"] = result
    await turn.goto(RESULT)


async def _record_of(turn: Turn, certificate: x509.Certificate) -> CertificateRecord | None:
    """Our record of a certificate our CA signed; None if we have no such issued certificate."""
    serial = serial_hex(certificate.serial_number)
    async with turn.services.db.read() as conn:
        record = await get_certificate(conn, serial)
    der = certificate.public_bytes(serialization.Encoding.DER)
    if record is None or record.state is not RecordState.ISSUED or record.der != der:
        log.warning("a certificate signed by this CA is not in the records (serial %s)", serial)
        return None
    return record


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
