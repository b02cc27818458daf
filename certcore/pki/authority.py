"""The issuing CA: its certificate, its key and the customer-certificate profile of DESIGN §4."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from certcore.clock import TAIPEI
from certcore.config import Settings
from certcore.errors import ConfigurationError
from certcore.pki.cakey import CAKey, signature_hash
from certcore.pki.rules import Window, add_months, end_of_day_taipei, validity_period

SERIAL_BITS = 159
PROFILE_PROBE_ID = "A123456789"
"""The customer ID of the throwaway certificate `check_profile` signs (a valid test number)."""
CustomerKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
CustomerPublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def random_serial(rng: random.Random) -> int:
    """A positive serial of up to 159 random bits: always fits the 20 octets RFC 5280 allows."""
    while True:
        serial = rng.getrandbits(SERIAL_BITS)
        if serial > 0:
            return serial


def serial_hex(serial: int) -> str:
    return format(serial, "X")


def generate_customer_key(kind: str) -> CustomerKey:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    bits = {"rsa2048": 2048, "rsa3072": 3072}[kind]
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public_key_fingerprint(public_key: CustomerPublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class CertificateAuthority:
    certificate: x509.Certificate
    key: CAKey

    @property
    def name(self) -> x509.Name:
        return self.certificate.subject

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def key_works(self) -> bool:
        """Whether the CA's private key still signs (a key held elsewhere, such as an HSM, can
        become unreachable): a fixed probe is signed and checked against the certificate."""
        probe = b"certdesk readiness probe"
        key, public = self.key, self.certificate.public_key()
        try:
            if isinstance(key, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey):
                signed = key.sign(probe, padding.PKCS1v15(), hashes.SHA256())
                public.verify(signed, probe, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(
                public, ec.EllipticCurvePublicKey
            ):
                signed = key.sign(probe, ec.ECDSA(hashes.SHA256()))
                public.verify(signed, probe, ec.ECDSA(hashes.SHA256()))
            else:
                return False
        except Exception:
            return False
        return True

    def authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        try:
            ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)
        except x509.ExtensionNotFound:
            return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())

    def sign_customer_certificate(
        self,
        *,
        public_key: CustomerPublicKey,
        customer_id: str,
        serial: int,
        validity: Window,
        settings: Settings,
    ) -> x509.Certificate:
        """Sign the one certificate profile CertDesk issues (DESIGN §4)."""
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, settings.broker_name),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, settings.ra_name),
                x509.NameAttribute(NameOID.COMMON_NAME, customer_id),
            ]
        )
        policy = x509.PolicyInformation(x509.ObjectIdentifier(settings.policy_oid), None)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(validity.start)
            .not_valid_after(validity.end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self.authority_key_identifier(), critical=False)
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(settings.crl_url)],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(settings.ocsp_url),
                        ),
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(settings.ca_issuers_url),
                        ),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.CertificatePolicies([policy]), critical=False)
        )
        return builder.sign(self.key, signature_hash(self.key))

    def check_profile(self, settings: Settings, now: datetime) -> None:
        """Sign one throwaway certificate of the profile with these settings (the CA's own
        public key as its subject's), so a value the certificate cannot carry stops the process
        at start instead of failing a customer's issuance. `Settings.validate` refuses what it
        can name; this catches whatever else the encoder refuses (a surrogate in `broker_name`
        from an environment that is not UTF-8, say)."""
        try:
            self.sign_customer_certificate(
                public_key=self.key.public_key(),
                customer_id=PROFILE_PROBE_ID,
                serial=1,
                validity=validity_period(now, settings.validity_months),
                settings=settings,
            )
        except (ValueError, TypeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ConfigurationError(
                "invalid configuration: no certificate can be issued with these settings "
                f"(broker_name, ra_name, public_url, policy_oid): {reason}"
            ) from None


CA_VALIDITY_YEARS = 10


def self_signed_ca_certificate(
    key: CAKey, *, settings: Settings, now: datetime, serial: int
) -> x509.Certificate:
    """The development CA: a root that signs customer certificates, CRLs and OCSP responses."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, settings.broker_name),
            x509.NameAttribute(NameOID.COMMON_NAME, settings.ca_common_name),
        ]
    )
    public_key = key.public_key()
    not_after = end_of_day_taipei(add_months(now.astimezone(TAIPEI).date(), 12 * CA_VALIDITY_YEARS))
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(now.replace(microsecond=0) - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, signature_hash(key))
    )
