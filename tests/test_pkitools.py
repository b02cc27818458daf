"""A reference CertDesk hierarchy (DESIGN §4), built with ``cryptography`` only, judged by the
real tools through ``tests/pkitools.py``.

This is both the test of the helpers and the proof that the §4 profile is acceptable to OpenSSL,
NSS and pkilint (no finding at ``-s WARNING``). The builders below are deliberately plain so the
CA code can be compared with them line by line.

Profile changes pkilint forced (see ``test_uuid_policy_oid_is_fatal_for_pkilint``):

* the certificate-policy OID must not be ``2.25.<UUID as integer>``: pkilint 0.13's DER decoder
  (pyasn1-fasder) rejects any OID arc above 32 bits with a FATAL ``itu.invalid_asn1_syntax``;
  the reference uses RFC 7229's test policy ``1.3.6.1.5.5.7.13.1`` (a production deployment
  uses an OID under the broker's own arc, every arc < 2**32).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from tests import pkitools

TAIPEI = ZoneInfo("Asia/Taipei")
BROKER = "Example Securities Co., Ltd."
RA_NAME = "Example Securities RA"
BASE_URL = "http://127.0.0.1:8080"
#: RFC 7229 id-TEST-certPolicyOne. NOT 2.25.<uuid>: see the module docstring.
POLICY_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.13.1")
PASSWORD = "Abc123xyz"  # matches the export-password rule ^[A-Za-z0-9]{4,12}$
CUSTOMER_ID = "A123456789"


# --------------------------------------------------------------------------------------------
# the reference profile


def _key_usage(**set_bits: bool) -> x509.KeyUsage:
    bits = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    bits.update(set_bits)
    return x509.KeyUsage(**bits)


def build_ca(key: rsa.RSAPrivateKey, now: dt.datetime) -> x509.Certificate:
    """Self-signed issuing CA: RSA-3072, pathlen 0, keyCertSign + cRLSign + digitalSignature.

    digitalSignature is there because the CA signs OCSP responses itself (no delegated
    responder), so openssl/NSS see a CA key used for plain signatures.
    """
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, BROKER),
            x509.NameAttribute(NameOID.COMMON_NAME, "Example Securities Client CA"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def taipei_not_after(issued: dt.datetime) -> dt.datetime:
    """One year of validity ending 23:59:59 Asia/Taipei (15:59:59Z) on the last day."""
    local = issued.astimezone(TAIPEI)
    try:
        last = local.replace(year=local.year + 1)
    except ValueError:  # 29 February
        last = local.replace(year=local.year + 1, day=28)
    return last.replace(hour=23, minute=59, second=59, microsecond=0).astimezone(dt.UTC)


def random_serial_159() -> int:
    """Exactly 159 random bits: positive, 20 DER octets, top bit forced so the length is fixed."""
    return secrets.randbits(158) | (1 << 158)


def build_customer_cert(
    ca: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    key: rsa.RSAPrivateKey,
    now: dt.datetime,
    *,
    customer_id: str = CUSTOMER_ID,
    serial: int | None = None,
    policy_oid: x509.ObjectIdentifier = POLICY_OID,
) -> x509.Certificate:
    """The §4 customer certificate."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, BROKER),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, RA_NAME),
            x509.NameAttribute(NameOID.COMMON_NAME, customer_id),
        ]
    )
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    uri = x509.UniformResourceIdentifier
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else random_serial_159())
        .not_valid_before(now)
        .not_valid_after(taipei_not_after(now))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([uri(f"{BASE_URL}/crl")], None, None, None)]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, uri(f"{BASE_URL}/ocsp")
                    ),
                    # RFC 5280 4.2.2.1: an HTTP caIssuers URI must serve a DER certificate (or a
                    # certs-only CMS). pkilint does not look at the URI's target, so /ca.pem passes;
                    # whatever the name, the endpoint must answer with DER (/ca.cer says so).
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS, uri(f"{BASE_URL}/ca.pem")
                    ),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(policy_oid, None)]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def build_crl(
    ca: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    now: dt.datetime,
    revoked: list[tuple[int, dt.datetime, x509.ReasonFlags]],
    number: int,
) -> x509.CertificateRevocationList:
    """DER CRL: CRLNumber, AKI, nextUpdate 24 h (DESIGN: at most 48 h), reason per entry."""
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(hours=24))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    for serial, when, reason in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(when)
            .add_extension(x509.CRLReason(reason), critical=False)
            .build()
        )
    return builder.sign(ca_key, hashes.SHA256())


