"""Key generation and PKCS#12 export in worker processes, as `serve` runs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from certcore.audit import Actor
from certcore.core import Core
from certcore.pki import KeyWork, Pkcs12Format, process_pool


@pytest.fixture(scope="module")
def workers():
    pool = process_pool(1)
    yield pool
    pool.shutdown()


async def test_issuance_through_worker_processes(core: Core, workers) -> None:
    core.certificates.keywork = KeyWork(workers)
    issued = await core.certificates.issue(
        "A123456789", "abc123", actor=Actor("operator:test", "cli")
    )
    key, certificate, extra = pkcs12.load_key_and_certificates(issued.pkcs12, b"abc123")
    assert certificate is not None and certificate.serial_number == issued.record.serial_number
    assert key is not None and key.public_key() == certificate.public_key()
    assert [c.subject for c in extra] == [core.ca.certificate.subject]


@pytest.mark.parametrize("fmt", list(Pkcs12Format))
async def test_a_worker_exports_both_formats(core: Core, workers, fmt) -> None:
    key = await KeyWork(workers).generate_key("p256")
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "A123456789")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(core.ca.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(core.ca.key, hashes.SHA256())
    )
    data = await KeyWork(workers).export_pkcs12(
        key=key,
        certificate=certificate,
        ca_certificate=core.ca.certificate,
        password="abc123",
        label="label",
        fmt=fmt,
        kdf_rounds=600_000,
    )
    loaded = pkcs12.load_pkcs12(data, b"abc123")
    assert loaded.key is not None
    assert loaded.cert is not None and loaded.cert.friendly_name == b"label"
