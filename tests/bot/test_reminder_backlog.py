"""A backlog of 100,000 due reminders drained in bounded batches: every sweep sends at most
`reminder_batch`, and in the end each reminder went out exactly once.

The channel is a fake that counts what it is asked to push (the platforms' own pacing is the
channels' tests' business); the database, the planner, the claims and the marks are the real
ones, seeded fast (executemany) by the benchmark's own seeding. On SQLite only: the claims and
marks run the same statements on PostgreSQL in the reminder suites there, and 100,000 rows
twice would cost the suite minutes for no new path."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from bench.reminders import NOW, seed_backlog
from bot.channels import Channels
from bot.reminders import sweep
from certcore.clock import FrozenClock
from certcore.core import Core
from certcore.reminders import ReminderState
from dialogs import Engine, Inbound, Outbound, Text, engine_for

pytestmark = pytest.mark.backends("sqlite")

BACKLOG = 100_000
BATCH = 5_000


class CountingChannels(Channels):
    """Counts every REMIND it is asked to push, and says each was shown."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.pushed: Counter[str] = Counter()

    async def dispatch(self, event: Inbound) -> list[Outbound]:
        self.pushed[event.event_id] += 1
        return [Text("reminded")]


async def test_a_backlog_of_100000_drains_in_bounded_batches(
    core: Core, clock: FrozenClock
) -> None:
    clock.advance(seconds=(NOW - clock()).total_seconds())
    chats = await seed_backlog(core.db, BACKLOG, NOW, channel="fake")
    assert len(chats) == BACKLOG
    hub = CountingChannels(engine_for(core))

    sweeps = 0
    moment = NOW
    while True:
        done = await sweep(core, hub, moment, batch=BATCH)
        assert len(done.planned) <= BATCH and len(done.sent) <= BATCH
        if not done.planned and not done.sent:
            break
        sweeps += 1
        moment += timedelta(minutes=5)
    assert sweeps == BACKLOG // BATCH
    assert len(hub.pushed) == BACKLOG and set(hub.pushed.values()) == {1}
    listing = await core.reminders.listing()
    assert len(listing) == BACKLOG
    assert {row.state for row in listing} == {ReminderState.SENT}