def build_ocsp_response(
    ca: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    now: dt.datetime,
    *,
    status: ocsp.OCSPCertStatus,
    cert_id_hash: hashes.HashAlgorithm,
    revoked: tuple[dt.datetime, x509.ReasonFlags] | None = None,
    signer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
) -> bytes:
    """Pre-signed basic OCSP response, signed by the CA itself, responderID byKey."""
    signer_cert, signer_key = signer if signer is not None else (ca, ca_key)
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert,
        issuer=ca,
        algorithm=cert_id_hash,
        cert_status=status,
        this_update=now,
        next_update=now + dt.timedelta(hours=24),
        revocation_time=revoked[0] if revoked else None,
        revocation_reason=revoked[1] if revoked else None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
    return builder.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def pfx_label(cert: x509.Certificate) -> str:
    """friendlyName = the file's label, ``{ID}-{ISSUER_TAG}({expiry date})``."""
    expiry = cert.not_valid_after_utc.astimezone(TAIPEI)
    return f"{CUSTOMER_ID}-EXSEC({expiry:%Y%m%d})"


def build_pfx(
    key: rsa.RSAPrivateKey, cert: x509.Certificate, ca: x509.Certificate, *, compatible: bool
) -> bytes:
    """Standard: PBES2/PBKDF2-HMAC-SHA256 600,000 rounds/AES-256-CBC, SHA-256 MAC.
    Compatible: pbeWithSHA1And3-KeyTripleDES-CBC (cryptography's default 20,000 rounds), SHA-1
    MAC. Both carry the CA certificate and the friendlyName."""
    builder = serialization.PrivateFormat.PKCS12.encryption_builder()
    if compatible:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        builder = builder.hmac_hash(hashes.SHA1())
    else:
        builder = builder.kdf_rounds(600_000)
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        builder = builder.hmac_hash(hashes.SHA256())
    return pkcs12.serialize_key_and_certificates(
        pfx_label(cert).encode(), key, cert, [ca], builder.build(PASSWORD.encode())
    )


# --------------------------------------------------------------------------------------------
# fixtures


@dataclass
class Pki:
    dir: Path
    now: dt.datetime
    ca_key: rsa.RSAPrivateKey
    key: rsa.RSAPrivateKey
    ca: x509.Certificate
    good: x509.Certificate
    revoked: x509.Certificate
    stranger: x509.Certificate  # signed by the CA, never recorded: OCSP says "unknown"
    ca_pem: Path
    good_pem: Path
    good_der: Path
    revoked_pem: Path
    stranger_pem: Path
    crl_der: Path
    std_p12: Path
    compat_p12: Path
    #: (hash name, serial) -> DER OCSP response, as a CertDesk responder would cache them
    ocsp: dict[tuple[str, int], bytes] = field(default_factory=dict)
    ocsp_files: dict[str, Path] = field(default_factory=dict)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_key = rsa.generate_private_key(65537, 3072)
    key = rsa.generate_private_key(65537, 2048)  # one customer key pair is enough for the checks
    ca = build_ca(ca_key, now)
    good = build_customer_cert(ca, ca_key, key, now)
    revoked = build_customer_cert(ca, ca_key, key, now)
    stranger = build_customer_cert(ca, ca_key, key, now, customer_id="B123456780")
    revoked_at = now - dt.timedelta(minutes=1)
    crl = build_crl(
        ca, ca_key, now, [(revoked.serial_number, revoked_at, x509.ReasonFlags.key_compromise)], 1
    )
    p = Pki(
        dir=d,
        now=now,
        ca_key=ca_key,
        key=key,
        ca=ca,
        good=good,
        revoked=revoked,
        stranger=stranger,
        ca_pem=pkitools.write_pem(ca, d / "ca.pem"),
        good_pem=pkitools.write_pem(good, d / "good.pem"),
        good_der=pkitools.write_der(good, d / "good.cer"),
        revoked_pem=pkitools.write_pem(revoked, d / "revoked.pem"),
        stranger_pem=pkitools.write_pem(stranger, d / "stranger.pem"),
        crl_der=pkitools.write_der(crl, d / "ca.crl"),
        std_p12=d / "standard.pfx",
        compat_p12=d / "compatible.pfx",
    )
    p.std_p12.write_bytes(build_pfx(key, good, ca, compatible=False))
    p.compat_p12.write_bytes(build_pfx(key, good, ca, compatible=True))
    for algo in (hashes.SHA1(), hashes.SHA256()):
        for name, cert, status, rev in (
            ("good", good, ocsp.OCSPCertStatus.GOOD, None),
            (
                "revoked",
                revoked,
                ocsp.OCSPCertStatus.REVOKED,
                (revoked_at, x509.ReasonFlags.key_compromise),
            ),
            ("unknown", stranger, ocsp.OCSPCertStatus.UNKNOWN, None),
        ):
            der = build_ocsp_response(
                ca, ca_key, cert, now, status=status, cert_id_hash=algo, revoked=rev
            )
            p.ocsp[(algo.name, cert.serial_number)] = der
            path = d / f"{name}-{algo.name}.ocsp"
            path.write_bytes(der)
            p.ocsp_files[f"{name}-{algo.name}"] = path
    return p


