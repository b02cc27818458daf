"""Hand-off requests: a conversation asks for a person, waits, is claimed by one agent, and ends
(cancelled by the customer, returned to the bot or resolved by the agent, or timed out with no
agent reply). At most one request per conversation is open (waiting or active) at a time; the
database keeps that with a unique `open_key`, so two instances asking at once still make one
request. Every change is one conditional UPDATE, so two agents claiming at once, or an agent
closing while the customer cancels, leave exactly one winner on any number of instances."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from certcore.clock import Clock
from certcore.errors import InvalidInput
from certcore.storage.database import Database, inserted_id
from certcore.storage.schema import canned_replies, handoff_notes, handoffs

NOTE_MAX = 2000
"""Characters in a private note, and in an agent's reply."""


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


class HandoffOutcome(StrEnum):
    CANCELLED = "cancelled"
    """The customer cancelled while waiting."""
    RETURNED = "returned"
    """The agent gave the conversation back to the bot."""
    RESOLVED = "resolved"
    """The agent closed it as done: the customer may rate it."""
    TIMED_OUT = "timed_out"
    """No agent reply for the configured time: back to the bot."""


OPEN_STATES = (HandoffState.WAITING, HandoffState.ACTIVE)


class HandoffTaken(InvalidInput):
    """The request is no longer waiting (another agent claimed it, or it ended), or the agent
    acting on it is not the one who claimed it."""


