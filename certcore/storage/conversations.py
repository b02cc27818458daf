"""Conversation records: each chat's saved state and the replies of every event it took.

Storage only. What the fields mean (a flow, a step, the options on screen) belongs to
`dialogs`, which hands this module plain values and JSON text; nothing here knows a flow or a
message.

One event is one unit of work with two round trips: `turn` reads, in one go, whether the event
was already processed (its recorded replies) and the conversation's state with its version;
`save` writes the new state over exactly that version together with the event's record. No lock
is held in between, so a slow step (a code being sent) stalls nobody: one process orders a
conversation's events itself (the engine), and a save over a version another process wrote
meanwhile is refused (`ConcurrentUpdate`), so the engine applies the event again over the newer
state instead of overwriting it.

On SQLite both round trips go through the database's one writer thread (`GroupCommitter`),
which commits every waiting event in one transaction. On PostgreSQL, where several instances
share the database, the same two round trips run as async SQLAlchemy transactions and the read
also takes the conversation's lease (`lease_owner`, `lease_until`: one UPDATE … RETURNING, so
still one round trip), which the save gives back: an event of the same conversation at another
instance waits for the lease instead of being applied over the first one's state and again
(which could repeat a step's side effect, such as sending a code). A lease outlives its holder
by at most `LEASE_SECONDS` (a process killed mid-event); the version check stays behind it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from certcore.clock import Clock
from certcore.errors import ConcurrentUpdate
from certcore.storage.database import Database
from certcore.storage.groupcommit import Codec, GroupCommitter, compiled
from certcore.storage.schema import conversation_events, conversations

T = TypeVar("T")

EVENT_RECORDS_KEPT = timedelta(days=7)
"""Platforms redeliver within minutes to hours; a week of event records covers any retry."""
LINKED_CHUNK = 500
"""Customers one `linked_to_each` query asks about."""

LEASE_SECONDS = 30.0
"""How long a lease holds a conversation: beyond any step's slowest work (a code's send times
out after `send_timeout_seconds`), short enough that a crashed holder delays its chat little."""
LEASE_WAIT_SECONDS = 45.0
"""How long an event waits for another instance's lease before its turn fails (the platform
redelivers it)."""
LEASE_POLL_SECONDS = 0.02

STATE_COLUMNS = tuple(
    c.name
    for c in conversations.columns
    if c.name not in ("id", "version", "created_at", "lease_owner", "lease_until")
)
_STATE = Codec(conversations)
_EVENT = Codec(conversation_events)

_SELECT_RECORDED = compiled(
    select(conversation_events.c.replies).where(
        conversation_events.c.conversation_id == bindparam("cid"),
        conversation_events.c.event_id == bindparam("eid"),
    )
)
_SELECT_STATE = compiled(select(conversations).where(conversations.c.id == bindparam("cid")))
_SELECT_LAST = compiled(
    select(conversation_events.c.replies)
    .where(conversation_events.c.conversation_id == bindparam("cid"))
    .order_by(conversation_events.c.received_at.desc())
    .limit(1)
)
_INSERT_STATE = compiled(
    insert(conversations), column_keys=["id", *STATE_COLUMNS, "version", "created_at"]
)
_UPDATE_STATE = compiled(
    update(conversations)
    .where(conversations.c.id == bindparam("cid"), conversations.c.version == bindparam("loaded"))
    .values({name: bindparam("v_" + name) for name in (*STATE_COLUMNS, "version")})
)
_INSERT_EVENT = compiled(
    insert(conversation_events),
    column_keys=["conversation_id", "event_id", "received_at", "replies", "said", "author"],
)


@dataclass(frozen=True)
class EventRecord:
    """What is kept of one event beside the new state."""

    event_id: str
    replies: str
    said: str | None
    author: str | None


@dataclass(frozen=True)
class TranscriptEntry:
    """One event of a conversation as the agents read it: what the customer did (masked), or
    the agent who wrote the reply, and the replies (JSON) shown to the customer."""

    event_id: str
    at: datetime
    said: str | None
    author: str | None
    replies: str


@dataclass
class StoredTurn:
    """One event's read of its conversation, and the save that ends it."""

    records: ConversationRecords
    conversation_id: str
    event_id: str
    recorded: str | None
    """The replies (JSON) already recorded for this event: a redelivery, answered from here."""
    values: dict[str, Any] | None
    """The conversation's state as last saved; None for a conversation never seen."""
    lease: str | None = None
    """The lease this turn holds on the conversation (async path), given back by the save."""
    saved: bool = False

    async def save(
        self,
        values: Mapping[str, Any],
        *,
        replies: str,
        now: datetime,
        said: str | None = None,
        author: str | None = None,
    ) -> None:
        """Store the new state over the version read and the event's replies, together or not
        at all; `ConcurrentUpdate` when another process saved this conversation meanwhile.
        `said` (already masked) and `author` are kept for the agents' transcript."""
        version = None if self.values is None else int(self.values["version"])
        event = EventRecord(self.event_id, replies, said, author)
        await self.records._save(self.conversation_id, version, values, event, now)
        self.saved = True


