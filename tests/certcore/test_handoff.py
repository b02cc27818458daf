"""The hand-off queue, the service hours and the agents' accounts over the real database, on
the `core` fixture's frozen clock (Tuesday 24 November 2026, 10:00 Taipei)."""

from __future__ import annotations

import asyncio
from datetime import date, time, timedelta

import pytest
from sqlalchemy import select

from certcore.clock import FrozenClock, taipei
from certcore.config import Settings
from certcore.core import Core
from certcore.errors import ConfigurationError, InvalidInput
from certcore.handoff import (
    AgentExists,
    CannedReplies,
    HandoffOutcome,
    HandoffReason,
    HandoffState,
    HandoffTaken,
    ServiceHours,
)
from certcore.storage.schema import agents, handoffs

PASSWORD = "correct horse battery"


async def test_one_open_request_per_conversation(core: Core) -> None:
    first, made = await core.handoffs.request("web:a", HandoffReason.ASKED)
    assert made and first.state is HandoffState.WAITING
    again, made_again = await core.handoffs.request("web:a", HandoffReason.MISUNDERSTOOD)
    assert not made_again and again.id == first.id and again.reason is HandoffReason.ASKED
    async with core.db.read() as conn:
        assert len((await conn.execute(select(handoffs))).all()) == 1


async def test_requests_at_once_make_one(core: Core) -> None:
    results = await asyncio.gather(
        *(core.handoffs.request("web:b", HandoffReason.QUOTA) for _ in range(5))
    )
    assert sum(made for _, made in results) == 1
    assert len({handoff.id for handoff, _ in results}) == 1


async def test_cancel_ends_the_waiting_request_and_allows_a_new_one(
    core: Core, clock: FrozenClock
) -> None:
    first, _ = await core.handoffs.request("web:a", HandoffReason.ASKED)
    clock.advance(minutes=1)
    cancelled = await core.handoffs.cancel("web:a")
    assert cancelled is not None and cancelled.state is HandoffState.CANCELLED
    assert cancelled.ended_at == clock()
    assert await core.handoffs.open_for("web:a") is None
    assert await core.handoffs.cancel("web:a") is None
    second, made = await core.handoffs.request("web:a", HandoffReason.ASKED)
    assert made and second.id != first.id


async def test_waiting_lists_the_oldest_first(core: Core, clock: FrozenClock) -> None:
    for conversation in ("web:c", "web:a", "web:b"):
        await core.handoffs.request(conversation, HandoffReason.ASKED)
        clock.advance(seconds=5)
    await core.handoffs.cancel("web:a")
    assert [h.conversation_id for h in await core.handoffs.waiting()] == ["web:c", "web:b"]


async def test_agent_password_is_kept_as_a_scrypt_hash(core: Core) -> None:
    await core.agents.add("mei", PASSWORD)
    async with core.db.read() as conn:
        row = (await conn.execute(select(agents))).one()
    assert PASSWORD.encode() not in bytes(row.password_hash) + bytes(row.salt)
    assert (row.scrypt_n, row.scrypt_r, row.scrypt_p) == (2**15, 8, 1)
    assert len(row.salt) == 16 and len(row.password_hash) == 32
    assert await core.agents.verify("mei", PASSWORD)
    assert not await core.agents.verify("mei", PASSWORD + "!")
    assert not await core.agents.verify("nobody", PASSWORD)


async def test_two_accounts_with_one_password_have_different_hashes(core: Core) -> None:
    await core.agents.add("mei", PASSWORD)
    await core.agents.add("lin", PASSWORD)
    async with core.db.read() as conn:
        hashes = (await conn.execute(select(agents.c.password_hash))).scalars().all()
    assert hashes[0] != hashes[1]


async def test_duplicate_and_bad_accounts_are_refused(core: Core) -> None:
    await core.agents.add("mei", PASSWORD)
    with pytest.raises(AgentExists):
        await core.agents.add("mei", "another password")
    with pytest.raises(InvalidInput):
        await core.agents.add("bad name", PASSWORD)
    with pytest.raises(InvalidInput):
        await core.agents.add("short", "123")
    assert await core.agents.remove("mei")
    assert not await core.agents.remove("mei")
    assert not await core.agents.verify("mei", PASSWORD)


HOURS = ServiceHours(
    days=frozenset(range(5)),
    start=time(8, 30),
    end=time(17),
    closed=frozenset({date(2026, 11, 27)}),
)


@pytest.mark.parametrize(
    ("moment", "opening"),
    [
        (taipei(2026, 11, 24, 10, 0), None),  # Tuesday, open
        (taipei(2026, 11, 24, 8, 29), taipei(2026, 11, 24, 8, 30)),
        (taipei(2026, 11, 24, 17, 0), taipei(2026, 11, 25, 8, 30)),
        (taipei(2026, 11, 26, 18, 0), taipei(2026, 11, 30, 8, 30)),  # Friday 27th closed
        (taipei(2026, 11, 28, 12, 0), taipei(2026, 11, 30, 8, 30)),  # Saturday
    ],
)
def test_service_hours_next_opening(moment: object, opening: object) -> None:
    assert HOURS.next_opening(moment) == opening  # type: ignore[arg-type]


def test_service_hour_settings_are_validated() -> None:
    hours = Settings(closed_dates="2026-10-10, 2026-10-06").service_hours
    assert hours.closed == {date(2026, 10, 10), date(2026, 10, 6)}
    assert hours.start == time(8, 30) and hours.end == time(17) and hours.days == set(range(5))
    for bad in (
        {"closed_dates": "2026-13-01"},
        {"service_days": "mon,funday"},
        {"service_start": "17:00", "service_end": "08:30"},
        {"service_end": "25:00"},
    ):
        with pytest.raises(ConfigurationError):
            Settings(**bad).validate()  # type: ignore[arg-type]


