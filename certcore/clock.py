"""Injected time and randomness.

Every rule in certcore takes "now" and its random source as arguments, so tests pin the clock
to the edge they are about (23:59:59 in Taipei, New Year's Eve, a leap day) and nothing depends
on when the suite happens to run.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

TAIPEI = ZoneInfo("Asia/Taipei")

Clock = Callable[[], datetime]
"""A function returning the current time as an aware datetime."""


def system_clock() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


def system_random() -> random.Random:
    """The CSPRNG behind `secrets`, exposed through the `random.Random` interface."""
    return secrets.SystemRandom()


class FrozenClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def taipei(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """An aware datetime on the Taipei wall clock; the rules are all stated in Taipei time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=TAIPEI)


def taipei_text(moment: datetime) -> str:
    """`2022-04-25 23:59:59`: a moment on the Taipei wall clock, as the portal shows it."""
    return moment.astimezone(TAIPEI).strftime("%Y-%m-%d %H:%M:%S")
