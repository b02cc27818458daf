"""What certcore itself produces, judged by the tools relying parties use (tests/pkitools.py).

One CertDesk instance (the session's CA, SQLite in a temporary data directory, the process
wiring of `bot.core.Core`) issues, revokes and answers OCSP once per module; the tests then hand
every artefact to OpenSSL, NSS and pkilint. The clock is frozen a few minutes before the real
time rather than on a fixed date: OpenSSL and NSS judge validity against the wall clock, so the
certificates, the CRL and the OCSP responses must be current whenever the suite runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

import certcore.pki.ocsp
from certcore.audit import Actor
from certcore.clock import TAIPEI, FrozenClock, system_clock
from certcore.config import load_settings
from certcore.core import Core
from certcore.identity import personal_id_check_digit
from certcore.pki import (
    CertificateRecord,
    IssuedCertificate,
    OcspResponder,
    Pkcs12Format,
    RevocationReason,
    StatusLookup,
    random_serial,
    refresh_crl_if_due,
)
from certcore.pki.cakey import CAKey, SoftwareRSACAKey
from certcore.pki.ocsp import UNKNOWN_SIGNATURES_PER_SECOND
from tests import pkitools
from tests.conftest import TEST_PASSPHRASE
from tests.ocsprequests import request_for_serial

OPERATOR = Actor("operator:external-test", "cli")
PASSWORD = "Pfx2026test"
HASH_NAMES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


def valid_id(prefix9: str) -> str:
    return prefix9 + personal_id_check_digit(prefix9)


@dataclass
class Artefacts:
    """Everything the module's CertDesk produced, written to files where a tool reads files."""

    workdir: Path
    ca: x509.Certificate
    ca_pem: Path
    issued: dict[str, IssuedCertificate] = field(default_factory=dict)
    cert_pem: dict[str, Path] = field(default_factory=dict)
    pfx: dict[str, Path] = field(default_factory=dict)
    crl_before: Path | None = None
    crl_after: Path | None = None
    revoked_at: dict[str, datetime] = field(default_factory=dict)
    ocsp_responses: dict[tuple[str, str], bytes] = field(default_factory=dict)
    """(certificate kind, hash name) -> DER response from `core.ocsp.respond`."""
    ocsp_errors: dict[str, bytes] = field(default_factory=dict)


