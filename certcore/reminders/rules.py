"""Expiry-reminder rules as pure functions of a certificate's dates and an injected "now".

A milestone of N days is reached at `notAfter − N days` to the second: the 30-day milestone
falls exactly when the renewal window opens (DESIGN §3), so a reminder never invites a renewal
that would still be refused. Only the latest milestone passed counts, so a certificate first
seen late (the service was down) gets one reminder, not a burst of stale ones; a revoked or
expired certificate reaches none. Quiet hours are read on the Taipei wall clock, whatever the
server's time zone: customers sleep in Taipei.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from certcore.clock import TAIPEI
from certcore.pki.rules import occupies_holder_slot


def milestone_moment(not_after: datetime, days: int) -> datetime:
    """When the milestone `days` before `not_after` is reached."""
    return not_after - timedelta(days=days)


def reached_milestone(
    *, not_after: datetime, revoked: bool, now: datetime, milestones: Sequence[int]
) -> int | None:
    """The latest milestone (fewest days) reached at `now`, or None: before the first one,
    and for a certificate that is revoked (renewed ones are, as superseded) or expired."""
    if not occupies_holder_slot(not_after=not_after, revoked=revoked, now=now):
        return None
    whole = now.replace(microsecond=0)  # certificates count in whole seconds
    reached = [days for days in milestones if whole >= milestone_moment(not_after, days)]
    return min(reached) if reached else None


@dataclass(frozen=True)
class QuietHours:
    """From `start` (included) to `end` (excluded) on the Taipei wall clock; a window whose
    start is later than its end crosses midnight, and equal ends mean no quiet hours."""

    start: time
    end: time

    def __contains__(self, moment: datetime) -> bool:
        wall = moment.astimezone(TAIPEI).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end

    def next_send(self, now: datetime) -> datetime:
        """When a reminder found at `now` may be sent: now, or the end of the quiet hours."""
        if now not in self:
            return now
        local = now.astimezone(TAIPEI)
        end = datetime.combine(local.date(), self.end, tzinfo=TAIPEI)
        if end <= local:  # found before midnight in a window that ends the next morning
            end += timedelta(days=1)
        return end