@dataclass(frozen=True)
class Note:
    id: int
    handoff_id: int
    agent: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class CannedReply:
    id: int
    title: str
    text: str
    created_by: str
    created_at: datetime


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

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


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
                new_id = inserted_id(result)
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
                .values(
                    state=HandoffState.CANCELLED.value,
                    open_key=None,
                    ended_at=now,
                    outcome=HandoffOutcome.CANCELLED.value,
                )
            )
        cancelled = Handoff.from_row(row)
        return Handoff(
            **{
                **cancelled.__dict__,
                "state": HandoffState.CANCELLED,
                "ended_at": now,
                "outcome": HandoffOutcome.CANCELLED.value,
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

    async def get(self, handoff_id: int) -> Handoff | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(handoffs).where(handoffs.c.id == handoff_id))).first()
        return None if row is None else Handoff.from_row(row)

    async def open_requests(self, limit: int = 200) -> list[Handoff]:
        """Waiting and active requests: the waiting first, oldest first, then the active ones
        by their claim. The agents' queue."""
        waiting_first = case((handoffs.c.state == HandoffState.WAITING.value, 0), else_=1)
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(handoffs)
                .where(handoffs.c.open_key.is_not(None))
                .order_by(waiting_first, handoffs.c.requested_at, handoffs.c.id)
                .limit(limit)
            )
            return [Handoff.from_row(row) for row in rows]

    async def claim(self, handoff_id: int, agent: str) -> Handoff:
        """The agent takes a waiting request; `HandoffTaken` when it is not waiting any more
        (a second claim, even at the same instant on another instance, is refused)."""
        now = self.clock()
        async with self.db.write() as conn:
            claimed = await conn.execute(
                update(handoffs)
                .where(
                    handoffs.c.id == handoff_id,
                    handoffs.c.state == HandoffState.WAITING.value,
                )
                .values(state=HandoffState.ACTIVE.value, agent=agent, claimed_at=now)
            )
            if claimed.rowcount != 1:
                raise HandoffTaken(f"hand-off {handoff_id} is not waiting")
            row = (await conn.execute(select(handoffs).where(handoffs.c.id == handoff_id))).one()
        return Handoff.from_row(row)

    async def held_by(self, conversation_id: str, agent: str) -> Handoff:
        """The conversation's request, active with this agent; `HandoffTaken` otherwise."""
        handoff = await self.open_for(conversation_id)
        if handoff is None or handoff.state is not HandoffState.ACTIVE or handoff.agent != agent:
            raise HandoffTaken(f"{conversation_id} is not with {agent}")
        return handoff

    async def replied(self, handoff_id: int, agent: str) -> bool:
        """Note the agent's reply (the timeout counts from it); False when the request is no
        longer active with this agent."""
        now = self.clock()
        async with self.db.write() as conn:
            done = await conn.execute(
                update(handoffs)
                .where(
                    handoffs.c.id == handoff_id,
                    handoffs.c.state == HandoffState.ACTIVE.value,
                    handoffs.c.agent == agent,
                )
                .values(last_agent_at=now, agent_seen_at=now)
            )
        return done.rowcount == 1

    async def seen(self, handoff_id: int, agent: str) -> None:
        """The agent has read the transcript up to now (the unread count starts again)."""
        async with self.db.write() as conn:
            await conn.execute(
                update(handoffs)
                .where(handoffs.c.id == handoff_id, handoffs.c.agent == agent)
                .values(agent_seen_at=self.clock())
            )

    async def end(
        self, conversation_id: str, outcome: HandoffOutcome, *, agent: str | None = None
    ) -> Handoff | None:
        """End the conversation's open request with `outcome` (by `agent` when given: then only
        if it is active with that agent); the ended request, or None when there was none to end
        (already ended elsewhere: the caller says nothing)."""
        now = self.clock()
        conditions = [handoffs.c.open_key == conversation_id]
        if agent is not None:
            conditions += [
                handoffs.c.state == HandoffState.ACTIVE.value,
                handoffs.c.agent == agent,
            ]
        state = (
            HandoffState.CANCELLED if outcome is HandoffOutcome.CANCELLED else HandoffState.CLOSED
        )
        async with self.db.write() as conn:
            row = (await conn.execute(select(handoffs).where(*conditions))).first()
            if row is None:
                return None
            ended = await conn.execute(
                update(handoffs)
                .where(handoffs.c.id == row.id, handoffs.c.open_key.is_not(None))
                .values(state=state.value, open_key=None, ended_at=now, outcome=outcome.value)
            )
            if ended.rowcount != 1:
                return None
            row = (await conn.execute(select(handoffs).where(handoffs.c.id == row.id))).one()
        return Handoff.from_row(row)

    async def rate(self, handoff_id: int, rating: int) -> bool:
        """The customer's 1–5 for a resolved request, once; False when not taken."""
        if not 1 <= rating <= 5:
            raise InvalidInput("a rating is 1 to 5")
        async with self.db.write() as conn:
            done = await conn.execute(
                update(handoffs)
                .where(
                    handoffs.c.id == handoff_id,
                    handoffs.c.outcome == HandoffOutcome.RESOLVED.value,
                    handoffs.c.rating.is_(None),
                )
                .values(rating=rating)
            )
        return done.rowcount == 1

    async def overdue(self, now: datetime, idle: timedelta, limit: int = 100) -> list[Handoff]:
        """Active requests whose agent has not replied for `idle` (counting from the claim or
        the last reply). Waiting requests are not here: the customer was told when a person
        will answer, and the desk's opening hours decide that (`ServiceHours`)."""
        since = func.coalesce(handoffs.c.last_agent_at, handoffs.c.claimed_at)
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(handoffs)
                .where(handoffs.c.state == HandoffState.ACTIVE.value, since < now - idle)
                .order_by(handoffs.c.id)
                .limit(limit)
            )
            return [Handoff.from_row(row) for row in rows]

    async def set_topic(self, handoff_id: int, topic_id: int | None) -> None:
        """The Telegram support group's forum topic for this request (None: to be made anew)."""
        async with self.db.write() as conn:
            await conn.execute(
                update(handoffs).where(handoffs.c.id == handoff_id).values(topic_id=topic_id)
            )

    async def take_topic(
        self, handoff_id: int, topic_id: int, *, instead_of: int | None
    ) -> int | None:
        """Store a new support-group topic for this request in place of `instead_of` (None: it
        had none), unless another process stored one meanwhile; the topic stored now, either
        way (the caller whose topic lost deletes it)."""
        current = handoffs.c.topic_id
        async with self.db.write() as conn:
            await conn.execute(
                update(handoffs)
                .where(
                    handoffs.c.id == handoff_id,
                    current.is_(None) if instead_of is None else current == instead_of,
                )
                .values(topic_id=topic_id)
            )
            stored: int | None = (
                await conn.execute(select(current).where(handoffs.c.id == handoff_id))
            ).scalar()
        return stored

    async def last_with_topic(self, conversation_id: str) -> Handoff | None:
        """The conversation's latest request that had a support-group topic (a new request
        takes that topic again: one topic per conversation)."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(handoffs)
                    .where(
                        handoffs.c.conversation_id == conversation_id,
                        handoffs.c.topic_id.is_not(None),
                    )
                    .order_by(handoffs.c.id.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else Handoff.from_row(row)

    async def relayed(self, handoff_id: int, through: datetime) -> None:
        """The customer's messages up to `through` are in the support group's topic."""
        async with self.db.write() as conn:
            await conn.execute(
                update(handoffs)
                .where(
                    handoffs.c.id == handoff_id,
                    or_(handoffs.c.relayed_at.is_(None), handoffs.c.relayed_at < through),
                )
                .values(relayed_at=through)
            )

    async def relay_pending(self, limit: int = 100) -> list[Handoff]:
        """What the Telegram support group has work for, oldest first: every open request (its
        topic to make, the customer's messages to copy), and every ended one whose topic is not
        closed yet (its relay mark not past its end, see `topic_closed`)."""
        unclosed = and_(
            handoffs.c.topic_id.is_not(None),
            handoffs.c.ended_at.is_not(None),
            or_(handoffs.c.relayed_at.is_(None), handoffs.c.relayed_at <= handoffs.c.ended_at),
        )
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(handoffs)
                .where(or_(handoffs.c.open_key.is_not(None), unclosed))
                .order_by(handoffs.c.id)
                .limit(limit)
            )
            return [Handoff.from_row(row) for row in rows]

    async def topic_closed(self, handoff_id: int) -> None:
        """The ended request's topic has its closing line and is closed: the relay mark is put
        one microsecond past the end (a relay copies nothing later than the end), so
        `relay_pending` leaves it."""
        async with self.db.write() as conn:
            row = (
                await conn.execute(select(handoffs.c.ended_at).where(handoffs.c.id == handoff_id))
            ).first()
            if row is None or row.ended_at is None:
                raise InvalidInput(f"hand-off {handoff_id} has not ended")
            await conn.execute(
                update(handoffs)
                .where(handoffs.c.id == handoff_id)
                .values(relayed_at=row.ended_at + timedelta(microseconds=1))
            )

    async def by_topic(self, topic_id: int) -> Handoff | None:
        """The open request whose support-group topic this is."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(handoffs).where(
                        and_(handoffs.c.topic_id == topic_id, handoffs.c.open_key.is_not(None))
                    )
                )
            ).first()
        return None if row is None else Handoff.from_row(row)

    # -- private notes ----------------------------------------------------------------------

    async def add_note(self, handoff_id: int, agent: str, text: str) -> Note:
        """A note only agents see, never sent to the customer."""
        text = _checked_text(text)
        now = self.clock()
        async with self.db.write() as conn:
            result = await conn.execute(
                insert(handoff_notes).values(
                    handoff_id=handoff_id, agent=agent, text=text, created_at=now
                )
            )
            note_id = inserted_id(result)
        return Note(id=note_id, handoff_id=handoff_id, agent=agent, text=text, created_at=now)

    async def notes(self, conversation_id: str) -> list[Note]:
        """Every note on the conversation's requests, oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(handoff_notes)
                .join(handoffs, handoffs.c.id == handoff_notes.c.handoff_id)
                .where(handoffs.c.conversation_id == conversation_id)
                .order_by(handoff_notes.c.created_at, handoff_notes.c.id)
            )
            return [Note(**row._mapping) for row in rows]


def _checked_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise InvalidInput("the text is empty")
    if len(text) > NOTE_MAX:
        raise InvalidInput(f"the text is longer than {NOTE_MAX} characters")
    return text


class CannedReplies:
    """The replies the support team keeps, shared by every agent."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def add(self, title: str, text: str, created_by: str) -> CannedReply:
        title = title.strip()
        if not title or len(title) > 80:
            raise InvalidInput("a canned reply's title is 1 to 80 characters")
        text = _checked_text(text)
        now = self.clock()
        try:
            async with self.db.write() as conn:
                result = await conn.execute(
                    insert(canned_replies).values(
                        title=title, text=text, created_by=created_by, created_at=now
                    )
                )
                reply_id = inserted_id(result)
        except IntegrityError as error:
            raise InvalidInput(f"a canned reply titled {title!r} exists already") from error
        return CannedReply(reply_id, title, text, created_by, now)

    async def all(self) -> list[CannedReply]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(canned_replies).order_by(canned_replies.c.title))
            return [CannedReply(**row._mapping) for row in rows]

    async def remove(self, reply_id: int) -> bool:
        async with self.db.write() as conn:
            done = await conn.execute(delete(canned_replies).where(canned_replies.c.id == reply_id))
        return done.rowcount == 1
