"""certcore's errors: a stable code, an English message, and their data as typed attributes."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime

import pytest

from certcore.errors import (
    AuditChainBroken,
    CertdeskError,
    NotRenewable,
    OtpResendTooEarly,
    OtpSendFailed,
    OtpSendLimit,
    OtpStalePrefix,
    OtpWrongCode,
    RevocationQuotaExhausted,
    ValidCertificateExists,
)
from certcore.notify import SendError, SendFailure
from certcore.otp import SendRefusal
from certcore.pki import Window

WINDOW = Window(datetime(2027, 10, 25, 15, 59, 59, tzinfo=UTC), datetime(2027, 11, 24, tzinfo=UTC))

ERRORS: list[tuple[CertdeskError, dict[str, object]]] = [
    (ValidCertificateExists("holds one", serial="1A2B"), {"serial": "1A2B"}),
    (NotRenewable("outside the window", window=WINDOW), {"window": WINDOW}),
    (NotRenewable("revoked"), {"window": None}),
    (RevocationQuotaExhausted("used up", year=2026, limit=2), {"year": 2026, "limit": 2}),
    (AuditChainBroken("record 5 was altered", seq=5), {"seq": 5}),
    (OtpResendTooEarly("wait", wait_seconds=17), {"wait_seconds": 17}),
    (OtpSendLimit("limit", limit=SendRefusal.DAILY_LIMIT), {"limit": SendRefusal.DAILY_LIMIT}),
    (OtpSendFailed("failed", reason=SendFailure.TIMEOUT), {"reason": SendFailure.TIMEOUT}),
    (OtpStalePrefix("stale", expected_prefix="QWER"), {"expected_prefix": "QWER"}),
    (OtpWrongCode("wrong code", attempts_left=3), {"attempts_left": 3}),
    (
        SendError(SendFailure.REJECTED_DESTINATION, "number refused"),
        {"reason": SendFailure.REJECTED_DESTINATION, "detail": "number refused"},
    ),
]


@pytest.mark.parametrize(("error", "attributes"), ERRORS, ids=lambda e: type(e).__name__)
def test_data_is_in_typed_attributes(error: CertdeskError, attributes: dict[str, object]) -> None:
    for name, value in attributes.items():
        assert getattr(error, name) == value


def test_send_error_message_names_the_reason() -> None:
    error = SendError(SendFailure.TIMEOUT, "no answer within 10 s")
    assert str(error) == "delivery failed (timeout): no answer within 10 s"
    assert error.code == "delivery_failed"


@pytest.mark.parametrize(("error", "attributes"), ERRORS, ids=lambda e: type(e).__name__)
def test_an_error_survives_pickling_and_copying_whole(
    error: CertdeskError, attributes: dict[str, object]
) -> None:
    """A key-generation process pool pickles what it raises; keyword-only data must survive."""
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(again) is type(error)
        assert (str(again), again.code) == (str(error), error.code)
        for name, value in attributes.items():
            assert getattr(again, name) == value
