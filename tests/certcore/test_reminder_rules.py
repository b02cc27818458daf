"""Expiry-reminder rules on a frozen clock: milestones, the Taipei day boundary and quiet hours.

The certificate of these tables ends at 2027-11-24 23:59:59 Taipei (15:59:59 UTC), so its
30-day milestone is 2027-10-25 23:59:59 Taipei, the moment its renewal window opens.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from certcore.clock import taipei
from certcore.config import load_settings
from certcore.reminders import QuietHours, milestone_moment, reached_milestone

NOT_AFTER = taipei(2027, 11, 24, 23, 59, 59)
DEFAULT = (30, 7)


def test_milestone_moments_are_whole_days_before_not_after() -> None:
    assert milestone_moment(NOT_AFTER, 30) == taipei(2027, 10, 25, 23, 59, 59)
    assert milestone_moment(NOT_AFTER, 7) == taipei(2027, 11, 17, 23, 59, 59)


@pytest.mark.parametrize(
    ("now", "revoked", "milestones", "expected"),
    [
        (taipei(2026, 11, 24, 10), False, DEFAULT, None),
        (taipei(2027, 10, 25, 23, 59, 58), False, DEFAULT, None),
        # the Taipei day boundary: the UTC date (25 October, 15:59:59) plays no part
        (taipei(2027, 10, 25, 23, 59, 59), False, DEFAULT, 30),
        (datetime(2027, 10, 25, 15, 59, 58, tzinfo=UTC), False, DEFAULT, None),
        (datetime(2027, 10, 25, 15, 59, 59, tzinfo=UTC), False, DEFAULT, 30),
        (taipei(2027, 10, 25, 23, 59, 58).replace(microsecond=999_999), False, DEFAULT, None),
        (taipei(2027, 10, 26, 0, 0, 0), False, DEFAULT, 30),
        (taipei(2027, 11, 17, 23, 59, 58), False, DEFAULT, 30),
        (taipei(2027, 11, 17, 23, 59, 59), False, DEFAULT, 7),
        # still valid within its last second, expired after it
        (taipei(2027, 11, 24, 23, 59, 59).replace(microsecond=900_000), False, DEFAULT, 7),
        (taipei(2027, 11, 25, 0, 0, 0), False, DEFAULT, None),
        (taipei(2028, 1, 1), False, DEFAULT, None),
        # revoked (renewed certificates are, as superseded): nothing, at any milestone
        (taipei(2027, 10, 26), True, DEFAULT, None),
        (taipei(2027, 11, 20), True, DEFAULT, None),
        # the latest milestone passed counts, whatever order the list is in
        (taipei(2027, 11, 24, 0, 0, 0), False, (1, 60, 7, 30), 1),
        (taipei(2027, 9, 30), False, (1, 60, 7, 30), 60),
        (taipei(2027, 11, 20), False, (30,), 30),
        (taipei(2027, 11, 20), False, (), None),
    ],
)
def test_the_milestone_reached(
    now: datetime, revoked: bool, milestones: tuple[int, ...], expected: int | None
) -> None:
    found = reached_milestone(not_after=NOT_AFTER, revoked=revoked, now=now, milestones=milestones)
    assert found == expected


NIGHT = QuietHours(time(21, 0), time(9, 0))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (taipei(2027, 10, 26, 20, 59, 59), taipei(2027, 10, 26, 20, 59, 59)),
        (taipei(2027, 10, 26, 21, 0, 0), taipei(2027, 10, 27, 9, 0)),
        (taipei(2027, 10, 26, 23, 59, 59), taipei(2027, 10, 27, 9, 0)),
        # across midnight: found after it, sent the same morning
        (taipei(2027, 10, 27, 0, 0, 0), taipei(2027, 10, 27, 9, 0)),
        (taipei(2027, 10, 27, 8, 59, 59), taipei(2027, 10, 27, 9, 0)),
        (taipei(2027, 10, 27, 9, 0, 0), taipei(2027, 10, 27, 9, 0)),
        # the 30-day milestone of NOT_AFTER falls in the night: the next morning
        (taipei(2027, 10, 25, 23, 59, 59), taipei(2027, 10, 26, 9, 0)),
        # Taipei's clock, not UTC's: 13:00 UTC is 21:00 in Taipei, 00:30 UTC is 08:30
        (datetime(2027, 10, 26, 13, 0, tzinfo=UTC), taipei(2027, 10, 27, 9, 0)),
        (datetime(2027, 10, 26, 0, 30, tzinfo=UTC), taipei(2027, 10, 26, 9, 0)),
        (datetime(2027, 10, 26, 12, 59, tzinfo=UTC), datetime(2027, 10, 26, 12, 59, tzinfo=UTC)),
        # New Year's Eve
        (taipei(2027, 12, 31, 22, 0), taipei(2028, 1, 1, 9, 0)),
    ],
)
def test_the_night_holds_reminders_until_the_morning(now: datetime, expected: datetime) -> None:
    assert NIGHT.next_send(now) == expected
    assert (now in NIGHT) == (expected != now)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (taipei(2027, 10, 26, 11, 59), taipei(2027, 10, 26, 11, 59)),
        (taipei(2027, 10, 26, 12, 0), taipei(2027, 10, 26, 13, 0)),
        (taipei(2027, 10, 26, 12, 59, 59), taipei(2027, 10, 26, 13, 0)),
        (taipei(2027, 10, 26, 13, 0), taipei(2027, 10, 26, 13, 0)),
    ],
)
def test_a_window_within_one_day(now: datetime, expected: datetime) -> None:
    assert QuietHours(time(12, 0), time(13, 0)).next_send(now) == expected


def test_equal_ends_mean_no_quiet_hours() -> None:
    always = QuietHours(time(9, 0), time(9, 0))
    for hour in (0, 9, 21, 23):
        moment = taipei(2027, 10, 26, hour)
        assert moment not in always
        assert always.next_send(moment) == moment


def test_the_defaults_are_the_issue_s() -> None:
    settings = load_settings(environ={})
    assert settings.reminder_milestones == (30, 7)
    assert QuietHours(*settings.reminder_quiet_hours) == NIGHT
