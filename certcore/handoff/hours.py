"""Service hours of the support desk on the Taipei wall clock: weekly hours (the same opening
and closing time on each service day) less the closed dates (public holidays, typhoon days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from certcore.clock import TAIPEI

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOOKAHEAD_DAYS = 400


def parse_days(text: str) -> frozenset[int]:
    """`mon,tue,wed` as weekday numbers (Monday 0); ValueError for anything else or none."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names or any(name not in WEEKDAYS for name in names):
        raise ValueError(text)
    return frozenset(WEEKDAYS.index(name) for name in names)


def parse_dates(text: str) -> frozenset[date]:
    """`2025-10-10,2025-10-06` as dates; ValueError for one that is not YYYY-MM-DD."""
    return frozenset(date.fromisoformat(part.strip()) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class ServiceHours:
    days: frozenset[int]
    start: time
    end: time
    closed: frozenset[date] = frozenset()

    def _serves(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.closed

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(TAIPEI)
        return self._serves(local.date()) and self.start <= local.time() < self.end

    def next_opening(self, moment: datetime) -> datetime | None:
        """When the desk next opens after `moment` (a Taipei time); None when it is open now
        or never opens within a year and a month (no service day configured outside the closed
        dates)."""
        if self.is_open(moment):
            return None
        local = moment.astimezone(TAIPEI)
        for offset in range(LOOKAHEAD_DAYS):
            day = local.date() + timedelta(days=offset)
            opening = datetime.combine(day, self.start, TAIPEI)
            if self._serves(day) and opening > local:
                return opening
        return None
