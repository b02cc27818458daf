"""ROC (民國) dates as customers type them: birth dates and company registration dates.

"Today" is always a parameter: the caller decides the clock and the time zone
(Asia/Taipei), so rules stay testable with a fixed date.
"""

from __future__ import annotations

import datetime
import enum
import re
import unicodedata
from typing import Final

#: ROC year + this = Gregorian year (民國1年 = 1912).
ROC_OFFSET: Final = 1911

#: Longer than any way of typing a date (`113 / 12 / 31`): refused before it is folded or
#: read, so no length of input reaches `int()` (which refuses over 4,300 digits) or NFKC.
MAX_TEXT: Final = 24

# Plausible years for an 8-digit value to be read as a Gregorian yyyymmdd by mistake.
_GREGORIAN_YEARS: Final = range(1900, 2101)
# ASCII classes only: NFKC has already folded full-width digits, and anything else
# (Arabic-Indic digits, superscripts) is not what a customer means by a date.
_COMPACT: Final = re.compile(r"[0-9]+")
_SEPARATED: Final = re.compile(r"([0-9]{1,3})[/.\-]([0-9]{1,2})[/.\-]([0-9]{1,2})")
_SEPARATED_GREGORIAN: Final = re.compile(r"([0-9]{4})[/.\-]([0-9]{1,2})[/.\-]([0-9]{1,2})")
_DATE_CHARS: Final = re.compile(r"[0-9/.\-]+")


class RocDateProblem(enum.Enum):
    """Why a text is not an acceptable ROC date (values are stable reason codes)."""

    EMPTY = "empty"
    NOT_DIGITS = "not_digits"
    GREGORIAN = "gregorian"  # looks like a Gregorian yyyymmdd: answer with a hint
    WRONG_LENGTH = "wrong_length"
    YEAR_ZERO = "year_zero"
    NOT_A_DATE = "not_a_date"
    IN_FUTURE = "in_future"


class RocDateError(ValueError):
    """A rejected ROC date; ``problem`` says why.

    The rejected text is deliberately not kept: a birth date is personal data and
    exceptions end up in logs.
    """

    def __init__(self, problem: RocDateProblem, *, gregorian: datetime.date | None = None) -> None:
        super().__init__(problem.value)
        self.problem = problem
        #: For GREGORIAN, the date the customer probably meant, if it is a real one.
        self.gregorian = gregorian


def parse_roc_date(text: str, *, today: datetime.date) -> datetime.date:
    """Read ``YYMMDD``/``YYYMMDD`` (or ``Y/M/D`` with ``/``, ``-``, ``.``) as a past ROC date.

    Raises RocDateError. ``today`` itself is accepted; it must be a plain date, since
    comparing against a datetime would silently depend on its time zone.
    """
    if isinstance(today, datetime.datetime):
        raise TypeError("today must be a datetime.date, not a datetime")
    if len(text) > MAX_TEXT and len(text.strip()) > MAX_TEXT:
        raise RocDateError(RocDateProblem.WRONG_LENGTH)
    value = unicodedata.normalize("NFKC", text).strip()
    if not value:
        raise RocDateError(RocDateProblem.EMPTY)
    roc_year, month, day = _split(value)
    if roc_year == 0:
        raise RocDateError(RocDateProblem.YEAR_ZERO)
    try:
        result = datetime.date(roc_year + ROC_OFFSET, month, day)
    except ValueError:
        raise RocDateError(RocDateProblem.NOT_A_DATE) from None
    if result > today:
        raise RocDateError(RocDateProblem.IN_FUTURE)
    return result


def _split(value: str) -> tuple[int, int, int]:
    """ROC year, month and day from a stripped, NFKC-folded value, shape checks only."""
    if _COMPACT.fullmatch(value):
        if len(value) in (6, 7):
            # The year is whatever precedes MMDD, so 0761205 reads as 民國76年.
            return int(value[:-4]), int(value[-4:-2]), int(value[-2:])
        if len(value) == 8:
            _reject_gregorian(int(value[:4]), int(value[4:6]), int(value[6:]))
        raise RocDateError(RocDateProblem.WRONG_LENGTH)
    if match := _SEPARATED.fullmatch(value):
        year, month, day = match.groups()
        return int(year), int(month), int(day)
    if match := _SEPARATED_GREGORIAN.fullmatch(value):
        year, month, day = match.groups()
        _reject_gregorian(int(year), int(month), int(day))
    if _DATE_CHARS.fullmatch(value):
        raise RocDateError(RocDateProblem.WRONG_LENGTH)
    raise RocDateError(RocDateProblem.NOT_DIGITS)


def _reject_gregorian(year: int, month: int, day: int) -> None:
    """Raise GREGORIAN if the parts look like a Gregorian date; return if they do not."""
    if year not in _GREGORIAN_YEARS or not 1 <= month <= 12 or not 1 <= day <= 31:
        return
    try:
        meant: datetime.date | None = datetime.date(year, month, day)
    except ValueError:  # 19870231: still clearly Gregorian, just not a real day
        meant = None
    raise RocDateError(RocDateProblem.GREGORIAN, gregorian=meant)


def roc_year(d: datetime.date) -> int:
    """The ROC year of ``d``; ValueError before 民國1年, which has no ROC year here."""
    year = d.year - ROC_OFFSET
    if year < 1:
        raise ValueError("date before ROC year 1")
    return year


def format_roc_date(d: datetime.date) -> str:
    """The compact form customers type and the manual shows: 761205, 1120315.

    Years 1-9 are padded to two digits (010101) so that the result parses back.
    """
    return f"{roc_year(d):02d}{d.month:02d}{d.day:02d}"
