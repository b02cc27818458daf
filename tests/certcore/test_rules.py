"""The lifecycle rules of DESIGN §3, as tables.

Every moment is written on the Taipei wall clock (`taipei(...)`) or, where the point is that
UTC and Taipei disagree about the date, in UTC. A certificate ends at 23:59:59 Taipei on its
last day; its renewal window is the last 30 days of validity, both ends included.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography import x509

from certcore.clock import TAIPEI, taipei
from certcore.pki import (
    CertificateStatus,
    RevocationReason,
    Window,
    add_months,
    certificate_status,
    end_of_day_taipei,
    occupies_holder_slot,
    quota_year,
    renewal_window,
    validity_period,
)

SECOND = timedelta(seconds=1)


# -- add_months ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        pytest.param(date(2026, 11, 24), 12, date(2027, 11, 24), id="ordinary-day+12"),
        pytest.param(date(2026, 1, 15), 1, date(2026, 2, 15), id="mid-month+1"),
        pytest.param(date(2028, 2, 29), 12, date(2029, 2, 28), id="leap-day+12->28-Feb"),
        pytest.param(date(2028, 2, 29), 48, date(2032, 2, 29), id="leap-day+48->leap-day"),
        pytest.param(date(2027, 2, 28), 12, date(2028, 2, 28), id="28-Feb+12-stays-28th"),
        pytest.param(date(2026, 1, 31), 1, date(2026, 2, 28), id="31-Jan+1-common-year"),
        pytest.param(date(2028, 1, 31), 1, date(2028, 2, 29), id="31-Jan+1-leap-year"),
        pytest.param(date(2026, 3, 31), 1, date(2026, 4, 30), id="31-Mar+1->30-Apr"),
        pytest.param(date(2026, 8, 31), 1, date(2026, 9, 30), id="31-Aug+1->30-Sep"),
        pytest.param(date(2026, 12, 31), 1, date(2027, 1, 31), id="31-Dec+1-crosses-year"),
        pytest.param(date(2026, 11, 30), 3, date(2027, 2, 28), id="30-Nov+3-crosses-year"),
        pytest.param(date(2026, 12, 15), 12, date(2027, 12, 15), id="December+12"),
        pytest.param(date(2026, 1, 31), 27, date(2028, 4, 30), id="longest-validity-27"),
        pytest.param(date(2026, 5, 17), 0, date(2026, 5, 17), id="zero-months"),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


# -- validity_period ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issued_at", "months", "not_after"),
    [
        pytest.param(
            taipei(2026, 11, 24, 10, 0, 0), 12, taipei(2027, 11, 24, 23, 59, 59), id="10:00"
        ),
        pytest.param(
            # 00:30 in Taipei is still the 23rd in UTC: the Taipei date counts.
            datetime(2026, 11, 23, 16, 30, tzinfo=UTC),
            12,
            taipei(2027, 11, 24, 23, 59, 59),
            id="00:30-Taipei-is-previous-day-UTC",
        ),
        pytest.param(
            # 07:59 UTC on the 24th is 15:59 Taipei on the 24th.
            datetime(2026, 11, 24, 7, 59, tzinfo=UTC),
            12,
            taipei(2027, 11, 24, 23, 59, 59),
            id="UTC-afternoon-same-day",
        ),
        pytest.param(
            # 16:00 UTC on the 24th is already the 25th in Taipei.
            datetime(2026, 11, 24, 16, 0, tzinfo=UTC),
            12,
            taipei(2027, 11, 25, 23, 59, 59),
            id="16:00-UTC-is-next-day-Taipei",
        ),
        pytest.param(
            taipei(2026, 11, 24, 23, 59, 59),
            12,
            taipei(2027, 11, 24, 23, 59, 59),
            id="issued-at-23:59:59",
        ),
        pytest.param(
            taipei(2028, 2, 29, 9, 0, 0), 12, taipei(2029, 2, 28, 23, 59, 59), id="leap-day"
        ),
        pytest.param(
            # 29 Feb 2028 00:10 Taipei is 28 Feb 16:10 UTC: still a leap-day issuance.
            datetime(2028, 2, 28, 16, 10, tzinfo=UTC),
            12,
            taipei(2029, 2, 28, 23, 59, 59),
            id="leap-day-Taipei-28-Feb-UTC",
        ),
        pytest.param(
            taipei(2026, 12, 31, 12, 0, 0), 12, taipei(2027, 12, 31, 23, 59, 59), id="new-years-eve"
        ),
        pytest.param(
            taipei(2026, 1, 31, 12, 0, 0), 1, taipei(2026, 2, 28, 23, 59, 59), id="one-month"
        ),
    ],
)
def test_validity_period_ends_23_59_59_taipei(
    issued_at: datetime, months: int, not_after: datetime
) -> None:
    window = validity_period(issued_at, months)
    assert window.start == issued_at
    assert window.end == not_after
    assert window.end.utcoffset() == timedelta(hours=8)


def test_validity_period_starts_on_the_second() -> None:
    issued_at = datetime(2026, 11, 23, 16, 30, 12, 987654, tzinfo=UTC)
    window = validity_period(issued_at, 12)
    assert window.start == datetime(2026, 11, 23, 16, 30, 12, tzinfo=UTC)
    assert window.end.isoformat() == "2027-11-24T23:59:59+08:00"


def test_end_of_day_taipei_is_15_59_59_utc() -> None:
    assert end_of_day_taipei(date(2027, 11, 24)).astimezone(UTC) == datetime(
        2027, 11, 24, 15, 59, 59, tzinfo=UTC
    )


# -- renewal_window -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("not_after", "days", "start"),
    [
        pytest.param(
            taipei(2022, 4, 25, 23, 59, 59), 30, taipei(2022, 3, 26, 23, 59, 59), id="manual"
        ),
        pytest.param(
            taipei(2027, 11, 24, 23, 59, 59), 30, taipei(2027, 10, 25, 23, 59, 59), id="default"
        ),
        pytest.param(
            taipei(2028, 3, 15, 23, 59, 59), 30, taipei(2028, 2, 14, 23, 59, 59), id="over-29-Feb"
        ),
        pytest.param(
            taipei(2027, 3, 15, 23, 59, 59), 30, taipei(2027, 2, 13, 23, 59, 59), id="over-28-Feb"
        ),
        pytest.param(
            taipei(2027, 1, 10, 23, 59, 59),
            30,
            taipei(2026, 12, 11, 23, 59, 59),
            id="over-new-year",
        ),
        pytest.param(
            taipei(2027, 11, 24, 23, 59, 59), 1, taipei(2027, 11, 23, 23, 59, 59), id="one-day"
        ),
    ],
)
def test_renewal_window(not_after: datetime, days: int, start: datetime) -> None:
    assert renewal_window(not_after, days) == Window(start, not_after)


# 可更新區間 2027-10-25 23:59:59 ~ 2027-11-24 23:59:59 for the default certificate.
NOT_AFTER = taipei(2027, 11, 24, 23, 59, 59)
WINDOW_START = taipei(2027, 10, 25, 23, 59, 59)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        pytest.param(WINDOW_START - SECOND, False, id="one-second-before-start"),
        pytest.param(WINDOW_START, True, id="exactly-at-start"),
        pytest.param(WINDOW_START.astimezone(UTC), True, id="start-given-in-UTC"),
        pytest.param(taipei(2027, 11, 10, 12, 0, 0), True, id="middle"),
        pytest.param(NOT_AFTER, True, id="exactly-at-notAfter"),
        pytest.param(NOT_AFTER + SECOND, False, id="one-second-after-notAfter"),
    ],
)
def test_renewal_window_includes_both_ends(moment: datetime, inside: bool) -> None:
    assert (moment in renewal_window(NOT_AFTER, 30)) is inside


# -- certificate_status ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "revoked", "expected"),
    [
        pytest.param(taipei(2026, 11, 24, 10), False, CertificateStatus.VALID, id="just-issued"),
        pytest.param(WINDOW_START - SECOND, False, CertificateStatus.VALID, id="before-window"),
        pytest.param(WINDOW_START, False, CertificateStatus.RENEWAL_DUE, id="window-start"),
        pytest.param(
            taipei(2027, 11, 1, 0, 0, 0), False, CertificateStatus.RENEWAL_DUE, id="in-window"
        ),
        pytest.param(NOT_AFTER, False, CertificateStatus.RENEWAL_DUE, id="at-notAfter-23:59:59"),
        pytest.param(
            NOT_AFTER.astimezone(UTC), False, CertificateStatus.RENEWAL_DUE, id="notAfter-in-UTC"
        ),
        pytest.param(NOT_AFTER + SECOND, False, CertificateStatus.EXPIRED, id="next-midnight"),
        pytest.param(taipei(2030, 1, 1), False, CertificateStatus.EXPIRED, id="long-expired"),
        pytest.param(taipei(2026, 11, 24, 10), True, CertificateStatus.REVOKED, id="revoked-valid"),
        pytest.param(WINDOW_START, True, CertificateStatus.REVOKED, id="revoked-in-window"),
        pytest.param(NOT_AFTER, True, CertificateStatus.REVOKED, id="revoked-at-notAfter"),
        pytest.param(NOT_AFTER + SECOND, True, CertificateStatus.REVOKED, id="revoked-expired"),
    ],
)
def test_certificate_status(now: datetime, revoked: bool, expected: CertificateStatus) -> None:
    status = certificate_status(not_after=NOT_AFTER, revoked=revoked, now=now, renewal_days=30)
    assert status is expected


@pytest.mark.parametrize(
    ("now", "revoked", "occupies"),
    [
        pytest.param(taipei(2026, 11, 24, 10), False, True, id="valid"),
        pytest.param(WINDOW_START, False, True, id="renewal-due-still-counts"),
        pytest.param(NOT_AFTER, False, True, id="last-second"),
        pytest.param(NOT_AFTER + SECOND, False, False, id="expired"),
        pytest.param(taipei(2026, 11, 24, 10), True, False, id="revoked"),
    ],
)
def test_one_valid_certificate_per_customer_slot(
    now: datetime, revoked: bool, occupies: bool
) -> None:
    assert occupies_holder_slot(not_after=NOT_AFTER, revoked=revoked, now=now) is occupies


# -- quota_year -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "year"),
    [
        pytest.param(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC), 2026, id="15:59:59Z-is-2026"),
        pytest.param(datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC), 2027, id="16:00:00Z-is-2027"),
        pytest.param(taipei(2026, 12, 31, 23, 59, 59), 2026, id="Taipei-new-years-eve"),
        pytest.param(taipei(2027, 1, 1, 0, 0, 0), 2027, id="Taipei-midnight"),
        pytest.param(datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC), 2027, id="UTC-midnight"),
        pytest.param(taipei(2026, 6, 30, 12), 2026, id="mid-year"),
    ],
)
def test_quota_year_is_the_taipei_calendar_year(now: datetime, year: int) -> None:
    assert quota_year(now) == year


def test_taipei_has_no_daylight_saving() -> None:
    for month in range(1, 13):
        assert datetime(2027, month, 1, tzinfo=TAIPEI).utcoffset() == timedelta(hours=8)


# -- revocation reasons ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "flag"),
    [
        pytest.param(RevocationReason.KEY_COMPROMISE, x509.ReasonFlags.key_compromise, id="kc"),
        pytest.param(RevocationReason.SUPERSEDED, x509.ReasonFlags.superseded, id="superseded"),
        pytest.param(
            RevocationReason.CESSATION_OF_OPERATION,
            x509.ReasonFlags.cessation_of_operation,
            id="cessation",
        ),
        pytest.param(
            RevocationReason.AFFILIATION_CHANGED,
            x509.ReasonFlags.affiliation_changed,
            id="affiliation",
        ),
        pytest.param(
            RevocationReason.PRIVILEGE_WITHDRAWN,
            x509.ReasonFlags.privilege_withdrawn,
            id="privilege",
        ),
    ],
)
def test_revocation_reason_maps_to_rfc5280(
    reason: RevocationReason, flag: x509.ReasonFlags
) -> None:
    assert reason.x509 is flag
    assert reason.value == flag.value  # the RFC 5280 spelling, as the CLI takes it


def test_no_unspecified_reason() -> None:
    """`unspecified` is expressed by leaving the reason out, never by the code itself."""
    assert x509.ReasonFlags.unspecified not in {reason.x509 for reason in RevocationReason}
    assert "unspecified" not in {reason.value for reason in RevocationReason}
    with pytest.raises(ValueError):
        RevocationReason("unspecified")
