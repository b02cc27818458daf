"""ReminderPlanner over the real database, on the frozen clock of the `core` fixture.

Certificates made at 10:00 on 24 November 2026 (Taipei) end at 2027-11-24 23:59:59, so their
30-day milestone is 2027-10-25 23:59:59 and their 7-day milestone 2027-11-17 23:59:59.
"""

from __future__ import annotations

import asyncio

import pytest

from certcore.clock import FrozenClock, taipei
from certcore.core import Core
from certcore.errors import InvalidInput
from certcore.pki import RevocationReason
from certcore.reminders import (
    CLAIM_LEASE,
    CLAIMED,
    Outcome,
    Reminder,
    ReminderPlanner,
    ReminderState,
)
from certcore.storage import Database
from tests.certcore.test_service import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    OPERATOR,
    PASSWORD,
    holding,
    issue,
)

AFTER_30 = taipei(2027, 10, 26, 10, 0)
AFTER_7 = taipei(2027, 11, 18, 10, 0)


def pairs(reminders: list[Reminder]) -> list[tuple[str, int]]:
    return [(r.serial, r.milestone_days) for r in reminders]


async def test_each_milestone_is_planned_once(core: Core, clock: FrozenClock) -> None:
    serial = await holding(core, ALICE)
    assert await core.reminders.plan(clock(), 100) == []
    assert await core.reminders.plan(taipei(2027, 10, 25, 23, 59, 58), 100) == []

    first = await core.reminders.plan(AFTER_30, 100)
    assert pairs(first) == [(serial, 30)]
    assert first[0].customer_id == ALICE
    assert first[0].send_after == AFTER_30  # 10:00 is outside the quiet hours
    assert first[0].state is ReminderState.PENDING and first[0].attempts == 0
    assert await core.reminders.plan(AFTER_30, 100) == []
    assert await core.reminders.plan(taipei(2027, 11, 10), 100) == []

    assert pairs(await core.reminders.plan(AFTER_7, 100)) == [(serial, 7)]
    assert await core.reminders.plan(AFTER_7, 100) == []
    assert pairs(await core.reminders.listing()) == [(serial, 30), (serial, 7)]


async def test_a_certificate_first_seen_late_gets_only_the_latest_milestone(core: Core) -> None:
    serial = await holding(core, ALICE)
    assert pairs(await core.reminders.plan(AFTER_7, 100)) == [(serial, 7)]
    assert await core.reminders.plan(AFTER_7, 100) == []
    assert pairs(await core.reminders.listing()) == [(serial, 7)]


async def test_found_in_the_night_it_waits_for_the_morning(core: Core) -> None:
    serial = await holding(core, ALICE)
    night = taipei(2027, 10, 25, 23, 59, 59)
    [planned] = await core.reminders.plan(night, 100)
    assert planned.send_after == taipei(2027, 10, 26, 9, 0)
    assert await core.reminders.due(night, 100) == []
    assert await core.reminders.due(taipei(2027, 10, 26, 8, 59, 59), 100) == []
    assert pairs(await core.reminders.due(taipei(2027, 10, 26, 9, 0), 100)) == [(serial, 30)]


async def test_two_planners_at_once_plan_one_reminder(core: Core) -> None:
    serial = await holding(core, ALICE)
    # A second instance: its own engine and connections on the same database file.
    other_db = Database(core.settings.database)
    other = ReminderPlanner(other_db, core.settings, core.clock)
    try:
        results = await asyncio.gather(
            core.reminders.plan(AFTER_30, 100),
            other.plan(AFTER_30, 100),
            core.reminders.plan(AFTER_30, 100),
        )
    finally:
        await other_db.close()
    assert sorted(len(planned) for planned in results) == [0, 0, 1]
    assert pairs(await core.reminders.listing()) == [(serial, 30)]


async def test_the_database_ignores_a_second_insert_of_the_same_pair(core: Core) -> None:
    """The key is the backstop when two planners pass the NOT EXISTS check together."""
    serial = await holding(core, ALICE)
    [planned] = await core.reminders.plan(AFTER_30, 100)
    async with core.db.write() as conn:
        assert await core.reminders._insert_new(conn, [planned]) == []
    assert pairs(await core.reminders.listing()) == [(serial, 30)]


async def test_renewed_before_the_milestone_gets_no_more(core: Core, clock: FrozenClock) -> None:
    old = await issue(core, ALICE)
    assert pairs(await core.reminders.plan(AFTER_30, 100)) == [(old.record.serial, 30)]
    clock.now = taipei(2027, 11, 1, 10, 0)
    await core.certificates.renew(old.record.serial, PASSWORD, actor=OPERATOR)
    # the old certificate is revoked as superseded, the new one a year from its 7-day mark
    assert await core.reminders.plan(AFTER_7, 100) == []
    assert await core.reminders.plan(taipei(2027, 11, 24, 23), 100) == []


async def test_a_newer_valid_certificate_silences_the_older(core: Core, clock: FrozenClock) -> None:
    await holding(core, ALICE)  # ends 2027-11-24
    clock.now = taipei(2027, 1, 15, 10, 0)
    await holding(core, ALICE)  # ends 2028-01-15: the customer renewed early, elsewhere
    assert await core.reminders.plan(AFTER_30, 100) == []
    assert await core.reminders.plan(AFTER_7, 100) == []


