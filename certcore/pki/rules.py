"""Lifecycle rules of DESIGN §3 as pure functions of a certificate's dates and "now".

Everything here is stated in Taipei time, the broker's and the customers' calendar: a
certificate ends at 23:59:59 on its last day in Taipei, and the yearly revocation quota resets
at midnight on 1 January in Taipei, not in UTC.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from cryptography import x509

from certcore.clock import TAIPEI

END_OF_DAY = time(23, 59, 59)


class CertificateStatus(StrEnum):
    VALID = "valid"  # 有效
    RENEWAL_DUE = "renewal_due"  # 需更新
    EXPIRED = "expired"  # 已過期
    REVOKED = "revoked"  # 已註銷


class RevocationReason(StrEnum):
    """The RFC 5280 reasons CertDesk records; `unspecified` is expressed by no reason at all."""

    KEY_COMPROMISE = "keyCompromise"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    AFFILIATION_CHANGED = "affiliationChanged"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"

    @property
    def x509(self) -> x509.ReasonFlags:
        return _X509_REASONS[self]


_X509_REASONS = {
    RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.CESSATION_OF_OPERATION: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.AFFILIATION_CHANGED: x509.ReasonFlags.affiliation_changed,
    RevocationReason.PRIVILEGE_WITHDRAWN: x509.ReasonFlags.privilege_withdrawn,
}


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= _whole_second(moment) <= self.end


def _whole_second(moment: datetime) -> datetime:
    """Certificates count in whole seconds: 23:59:59.4 is still within notAfter 23:59:59."""
    return moment.replace(microsecond=0)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it has no such day.

    A certificate issued on 29 February 2028 for 12 months ends on 28 February 2029.
    """
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def end_of_day_taipei(day: date) -> datetime:
    return datetime.combine(day, END_OF_DAY, tzinfo=TAIPEI)


def validity_period(now: datetime, months: int) -> Window:
    """From now (to the second) to 23:59:59 Taipei on the same calendar day `months` later."""
    not_before = now.replace(microsecond=0)
    last_day = add_months(now.astimezone(TAIPEI).date(), months)
    return Window(not_before, end_of_day_taipei(last_day))


def renewal_window(not_after: datetime, days: int) -> Window:
    """可更新區間: the last `days` days of validity, both ends included."""
    return Window(not_after - timedelta(days=days), not_after)


def certificate_status(
    *, not_after: datetime, revoked: bool, now: datetime, renewal_days: int
) -> CertificateStatus:
    if revoked:
        return CertificateStatus.REVOKED
    if _whole_second(now) > not_after:
        return CertificateStatus.EXPIRED
    if now in renewal_window(not_after, renewal_days):
        return CertificateStatus.RENEWAL_DUE
    return CertificateStatus.VALID


def occupies_holder_slot(*, not_after: datetime, revoked: bool, now: datetime) -> bool:
    """Whether a certificate counts as the customer's one valid certificate.

    A certificate inside its renewal window still counts: the customer renews it rather than
    applying for a second one.
    """
    return not revoked and _whole_second(now) <= not_after


def quota_year(now: datetime) -> int:
    """The calendar year, in Taipei, that an online revocation counts against."""
    return now.astimezone(TAIPEI).year