def _throwaway_certificate(
    issuer: x509.Certificate, issuer_key: CAKey, serial: int
) -> x509.Certificate:
    """A minimal certificate under `issuer`, for OCSP requests about serials nobody recorded."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC).replace(microsecond=0)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not issued")]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def _foreign_ca(name: x509.Name) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _request(cert: x509.Certificate, issuer: x509.Certificate, algorithm: str) -> bytes:
    request = (
        ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, HASH_NAMES[algorithm]()).build()
    )
    return request.public_bytes(serialization.Encoding.DER)


async def _produce(data_dir: Path, workdir: Path) -> Artefacts:
    settings = load_settings(environ={}, data_dir=data_dir)
    clock = FrozenClock(system_clock().replace(microsecond=0) - timedelta(minutes=10))
    core = await Core.open(
        settings,
        clock=clock,
        rng=random.Random(20261124),
        environ={"CERTDESK_CA_PASSPHRASE": TEST_PASSPHRASE.decode()},
    )
    try:
        ca_pem = workdir / "ca.pem"
        ca_pem.write_bytes(core.ca.pem)
        art = Artefacts(workdir=workdir, ca=core.ca.certificate, ca_pem=ca_pem)

        crl_before = workdir / "before.crl"
        crl_before.write_bytes(await refresh_crl_if_due(core.db, core.ca, settings, clock()))
        art.crl_before = crl_before

        plan = {
            "good": (valid_id("A12345678"), Pkcs12Format.STANDARD),
            "compatible": (valid_id("F23456789"), Pkcs12Format.COMPATIBLE),
            "revoked": (valid_id("B18765432"), Pkcs12Format.STANDARD),
            "no_reason": (valid_id("C20000000"), Pkcs12Format.STANDARD),
        }
        for kind, (customer_id, fmt) in plan.items():
            issued = await core.certificates.issue(customer_id, PASSWORD, actor=OPERATOR, fmt=fmt)
            art.issued[kind] = issued
            art.cert_pem[kind] = pkitools.write_pem(
                issued.record.certificate, workdir / f"{kind}.pem"
            )
            art.pfx[kind] = workdir / f"{kind}.pfx"
            art.pfx[kind].write_bytes(issued.pkcs12)

        clock.advance(minutes=1)
        for kind, reason in (
            ("revoked", RevocationReason.KEY_COMPROMISE),
            ("no_reason", None),
        ):
            record = await core.certificates.revoke(
                art.issued[kind].record.serial, reason, actor=OPERATOR, online=False
            )
            assert record.revoked_at is not None
            art.revoked_at[kind] = record.revoked_at
        crl_after = workdir / "after.crl"
        crl_after.write_bytes(await refresh_crl_if_due(core.db, core.ca, settings, clock()))
        art.crl_after = crl_after

        # A serial the CA never issued, on a certificate carrying the CA's own name and key.
        unknown = _throwaway_certificate(
            core.ca.certificate, core.ca.key, random_serial(random.SystemRandom())
        )
        art.cert_pem["unknown"] = pkitools.write_pem(unknown, workdir / "unknown.pem")
        subjects = {kind: art.issued[kind].record.certificate for kind in plan} | {
            "unknown": unknown
        }
        for kind in ("good", "revoked", "no_reason", "unknown"):
            for algorithm in HASH_NAMES:
                request = _request(subjects[kind], core.ca.certificate, algorithm)
                art.ocsp_responses[kind, algorithm] = await core.ocsp.respond(request)

        other_ca, other_key = _foreign_ca(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Other CA")])
        )
        other_leaf = _throwaway_certificate(
            other_ca, other_key, random_serial(random.SystemRandom())
        )
        art.ocsp_errors["other_issuer"] = await core.ocsp.respond(
            _request(other_leaf, other_ca, "sha256")
        )
        # Same issuer name as ours, different key: the key hash alone must tell them apart.
        twin_ca, twin_key = _foreign_ca(core.ca.certificate.subject)
        twin_leaf = _throwaway_certificate(twin_ca, twin_key, random_serial(random.SystemRandom()))
        art.ocsp_errors["same_name_other_key"] = await core.ocsp.respond(
            _request(twin_leaf, twin_ca, "sha1")
        )
        valid_request = _request(art.issued["good"].record.certificate, core.ca.certificate, "sha1")
        art.ocsp_errors["garbage"] = await core.ocsp.respond(b"this is not an OCSP request")
        art.ocsp_errors["empty"] = await core.ocsp.respond(b"")
        art.ocsp_errors["truncated"] = await core.ocsp.respond(valid_request[:-7])
        return art
    finally:
        await core.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory, _ca_template: Path) -> Artefacts:
    root = tmp_path_factory.mktemp("pki-external")
    data_dir = root / "var"
    shutil.copytree(_ca_template, data_dir)
    workdir = root / "out"
    workdir.mkdir()
    return asyncio.run(_produce(data_dir, workdir))


def _serial(art: Artefacts, kind: str) -> int:
    return art.issued[kind].record.serial_number


# -- certificates ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["good", "compatible"])
def test_issued_certificate_verifies_for_client_auth(pki: Artefacts, kind: str) -> None:
    pkitools.openssl_verify(pki.cert_pem[kind], pki.ca_pem, purpose="sslclient")


def test_issued_certificate_lints_clean(pki: Artefacts) -> None:
    assert pkitools.pkilint_cert(pki.cert_pem["good"]) == []
    assert pkitools.pkilint_chain(pki.ca_pem, pki.cert_pem["good"]) == []


def test_ca_certificate_lints_clean(pki: Artefacts) -> None:
    assert pkitools.pkilint_cert(pki.ca_pem) == []


def test_issued_certificate_profile_as_openssl_reads_it(pki: Artefacts) -> None:
    """Subject, 159-bit serial and the 23:59:59 Taipei end, read by `openssl x509`."""
    proc = pkitools._run(
        [
            "openssl",
            "x509",
            "-in",
            pki.cert_pem["good"],
            "-noout",
            "-subject",
            "-serial",
            "-enddate",
            "-ext",
            "basicConstraints,keyUsage,extendedKeyUsage",
            "-nameopt",
            "RFC2253",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    record = pki.issued["good"].record
    assert f"subject=CN={record.customer_id},OU=" in proc.stdout
    assert ",C=TW" in proc.stdout
    assert f"serial={record.serial}" in proc.stdout
    assert 0 < record.serial_number < 2**159
    end = record.not_after.astimezone(TAIPEI)
    assert (end.hour, end.minute, end.second) == (23, 59, 59)
    assert f"notAfter={end.astimezone(UTC):%b %e %H:%M:%S %Y} GMT" in proc.stdout
    assert "X509v3 Basic Constraints: critical\n    CA:FALSE" in proc.stdout
    assert "X509v3 Key Usage: critical\n    Digital Signature, Non Repudiation" in proc.stdout
    assert "TLS Web Client Authentication" in proc.stdout


# -- PKCS#12 --------------------------------------------------------------------------------


def test_pkcs12_standard_is_aes256_pbkdf2_sha256(pki: Artefacts) -> None:
    raw = pkitools.openssl_pkcs12_info(pki.pfx["good"], PASSWORD)
    info = pkitools.parse_pkcs12_info(raw)
    assert not raw.startswith("(read with -legacy)")
    assert info.mac_hash == "sha256"
    assert info.certificate_bags == 2  # the customer's and the CA's
    parts = dict(info.encryptions)
    assert set(parts) == {"PKCS7 Encrypted data", "Shrouded Keybag"}
    for algorithm in parts.values():
        assert "PBES2, PBKDF2, AES-256-CBC" in algorithm
        assert "PRF hmacWithSHA256" in algorithm
        iterations = int(algorithm.split("Iteration ")[1].split(",")[0])
        assert iterations >= 600_000


def test_pkcs12_compatible_is_3des(pki: Artefacts) -> None:
    raw = pkitools.openssl_pkcs12_info(pki.pfx["compatible"], PASSWORD)
    info = pkitools.parse_pkcs12_info(raw)
    assert not raw.startswith("(read with -legacy)")  # 3DES, not RC2
    assert info.mac_hash == "sha1"
    assert info.certificate_bags == 2
    parts = dict(info.encryptions)
    assert set(parts) == {"PKCS7 Encrypted data", "Shrouded Keybag"}
    for algorithm in parts.values():
        assert algorithm.startswith("pbeWithSHA1And3-KeyTripleDES-CBC")


@pytest.mark.parametrize("kind", ["good", "compatible"])
def test_pkcs12_imports_into_nss_and_is_valid(pki: Artefacts, kind: str, tmp_path: Path) -> None:
    nickname = pkitools.nss_import_and_validate(
        pki.pfx[kind], PASSWORD, tmp_path, ca_pem=pki.ca_pem, usage="C"
    )
    # pk12util names the key after the friendlyName, which is the file's label.
    assert nickname == pki.issued[kind].filename.removesuffix(".pfx")


# -- CRL ------------------------------------------------------------------------------------


def test_crl_before_any_revocation(pki: Artefacts) -> None:
    assert pki.crl_before is not None
    text = pkitools.openssl_crl_text(pki.crl_before, pki.ca_pem)
    assert pkitools.crl_revoked_entries(text) == {}
    assert pkitools.pkilint_crl(pki.crl_before) == []


def test_crl_after_revocation_verifies_and_lists_reasons(pki: Artefacts) -> None:
    assert pki.crl_before is not None and pki.crl_after is not None
    text = pkitools.openssl_crl_text(pki.crl_after, pki.ca_pem)
    entries = pkitools.crl_revoked_entries(text)
    assert entries == {
        _serial(pki, "revoked"): "Key Compromise",
        _serial(pki, "no_reason"): None,  # no reason: the extension is omitted, never unspecified
    }
    assert "X509v3 Authority Key Identifier" in text
    assert "X509v3 CRL Number" in text
    assert pkitools.pkilint_crl(pki.crl_after) == []

    before = x509.load_der_x509_crl(pki.crl_before.read_bytes())
    after = x509.load_der_x509_crl(pki.crl_after.read_bytes())
    number = x509.CRLNumber
    assert (
        after.extensions.get_extension_for_class(number).value.crl_number
        > before.extensions.get_extension_for_class(number).value.crl_number
    )
    assert after.next_update_utc is not None
    assert after.next_update_utc - after.last_update_utc <= timedelta(hours=48)
    entry = after.get_revoked_certificate_by_serial_number(_serial(pki, "revoked"))
    assert entry is not None
    assert entry.revocation_date_utc == pki.revoked_at["revoked"]


def test_openssl_crl_check_rejects_revoked_and_accepts_good(pki: Artefacts) -> None:
    assert pki.crl_after is not None
    pkitools.openssl_verify_revoked(
        pki.cert_pem["revoked"], pki.ca_pem, pki.crl_after, reason="keyCompromise"
    )
    pkitools.openssl_verify(
        pki.cert_pem["no_reason"],
        pki.ca_pem,
        crl_pem=pki.crl_after,
        expect_error="certificate revoked",
    )
    pkitools.openssl_verify(pki.cert_pem["good"], pki.ca_pem, crl_pem=pki.crl_after)


# -- OCSP -----------------------------------------------------------------------------------

EXPECTED_STATUS = {
    "good": ocsp.OCSPCertStatus.GOOD,
    "revoked": ocsp.OCSPCertStatus.REVOKED,
    "no_reason": ocsp.OCSPCertStatus.REVOKED,
    "unknown": ocsp.OCSPCertStatus.UNKNOWN,
}


@pytest.mark.parametrize("algorithm", sorted(HASH_NAMES))
@pytest.mark.parametrize("kind", sorted(EXPECTED_STATUS))
def test_ocsp_response(pki: Artefacts, kind: str, algorithm: str) -> None:
    der = pki.ocsp_responses[kind, algorithm]
    path = pki.workdir / f"ocsp-{kind}-{algorithm}.der"
    path.write_bytes(der)
    assert pkitools.pkilint_ocsp_response(path) == []

    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is EXPECTED_STATUS[kind]
    assert isinstance(response.hash_algorithm, HASH_NAMES[algorithm])
    expected_serial = x509.load_pem_x509_certificate(pki.cert_pem[kind].read_bytes()).serial_number
    assert response.serial_number == expected_serial
    ca_public_key, hash_algorithm = pki.ca.public_key(), response.signature_hash_algorithm
    assert isinstance(ca_public_key, rsa.RSAPublicKey)
    assert hash_algorithm is not None
    ca_public_key.verify(
        response.signature, response.tbs_response_bytes, padding.PKCS1v15(), hash_algorithm
    )
    assert response.next_update_utc is not None
    assert response.this_update_utc < response.next_update_utc
    if kind == "revoked":
        assert response.revocation_time_utc == pki.revoked_at["revoked"]
        assert response.revocation_reason is x509.ReasonFlags.key_compromise
    elif kind == "no_reason":
        assert response.revocation_time_utc == pki.revoked_at["no_reason"]
        assert response.revocation_reason is None
    else:
        assert response.revocation_time_utc is None

    # OpenSSL, as the order system: the response verifies and answers the exact CertID.
    status, output = pkitools.openssl_ocsp_respin(
        path, pki.cert_pem[kind], pki.ca_pem, sha256=algorithm == "sha256"
    )
    assert status == EXPECTED_STATUS[kind].name.lower()
    if kind == "revoked":
        assert "Reason: keyCompromise" in output


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("other_issuer", ocsp.OCSPResponseStatus.UNAUTHORIZED),
        ("same_name_other_key", ocsp.OCSPResponseStatus.UNAUTHORIZED),
        ("garbage", ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        ("empty", ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        ("truncated", ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
    ],
)
def test_ocsp_error_responses(pki: Artefacts, case: str, expected: ocsp.OCSPResponseStatus) -> None:
    response = ocsp.load_der_ocsp_response(pki.ocsp_errors[case])
    assert response.response_status is expected


# -- OCSP answers racing a revocation -------------------------------------------------------
# A lookup that read the record before a revocation must not leave its "good" in the cache:
# the cache would serve it until nextUpdate, long after the CRL says revoked.


def _fresh_responder(core: Core, lookup: StatusLookup) -> OcspResponder:
    return OcspResponder(
        core.ca,
        lookup,
        core.clock,
        validity=timedelta(hours=core.settings.ocsp_validity_hours),
        refresh_margin=timedelta(hours=core.settings.ocsp_refresh_margin_hours),
    )


@pytest.mark.parametrize("revoked_by", ["another process", "this process"])
async def test_ocsp_answer_racing_a_revocation_is_not_cached(core: Core, revoked_by: str) -> None:
    issued = await core.certificates.issue(valid_id("D21234567"), PASSWORD, actor=OPERATOR)
    serial = issued.record.serial
    request = _request(issued.record.certificate, core.ca.certificate, "sha1")
    database_lookup = core.ocsp.lookup
    racing = True

    async def lookup(number: int) -> CertificateRecord | None:
        nonlocal racing
        record = await database_lookup(number)
        if racing:  # the revocation lands between this read and the signing
            racing = False
            await core.certificates.revoke(
                serial, RevocationReason.KEY_COMPROMISE, actor=OPERATOR, online=False
            )
            if revoked_by == "another process":
                responder.observe_crl_number(2)  # what the server's watcher does
        return record

    responder = _fresh_responder(core, lookup)
    responder.observe_crl_number(1)
    if revoked_by == "this process":
        core.certificates.ocsp = responder  # revoke() re-signs this responder's answers
    first = ocsp.load_der_ocsp_response(await responder.respond(request))
    assert first.certificate_status is ocsp.OCSPCertStatus.GOOD  # true when it was read
    second = ocsp.load_der_ocsp_response(await responder.respond(request))
    assert second.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert second.revocation_reason is x509.ReasonFlags.key_compromise


# -- OCSP for serials no record holds -------------------------------------------------------
# Anyone can ask about a new serial every time, and each "unknown" costs a signature on the
# event loop: those answers are kept per serial and signed within a budget a second, the rest
# answered "tryLater" unsigned, while answers about real certificates are never rationed.


class CountingKey(SoftwareRSACAKey):
    """The CA's key, counting the signatures made with it."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        super().__init__(key)
        self.signatures = 0

    def sign(
        self,
        data: bytes,
        padding: padding.AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | NoDigestInfo,
    ) -> bytes:
        self.signatures += 1
        return super().sign(data, padding, algorithm)


