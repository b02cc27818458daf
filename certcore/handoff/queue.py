"""Hand-off requests: a conversation asks for a person, waits, and is cancelled (or, later,
claimed and closed by an agent). At most one request per conversation is open (waiting or
active) at a time; the database keeps that with a unique `open_key`, so two instances asking
at once still make one request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from certcore.clock import Clock
from certcore.storage.database import Database
from certcore.storage.schema import handoffs


class HandoffReason(StrEnum):
    ASKED = "asked"
    MISUNDERSTOOD = "misunderstood"
    QUOTA = "quota"
    IDENTITY_LOCK = "identity_lock"


class HandoffState(StrEnum):
    WAITING = "waiting"
    ACTIVE = "active"
    CLOSED = "closed"
    CANCELLED = "cancelled"


OPEN_STATES = (HandoffState.WAITING, HandoffState.ACTIVE)


@dataclass(frozen=True)
class Handoff:
    id: int
    conversation_id: str
    reason: HandoffReason
    state: HandoffState
    agent: str | None
    requested_at: datetime
    claimed_at: datetime | None
    ended_at: datetime | None
    outcome: str | None = None
    rating: int | None = None
    last_agent_at: datetime | None = None
    agent_seen_at: datetime | None = None
    topic_id: int | None = None
    relayed_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Row[*tuple[Any, ...]]) -> Handoff:
        values = dict(row._mapping)
        values.pop("open_key", None)
        values["reason"] = HandoffReason(values["reason"])
        values["state"] = HandoffState(values["state"])
        return cls(**values)


class HandoffQueue:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def open_for(self, conversation_id: str) -> Handoff | None:
        """The conversation's waiting or active request, if it has one."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(handoffs).where(handoffs.c.open_key == conversation_id))
            ).first()
        return None if row is None else Handoff.from_row(row)

    async def request(self, conversation_id: str, reason: HandoffReason) -> tuple[Handoff, bool]:
        """Open a waiting request for the conversation; when it has an open one already, that
        one (and False: nothing new was made)."""
        now = self.clock()
        try:
            async with self.db.write() as conn:
                found = (
                    await conn.execute(
                        select(handoffs).where(handoffs.c.open_key == conversation_id)
                    )
                ).first()
                if found is not None:
                    return Handoff.from_row(found), False
                result = await conn.execute(
                    insert(handoffs).values(
                        conversation_id=conversation_id,
                        reason=reason.value,
                        state=HandoffState.WAITING.value,
                        open_key=conversation_id,
                        requested_at=now,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                new_id = int(key[0])
        except IntegrityError:  # another process opened one between our read and our insert
            existing = await self.open_for(conversation_id)
            if existing is None:
                raise
            return existing, False
        return (
            Handoff(
                id=new_id,
                conversation_id=conversation_id,
                reason=reason,
                state=HandoffState.WAITING,
                agent=None,
                requested_at=now,
                claimed_at=None,
                ended_at=None,
            ),
            True,
        )

    async def cancel(self, conversation_id: str) -> Handoff | None:
        """Cancel the conversation's waiting request (the customer changed their mind); None
        when none is waiting (an agent has it already, or there is none)."""
        now = self.clock()
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(handoffs).where(
                        handoffs.c.open_key == conversation_id,
                        handoffs.c.state == HandoffState.WAITING.value,
                    )
                )
            ).first()
            if row is None:
                return None
            await conn.execute(
                update(handoffs)
                .where(handoffs.c.id == row.id, handoffs.c.state == HandoffState.WAITING.value)
                .values(state=HandoffState.CANCELLED.value, open_key=None, ended_at=now)
            )
        cancelled = Handoff.from_row(row)
        return Handoff(
            **{
                **cancelled.__dict__,
                "state": HandoffState.CANCELLED,
                "ended_at": now,
            }
        )

    async def waiting(self, limit: int = 100) -> list[Handoff]:
        """The waiting requests, oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(handoffs)
                .where(handoffs.c.state == HandoffState.WAITING.value)
                .order_by(handoffs.c.requested_at, handoffs.c.id)
                .limit(limit)
            )
            return [Handoff.from_row(row) for row in rows]
