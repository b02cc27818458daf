"""One-time codes (DESIGN §3): the rules as pure functions, and the service that sends a code,
checks what the customer types and hands the authorised operation a receipt to spend once."""

from certcore.otp.rules import (
    Binding,
    CodeEntry,
    Operation,
    OtpPolicy,
    SendRefusal,
    code_digest,
    digests_match,
    new_code,
    new_prefix,
    parse_entry,
    send_refusal,
)
from certcore.otp.service import OtpSent, OtpService, record_link, spend_verification

__all__ = [
    "Binding",
    "CodeEntry",
    "Operation",
    "OtpPolicy",
    "OtpSent",
    "OtpService",
    "SendRefusal",
    "code_digest",
    "digests_match",
    "new_code",
    "new_prefix",
    "parse_entry",
    "record_link",
    "send_refusal",
    "spend_verification",
]