@pytest.fixture(scope="module")
def ocsp_url(pki: Pki) -> Iterator[str]:
    """A loopback RFC 6960 POST responder serving the pre-signed responses by CertID."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            req = ocsp.load_der_ocsp_request(body)
            der = pki.ocsp.get((req.hash_algorithm.name, req.serial_number))
            if der is None:
                der = ocsp.OCSPResponseBuilder.build_unsuccessful(
                    ocsp.OCSPResponseStatus.UNAUTHORIZED
                ).public_bytes(serialization.Encoding.DER)
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Length", str(len(der)))
            self.end_headers()
            self.wfile.write(der)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ocsp"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# the profile as built


def test_reference_profile_shape(pki: Pki) -> None:
    cert = pki.good
    assert cert.serial_number.bit_length() == 159
    assert cert.not_valid_after_utc.astimezone(TAIPEI).time() == dt.time(23, 59, 59)
    assert cert.not_valid_after_utc.time() == dt.time(15, 59, 59)
    public_key, ca_public_key = cert.public_key(), pki.ca.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size == 2048
    assert isinstance(ca_public_key, rsa.RSAPublicKey)
    assert ca_public_key.key_size == 3072


# --------------------------------------------------------------------------------------------
# OpenSSL


def test_openssl_verify_sslclient(pki: Pki) -> None:
    proc = pkitools.openssl_verify(pki.good_pem, pki.ca_pem)
    assert proc.stdout.strip() == f"{pki.good_pem}: OK"
    pkitools.openssl_verify(pki.good_pem, pki.ca_pem, crl_pem=pki.crl_der)


def test_openssl_verify_failure_is_readable(pki: Pki) -> None:
    with pytest.raises(AssertionError, match="unsuitable certificate purpose"):
        pkitools.openssl_verify(pki.good_pem, pki.ca_pem, purpose="sslserver")
    with pytest.raises(AssertionError, match="was expected to fail"):
        pkitools.openssl_verify(pki.good_pem, pki.ca_pem, expect_error="certificate revoked")


def test_openssl_verify_expiry_is_taipei_midnight(pki: Pki) -> None:
    not_after = pki.good.not_valid_after_utc
    pkitools.openssl_verify(pki.good_pem, pki.ca_pem, at_time=not_after - dt.timedelta(seconds=1))
    # RFC 5280 makes notAfter inclusive, but OpenSSL's X509_cmp_time treats "equal" as expired:
    # at 23:59:59 Taipei exactly the certificate is already expired for the order system.
    pkitools.openssl_verify(
        pki.good_pem, pki.ca_pem, at_time=not_after, expect_error="certificate has expired"
    )


def test_openssl_crl(pki: Pki) -> None:
    text = pkitools.openssl_crl_text(pki.crl_der, pki.ca_pem)
    assert "X509v3 CRL Number" in text
    assert "X509v3 Authority Key Identifier" in text
    assert pkitools.crl_revoked_entries(text) == {pki.revoked.serial_number: "Key Compromise"}


def test_openssl_rejects_revoked(pki: Pki) -> None:
    proc = pkitools.openssl_verify_revoked(
        pki.revoked_pem, pki.ca_pem, pki.crl_der, reason=x509.ReasonFlags.key_compromise
    )
    assert "error 23" in proc.stdout + proc.stderr
    with pytest.raises(AssertionError, match="has reason 'Key Compromise', expected 'Superseded'"):
        pkitools.openssl_verify_revoked(
            pki.revoked_pem, pki.ca_pem, pki.crl_der, reason="superseded"
        )
    # a CRL past its nextUpdate fails -crl_check even for a good certificate
    pkitools.openssl_verify(
        pki.good_pem,
        pki.ca_pem,
        crl_pem=pki.crl_der,
        at_time=pki.now + dt.timedelta(hours=24, seconds=1),
        expect_error="CRL has expired",
    )


def test_openssl_pkcs12_standard(pki: Pki) -> None:
    text = pkitools.openssl_pkcs12_info(pki.std_p12, PASSWORD)
    info = pkitools.parse_pkcs12_info(text)
    assert "(read with -legacy)" not in text
    assert info.mac_hash == "sha256"
    assert info.certificate_bags == 2  # customer + CA
    assert [e[0] for e in info.encryptions] == ["PKCS7 Encrypted data", "Shrouded Keybag"]
    for _, algo in info.encryptions:
        assert algo == "PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256"
    # cryptography has no knob for the MAC's own PKCS#12-KDF iteration count: it is 2048, far
    # below the 600,000 PBKDF2 rounds. A password guess can be checked against the MAC alone.
    assert info.mac_iterations >= 2048


def test_openssl_pkcs12_compatible_needs_no_legacy_flag(pki: Pki) -> None:
    text = pkitools.openssl_pkcs12_info(pki.compat_p12, PASSWORD)
    info = pkitools.parse_pkcs12_info(text)
    assert "(read with -legacy)" not in text  # 3DES is still in OpenSSL 3's default provider
    assert info.mac_hash == "sha1"
    assert info.certificate_bags == 2
    for _, algo in info.encryptions:
        assert algo.startswith("pbeWithSHA1And3-KeyTripleDES-CBC, Iteration ")


def test_openssl_pkcs12_wrong_password(pki: Pki) -> None:
    with pytest.raises(AssertionError) as exc:
        pkitools.openssl_pkcs12_info(pki.std_p12, "Wrong1234")
    assert "Wrong1234" not in str(exc.value)  # masked


def test_openssl_ocsp_respin(pki: Pki) -> None:
    for name, pem, want in (
        ("good", pki.good_pem, "good"),
        ("revoked", pki.revoked_pem, "revoked"),
        ("unknown", pki.stranger_pem, "unknown"),
    ):
        for algo, sha256 in (("sha1", False), ("sha256", True)):
            status, out = pkitools.openssl_ocsp_respin(
                pki.ocsp_files[f"{name}-{algo}"], pem, pki.ca_pem, sha256=sha256
            )
            assert status == want, out
    _, out = pkitools.openssl_ocsp_respin(
        pki.ocsp_files["revoked-sha1"], pki.revoked_pem, pki.ca_pem
    )
    assert "Reason: keyCompromise" in out


def test_openssl_ocsp_rejects_bad_responses(pki: Pki, tmp_path: Path) -> None:
    # a SHA-1 CertID answer to a SHA-256 question
    with pytest.raises(AssertionError, match="No Status found"):
        pkitools.openssl_ocsp_respin(
            pki.ocsp_files["good-sha1"], pki.good_pem, pki.ca_pem, sha256=True
        )
    # signed by a key that is neither the CA nor a delegated responder
    forged = tmp_path / "forged.ocsp"
    forged.write_bytes(
        build_ocsp_response(
            pki.ca,
            pki.ca_key,
            pki.good,
            pki.now,
            status=ocsp.OCSPCertStatus.GOOD,
            cert_id_hash=hashes.SHA1(),
            signer=(pki.good, pki.key),
        )
    )
    with pytest.raises(AssertionError, match="did not get a verified response"):
        pkitools.openssl_ocsp_respin(forged, pki.good_pem, pki.ca_pem)


def test_openssl_ocsp_query_over_http(pki: Pki, ocsp_url: str) -> None:
    for pem, want in (
        (pki.good_pem, "good"),
        (pki.revoked_pem, "revoked"),
        (pki.stranger_pem, "unknown"),
    ):
        for sha256 in (False, True):
            status, out = pkitools.openssl_ocsp_query(ocsp_url, pem, pki.ca_pem, sha256=sha256)
            assert status == want, out


# --------------------------------------------------------------------------------------------
# NSS


@pytest.mark.parametrize("which", ["std_p12", "compat_p12"])
def test_nss_import_and_validate(pki: Pki, tmp_path: Path, which: str) -> None:
    nick = pkitools.nss_import_and_validate(
        getattr(pki, which), PASSWORD, tmp_path, ca_pem=pki.ca_pem
    )
    assert nick == pfx_label(pki.good)  # pk12util names the key+cert after the friendlyName
    certs = pkitools.nss_list_certs(tmp_path / "nssdb")
    # the CA came from the file; the anchor import only set its trust, keeping NSS's nickname
    assert certs == {nick: "u,u,u", f"Example Securities Client CA - {BROKER}": "CT,C,C"}


def test_nss_wrong_password(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="SEC_ERROR_BAD_PASSWORD"):
        pkitools.nss_import_and_validate(pki.std_p12, "Wrong1234", tmp_path, ca_pem=pki.ca_pem)


# --------------------------------------------------------------------------------------------
# pkilint


def test_pkilint_certificates_clean(pki: Pki) -> None:
    assert pkitools.pkilint_cert(pki.good_pem) == []
    assert pkitools.pkilint_cert(pki.good_der) == []
    assert pkitools.pkilint_cert(pki.ca_pem) == []
    assert pkitools.pkilint_chain(pki.ca_pem, pki.good_pem) == []


def test_pkilint_crl_clean(pki: Pki) -> None:
    assert pkitools.pkilint_crl(pki.crl_der) == []


def test_pkilint_ocsp_responses_clean(pki: Pki) -> None:
    for name, path in pki.ocsp_files.items():
        assert pkitools.pkilint_ocsp_response(path) == [], name


def test_pkilint_reports_findings(pki: Pki) -> None:
    # INFO is below the WARNING threshold the profile is held to, but proves findings surface
    findings = pkitools.pkilint_cert(pki.good_pem, severity="INFO")
    assert findings == [
        "INFO pkix.subject_key_identifier_method_1_identified @ "
        "certificate.tbsCertificate.extensions.3.extnValue.subjectKeyIdentifier "
        "[SubjectKeyIdentifierValidator]"
    ]


def test_uuid_policy_oid_is_fatal_for_pkilint(pki: Pki, tmp_path: Path) -> None:
    """Why the reference does not use 2.25.<uuid>: pkilint cannot decode arcs over 32 bits."""
    oid = x509.ObjectIdentifier(f"2.25.{uuid.uuid4().int}")
    cert = build_customer_cert(pki.ca, pki.ca_key, pki.key, pki.now, policy_oid=oid)
    findings = pkitools.pkilint_cert(pkitools.write_pem(cert, tmp_path / "uuid.pem"))
    assert len(findings) == 1
    assert findings[0].startswith("FATAL itu.invalid_asn1_syntax @ ")
    assert "larger than 32-bits" in findings[0]
    # OpenSSL itself has no trouble with it: the limit is pkilint's DER decoder
    pkitools.openssl_verify(tmp_path / "uuid.pem", pki.ca_pem)