class ConversationRecords:
    def __init__(self, db: Database, clock: Clock, *, group_commit: bool | None = None) -> None:
        """`group_commit` (default: on SQLite) sends the hot path through the writer thread;
        off, the same statements run as async SQLAlchemy transactions, as on PostgreSQL."""
        self.db = db
        self.clock = clock
        use_writer = db.is_sqlite if group_commit is None else group_commit
        self._writer = GroupCommitter(db.url) if use_writer else None

    @asynccontextmanager
    async def turn(self, conversation_id: str, event_id: str) -> AsyncIterator[StoredTurn]:
        """The event's recorded replies, if any, and the conversation's state: one round trip."""
        if self._writer is not None:
            recorded, values = await self._on_writer(
                lambda conn: _read_turn(conn, conversation_id, event_id)
            )
            yield StoredTurn(self, conversation_id, event_id, recorded, values)
            return
        recorded, values, lease = await self._read_turn_async(conversation_id, event_id)
        turn = StoredTurn(self, conversation_id, event_id, recorded, values, lease)
        try:
            yield turn
        finally:
            if lease is not None and not turn.saved:
                await self._release(conversation_id, lease)

    async def find(self, conversation_id: str) -> dict[str, Any] | None:
        """The record's values (its version included), or None for a conversation never seen."""
        if self._writer is not None:
            return await self._on_writer(lambda conn: _read_state(conn, conversation_id))
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(conversations).where(conversations.c.id == conversation_id)
                )
            ).first()
        return None if row is None else dict(row._mapping)

    async def last_replies(self, conversation_id: str) -> str | None:
        """The replies (JSON) of the conversation's latest recorded event, if any."""
        if self._writer is not None:
            return await self._on_writer(lambda conn: _read_last(conn, conversation_id))
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

    async def recorded(self, conversation_id: str, event_id: str) -> bool:
        """Whether this event was processed already (a push about to be dispatched again, such
        as a redelivered support-group message, would otherwise be sent twice)."""
        if self._writer is not None:
            return await self._writer.read(
                lambda conn: (
                    _SELECT_RECORDED.run(conn, {"cid": conversation_id, "eid": event_id}).fetchone()
                    is not None
                )
            )
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(conversation_events.c.event_id).where(
                        conversation_events.c.conversation_id == conversation_id,
                        conversation_events.c.event_id == event_id,
                    )
                )
            ).first()
        return row is not None

    async def linked_to(self, customer_id: str) -> list[dict[str, Any]]:
        """The conversations linked to this customer, oldest first: each one's `id`, `locale`
        and what decides whether it may be reminded (`reminders`, `following`, `agent_mode`)."""
        return (await self.linked_to_each([customer_id])).get(customer_id, [])

    async def linked_to_each(
        self, customer_ids: Collection[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """`linked_to` for several customers in few queries (a reminder sweep's batch); a
        customer with no linked conversation is absent."""
        wanted = sorted(set(customer_ids))
        linked: dict[str, list[dict[str, Any]]] = {}
        async with self.db.read() as conn:
            for start in range(0, len(wanted), LINKED_CHUNK):
                rows = await conn.execute(
                    select(
                        conversations.c.customer_id,
                        conversations.c.id,
                        conversations.c.locale,
                        conversations.c.reminders,
                        conversations.c.following,
                        conversations.c.agent_mode,
                    )
                    .where(conversations.c.customer_id.in_(wanted[start : start + LINKED_CHUNK]))
                    .order_by(conversations.c.created_at, conversations.c.id)
                )
                for row in rows:
                    values = dict(row._mapping)
                    linked.setdefault(values.pop("customer_id"), []).append(values)
        return linked

    async def transcript(
        self,
        conversation_id: str,
        *,
        limit: int = 50,
        after: datetime | None = None,
        earliest: bool = False,
    ) -> list[TranscriptEntry]:
        """The conversation's latest `limit` events (those after `after`, when given), oldest
        first: the agents' view of the chat. Kept as long as the event records (a week).
        `earliest`: the first `limit` events after `after` instead, for a reader catching up in
        order (the Telegram support group's relay), which must not skip the older ones."""
        query = select(
            conversation_events.c.event_id,
            conversation_events.c.received_at,
            conversation_events.c.said,
            conversation_events.c.author,
            conversation_events.c.replies,
        ).where(conversation_events.c.conversation_id == conversation_id)
        if after is not None:
            query = query.where(conversation_events.c.received_at > after)
        received = conversation_events.c.received_at
        query = query.order_by(received if earliest else received.desc()).limit(limit)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            TranscriptEntry(
                event_id=row.event_id,
                at=row.received_at,
                said=row.said,
                author=row.author,
                replies=row.replies,
            )
            for row in (rows if earliest else reversed(rows))
        ]

    async def said_since(self, since: Mapping[str, datetime]) -> dict[str, int]:
        """For each conversation, how many of its events after its moment were the customer's
        own (an event with `said`): the agents' unread count. One query for the whole queue;
        a conversation with none is 0."""
        counts = dict.fromkeys(since, 0)
        if not since:
            return counts
        query = (
            select(conversation_events.c.conversation_id, func.count())
            .where(
                conversation_events.c.said.is_not(None),
                or_(
                    *(
                        and_(
                            conversation_events.c.conversation_id == conversation_id,
                            conversation_events.c.received_at > moment,
                        )
                        for conversation_id, moment in since.items()
                    )
                ),
            )
            .group_by(conversation_events.c.conversation_id)
        )
        async with self.db.read() as conn:
            for conversation_id, count in (await conn.execute(query)).all():
                counts[conversation_id] = int(count)
        return counts

    async def forget_old_events(self) -> int:
        """Drop event records older than `EVENT_RECORDS_KEPT`; returns how many."""
        async with self.db.write() as conn:
            forgotten = await conn.execute(
                delete(conversation_events).where(
                    conversation_events.c.received_at < self.clock() - EVENT_RECORDS_KEPT
                )
            )
        return forgotten.rowcount

    def close(self) -> None:
        """Stop the writer thread once the events already queued are saved."""
        if self._writer is not None:
            self._writer.close()

    # -- the two round trips ------------------------------------------------------------------

    async def _on_writer(
        self, work: Callable[[sqlite3.Connection], T], *, write: bool = False
    ) -> T:
        """`work` on the SQLite writer thread; a file that cannot be read or written (its disk
        full, its directory gone) is the database's outage, as on the async path."""
        assert self._writer is not None
        try:
            if write:
                return await self._writer.write(work)
            return await self._writer.read(work)
        except sqlite3.OperationalError as error:
            raise self.db.note_outage(error) from error

    async def _save(
        self,
        conversation_id: str,
        version: int | None,
        values: Mapping[str, Any],
        event: EventRecord,
        now: datetime,
    ) -> None:
        if self._writer is not None:
            await self._on_writer(
                lambda conn: _write_turn(conn, conversation_id, version, values, event, now),
                write=True,
            )
            return
        state = {name: values[name] for name in STATE_COLUMNS}
        try:
            async with self.db.write() as conn:
                if version is None:
                    await conn.execute(
                        insert(conversations).values(
                            id=conversation_id, **state, version=1, created_at=now
                        )
                    )
                else:
                    saved = await conn.execute(
                        update(conversations)
                        .where(
                            conversations.c.id == conversation_id,
                            conversations.c.version == version,
                        )
                        .values(**state, version=version + 1, lease_owner=None, lease_until=None)
                    )
                    if saved.rowcount != 1:
                        raise ConcurrentUpdate(conversation_id)
                await conn.execute(
                    insert(conversation_events).values(
                        conversation_id=conversation_id,
                        event_id=event.event_id,
                        received_at=now,
                        replies=event.replies,
                        said=event.said,
                        author=event.author,
                    )
                )
        except IntegrityError as error:  # created, or this event saved, by another process
            raise ConcurrentUpdate(conversation_id) from error

    async def _read_turn_async(
        self, conversation_id: str, event_id: str
    ) -> tuple[str | None, dict[str, Any] | None, str | None]:
        """The recorded replies (a redelivery: no lease needed), or the state with its lease
        taken; waits while another unit of work holds the lease. A conversation never seen has
        no row to lease: the first save creates it, and a second creation is refused by the
        key (`ConcurrentUpdate`)."""
        lease = uuid.uuid4().hex
        deadline = time.monotonic() + LEASE_WAIT_SECONDS
        while True:
            now = self.clock()
            async with self.db.write() as conn:
                recorded: str | None = (
                    await conn.execute(
                        select(conversation_events.c.replies).where(
                            conversation_events.c.conversation_id == conversation_id,
                            conversation_events.c.event_id == event_id,
                        )
                    )
                ).scalar()
                if recorded is not None:
                    return recorded, None, None
                row = (
                    await conn.execute(
                        update(conversations)
                        .where(
                            conversations.c.id == conversation_id,
                            or_(
                                conversations.c.lease_until.is_(None),
                                conversations.c.lease_until < now,
                            ),
                        )
                        .values(
                            lease_owner=lease, lease_until=now + timedelta(seconds=LEASE_SECONDS)
                        )
                        .returning(*conversations.c)
                    )
                ).first()
                if row is not None:
                    return None, dict(row._mapping), lease
                held = (
                    await conn.execute(
                        select(conversations.c.id).where(conversations.c.id == conversation_id)
                    )
                ).first()
                if held is None:
                    return None, None, None
            if time.monotonic() > deadline:
                raise ConcurrentUpdate(conversation_id)
            await asyncio.sleep(LEASE_POLL_SECONDS)

    async def _release(self, conversation_id: str, lease: str) -> None:
        """Give a lease back unsaved (a redelivery found meanwhile, a failed turn)."""
        async with self.db.write() as conn:
            await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id, conversations.c.lease_owner == lease)
                .values(lease_owner=None, lease_until=None)
            )


