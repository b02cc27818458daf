"""What each LINE webhook event means for CertDesk, decided without any I/O.

Every event type LINE can send gets an answer here, so an unknown or new one never fails a
batch: a 1:1 text, a tap (postback) or a certificate file reaches the engine; follow and
unfollow too (a re-follow after a block greets again); the rich menu's taps become the menu
item typed; an `accountLink` event goes to Account Link. In a group or a room no flow ever
starts and nothing personal is shown: the bot answers only when invited in (join) or mentioned,
with one line asking the customer to write to the account 1:1. Stickers, images, video, audio
and locations get one polite line; everything else (beacons, unsend, membership, video played,
edits, unknown types) is acknowledged and left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from linebot.v3.webhooks import (
    AccountLinkEvent,
    AudioMessageContent,
    Event,
    FileMessageContent,
    FollowEvent,
    GroupSource,
    ImageMessageContent,
    JoinEvent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    RoomSource,
    StickerMessageContent,
    TextMessageContent,
    UnfollowEvent,
    UserSource,
    VideoMessageContent,
)

from bot.channels.base import channel_of
from dialogs import EventKind, Inbound
from dialogs.flows.menu import MENU_ITEMS

CHANNEL = "line"
RICH_MENU_PREFIX = "menu:"
"""Postback data of the rich menu's taps: `menu:<menu item key>` (see `richmenu`)."""
_MENU_LABELS = dict(MENU_ITEMS)


@dataclass(frozen=True)
class Context:
    """Where an event came from and how it may be answered."""

    event_id: str
    user_id: str | None
    """The 1:1 user, or None (a group, a room, or no user at all)."""
    reply_token: str | None
    redelivery: bool
    in_group: bool

    @property
    def conversation_id(self) -> str:
        return f"{CHANNEL}:{self.user_id}"


@dataclass(frozen=True)
class Dispatch:
    """Hand this event to the engine."""

    event: Inbound


@dataclass(frozen=True)
class FetchFile:
    """A file message: fetch its bytes with the blob API (unless too big), then dispatch."""

    message_id: str
    filename: str
    size: int


@dataclass(frozen=True)
class Say:
    """Answer with one line of the LINE catalogue, without the engine."""

    key: str


@dataclass(frozen=True)
class AccountLinked:
    result: str
    nonce: str


@dataclass(frozen=True)
class Ignore:
    pass


Action = Dispatch | FetchFile | Say | AccountLinked | Ignore
IGNORE = Ignore()


def context_of(event: Event) -> Context:
    source = getattr(event, "source", None)
    in_group = isinstance(source, GroupSource | RoomSource)
    user_id = source.user_id if isinstance(source, UserSource) else None
    delivery = getattr(event, "delivery_context", None)
    event_id = getattr(event, "webhook_event_id", None) or (
        f"{getattr(event, 'type', 'event')}-{getattr(event, 'timestamp', 0)}-{user_id}"
    )
    return Context(
        event_id=str(event_id),
        user_id=user_id or None,
        reply_token=getattr(event, "reply_token", None) or None,
        redelivery=bool(getattr(delivery, "is_redelivery", False)),
        in_group=in_group,
    )


def interpret(event: Event, context: Context) -> Action:
    if context.in_group:
        return _in_group(event)
    if context.user_id is None:
        return IGNORE
    conversation = context.conversation_id

    def inbound(kind: EventKind, *, text: str = "", choice: str = "") -> Dispatch:
        return Dispatch(Inbound(conversation, context.event_id, kind, text=text, choice=choice))

    if isinstance(event, MessageEvent):
        message = event.message
        if isinstance(message, TextMessageContent):
            return inbound(EventKind.TEXT, text=message.text or "")
        if isinstance(message, FileMessageContent):
            return FetchFile(str(message.id), message.file_name or "", int(message.file_size or 0))
        if isinstance(message, StickerMessageContent):
            return Say("line.sticker")
        if isinstance(
            message,
            ImageMessageContent | VideoMessageContent | AudioMessageContent,
        ):
            return Say("line.media")
        if isinstance(message, LocationMessageContent):
            return Say("line.location")
        return IGNORE
    if isinstance(event, PostbackEvent):
        data = event.postback.data or "" if event.postback is not None else ""
        if data.startswith(RICH_MENU_PREFIX):
            item = data.removeprefix(RICH_MENU_PREFIX)
            if item in _MENU_LABELS:
                return inbound(EventKind.MENU, choice=item)
            return inbound(EventKind.MENU, text=item)  # words the tap stands for (憑證匯出備份)
        return inbound(EventKind.CHOICE, choice=data)
    if isinstance(event, FollowEvent):
        return inbound(EventKind.FOLLOW)
    if isinstance(event, UnfollowEvent):
        return inbound(EventKind.UNFOLLOW)
    if isinstance(event, AccountLinkEvent):
        link = event.link
        return AccountLinked(
            str(getattr(link, "result", "") or ""), str(getattr(link, "nonce", "") or "")
        )
    return IGNORE


def _in_group(event: Event) -> Action:
    if isinstance(event, JoinEvent):
        return Say("line.group.refused")
    if isinstance(event, MessageEvent) and isinstance(event.message, TextMessageContent):
        mention = event.message.mention
        mentionees = getattr(mention, "mentionees", None) or []
        if any(getattr(m, "is_self", False) for m in mentionees):
            return Say("line.group.refused")
    return IGNORE


def is_line(conversation_id: str) -> bool:
    return channel_of(conversation_id) == CHANNEL
