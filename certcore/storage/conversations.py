"""Conversation records: each chat's saved state and the replies of every event it took.

Storage only. What the fields mean (a flow, a step, the options on screen) belongs to
`dialogs`, which hands this module plain values and JSON text; nothing here knows a flow or a
message. A record is changed by one event at a time: the lease (`lease_owner`/`lease_until`)
keeps two processes from working on one conversation at once, and `save` stores the new state
only over the version that was loaded, together with the event's replies, in one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from certcore.clock import Clock
from certcore.storage.database import Database
from certcore.storage.schema import conversation_events, conversations

LEASE = timedelta(seconds=60)
LEASE_POLL_SECONDS = 0.05

EVENT_RECORDS_KEPT = timedelta(days=7)
"""Platforms redeliver within minutes to hours; a week of event records covers any retry."""


class ConversationBusy(Exception):
    """Another process kept the conversation's lease longer than a turn may take."""


class ConcurrentUpdate(Exception):
    """The conversation changed under us although we held its lease (a lease that expired)."""


class ConversationRecords:
    def __init__(self, db: Database, clock: Clock, owner: str) -> None:
        self.db = db
        self.clock = clock
        self.owner = owner
        """This process's name in leases."""

    async def acquire(self, conversation_id: str, initial: Mapping[str, Any]) -> None:
        """Create the record with `initial` values if new, and take its lease, waiting while
        another process holds it."""
        now = self.clock()
        async with self.db.write() as conn:
            exists = (
                await conn.execute(
                    select(conversations.c.id).where(conversations.c.id == conversation_id)
                )
            ).first()
            if exists is None:
                try:
                    async with conn.begin_nested():
                        await conn.execute(
                            insert(conversations).values(
                                id=conversation_id, **initial, version=0, created_at=now
                            )
                        )
                except IntegrityError:
                    pass  # created by another process a moment ago
        deadline = asyncio.get_running_loop().time() + LEASE.total_seconds()
        while True:
            now = self.clock()
            async with self.db.write() as conn:
                taken = await conn.execute(
                    update(conversations)
                    .where(
                        conversations.c.id == conversation_id,
                        or_(
                            conversations.c.lease_owner.is_(None),
                            conversations.c.lease_owner == self.owner,
                            conversations.c.lease_until < now,
                        ),
                    )
                    .values(lease_owner=self.owner, lease_until=now + LEASE)
                )
            if taken.rowcount == 1:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise ConversationBusy(conversation_id)
            await asyncio.sleep(LEASE_POLL_SECONDS)

    async def release(self, conversation_id: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(conversations)
                .where(
                    conversations.c.id == conversation_id, conversations.c.lease_owner == self.owner
                )
                .values(lease_owner=None, lease_until=None)
            )

    async def find(self, conversation_id: str) -> dict[str, Any] | None:
        """The record's values (its version included), or None for a conversation never seen."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(conversations).where(conversations.c.id == conversation_id)
                )
            ).first()
        return None if row is None else dict(row._mapping)

    async def recorded_replies(self, conversation_id: str, event_id: str) -> str | None:
        """The replies (JSON) recorded for this event, or None when it was never processed."""
        async with self.db.read() as conn:
            replies: str | None = (
                await conn.execute(
                    select(conversation_events.c.replies).where(
                        conversation_events.c.conversation_id == conversation_id,
                        conversation_events.c.event_id == event_id,
                    )
                )
            ).scalar()
        return replies

    async def last_replies(self, conversation_id: str) -> str | None:
        """The replies (JSON) of the conversation's latest recorded event, if any."""
        async with self.db.read() as conn:
            replies: str | None = (
                await conn.execute(
                    select(conversation_events.c.replies)
                    .where(conversation_events.c.conversation_id == conversation_id)
                    .order_by(conversation_events.c.received_at.desc())
                    .limit(1)
                )
            ).scalar()
        return replies

    async def save(
        self,
        conversation_id: str,
        *,
        version: int,
        values: Mapping[str, Any],
        event_id: str,
        replies: str,
        now: datetime,
    ) -> None:
        """Store the new values over `version` and the event's replies together, or neither."""
        async with self.db.write() as conn:
            saved = await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id, conversations.c.version == version)
                .values(**values, version=version + 1)
            )
            if saved.rowcount != 1:
                raise ConcurrentUpdate(conversation_id)
            await conn.execute(
                insert(conversation_events).values(
                    conversation_id=conversation_id,
                    event_id=event_id,
                    received_at=now,
                    replies=replies,
                )
            )

    async def forget_old_events(self) -> int:
        """Drop event records older than `EVENT_RECORDS_KEPT`; returns how many."""
        async with self.db.write() as conn:
            forgotten = await conn.execute(
                delete(conversation_events).where(
                    conversation_events.c.received_at < self.clock() - EVENT_RECORDS_KEPT
                )
            )
        return forgotten.rowcount