# -- on the SQLite writer thread ------------------------------------------------------------------


def _read_state(conn: sqlite3.Connection, conversation_id: str) -> dict[str, Any] | None:
    row = _SELECT_STATE.run(conn, {"cid": conversation_id}).fetchone()
    return None if row is None else _STATE.decode(row)


def _read_last(conn: sqlite3.Connection, conversation_id: str) -> str | None:
    row = _SELECT_LAST.run(conn, {"cid": conversation_id}).fetchone()
    return None if row is None else str(row[0])


def _read_turn(
    conn: sqlite3.Connection, conversation_id: str, event_id: str
) -> tuple[str | None, dict[str, Any] | None]:
    row = _SELECT_RECORDED.run(conn, {"cid": conversation_id, "eid": event_id}).fetchone()
    if row is not None:
        return str(row[0]), None
    return None, _read_state(conn, conversation_id)


def _write_turn(
    conn: sqlite3.Connection,
    conversation_id: str,
    version: int | None,
    values: Mapping[str, Any],
    event: EventRecord,
    now: datetime,
) -> None:
    state = {name: values[name] for name in STATE_COLUMNS}
    try:
        if version is None:
            _INSERT_STATE.run(
                conn,
                _STATE.encode({"id": conversation_id, **state, "version": 1, "created_at": now}),
            )
        else:
            saved = _UPDATE_STATE.run(
                conn,
                {
                    "cid": conversation_id,
                    "loaded": version,
                    **_STATE.encode({**state, "version": version + 1}, prefix="v_"),
                },
            )
            if saved.rowcount != 1:
                raise ConcurrentUpdate(conversation_id)
        _INSERT_EVENT.run(
            conn,
            _EVENT.encode(
                {
                    "conversation_id": conversation_id,
                    "event_id": event.event_id,
                    "received_at": now,
                    "replies": event.replies,
                    "said": event.said,
                    "author": event.author,
                }
            ),
        )
    except sqlite3.IntegrityError as error:  # created, or this event saved, by another process
        raise ConcurrentUpdate(conversation_id) from error