# -- the agents' side: claim, reply, end, rate, time out, notes, canned replies ---------------


async def test_one_agent_claims_and_a_second_claim_is_refused(core: Core) -> None:
    handoff, _ = await core.handoffs.request("web:a", HandoffReason.ASKED)
    results = await asyncio.gather(
        *(core.handoffs.claim(handoff.id, name) for name in ("mei", "lin", "chen")),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1 and winners[0].state is HandoffState.ACTIVE
    assert all(isinstance(r, HandoffTaken) for r in results if r not in winners)
    holder = winners[0].agent
    assert holder is not None
    assert (await core.handoffs.held_by("web:a", holder)).id == handoff.id
    with pytest.raises(HandoffTaken):
        await core.handoffs.held_by("web:a", "someone-else")


async def test_the_queue_lists_waiting_oldest_first_then_active(
    core: Core, clock: FrozenClock
) -> None:
    ids = {}
    for conversation in ("web:c", "web:a", "web:b"):
        ids[conversation], _ = await core.handoffs.request(conversation, HandoffReason.ASKED)
        clock.advance(seconds=5)
    await core.handoffs.claim(ids["web:c"].id, "mei")
    assert [h.conversation_id for h in await core.handoffs.open_requests()] == [
        "web:a",
        "web:b",
        "web:c",
    ]


async def test_end_by_the_holder_only_and_once(core: Core, clock: FrozenClock) -> None:
    handoff, _ = await core.handoffs.request("web:a", HandoffReason.ASKED)
    await core.handoffs.claim(handoff.id, "mei")
    assert await core.handoffs.end("web:a", HandoffOutcome.RESOLVED, agent="lin") is None
    ended = await core.handoffs.end("web:a", HandoffOutcome.RESOLVED, agent="mei")
    assert ended is not None and ended.state is HandoffState.CLOSED
    assert ended.outcome == "resolved" and ended.ended_at == clock()
    assert await core.handoffs.end("web:a", HandoffOutcome.RETURNED, agent="mei") is None
    assert await core.handoffs.open_for("web:a") is None


async def test_a_rating_is_kept_once_and_only_for_a_resolved_request(core: Core) -> None:
    returned, _ = await core.handoffs.request("web:a", HandoffReason.ASKED)
    await core.handoffs.claim(returned.id, "mei")
    await core.handoffs.end("web:a", HandoffOutcome.RETURNED, agent="mei")
    assert not await core.handoffs.rate(returned.id, 5)
    resolved, _ = await core.handoffs.request("web:a", HandoffReason.ASKED)
    await core.handoffs.claim(resolved.id, "mei")
    await core.handoffs.end("web:a", HandoffOutcome.RESOLVED, agent="mei")
    assert await core.handoffs.rate(resolved.id, 4)
    assert not await core.handoffs.rate(resolved.id, 1)
    stored = await core.handoffs.get(resolved.id)
    assert stored is not None and stored.rating == 4
    with pytest.raises(InvalidInput):
        await core.handoffs.rate(resolved.id, 6)


async def test_overdue_counts_from_the_claim_or_the_last_reply(
    core: Core, clock: FrozenClock
) -> None:
    idle = timedelta(minutes=30)
    waiting, _ = await core.handoffs.request("web:w", HandoffReason.ASKED)
    handoff, _ = await core.handoffs.request("web:a", HandoffReason.ASKED)
    await core.handoffs.claim(handoff.id, "mei")
    clock.advance(minutes=29)
    assert await core.handoffs.replied(handoff.id, "mei")
    assert not await core.handoffs.replied(handoff.id, "lin")
    clock.advance(minutes=29)
    assert await core.handoffs.overdue(clock(), idle) == []
    clock.advance(minutes=2)
    overdue = await core.handoffs.overdue(clock(), idle)
    assert [h.id for h in overdue] == [handoff.id]  # a waiting request never times out here
    assert waiting.id not in {h.id for h in overdue}


async def test_notes_stay_with_the_conversation(core: Core) -> None:
    first, _ = await core.handoffs.request("web:a", HandoffReason.ASKED)
    await core.handoffs.add_note(first.id, "mei", "  called the branch  ")
    await core.handoffs.cancel("web:a")
    second, _ = await core.handoffs.request("web:a", HandoffReason.ASKED)
    await core.handoffs.add_note(second.id, "lin", "second time today")
    notes = await core.handoffs.notes("web:a")
    assert [(n.agent, n.text) for n in notes] == [
        ("mei", "called the branch"),
        ("lin", "second time today"),
    ]
    assert await core.handoffs.notes("web:b") == []
    with pytest.raises(InvalidInput):
        await core.handoffs.add_note(second.id, "lin", "   ")


async def test_canned_replies_are_shared_and_titled_once(core: Core) -> None:
    canned = CannedReplies(core.db, core.clock)
    made = await canned.add("hours", "客服時間為週一至週五 08:30–17:00。", "mei")
    with pytest.raises(InvalidInput):
        await canned.add("hours", "again", "lin")
    await canned.add("branch", "請攜帶身分證至分公司辦理。", "lin")
    assert [c.title for c in await canned.all()] == ["branch", "hours"]
    assert await canned.remove(made.id)
    assert not await canned.remove(made.id)
    assert [c.title for c in await canned.all()] == ["branch"]