async def test_revoked_and_expired_certificates_get_nothing(core: Core) -> None:
    revoked = await holding(core, BOB)
    await core.certificates.revoke(
        revoked, RevocationReason.CESSATION_OF_OPERATION, actor=OPERATOR, online=False
    )
    valid = await holding(core, CAROL)
    assert pairs(await core.reminders.plan(AFTER_30, 100)) == [(valid, 30)]
    # first looked at past notAfter: CAROL's is expired, its 7-day milestone lost for good
    assert await core.reminders.plan(taipei(2027, 11, 25, 0, 0, 0), 100) == []
    assert {r.customer_id for r in await core.reminders.listing()} == {CAROL}


async def test_a_call_plans_at_most_its_limit(core: Core) -> None:
    serials = [await holding(core, customer) for customer in (ALICE, BOB, CAROL, DAVE)]
    first = await core.reminders.plan(AFTER_30, 3)
    second = await core.reminders.plan(AFTER_30, 3)
    assert (len(first), len(second)) == (3, 1)
    assert sorted(pairs(first + second)) == sorted((s, 30) for s in serials)
    assert await core.reminders.plan(AFTER_30, 3) == []


async def test_due_lists_the_oldest_first_within_its_limit(core: Core) -> None:
    alice = await holding(core, ALICE)
    await core.reminders.plan(taipei(2027, 10, 25, 23, 59, 59), 100)  # waits until 09:00
    bob = await holding(core, BOB)  # ends a year from 24 November 2026 too
    await core.reminders.plan(taipei(2027, 10, 26, 9, 30), 100)
    morning = taipei(2027, 10, 26, 10, 0)
    assert pairs(await core.reminders.due(morning, 100)) == [(alice, 30), (bob, 30)]
    assert pairs(await core.reminders.due(morning, 1)) == [(alice, 30)]


async def test_mark_records_the_outcome(core: Core, clock: FrozenClock) -> None:
    alice, bob = await holding(core, ALICE), await holding(core, BOB)
    await core.reminders.plan(AFTER_30, 100)
    clock.now = AFTER_30

    await core.reminders.mark(alice, 30, ReminderState.PENDING)  # a failed try, retried later
    await core.reminders.mark(alice, 30, ReminderState.SENT)
    await core.reminders.mark(bob, 30, ReminderState.SKIPPED, "no reachable chat")
    assert await core.reminders.due(AFTER_30, 100) == []
    listed = {r.serial: r for r in await core.reminders.listing()}
    assert (listed[alice].state, listed[alice].attempts) == (ReminderState.SENT, 2)
    assert (listed[bob].state, listed[bob].reason) == (ReminderState.SKIPPED, "no reachable chat")

    with pytest.raises(InvalidInput):  # done once, done for good
        await core.reminders.mark(alice, 30, ReminderState.SENT)
    with pytest.raises(InvalidInput):
        await core.reminders.mark(alice, 7, ReminderState.SENT)


async def test_a_skip_needs_a_short_reason(core: Core) -> None:
    alice = await holding(core, ALICE)
    await core.reminders.plan(AFTER_30, 100)
    with pytest.raises(InvalidInput):
        await core.reminders.mark(alice, 30, ReminderState.SKIPPED)
    with pytest.raises(InvalidInput):
        await core.reminders.mark(alice, 30, ReminderState.SKIPPED, "x" * 65)
    assert [r.state for r in await core.reminders.listing()] == [ReminderState.PENDING]


async def test_claims_hand_each_due_reminder_to_one_sender_for_a_lease(core: Core) -> None:
    serial = await holding(core, ALICE)
    await holding(core, BOB)
    assert len(await core.reminders.plan(AFTER_30, 100)) == 2

    first = await core.reminders.claim(AFTER_30, 1)
    second = await core.reminders.claim(AFTER_30, 100)
    assert len(first) == len(second) == 1 and first[0].serial != second[0].serial
    assert first[0].reason is None  # a first claim
    assert await core.reminders.claim(AFTER_30, 100) == []

    # A claim never concluded is handed out again after the lease, marked as such.
    later = AFTER_30 + CLAIM_LEASE
    again = await core.reminders.claim(later, 100)
    assert sorted(r.serial for r in again) == sorted([first[0].serial, second[0].serial])
    assert {r.reason for r in again} == {CLAIMED}

    # Outcomes recorded together; one concluded meanwhile by another sender comes back.
    done = Outcome(serial, 30, ReminderState.SENT)
    assert await core.reminders.record([done]) == []
    other = next(r.serial for r in again if r.serial != serial)
    held = Outcome(other, 30, ReminderState.PENDING, "platform rate limit", count=False)
    assert await core.reminders.record([done, held]) == [done]
    rows = {r.serial: r for r in await core.reminders.listing()}
    assert (rows[serial].state, rows[serial].attempts) == (ReminderState.SENT, 1)
    assert (rows[other].state, rows[other].reason, rows[other].attempts) == (
        ReminderState.PENDING,
        "platform rate limit",
        0,
    )
    # No longer claimed: the next sender takes it at once.
    assert [r.serial for r in await core.reminders.claim(later, 100)] == [other]


async def test_a_preview_records_nothing(core: Core) -> None:
    serial = await holding(core, ALICE)
    planned, due = await core.reminders.preview(AFTER_30, 100)
    assert pairs(planned) == pairs(due) == [(serial, 30)]
    assert await core.reminders.listing() == []
    assert pairs(await core.reminders.plan(AFTER_30, 100)) == [(serial, 30)]