def _counting_responder(core: Core) -> tuple[OcspResponder, CountingKey]:
    assert isinstance(core.ca.key, rsa.RSAPrivateKey)
    key = CountingKey(core.ca.key)
    responder = _fresh_responder(core, core.ocsp.lookup)
    responder.ca = dataclasses.replace(core.ca, key=key)
    responder.observe_crl_number(1)
    return responder, key


def _status(der: bytes) -> ocsp.OCSPResponseStatus:
    return ocsp.load_der_ocsp_response(der).response_status


@pytest.mark.parametrize("serial", [-1, -(2**100), 0])
async def test_ocsp_request_for_a_serial_that_is_not_positive_is_malformed(
    core: Core, serial: int, caplog: pytest.LogCaptureFixture
) -> None:
    issued = await core.certificates.issue(valid_id("E21234567"), PASSWORD, actor=OPERATOR)
    template = _request(issued.record.certificate, core.ca.certificate, "sha1")
    answer = await core.ocsp.respond(request_for_serial(template, serial))
    assert _status(answer) is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_ocsp_flood_of_unknown_serials_signs_within_a_budget(
    core: Core, clock: FrozenClock
) -> None:
    issued = await core.certificates.issue(valid_id("E22345678"), PASSWORD, actor=OPERATOR)
    responder, key = _counting_responder(core)
    await responder.prewarm([issued.record])
    known = _request(issued.record.certificate, core.ca.certificate, "sha1")
    rng = random.Random(6960)
    serials = [rng.randrange(1, 2**159) for _ in range(1000)]
    key.signatures = 0

    answers = [await responder.respond(request_for_serial(known, s)) for s in serials]
    statuses = [_status(answer) for answer in answers]
    assert key.signatures == UNKNOWN_SIGNATURES_PER_SECOND
    signed = statuses.count(ocsp.OCSPResponseStatus.SUCCESSFUL)
    assert signed == UNKNOWN_SIGNATURES_PER_SECOND
    assert statuses.count(ocsp.OCSPResponseStatus.TRY_LATER) == len(serials) - signed
    first = ocsp.load_der_ocsp_response(answers[0])
    assert first.certificate_status is ocsp.OCSPCertStatus.UNKNOWN

    # Meanwhile a real certificate is answered from its pre-signed response, and an unknown
    # serial already answered from its kept one: neither needs a signature.
    good = ocsp.load_der_ocsp_response(await responder.respond(known))
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert await responder.respond(request_for_serial(known, serials[0])) == answers[0]
    assert key.signatures == UNKNOWN_SIGNATURES_PER_SECOND

    clock.advance(seconds=1)  # a new second, a new budget
    again = await responder.respond(request_for_serial(known, serials[-1]))
    assert ocsp.load_der_ocsp_response(again).certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    assert key.signatures == UNKNOWN_SIGNATURES_PER_SECOND + 1


