"""What the Telegram support group's relay asks of the core, over the real database on the
`core` fixture's frozen clock: which hand-offs have relay work, a topic stored once when two
instances make one at the same time, the relay mark past the end once the topic is closed, the
transcript read from the oldest, and whether an event was recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert

from certcore.clock import FrozenClock
from certcore.core import Core
from certcore.errors import InvalidInput
from certcore.handoff import HandoffOutcome, HandoffReason
from certcore.storage.schema import conversation_events


async def test_relay_work_is_open_requests_and_unclosed_topics(
    core: Core, clock: FrozenClock
) -> None:
    queue = core.handoffs
    waiting, _ = await queue.request("web:a", HandoffReason.ASKED)
    no_topic, _ = await queue.request("web:b", HandoffReason.ASKED)
    with_topic, _ = await queue.request("line:c", HandoffReason.QUOTA)
    await queue.set_topic(with_topic.id, 77)
    clock.advance(seconds=1)
    await queue.cancel("web:b")  # ended before it had a topic: nothing to close
    await queue.end("line:c", HandoffOutcome.RETURNED)
    pending = [h.id for h in await queue.relay_pending()]
    assert pending == [waiting.id, with_topic.id]
    with pytest.raises(InvalidInput):
        await queue.topic_closed(waiting.id)  # still open
    await queue.topic_closed(with_topic.id)
    assert [h.id for h in await queue.relay_pending()] == [waiting.id]
    closed = await queue.get(with_topic.id)
    assert closed is not None and closed.ended_at is not None and closed.relayed_at is not None
    assert closed.relayed_at > closed.ended_at and closed.topic_id == 77
    assert no_topic.id not in pending


async def test_a_relay_mark_at_the_end_itself_still_needs_closing(
    core: Core, clock: FrozenClock
) -> None:
    handoff, _ = await core.handoffs.request("web:a", HandoffReason.ASKED)
    await core.handoffs.set_topic(handoff.id, 5)
    ended = await core.handoffs.end("web:a", HandoffOutcome.RESOLVED)
    assert ended is not None and ended.ended_at is not None
    await core.handoffs.relayed(handoff.id, ended.ended_at)  # a copy at that same instant
    assert [h.id for h in await core.handoffs.relay_pending()] == [handoff.id]


async def test_two_instances_making_a_topic_store_one(core: Core) -> None:
    handoff, _ = await core.handoffs.request("web:a", HandoffReason.ASKED)
    assert await core.handoffs.take_topic(handoff.id, 10, instead_of=None) == 10
    assert await core.handoffs.take_topic(handoff.id, 11, instead_of=None) == 10
    # The topic was deleted: one instance replaces it, the other's replacement loses.
    assert await core.handoffs.take_topic(handoff.id, 12, instead_of=10) == 12
    assert await core.handoffs.take_topic(handoff.id, 13, instead_of=10) == 12
    by_topic = await core.handoffs.by_topic(12)
    assert by_topic is not None and by_topic.id == handoff.id


async def test_the_transcript_from_its_oldest_entries(core: Core, clock: FrozenClock) -> None:
    start = clock()
    async with core.db.write() as conn:
        for number in range(4):
            await conn.execute(
                insert(conversation_events).values(
                    conversation_id="web:t",
                    event_id=f"e{number}",
                    received_at=start + timedelta(seconds=number),
                    replies="[]",
                    said=f"hello {number}",
                )
            )
    records = core.conversations
    latest = await records.transcript("web:t", limit=2)
    earliest = await records.transcript("web:t", limit=2, earliest=True)
    after = await records.transcript(
        "web:t", limit=2, after=start + timedelta(milliseconds=500), earliest=True
    )
    assert [e.event_id for e in latest] == ["e2", "e3"]
    assert [e.event_id for e in earliest] == ["e0", "e1"]
    assert [e.event_id for e in after] == ["e1", "e2"]
    assert await records.recorded("web:t", "e1")
    assert not await records.recorded("web:t", "e9")
    assert not await records.recorded("web:other", "e1")
