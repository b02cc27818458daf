"""The password-protected .pfx files customers keep and import (manual 四、憑證匯出)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certcore.clock import TAIPEI
from certcore.errors import InvalidExportPassword
from certcore.pki.authority import CustomerKey

EXPORT_PASSWORD_MIN = 4
EXPORT_PASSWORD_MAX = 12
EXPORT_PASSWORD = re.compile(rf"[A-Za-z0-9]{{{EXPORT_PASSWORD_MIN},{EXPORT_PASSWORD_MAX}}}")
"""密碼請設定4~12碼，英文、數字皆可. Pages that explain the rule (the download page's text and
its input's `pattern`) take the lengths and the pattern from here, not from a copy."""

COMPATIBLE_KDF_ROUNDS = 100_000
"""The legacy PKCS#12 KDF is several times slower per round than PBKDF2 and 3DES/SHA-1 is weak
whatever the count; 100,000 keeps the compatible file's export near the standard one's cost."""


class Pkcs12Format(StrEnum):
    STANDARD = "standard"
    """AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC: Windows 10 1709+, current macOS, NSS."""
    COMPATIBLE = "compatible"
    """3DES and SHA-1: Windows before 10 (1709), Server 2016, older macOS Keychain."""


def check_export_password(password: str) -> None:
    if not EXPORT_PASSWORD.fullmatch(password):
        raise InvalidExportPassword(
            "the export password must be 4 to 12 letters (A–Z, a–z) or digits"
        )


class PasswordProblem(StrEnum):
    """Why an export password typed twice (the console, the download page, a chat) is refused."""

    MISMATCH = "mismatch"
    INVALID = "invalid"


def export_password_problem(password: str, confirmation: str) -> PasswordProblem | None:
    """None when the two typings agree and follow the rule; the first problem otherwise."""
    if password != confirmation:
        return PasswordProblem.MISMATCH
    if not EXPORT_PASSWORD.fullmatch(password):
        return PasswordProblem.INVALID
    return None


class ClientSystem(StrEnum):
    """The customer's system as 檢查電腦環境 tells them apart: what decides the .pfx format."""

    WINDOWS_10 = "win10"
    """Windows 10 1709 and later, Windows 11."""
    WINDOWS_OLD = "win_old"
    """Windows before 10 1709 (8.1, 7), Windows Server 2016."""
    MACOS = "macos"
    IOS = "ios"
    ANDROID = "android"
    OTHER = "other"


COMPATIBLE_SYSTEMS = frozenset({ClientSystem.WINDOWS_OLD, ClientSystem.MACOS, ClientSystem.IOS})
"""Their key stores (the old Windows CryptoAPI, Apple's Keychain) cannot read AES-256/PBKDF2
files and report a wrong password: they get the 3DES/SHA-1 file."""


def recommended_format(system: ClientSystem) -> Pkcs12Format:
    """The manual's 檢查電腦環境: the compatible file where the key store needs it, else the
    standard one."""
    return Pkcs12Format.COMPATIBLE if system in COMPATIBLE_SYSTEMS else Pkcs12Format.STANDARD


def pfx_filename(customer_id: str, issuer_tag: str, not_after: datetime) -> str:
    """`{ID}-{ISSUER_TAG}({notAfter date in Taipei}).pfx`, as the portal names its exports."""
    return f"{customer_id}-{issuer_tag}({not_after.astimezone(TAIPEI):%Y-%m-%d}).pfx"


def export_pkcs12(
    *,
    key: CustomerKey,
    certificate: x509.Certificate,
    ca_certificate: x509.Certificate,
    password: str,
    label: str,
    fmt: Pkcs12Format = Pkcs12Format.STANDARD,
    kdf_rounds: int = 600_000,
) -> bytes:
    check_export_password(password)
    builder = serialization.PrivateFormat.PKCS12.encryption_builder()
    if fmt is Pkcs12Format.STANDARD:
        encryption = (
            builder.kdf_rounds(kdf_rounds)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(password.encode("ascii"))
        )
    else:
        encryption = (
            builder.kdf_rounds(COMPATIBLE_KDF_ROUNDS)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())
            .build(password.encode("ascii"))
        )
    return pkcs12.serialize_key_and_certificates(
        label.encode("utf-8"), key, certificate, [ca_certificate], encryption
    )
