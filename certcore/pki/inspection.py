"""What a file a customer sends is, and whether this CA issued the certificate in it.

Customers send what they have: a .cer/.crt (PEM or DER), bare base64 pasted into a chat, a
chain file with the CA first, or by mistake their .pfx. The chat flow 憑證資料檢核 reads files
here, and so will the channels' file uploads (LINE file messages, Telegram documents), so the
rules are one: a file that holds a private key is never read, only recognised, and a
certificate counts as ours only when the issuer name, the key identifier and the signature all
match this CA.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509

MAX_FILE_BYTES = 64 * 1024
"""A certificate is 1–2 KiB; anything much larger is not one (and is not read)."""

MAX_PEM_BLOCKS = 8
"""Certificate blocks of a PEM file that are decoded and parsed: a chain file holds two or
three; the rest of a file of thousands of tiny blocks is not read."""

PRIVATE_KEY_EXTENSIONS = (".pfx", ".p12")
_PEM_MARKER = re.compile(rb"(?=(-----(BEGIN|END) ([A-Z0-9 ]{1,64})-----))")
"""Every BEGIN or END line, overlapping ones too (`-----BEGIN A-----BEGIN B-----`)."""
_CERTIFICATE_LABELS = (b"CERTIFICATE", b"X509 CERTIFICATE")
_PKCS7_DATA_OID = bytes.fromhex("06092a864886f70d010701")
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/=\s]+")


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
    blocks = pem_blocks(data)
    if blocks:
        if any(label.endswith(b"PRIVATE KEY") for label, _ in blocks):
            return Reading(FileKind.PRIVATE_KEY)
        bodies = [body for label, body in blocks if label in _CERTIFICATE_LABELS]
        found = [
            certificate
            for body in bodies[:MAX_PEM_BLOCKS]
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


def pem_blocks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (label, body) of every `-----BEGIN L-----` … `-----END L-----` block, in order.

    A BEGIN's block ends at the first END with its label; what lies between (another BEGIN
    among it) is its body, and a BEGIN with no such END opens no block. One pass finds the
    markers, and each label's ENDs are walked once, so the time is linear in the file: the
    regular expression this replaces searched the rest of the file again from every BEGIN,
    and 64 KB of `-----BEGIN A-----` held the event loop for over a second.
    """
    markers = [(m.start(), m.end(1), m.group(2), m.group(3)) for m in _PEM_MARKER.finditer(data)]
    ends: dict[bytes, list[tuple[int, int]]] = {}
    for start, end, kind, label in markers:
        if kind == b"END":
            ends.setdefault(label, []).append((start, end))
    next_end = dict.fromkeys(ends, 0)
    blocks: list[tuple[bytes, bytes]] = []
    position = 0
    for start, end, kind, label in markers:
        if kind != b"BEGIN" or start < position or label not in ends:
            continue
        candidates, index = ends[label], next_end[label]
        while index < len(candidates) and candidates[index][0] < end:
            index += 1
        next_end[label] = index
        if index == len(candidates):
            continue
        end_start, end_end = candidates[index]
        blocks.append((label, data[end:end_start]))
        position = end_end
    return blocks


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
