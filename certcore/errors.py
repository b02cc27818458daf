"""The errors certcore raises on purpose.

Each carries a stable `code` that the chat layer maps to a localised message and the operator
commands print as one clear line; `str()` is an English sentence for operators and logs and must
never contain a secret. An error that carries data for its reader (how long to wait, how many
attempts are left) has it as typed attributes, set by its own `__init__`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from certcore.notify import SendFailure
    from certcore.otp import SendRefusal
    from certcore.pki import Window


class CertdeskError(Exception):
    """Base of every expected failure: bad input or a rule that says no."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # The default, cls(*args), would lose the keyword-only data of the subclasses (or fail
        # without it): rebuilt from args and attributes, an error crossing a process arrives whole.
        return (_rebuild, (type(self), self.args), self.__dict__)


def _rebuild(cls: type[CertdeskError], args: tuple[object, ...]) -> CertdeskError:
    error = cls.__new__(cls)
    error.args = args
    return error


class ConfigurationError(CertdeskError):
    code = "configuration"


class ConcurrentUpdate(CertdeskError):
    """A conversation was saved by another process after this one read it: the event is applied
    again over the newer state rather than written over it."""

    code = "concurrent_update"


class DatabaseUnavailable(CertdeskError):
    """The database did not answer (down, restarting, unreachable, out of connections, its disk
    full): nothing was done, and the same work may be tried again once it answers."""

    code = "database_unavailable"


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

    serial: str
    """The certificate the customer already holds."""

    def __init__(self, message: str, *, serial: str) -> None:
        super().__init__(message)
        self.serial = serial


class NotRenewable(CertdeskError):
    code = "not_renewable"

    window: Window | None
    """The renewal window the moment fell outside; None when the certificate is revoked."""

    def __init__(self, message: str, *, window: Window | None = None) -> None:
        super().__init__(message)
        self.window = window


class RevocationQuotaExhausted(CertdeskError):
    code = "revocation_quota_exhausted"

    year: int
    """The calendar year (Asia/Taipei) whose quota is used up."""
    limit: int
    """The online revocations allowed per year."""

    def __init__(self, message: str, *, year: int, limit: int) -> None:
        super().__init__(message)
        self.year = year
        self.limit = limit


class AuditChainBroken(CertdeskError):
    code = "audit_chain_broken"

    seq: int
    """The first record that is missing, altered or unlinked."""

    def __init__(self, message: str, *, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


class OtpError(CertdeskError):
    """A one-time code was not sent or not accepted; `code` tells the chat which answer to give."""

    code = "otp_error"


class OtpResendTooEarly(OtpError):
    code = "otp_resend_too_early"

    wait_seconds: int
    """Whole seconds (at least 1) until a new code may be sent."""

    def __init__(self, message: str, *, wait_seconds: int) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds


class OtpSendLimit(OtpError):
    code = "otp_send_limit"

    limit: SendRefusal
    """Which cap was reached: the hourly or the daily one."""

    def __init__(self, message: str, *, limit: SendRefusal) -> None:
        super().__init__(message)
        self.limit = limit


class OtpSendFailed(OtpError):
    code = "otp_send_failed"

    reason: SendFailure
    """Why the code did not go out, which tells the customer what to try next."""

    def __init__(self, message: str, *, reason: SendFailure) -> None:
        super().__init__(message)
        self.reason = reason


class OtpMalformed(OtpError):
    code = "otp_malformed"


class OtpNoActiveCode(OtpError):
    code = "otp_no_active_code"


class OtpExpired(OtpError):
    code = "otp_expired"


class OtpStalePrefix(OtpError):
    code = "otp_stale_prefix"

    expected_prefix: str
    """The prefix of the code that is active now (not a secret: it only names the message)."""

    def __init__(self, message: str, *, expected_prefix: str) -> None:
        super().__init__(message)
        self.expected_prefix = expected_prefix


class OtpWrongCode(OtpError):
    code = "otp_wrong_code"

    attempts_left: int
    """Wrong entries still allowed before the code is void (at least 1)."""

    def __init__(self, message: str, *, attempts_left: int) -> None:
        super().__init__(message)
        self.attempts_left = attempts_left


class OtpVoided(OtpError):
    code = "otp_voided"
