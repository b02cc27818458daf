"""The contract every channel keeps: platform input in as `Inbound` events, `Outbound` replies
out in the platform's own form.

A channel module (the console today; LINE, Telegram and the web chat next) subclasses
`ChannelAdapter`: it names its conversations `<channel>:<platform user>`, renders each neutral
message as its platform shows it (numbered lines, quick replies, inline keyboards, JSON) and
sends the rendering. `dispatch` is the one way an event reaches the engine and its replies
reach the customer, so every channel gets the engine's guarantees (order, redelivery, a failing
step answered without a traceback) the same way. Platform quirks stay in the channel's module.

A sender that must know whether a push reached the customer (the reminder sweep, which falls
back to e-mail and stops at a platform's limit) `watch`es the conversation while it dispatches:
the channel notes there each way its pushes fell short (`Undelivered`), and a watched push meets
a rate limit by giving up rather than waiting, since its sender will try again later. The watch
is on the conversation, not the event: a reply the customer's own message gets in that moment
is watched too (on Telegram, one queued before the reminder in the chat's lane), and at a 429
it is dropped with the reminder instead of waiting; rare, and the customer may write again.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from dialogs import Engine, Inbound, Outbound

Rendered = TypeVar("Rendered")


class Undelivered(StrEnum):
    """Why a push did not reach the customer."""

    BLOCKED = "blocked"
    """The customer blocked the bot or the account (403), or is known not to follow it."""
    LIMITED = "limited"
    """The platform's rate limit (429, `retry_after`): nothing was sent; later, it may be."""
    QUOTA = "quota"
    """LINE's monthly push quota is spent: no push goes out until next month."""
    FAILED = "failed"
    """Anything else: the platform or the network failed."""


class ChannelAdapter(ABC, Generic[Rendered]):
    name: ClassVar[str]
    """The channel's word in conversation ids and in the audit trail (`console`, `line`, …)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._watched: dict[str, list[Undelivered]] = {}

    @contextmanager
    def watch(self, conversation_id: str) -> Iterator[list[Undelivered]]:
        """While open, the ways this conversation's pushes fell short are noted in the list."""
        noted: list[Undelivered] = []
        self._watched[conversation_id] = noted
        try:
            yield noted
        finally:
            self._watched.pop(conversation_id, None)

    def undelivered(self, conversation_id: str, why: Undelivered) -> bool:
        """Note that a push fell short; whether the conversation is watched (a watched push
        gives up at a rate limit instead of waiting)."""
        noted = self._watched.get(conversation_id)
        if noted is None:
            return False
        noted.append(why)
        return True

    def held(self, conversation_id: str) -> bool:
        """Whether a watched conversation's push met a limit: its other messages wait too."""
        noted = self._watched.get(conversation_id)
        return noted is not None and (Undelivered.LIMITED in noted or Undelivered.QUOTA in noted)

    @classmethod
    def conversation_id(cls, user: str) -> str:
        """Channel-qualified and stable for one platform user, e.g. `console:alice`."""
        return f"{cls.name}:{user}"

    @abstractmethod
    def render(self, message: Outbound) -> Rendered:
        """One neutral message in the platform's own form."""

    @abstractmethod
    async def send(self, conversation_id: str, replies: Sequence[Outbound]) -> None:
        """Show the replies to the customer of this conversation."""

    async def idle(self) -> None:
        """Return once the events this channel has taken are worked off (a stopping instance
        waits for it); a channel that works each event inside its request has none left."""
        return

    async def dispatch(self, event: Inbound) -> list[Outbound]:
        """Apply one event and send its replies; returns them for what the channel does next
        (the console hands over a certificate delivery). `send` here is a push: the event did
        not come with a way to answer it (a channel's own transport may reply instead)."""
        replies = await self.engine.handle(event)
        await self.send(event.conversation_id, replies)
        return replies


def channel_of(conversation_id: str) -> str:
    """The channel's name in a channel-qualified conversation id (`line` in `line:U4af4…`)."""
    return conversation_id.partition(":")[0]


class Channels:
    """The channels this process runs, by name: how an event that did not arrive through a
    channel's own transport (the download page's confirmation, later a reminder or an agent's
    reply) reaches the engine and then the customer, on the conversation's own channel."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._by_name: dict[str, ChannelAdapter[Any]] = {}

    def add(self, adapter: ChannelAdapter[Any]) -> None:
        if adapter.name in self._by_name:
            raise ValueError(f"channel {adapter.name} added twice")
        self._by_name[adapter.name] = adapter

    async def idle(self) -> None:
        """Until every channel's taken events are worked off."""
        await asyncio.gather(*(adapter.idle() for adapter in self._by_name.values()))

    def of(self, conversation_id: str) -> ChannelAdapter[Any] | None:
        return self._by_name.get(channel_of(conversation_id))

    def named(self, name: str) -> ChannelAdapter[Any] | None:
        """The channel of that name, if this process runs it."""
        return self._by_name.get(name)

    async def dispatch(self, event: Inbound) -> list[Outbound]:
        """Apply the event and push its replies through the conversation's channel. A channel
        not running in this process (a console chat) still gets the event applied and recorded:
        its replies show when that chat is next opened."""
        adapter = self.of(event.conversation_id)
        if adapter is None:
            return await self.engine.handle(event)
        return await adapter.dispatch(event)