async def test_ocsp_unknown_answers_kept_are_bounded_least_recent_out(
    core: Core, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(certcore.pki.ocsp, "MAX_CACHED_UNKNOWN", 3)
    issued = await core.certificates.issue(valid_id("E23456789"), PASSWORD, actor=OPERATOR)
    responder, key = _counting_responder(core)
    await responder.prewarm([issued.record])
    known = _request(issued.record.certificate, core.ca.certificate, "sha1")
    for serial in (11, 12, 13, 11, 14):  # 11 asked again: 12 is the least recent when 14 comes
        await responder.respond(request_for_serial(known, serial))
    key.signatures = 0
    for serial in (11, 13, 14):
        await responder.respond(request_for_serial(known, serial))
    assert key.signatures == 0
    await responder.respond(request_for_serial(known, 12))
    assert key.signatures == 1
    good = ocsp.load_der_ocsp_response(await responder.respond(known))
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert key.signatures == 1  # the real certificate's answer was not pushed out


@pytest.mark.parametrize("seen_by", ["the CRL number", "a refresh here"])
async def test_ocsp_unknown_racing_a_change_is_not_kept(core: Core, seen_by: str) -> None:
    """An "unknown" read just before the record changed is served once, never kept."""
    issued = await core.certificates.issue(valid_id("E24567890"), PASSWORD, actor=OPERATOR)
    # SHA-384 is not pre-signed: a second answer comes from what was kept or from a new lookup.
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(issued.record.certificate, core.ca.certificate, hashes.SHA384())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    database_lookup = core.ocsp.lookup
    racing = True

    async def lookup(number: int) -> CertificateRecord | None:
        nonlocal racing
        if racing:  # read before the record was there; it lands before the answer is signed
            racing = False
            if seen_by == "the CRL number":
                responder.observe_crl_number(2)
            else:
                await responder.refresh(number)
            return None
        return await database_lookup(number)

    responder = _fresh_responder(core, lookup)
    responder.observe_crl_number(1)
    first = ocsp.load_der_ocsp_response(await responder.respond(request))
    assert first.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    second = ocsp.load_der_ocsp_response(await responder.respond(request))
    assert second.certificate_status is ocsp.OCSPCertStatus.GOOD
