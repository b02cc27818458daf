"""The PEM search of 憑證資料檢核 (`certcore.pki.inspection`): the same blocks as the regular
expression it replaced, in time linear in the file, and only a few certificate blocks parsed.

The expression `-----BEGIN (L)-----(.*?)-----END \\1-----` searched the rest of the file again
from every BEGIN: 64 KB of `-----BEGIN A-----` held the event loop for 1.6 s, and the time grew
with the square of the size.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from certcore.clock import taipei
from certcore.pki import MAX_FILE_BYTES, FileKind, inspection, read_certificate_file
from certcore.pki.inspection import MAX_PEM_BLOCKS, pem_blocks

OLD_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
"""What `pem_blocks` replaced, as the reference for which blocks a file holds."""

PIECES = [
    b"-----BEGIN A-----",
    b"-----END A-----",
    b"-----BEGIN CERTIFICATE-----",
    b"-----END CERTIFICATE-----",
    b"-----BEGIN PRIVATE KEY-----",
    b"-----END PRIVATE KEY-----",
    b"-----",
    b"BEGIN ",
    b"END ",
    b"A",
    b"-",
    b" ",
    b"\n",
    b"MIIB",
]


@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_the_same_blocks_as_the_regular_expression(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert pem_blocks(data) == OLD_PEM_BLOCK.findall(data)


def _pem_certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "A123456789")])
    now = taipei(2026, 11, 24, 10)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=300))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    "filler",
    [b"-----BEGIN A-----", b"-----BEGIN A-----\n-----END B-----\n"],
    ids=["unclosed BEGINs", "mismatched ENDs"],
)
def test_a_pathological_file_is_searched_in_linear_time(
    filler: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four times the size limit (so the old search took about 30 s here, the new a few
    milliseconds): the generous bound only catches a search that is not linear."""
    monkeypatch.setattr(inspection, "MAX_FILE_BYTES", 8 * MAX_FILE_BYTES)
    certificate = _pem_certificate()
    data = filler * (4 * MAX_FILE_BYTES // len(filler)) + b"\n" + certificate
    started = time.perf_counter()
    reading = read_certificate_file(data)
    elapsed = time.perf_counter() - started
    assert reading.kind is FileKind.CERTIFICATE
    assert elapsed < 5.0


def test_a_file_at_the_size_limit_of_begin_lines_is_not_a_certificate() -> None:
    filler = b"-----BEGIN A-----"
    data = filler * (MAX_FILE_BYTES // len(filler))
    assert read_certificate_file(data).kind is FileKind.NOT_CERTIFICATE


def test_only_the_first_certificate_blocks_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of tiny certificate blocks fit in 64 KB; a chain file holds two or three."""
    parsed: list[bytes] = []
    load_der = inspection._load_der

    def counting(data: bytes) -> x509.Certificate | None:
        parsed.append(data)
        return load_der(data)

    monkeypatch.setattr(inspection, "_load_der", counting)
    tiny = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    data = tiny * (MAX_FILE_BYTES // len(tiny))
    assert read_certificate_file(data).kind is FileKind.NOT_CERTIFICATE
    assert len(parsed) <= MAX_PEM_BLOCKS
    parsed.clear()
    certificate = _pem_certificate()
    assert read_certificate_file(tiny * 3 + certificate).kind is FileKind.CERTIFICATE
