"""The errors certcore raises on purpose.

Each carries a stable `code` that the chat layer maps to a localised message and the operator
commands print as one clear line; `str()` is an English sentence for operators and logs and must
never contain a secret.
"""

from __future__ import annotations


class CertdeskError(Exception):
    """Base of every expected failure: bad input or a rule that says no."""

    code = "error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.details = details


class ConfigurationError(CertdeskError):
    code = "configuration"


class CANotInitialised(CertdeskError):
    code = "ca_not_initialised"


class CAAlreadyInitialised(CertdeskError):
    code = "ca_already_initialised"


class WrongPassphrase(CertdeskError):
    code = "wrong_passphrase"


class InvalidInput(CertdeskError):
    code = "invalid_input"


class InvalidCustomerId(InvalidInput):
    code = "invalid_customer_id"


class InvalidExportPassword(InvalidInput):
    code = "invalid_export_password"


class UnknownCertificate(CertdeskError):
    code = "unknown_certificate"


class AlreadyRevoked(CertdeskError):
    code = "already_revoked"


class ValidCertificateExists(CertdeskError):
    code = "valid_certificate_exists"


class NotRenewable(CertdeskError):
    code = "not_renewable"


class RevocationQuotaExhausted(CertdeskError):
    code = "revocation_quota_exhausted"


class AuditChainBroken(CertdeskError):
    code = "audit_chain_broken"


class OtpError(CertdeskError):
    """A one-time code was not sent or not accepted; `code` tells the chat which answer to give."""

    code = "otp_error"


class OtpResendTooEarly(OtpError):
    code = "otp_resend_too_early"


class OtpSendLimit(OtpError):
    code = "otp_send_limit"


class OtpSendFailed(OtpError):
    code = "otp_send_failed"


class OtpMalformed(OtpError):
    code = "otp_malformed"


class OtpNoActiveCode(OtpError):
    code = "otp_no_active_code"


class OtpExpired(OtpError):
    code = "otp_expired"


class OtpStalePrefix(OtpError):
    code = "otp_stale_prefix"


class OtpWrongCode(OtpError):
    code = "otp_wrong_code"


class OtpVoided(OtpError):
    code = "otp_voided"
