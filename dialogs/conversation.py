"""Conversation state, and how the engine keeps it between events.

A conversation is loaded, changed by exactly one event and saved together with that event's
replies. The storage itself is certcore's (`Core.conversations`); this module turns its plain
values into a `Conversation` and back, and the replies into JSON, so the engine works on typed
state and storage never learns what a flow or a message is. `ConversationStorage` is the whole
contract the engine needs from it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from certcore.i18n import DEFAULT_LOCALE
from dialogs.messages import Option, Outbound, outbound_from_json, outbound_to_json


class StoredTurn(Protocol):
    """One event's read of its conversation (one round trip), and the save that ends it."""

    recorded: str | None
    """The replies (JSON) recorded for this event when it was processed before."""
    values: dict[str, Any] | None
    """The conversation's saved values; None for a conversation never seen."""

    async def save(
        self,
        values: Mapping[str, Any],
        *,
        replies: str,
        now: datetime,
        said: str | None = None,
        author: str | None = None,
    ) -> None:
        """The new values and the event's replies, together or not at all; raises
        `certcore.errors.ConcurrentUpdate` when another process saved the conversation since.
        `said` is what the customer did, masked, and `author` the agent who wrote the replies,
        for the agents' transcript."""


class ConversationStorage(Protocol):
    """Where conversation records live: certcore's `ConversationRecords`, or a test double."""

    def turn(
        self, conversation_id: str, event_id: str
    ) -> AbstractAsyncContextManager[StoredTurn]: ...

    async def find(self, conversation_id: str) -> dict[str, Any] | None: ...

    async def last_replies(self, conversation_id: str) -> str | None: ...


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

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Conversation:
        return cls(
            id=values["id"],
            locale=values["locale"],
            customer_id=values["customer_id"],
            flow=values["flow"],
            step=values["step"],
            data=json.loads(values["data"]),
            options=[Option(key, label) for key, label in json.loads(values["options"])],
            seq=values["seq"],
            flow_started_at=values["flow_started_at"],
            last_activity_at=values["last_activity_at"],
            reminders=values["reminders"],
            agent_mode=values["agent_mode"],
            following=values["following"],
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


def replies_to_json(replies: list[Outbound]) -> str:
    return json.dumps([outbound_to_json(reply) for reply in replies], ensure_ascii=False)


def replies_from_json(text: str) -> list[Outbound]:
    return [outbound_from_json(item) for item in json.loads(text)]


class RecordedReplies(list[Outbound]):
    """An event's replies read back from its record: the event was processed before, and a
    channel can tell this repeat from a first answer (a replayed webhook is not answered
    again)."""


@dataclass
class OpenTurn:
    """An event's conversation, as the engine works on it."""

    conversation: Conversation
    """Loaded, or new (with the event's language) for a conversation never seen."""
    recorded: list[Outbound] | None
    """This event's replies when it was processed before: a redelivery, answered with these."""
    stored: StoredTurn
    locale: str

    def reloaded(self) -> Conversation:
        """The conversation as it was before this event (after a failing step)."""
        return _conversation(self.conversation.id, self.stored.values, self.locale, None)

    async def save(
        self,
        conversation: Conversation,
        replies: list[Outbound],
        now: datetime,
        *,
        said: str | None = None,
        author: str | None = None,
    ) -> None:
        """Store the new state and the event's replies together, or neither."""
        await self.stored.save(
            conversation.state_values(),
            replies=replies_to_json(replies),
            now=now,
            said=said,
            author=author,
        )


def _conversation(
    conversation_id: str, values: Mapping[str, Any] | None, locale: str, now: datetime | None
) -> Conversation:
    if values is None:
        return Conversation(conversation_id, locale=locale, last_activity_at=now)
    return Conversation.from_values(values)


class ConversationStore:
    """Typed conversations over the storage: what the engine (and a channel resuming a chat)
    reads and writes."""

    def __init__(self, storage: ConversationStorage) -> None:
        self.storage = storage

    @asynccontextmanager
    async def turn(
        self, conversation_id: str, event_id: str, locale: str, now: datetime
    ) -> AsyncIterator[OpenTurn]:
        """One event's unit of work: its recorded replies or its conversation, read in one go
        (a new conversation speaks `locale`), saved by `OpenTurn.save`."""
        async with self.storage.turn(conversation_id, event_id) as stored:
            recorded = (
                None
                if stored.recorded is None
                else RecordedReplies(replies_from_json(stored.recorded))
            )
            conversation = _conversation(conversation_id, stored.values, locale, now)
            yield OpenTurn(conversation, recorded, stored, locale)

    async def find(self, conversation_id: str) -> Conversation | None:
        values = await self.storage.find(conversation_id)
        return None if values is None else Conversation.from_values(values)

    async def last_replies(self, conversation_id: str) -> list[Outbound]:
        """The replies of the conversation's latest event (a delivery's link left out)."""
        replies = await self.storage.last_replies(conversation_id)
        return [] if replies is None else replies_from_json(replies)
