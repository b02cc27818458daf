"""Where the CA lives on disk: its certificate, its encrypted key and, in development, the key's
passphrase.

The key is always encrypted at rest. In production the passphrase comes from
`CERTDESK_CA_PASSPHRASE` (the operator's secret store); the embedded default, which nobody
configures, generates one into the data directory with mode 0600 so `make run` just works.
"""

from __future__ import annotations

import random
import secrets
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from certcore.config import Settings
from certcore.errors import (
    CAAlreadyInitialised,
    CANotInitialised,
    InvalidInput,
    WrongPassphrase,
)
from certcore.keyfile import write_private
from certcore.pki.authority import CertificateAuthority, random_serial, self_signed_ca_certificate
from certcore.pki.cakey import encrypt_pem, wrap_software_key

CA_KEY_BITS = 3072


class CAFiles:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.certificate_path = data_dir / "ca.pem"
        self.key_path = data_dir / "ca-key.pem"
        self.passphrase_path = data_dir / "ca-passphrase"

    def exists(self) -> bool:
        return self.certificate_path.exists() and self.key_path.exists()

    def initialise(
        self, *, settings: Settings, now: datetime, rng: random.Random, passphrase: bytes | None
    ) -> CertificateAuthority:
        """Generate the development CA (RSA-3072, self-signed)."""
        self._refuse_overwrite()
        if passphrase is None:
            passphrase = secrets.token_urlsafe(32).encode()
            write_private(self.passphrase_path, passphrase)
        key = rsa.generate_private_key(public_exponent=65537, key_size=CA_KEY_BITS)
        certificate = self_signed_ca_certificate(
            wrap_software_key(key), settings=settings, now=now, serial=random_serial(rng)
        )
        self._store(certificate, encrypt_pem(key, passphrase))
        return CertificateAuthority(certificate, wrap_software_key(key))

    def import_(
        self, *, cert_pem: bytes, key_pem: bytes, passphrase: bytes
    ) -> CertificateAuthority:
        """Take the broker's own issuing CA: a CA certificate and its encrypted private key."""
        self._refuse_overwrite()
        try:
            certificate = x509.load_pem_x509_certificate(cert_pem)
        except ValueError:
            raise InvalidInput("the certificate file is not a PEM certificate") from None
        key = _decrypt(key_pem, passphrase)
        if _spki(key.public_key()) != _spki(certificate.public_key()):
            raise InvalidInput("the private key does not belong to the certificate")
        _require_issuing_ca(certificate)
        self._store(certificate, encrypt_pem(key, passphrase))
        return CertificateAuthority(certificate, wrap_software_key(key))

    def load(self, passphrase: bytes | None) -> CertificateAuthority:
        if not self.exists():
            raise CANotInitialised(
                f"no CA in {self.data_dir}: run 'certdesk ca init' or 'certdesk ca import'"
            )
        if passphrase is None:
            if not self.passphrase_path.exists():
                raise WrongPassphrase(
                    "the CA key is encrypted: set CERTDESK_CA_PASSPHRASE to its passphrase"
                )
            passphrase = self.passphrase_path.read_bytes().strip()
        certificate = x509.load_pem_x509_certificate(self.certificate_path.read_bytes())
        key = _decrypt(self.key_path.read_bytes(), passphrase)
        return CertificateAuthority(certificate, wrap_software_key(key))

    def load_certificate(self) -> x509.Certificate:
        """The CA certificate alone, for commands that need no signing."""
        if not self.certificate_path.exists():
            raise CANotInitialised(
                f"no CA in {self.data_dir}: run 'certdesk ca init' or 'certdesk ca import'"
            )
        return x509.load_pem_x509_certificate(self.certificate_path.read_bytes())

    def _refuse_overwrite(self) -> None:
        if self.certificate_path.exists() or self.key_path.exists():
            raise CAAlreadyInitialised(
                f"a CA already exists in {self.data_dir}; it is never replaced"
            )

    def _store(self, certificate: x509.Certificate, encrypted_key_pem: bytes) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.key_path, encrypted_key_pem)
        self.certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _decrypt(key_pem: bytes, passphrase: bytes) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(key_pem, password=passphrase)
    except TypeError:
        raise InvalidInput(
            "the CA key file is not encrypted; encrypt it with a passphrase"
        ) from None
    except ValueError as exc:
        if b"ENCRYPTED" in key_pem:
            raise WrongPassphrase("wrong passphrase for the CA key") from None
        raise InvalidInput(f"the key file is not a PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise InvalidInput("the CA key must be RSA or elliptic-curve")
    return key


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _require_issuing_ca(certificate: x509.Certificate) -> None:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise InvalidInput("the certificate is not a CA certificate") from None
    if not constraints.ca or not usage.key_cert_sign or not usage.crl_sign:
        raise InvalidInput("the certificate may not sign certificates and CRLs")
