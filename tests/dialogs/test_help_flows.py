"""The pieces behind 憑證資料檢核 and the help flows that transcripts do not reach one by one:
reading whatever file a customer sends, telling our certificates from look-alikes, and the
message keys the flows keep in tables."""

from __future__ import annotations

import ast
import base64
import re
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from certcore.audit import Actor
from certcore.clock import taipei
from certcore.core import Core
from certcore.i18n import SUPPORTED_LOCALES, translate
from certcore.pki import MAX_FILE_BYTES, FileKind, issued_by, read_certificate_file
from dialogs.flows import check

NOW = taipei(2026, 11, 24, 10)
FLOWS = Path(check.__file__).parent


def _certificate(
    subject: str, *, issuer: x509.Name | None = None, ca: bool = False
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=300))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def test_pem_der_and_bare_base64_are_read() -> None:
    certificate, _ = _certificate("A123456789")
    for data in (_pem(certificate), _der(certificate), base64.encodebytes(_der(certificate))):
        reading = read_certificate_file(data, "mine.cer")
        assert reading.kind is FileKind.CERTIFICATE
        assert reading.certificate == certificate


def test_a_chain_gives_the_customer_certificate_even_after_the_ca() -> None:
    ca, _ = _certificate("Some CA", ca=True)
    leaf, _ = _certificate("A123456789")
    other, _ = _certificate("B123456789")
    data = b"junk before\n" + _pem(ca) + _pem(leaf) + _pem(other)
    assert read_certificate_file(data).certificate == leaf
    assert read_certificate_file(_pem(ca)).certificate == ca


@pytest.mark.parametrize("legacy", [False, True])
def test_a_pkcs12_is_never_read_whatever_its_name(legacy: bool) -> None:
    certificate, key = _certificate("A123456789")
    if legacy:
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())
            .build(b"abc123")
        )
    else:
        encryption = serialization.BestAvailableEncryption(b"abc123")
    pfx = pkcs12.serialize_key_and_certificates(b"x", key, certificate, None, encryption)
    for name in ("A123456789.pfx", "mine.cer", "", "mine.P12"):
        assert read_certificate_file(pfx, name).kind is FileKind.PRIVATE_KEY
    assert read_certificate_file(base64.encodebytes(pfx), "mine.txt").kind is FileKind.PRIVATE_KEY
    assert read_certificate_file(b"garbage", "backup.pfx").kind is FileKind.PRIVATE_KEY


@pytest.mark.parametrize(
    "encryption",
    [serialization.NoEncryption(), serialization.BestAvailableEncryption(b"abc123")],
)
def test_a_pem_with_a_private_key_is_refused(
    encryption: serialization.KeySerializationEncryption,
) -> None:
    certificate, key = _certificate("A123456789")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    assert read_certificate_file(_pem(certificate) + key_pem).kind is FileKind.PRIVATE_KEY
    assert read_certificate_file(key_pem, "key.pem").kind is FileKind.PRIVATE_KEY


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01",
        b"hello",
        b"0\x82\x01\x00" + b"\x00" * 300,
        b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "這不是憑證".encode(),
    ],
)
def test_what_is_not_a_certificate_says_so(data: bytes) -> None:
    assert read_certificate_file(data, "x.cer").kind is FileKind.NOT_CERTIFICATE


def test_a_large_file_is_not_read() -> None:
    certificate, _ = _certificate("A123456789")
    padded = _pem(certificate) + b"\n" * MAX_FILE_BYTES
    assert read_certificate_file(padded).kind is FileKind.TOO_LARGE
    assert read_certificate_file(_pem(certificate) + b"\n" * 100).kind is FileKind.CERTIFICATE


async def test_only_our_signature_makes_a_certificate_ours(core: Core) -> None:
    ca_certificate = core.certificates.ca.certificate
    issued = await core.certificates.issue("A123456789", "abc123", actor=Actor("operator:t", "cli"))
    ours = issued.record.certificate
    assert issued_by(ours, ca_certificate)
    # The same issuer name, signed by another key: a look-alike, not ours.
    lookalike, _ = _certificate("A123456789", issuer=ca_certificate.subject)
    assert not issued_by(lookalike, ca_certificate)
    stranger, _ = _certificate("A123456789")
    assert not issued_by(stranger, ca_certificate)


# -- message keys held in tables -------------------------------------------------------------

AREAS = ("check", "import_help", "environment", "guide", "faq", "settings")
_KEY = re.compile(rf"(?:{'|'.join(AREAS)})\.[a-z_]+(?:\.[a-zA-Z_]+)+")


@pytest.mark.parametrize("area", AREAS)
@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_key_a_flow_names_exists(area: str, locale: str) -> None:
    tree = ast.parse((FLOWS / f"{area}.py").read_text(encoding="utf-8"))
    keys = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _KEY.fullmatch(node.value)
    }
    assert keys, f"no keys found in {area}.py"
    missing = sorted(key for key in keys if translate(locale, key) == key)
    assert missing == []


def test_faq_titles_fit_a_button() -> None:
    """LINE cuts quick-reply labels at 20 characters: the shipped catalogue's titles fit."""
    from dialogs.faq import Faq

    for entry in Faq.load().entries:
        for locale in SUPPORTED_LOCALES:
            assert len(entry.label(locale)) <= 20, (entry.id, locale)
