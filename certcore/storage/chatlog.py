"""The web chat's message log: what a browser shows again after a reload, or on another instance.

Storage only. Each row is one message of one conversation as JSON, numbered 1, 2, 3 … so a page
asks for "everything after the last one I showed". What a message holds belongs to the web chat
channel, which hands this module plain JSON objects; the one field read here is `event`, the id
of the customer's event the rows answered, so that a retried request is answered with the rows
already written instead of writing them twice. Secrets in a message (a download link, what the
customer typed) arrive here sealed: this module never sees them in clear.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.clock import Clock
from certcore.storage.database import Database
from certcore.storage.schema import chat_messages

KEPT = timedelta(days=30)
"""How long a web chat's history is kept: a customer coming back within a month sees it."""

EVENT_LOOK_BACK = 100
"""How many recent rows a retried event's answer is looked for in (a retry follows its first
try within seconds, a few messages back at most)."""

_APPEND_TRIES = 3
"""Two instances appending to one conversation at the same instant collide on the next seq
(the primary key); the loser reads the new last seq and tries again."""

READ_LIMIT = 500
"""At most this many rows per read; the reader asks again after the last one it got."""


@dataclass(frozen=True)
class ChatEntry:
    seq: int
    created_at: datetime
    message: dict[str, Any]


class ChatLog:
    """The rows of `chat_messages`, over a database and a clock."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def append(
        self,
        conversation_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        event_id: str | None = None,
    ) -> tuple[list[ChatEntry], bool]:
        """Append the messages with the next seqs, in one transaction; returns the rows and
        whether they are new. With an `event_id` already among the recent rows, nothing is
        written and the rows that event wrote before are returned (a retried request)."""
        stored = [dict(message, event=event_id) for message in messages]
        for attempt in range(_APPEND_TRIES):
            try:
                async with self.db.write() as conn:
                    if event_id is not None:
                        earlier = await _rows_of_event(conn, conversation_id, event_id)
                        if earlier:
                            return earlier, False
                    if not stored:
                        return [], True
                    last = await _last_seq(conn, conversation_id)
                    now = self.clock()
                    entries = [
                        ChatEntry(last + n, now, message) for n, message in enumerate(stored, 1)
                    ]
                    await conn.execute(
                        insert(chat_messages),
                        [
                            {
                                "conversation_id": conversation_id,
                                "seq": entry.seq,
                                "created_at": now,
                                "message": json.dumps(entry.message, ensure_ascii=False),
                            }
                            for entry in entries
                        ],
                    )
                return entries, True
            except IntegrityError:
                if attempt + 1 == _APPEND_TRIES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def after(
        self, conversation_id: str, seq: int, *, limit: int = READ_LIMIT
    ) -> list[ChatEntry]:
        """The rows after `seq`, oldest first (at most `limit`)."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(chat_messages)
                .where(
                    chat_messages.c.conversation_id == conversation_id, chat_messages.c.seq > seq
                )
                .order_by(chat_messages.c.seq)
                .limit(limit)
            )
            return [_entry(row) for row in rows]

    async def recent(self, conversation_id: str, limit: int) -> list[ChatEntry]:
        """The newest `limit` rows, oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(chat_messages)
                .where(chat_messages.c.conversation_id == conversation_id)
                .order_by(chat_messages.c.seq.desc())
                .limit(limit)
            )
            return [_entry(row) for row in reversed(list(rows))]

    async def last_seq(self, conversation_id: str) -> int | None:
        """The newest row's seq; None for a conversation with no rows (unknown, or forgotten)."""
        async with self.db.read() as conn:
            value = (
                await conn.execute(
                    select(func.max(chat_messages.c.seq)).where(
                        chat_messages.c.conversation_id == conversation_id
                    )
                )
            ).scalar()
        return None if value is None else int(value)

    async def forget_old(self, kept: timedelta = KEPT) -> int:
        """Erase the rows older than `kept`; returns how many went."""
        async with self.db.write() as conn:
            result = await conn.execute(
                delete(chat_messages).where(chat_messages.c.created_at < self.clock() - kept)
            )
        return int(result.rowcount or 0)


async def _last_seq(conn: AsyncConnection, conversation_id: str) -> int:
    value = (
        await conn.execute(
            select(func.max(chat_messages.c.seq)).where(
                chat_messages.c.conversation_id == conversation_id
            )
        )
    ).scalar()
    return int(value or 0)


async def _rows_of_event(
    conn: AsyncConnection, conversation_id: str, event_id: str
) -> list[ChatEntry]:
    rows = await conn.execute(
        select(chat_messages)
        .where(chat_messages.c.conversation_id == conversation_id)
        .order_by(chat_messages.c.seq.desc())
        .limit(EVENT_LOOK_BACK)
    )
    entries = [_entry(row) for row in rows]
    return sorted(
        (entry for entry in entries if entry.message.get("event") == event_id),
        key=lambda entry: entry.seq,
    )


def _entry(row: Row[Any]) -> ChatEntry:
    message = json.loads(row.message)
    if not isinstance(message, dict):
        message = {}
    return ChatEntry(seq=int(row.seq), created_at=row.created_at, message=message)
