"""Conversation state as the database keeps it, so any process can take the next event.

A conversation is loaded, changed by exactly one event and saved together with that event's
replies in one transaction. Its `version` must still be the one loaded (the lease makes that the
normal case); `lease_owner`/`lease_until` keep two instances from working on one conversation at
once, which is what applies one conversation's events in order.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from certcore.clock import Clock
from certcore.i18n import DEFAULT_LOCALE
from certcore.storage.database import Database
from certcore.storage.schema import conversation_events, conversations
from dialogs.messages import Option, Outbound, outbound_from_json, outbound_to_json

LEASE = timedelta(seconds=60)
LEASE_POLL_SECONDS = 0.05


EVENT_RECORDS_KEPT = timedelta(days=7)
"""Platforms redeliver within minutes to hours; a week of event records covers any retry."""


async def forget_old_events(db: Database, now: datetime) -> int:
    """Drop event records older than `EVENT_RECORDS_KEPT`; returns how many."""
    async with db.write() as conn:
        forgotten = await conn.execute(
            delete(conversation_events).where(
                conversation_events.c.received_at < now - EVENT_RECORDS_KEPT
            )
        )
    return forgotten.rowcount


class ConversationBusy(Exception):
    """Another process kept the conversation's lease longer than a turn may take."""


class ConcurrentUpdate(Exception):
    """The conversation changed under us although we held its lease (a lease that expired)."""


@dataclass
class Conversation:
    id: str
    locale: str = DEFAULT_LOCALE
    customer_id: str | None = None
    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    options: list[Option] = field(default_factory=list)
    seq: int = 0
    flow_started_at: datetime | None = None
    last_activity_at: datetime | None = None
    reminders: bool = True
    agent_mode: bool = False
    following: bool = True
    version: int = 0

    @classmethod
    def from_row(cls, row: Any) -> Conversation:
        return cls(
            id=row.id,
            locale=row.locale,
            customer_id=row.customer_id,
            flow=row.flow,
            step=row.step,
            data=json.loads(row.data),
            options=[Option(key, label) for key, label in json.loads(row.options)],
            seq=row.seq,
            flow_started_at=row.flow_started_at,
            last_activity_at=row.last_activity_at,
            reminders=row.reminders,
            agent_mode=row.agent_mode,
            following=row.following,
            version=row.version,
        )

    def state_values(self) -> dict[str, Any]:
        return {
            "locale": self.locale,
            "customer_id": self.customer_id,
            "flow": self.flow,
            "step": self.step,
            "data": json.dumps(self.data, ensure_ascii=False, sort_keys=True),
            "options": json.dumps([[o.key, o.label] for o in self.options], ensure_ascii=False),
            "seq": self.seq,
            "flow_started_at": self.flow_started_at,
            "last_activity_at": self.last_activity_at,
            "reminders": self.reminders,
            "agent_mode": self.agent_mode,
            "following": self.following,
        }


class ConversationStore:
    def __init__(self, db: Database, clock: Clock, owner: str) -> None:
        self.db = db
        self.clock = clock
        self.owner = owner
        """This process's name in leases."""

    async def acquire(self, conversation_id: str, locale: str) -> None:
        """Create the conversation if new and take its lease, waiting while another holds it."""
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
                                id=conversation_id,
                                **Conversation(
                                    conversation_id, locale=locale, last_activity_at=now
                                ).state_values(),
                                version=0,
                                created_at=now,
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

    async def load(self, conversation_id: str) -> Conversation:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(conversations).where(conversations.c.id == conversation_id)
                )
            ).one()
        return Conversation.from_row(row)

    async def recorded_replies(self, conversation_id: str, event_id: str) -> list[Outbound] | None:
        async with self.db.read() as conn:
            replies = (
                await conn.execute(
                    select(conversation_events.c.replies).where(
                        conversation_events.c.conversation_id == conversation_id,
                        conversation_events.c.event_id == event_id,
                    )
                )
            ).scalar()
        if replies is None:
            return None
        return [outbound_from_json(item) for item in json.loads(replies)]

    async def save(
        self,
        conversation: Conversation,
        *,
        event_id: str,
        replies: list[Outbound],
        now: datetime,
    ) -> None:
        """Store the new state and the event's replies together, or neither."""
        async with self.db.write() as conn:
            saved = await conn.execute(
                update(conversations)
                .where(
                    conversations.c.id == conversation.id,
                    conversations.c.version == conversation.version,
                )
                .values(**conversation.state_values(), version=conversation.version + 1)
            )
            if saved.rowcount != 1:
                raise ConcurrentUpdate(conversation.id)
            await conn.execute(
                insert(conversation_events).values(
                    conversation_id=conversation.id,
                    event_id=event_id,
                    received_at=now,
                    replies=json.dumps(
                        [outbound_to_json(reply) for reply in replies], ensure_ascii=False
                    ),
                )
            )
        conversation.version += 1
