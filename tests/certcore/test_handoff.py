"""The hand-off queue, the service hours and the agents' accounts over the real database, on
the `core` fixture's frozen clock (Tuesday 24 November 2026, 10:00 Taipei)."""

from __future__ import annotations

import asyncio
from datetime import date, time

import pytest
from sqlalchemy import select

from certcore.clock import FrozenClock, taipei
from certcore.config import Settings
from certcore.core import Core
from certcore.errors import ConfigurationError, InvalidInput
from certcore.handoff import AgentExists, HandoffReason, HandoffState, ServiceHours
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
