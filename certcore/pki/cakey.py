"""The CA's signing key, behind the interface of a `cryptography` private key.

Builders in `cryptography` sign by calling the key object's `sign` method, so anything that
subclasses `RSAPrivateKey` or `EllipticCurvePrivateKey` can sign certificates, CRLs and OCSP
responses. `SoftwareRSACAKey` and `SoftwareECCAKey` hold the key in memory; a PKCS#11 HSM key
will be another subclass with the same methods, and no caller changes.

A CA key never leaves its store: the export methods refuse, as an HSM would.
"""

from __future__ import annotations

from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed
from cryptography.utils import Buffer

CAKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _refuse_export() -> NoReturn:
    raise TypeError("the CA key cannot be exported from its key store")


class SoftwareRSACAKey(rsa.RSAPrivateKey):
    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key

    def sign(
        self,
        data: bytes,
        padding: padding.AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | NoDigestInfo,
    ) -> bytes:
        return self._key.sign(data, padding, algorithm)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    @property
    def key_size(self) -> int:
        return self._key.key_size

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> NoReturn:
        raise TypeError("the CA key only signs")

    def private_numbers(self) -> NoReturn:
        _refuse_export()

    def private_bytes(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse_export()

    def __copy__(self) -> SoftwareRSACAKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SoftwareRSACAKey:
        return self


class SoftwareECCAKey(ec.EllipticCurvePrivateKey):
    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        return self._key.sign(data, signature_algorithm)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._key.curve

    @property
    def key_size(self) -> int:
        return self._key.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> NoReturn:
        raise TypeError("the CA key only signs")

    def private_numbers(self) -> NoReturn:
        _refuse_export()

    def private_bytes(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse_export()

    def __copy__(self) -> SoftwareECCAKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SoftwareECCAKey:
        return self


def wrap_software_key(key: object) -> CAKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return SoftwareRSACAKey(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return SoftwareECCAKey(key)
    raise TypeError("a CA key must be RSA or elliptic-curve")


def signature_hash(key: CAKey) -> hashes.SHA256 | hashes.SHA384:
    """SHA-256, or SHA-384 for P-384 and larger curves (RFC 5480 pairing)."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def encrypt_pem(key: CAKey | rsa.RSAPrivateKey, passphrase: bytes) -> bytes:
    """PKCS#8 PEM encrypted with the best scheme `cryptography` offers (PBES2, AES-256)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
