"""The contract every channel keeps: platform input in as `Inbound` events, `Outbound` replies
out in the platform's own form.

A channel module (the console today; LINE, Telegram and the web chat next) subclasses
`ChannelAdapter`: it names its conversations `<channel>:<platform user>`, renders each neutral
message as its platform shows it (numbered lines, quick replies, inline keyboards, JSON) and
sends the rendering. `dispatch` is the one way an event reaches the engine and its replies
reach the customer, so every channel gets the engine's guarantees (order, redelivery, a failing
step answered without a traceback) the same way. Platform quirks stay in the channel's module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Generic, TypeVar

from dialogs import Engine, Inbound, Outbound

Rendered = TypeVar("Rendered")


class ChannelAdapter(ABC, Generic[Rendered]):
    name: ClassVar[str]
    """The channel's word in conversation ids and in the audit trail (`console`, `line`, …)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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

    async def dispatch(self, event: Inbound) -> list[Outbound]:
        """Apply one event and send its replies; returns them for what the channel does next
        (the console hands over a certificate delivery)."""
        replies = await self.engine.handle(event)
        await self.send(event.conversation_id, replies)
        return replies
