"""The Telegram channel: Bot API updates in as neutral events, the engine's replies out.

An update (from the webhook or from long polling) is taken once, by its `update_id`, and put
in its chat's lane (`lanes`), so the 200 goes back at once and one chat's replies leave in
order. In a private chat a text is a TEXT event (`/start` a FOLLOW, `/menu`, `/help` … the
engine's global words), a button tap is answered first and then a CHOICE with its callback
data, a certificate file a FILE event, a block (`my_chat_member` kicked) an UNFOLLOW.
Conversations are `telegram:<chat id>`. Groups, supergroups and channels never reach the
engine: at most one short line a day asks the customer to write to the bot privately. The one
exception is the support group (`support`), whose messages go to its handler, never to a
customer's conversation.

Every call to the Bot API goes through `call`: the send limits (`limits`), `retry_after` on a
429 honoured, network errors and 5xx retried with a bounded backoff, and a 403 (the customer
blocked the bot) marking the chat unreachable, telling the engine (UNFOLLOW) and stopping every
later send to it, until the customer writes again. A watched push (a reminder, see
`ChannelAdapter.watch`) gives up at a 429 instead of waiting: its sender tries again later. A
`ForgetInput` among the replies deletes the customer's message that held the ID number or
birth date. In `document` delivery mode a delivery is handed over in the chat (`exports`).

A duplicate update is dropped before the engine: the engine would answer it from its record,
but its replies were sent already. The record of update ids is kept in memory (Telegram
redelivers only what was not answered with 200, so within a process is where duplicates come).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from telegram import Bot, CallbackQuery, ChatMemberUpdated, InputFile, Message, Update
from telegram.constants import ChatAction, ChatMemberStatus, ChatType
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from bot.channels.base import ChannelAdapter, Undelivered
from bot.channels.telegram.client import redact
from bot.channels.telegram.export import ExportDesk
from bot.channels.telegram.lanes import Lanes, LanesClosed
from bot.channels.telegram.limits import SendLimiter
from bot.channels.telegram.render import CallbackKeys, Outgoing, render
from certcore.core import Core
from certcore.i18n import normalise_locale, translate
from certcore.pki import MAX_FILE_BYTES
from dialogs import Delivery, Engine, EventKind, ForgetInput, Inbound, Outbound

log = logging.getLogger("certdesk.telegram")

T = TypeVar("T")

CHANNEL = "telegram"
COMMANDS = ("menu", "help", "cancel", "language", "agent")
"""The bot's commands besides /start: each is the engine's global word of the same name."""
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
MAX_ATTEMPTS = 6
"""Tries of one Bot API call (429s, network errors, 5xx) before it is given up and logged."""
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
GROUP_REMINDER_SECONDS = 24 * 3600
"""A group hears the "write to me privately" line at most this often."""
RECENT_UPDATES = 100_000
SHUTDOWN_GRACE = 5.0
_COMMAND = re.compile(r"/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?:\s|$)")


class RecentIds:
    """The update ids seen lately (a bounded, ordered set)."""

    def __init__(self, capacity: int = RECENT_UPDATES) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[int, None] = OrderedDict()

    def add(self, update_id: int) -> bool:
        """True for an id not seen before (now remembered), False for a duplicate."""
        if update_id in self._ids:
            return False
        self._ids[update_id] = None
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True


class Typing:
    """The engine's `Progress` for one chat: Telegram's "typing…" before a slow step."""

    def __init__(self, channel: TelegramChannel, chat_id: int) -> None:
        self.channel = channel
        self.chat_id = chat_id

    async def working(self) -> None:
        await self.channel.typing(self.chat_id)


class TelegramChannel(ChannelAdapter[list[Outgoing]]):
    name = CHANNEL

    def __init__(
        self,
        core: Core,
        engine: Engine,
        bot: Bot,
        *,
        limiter: SendLimiter | None = None,
        delivery: str | None = None,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(engine)
        self.core = core
        self.bot = bot
        self.limiter = limiter or SendLimiter()
        self.delivery = delivery or core.settings.telegram_delivery
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.lanes = Lanes()
        self.keys = CallbackKeys()
        self.seen = RecentIds()
        self.unreachable: set[int] = set()
        """Chats that blocked the bot: nothing is sent to them until they write again."""
        self.groups_told: OrderedDict[int, float] = OrderedDict()
        self.exports = ExportDesk(self)
        self.support_chat_id: int | None = None
        self.on_support: Callable[[Message], Awaitable[None]] | None = None
        """The support group's chat and the handler its messages go to (`support.mount`)."""
        self._secrets = {core.settings.telegram_bot_token, core.settings.telegram_webhook_secret}

    # -- updates in ---------------------------------------------------------------------------

    def accept(self, update: Update) -> bool:
        """Take an update for processing in its chat's lane; False for a duplicate. Raises
        `LanesClosed` while shutting down (the webhook then answers 503: Telegram retries)."""
        if self.lanes.closed:
            raise LanesClosed("the Telegram channel is shutting down")
        if not self.seen.add(update.update_id):
            log.info("Telegram update %s is a duplicate: dropped", update.update_id)
            return False
        self.lanes.submit(_chat_of(update), lambda: self.process(update))
        return True

    async def process(self, update: Update) -> None:
        """Apply one update (called in its chat's lane)."""
        event_id = f"{CHANNEL}:{update.update_id}"
        if update.callback_query is not None:
            await self._on_callback(update.callback_query, event_id)
        elif update.message is not None:
            await self._on_message(update.message, event_id)
        elif update.my_chat_member is not None:
            await self._on_membership(update.my_chat_member, event_id)
        # Edited messages, channel posts, inline queries, polls …: nothing to answer.

    async def _on_message(self, message: Message, event_id: str) -> None:
        chat = message.chat
        if self.on_support is not None and chat.id == self.support_chat_id:
            await self.on_support(message)  # agents at work: never a customer's conversation
            return
        hint = message.from_user.language_code if message.from_user else None
        if chat.type != ChatType.PRIVATE:
            await self._refuse_group(chat.id, hint)
            return
        chat_id = chat.id
        self.unreachable.discard(chat_id)
        conversation = self.conversation_id(str(chat_id))
        text = message.text
        if text is not None:
            if self.exports.waiting(chat_id) and not text.startswith("/"):
                await self.exports.password(chat_id, message)
                return
            self.exports.cancel(chat_id)
            event = _text_event(conversation, event_id, text, hint, self.bot_username())
            await self.apply(event, source=message.message_id)
        elif message.document is not None:
            self.exports.cancel(chat_id)
            await self._on_document(message, event_id, hint)
        elif not _is_service_message(message):
            await self.say(chat_id, "telegram.unsupported", hint=hint)

    async def _on_document(self, message: Message, event_id: str, hint: str | None) -> None:
        chat_id = message.chat.id
        document = message.document
        assert document is not None
        if document.file_size is not None and document.file_size > MAX_FILE_BYTES:
            await self.say(
                chat_id, "telegram.file.too_large", hint=hint, limit=MAX_FILE_BYTES // 1024
            )
            return
        data = await self._download(chat_id, document.file_id)
        if data is None:
            await self.say(chat_id, "telegram.file.failed", hint=hint)
            return
        if len(data) > MAX_FILE_BYTES:
            await self.say(
                chat_id, "telegram.file.too_large", hint=hint, limit=MAX_FILE_BYTES // 1024
            )
            return
        event = Inbound(
            self.conversation_id(str(chat_id)),
            event_id,
            EventKind.FILE,
            file=data,
            filename=document.file_name or "",
            locale_hint=hint,
        )
        await self.apply(event, source=message.message_id)

    async def _download(self, chat_id: int, file_id: str) -> bytes | None:
        async def fetch() -> bytes:
            file = await self.bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())

        return await self.call(chat_id, fetch, limited=False)

    async def _on_callback(self, query: CallbackQuery, event_id: str) -> None:
        message = query.message
        private = message is not None and message.chat.type == ChatType.PRIVATE
        chat_id = message.chat.id if message is not None else 0
        if private:
            self.unreachable.discard(chat_id)  # a tap: the customer reaches us again
        # Every callback query is answered first: the customer's button stops spinning.
        await self.call(chat_id, lambda: self.bot.answer_callback_query(query.id), limited=False)
        if not private:
            return  # an inline message, or a group: nothing here is ever shown there
        data = query.data or ""
        hint = query.from_user.language_code if query.from_user else None
        if self.exports.owns(data):
            await self.exports.tapped(chat_id, data, hint)
            return
        self.exports.cancel(chat_id)
        event = Inbound(
            self.conversation_id(str(chat_id)),
            event_id,
            EventKind.CHOICE,
            choice=self.keys.key_for(data),
            locale_hint=hint,
        )
        await self.apply(event)

    async def _on_membership(self, change: ChatMemberUpdated, event_id: str) -> None:
        chat = change.chat
        if chat.type != ChatType.PRIVATE:
            return  # added to or removed from a group: it hears the line when someone writes
        status = change.new_chat_member.status
        if status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
            self.unreachable.add(chat.id)
            self.exports.cancel(chat.id)
            await self.engine.handle(
                Inbound(self.conversation_id(str(chat.id)), event_id, EventKind.UNFOLLOW)
            )
        elif status == ChatMemberStatus.MEMBER:
            self.unreachable.discard(chat.id)  # unblocked: /start follows, which greets

    async def _refuse_group(self, chat_id: int, hint: str | None) -> None:
        now = time.monotonic()
        told = self.groups_told.get(chat_id)
        if told is not None and now - told < GROUP_REMINDER_SECONDS:
            return
        self.groups_told[chat_id] = now
        self.groups_told.move_to_end(chat_id)
        while len(self.groups_told) > RECENT_UPDATES:
            self.groups_told.popitem(last=False)
        text = translate(normalise_locale(hint), "telegram.group.refused")
        await self.post(chat_id, Outgoing(text))

    def bot_username(self) -> str | None:
        try:
            return self.bot.username
        except RuntimeError:  # not initialised yet (getMe still to come)
            return None

    # -- the engine ---------------------------------------------------------------------------

    async def dispatch(self, event: Inbound) -> list[Outbound]:
        """A push (the download page's confirmation, a reminder): applied and sent in the
        chat's lane, after whatever the chat is doing now."""
        chat_id = chat_id_of(event.conversation_id)
        try:
            result: list[Outbound] = await self.lanes.run(chat_id, lambda: self.apply(event))
        except LanesClosed:
            return await self.apply(event)
        return result

    async def apply(self, event: Inbound, *, source: int | None = None) -> list[Outbound]:
        """Apply one event and send its replies to its chat; `source` is the customer's message
        it came in (deleted when the replies say to forget it). Call it in the chat's lane."""
        chat_id = chat_id_of(event.conversation_id)
        replies = await self.engine.handle(event, Typing(self, chat_id))
        await self.deliver(chat_id, replies, source=source)
        return replies

    # -- replies out --------------------------------------------------------------------------

    def render(self, message: Outbound) -> list[Outgoing]:
        return render(message, "zh_TW", self.keys.data_for)

    async def send(self, conversation_id: str, replies: Sequence[Outbound]) -> None:
        await self.deliver(chat_id_of(conversation_id), replies)

    async def deliver(
        self, chat_id: int, replies: Sequence[Outbound], *, source: int | None = None
    ) -> None:
        locale: str | None = None
        for reply in replies:
            if isinstance(reply, ForgetInput):
                if source is not None:
                    await self.delete(chat_id, source)
                continue
            if isinstance(reply, Delivery):
                locale = locale or await self.locale(chat_id)
                if self.delivery == "document" and reply.url:
                    await self.exports.offer(chat_id, reply, locale)
                    continue
                for outgoing in render(reply, locale, self.keys.data_for):
                    await self.post(chat_id, outgoing)
                continue
            for outgoing in render(reply, locale or "zh_TW", self.keys.data_for):
                await self.post(chat_id, outgoing)

    async def locale(self, chat_id: int, hint: str | None = None) -> str:
        found = await self.engine.locale_of(self.conversation_id(str(chat_id)))
        return found or normalise_locale(hint)

    async def say(
        self, chat_id: int, key: str, /, *, hint: str | None = None, **params: Any
    ) -> None:
        """One line of this channel's own catalogue, in the conversation's language."""
        locale = await self.locale(chat_id, hint)
        await self.post(chat_id, Outgoing(translate(locale, key, **params)))

    async def post(self, chat_id: int, outgoing: Outgoing) -> Message | None:
        """sendMessage; a message Telegram refuses (a URL it takes for no button, markup it
        cannot parse) goes again in a plainer form, never silently nowhere."""
        try:
            return await self._send_message(chat_id, outgoing)
        except BadRequest as error:
            plainer = outgoing.without_url_buttons()
            if plainer == outgoing and outgoing.parse_mode is not None:
                plainer = Outgoing(_strip_html(outgoing.text), None, outgoing.markup)
            if plainer == outgoing:
                log.warning("Telegram refused a message: %s", self.describe(error))
                return None
            try:
                return await self._send_message(chat_id, plainer)
            except BadRequest as again:
                log.warning("Telegram refused a message twice: %s", self.describe(again))
                return None

    async def _send_message(self, chat_id: int, outgoing: Outgoing) -> Message | None:
        return await self.call(
            chat_id,
            lambda: self.bot.send_message(
                chat_id,
                outgoing.text,
                parse_mode=outgoing.parse_mode,
                reply_markup=outgoing.markup,
                link_preview_options=None,
            ),
            raise_bad_request=True,
        )

    async def send_document(
        self, chat_id: int, filename: str, content: bytes, caption: str
    ) -> Message | None:
        """The file in the chat, `protect_content` (no forwarding, no saving from Telegram)."""
        return await self.call(
            chat_id,
            lambda: self.bot.send_document(
                chat_id,
                InputFile(content, filename=filename),
                caption=caption,
                protect_content=True,
            ),
        )

    async def delete(self, chat_id: int, message_id: int) -> bool:
        """Delete a customer's message (a bot may, in a private chat, within 48 hours)."""
        done = await self.call(
            chat_id, lambda: self.bot.delete_message(chat_id, message_id), limited=False
        )
        return bool(done)

    async def typing(self, chat_id: int) -> None:
        """The typing sign; never raises, never retried (it lasts seconds anyway)."""
        await self.call(
            chat_id,
            lambda: self.bot.send_chat_action(chat_id, ChatAction.TYPING),
            limited=False,
            attempts=1,
        )

    # -- every Bot API call -------------------------------------------------------------------

    async def call(
        self,
        chat_id: int,
        make: Callable[[], Awaitable[T]],
        *,
        limited: bool = True,
        attempts: int = MAX_ATTEMPTS,
        raise_bad_request: bool = False,
    ) -> T | None:
        """One Bot API call for a chat, within the send limits when `limited` (messages), with
        429s, 5xx and network errors retried; None when it could not be done (logged)."""
        conversation_id = self.conversation_id(str(chat_id))
        for attempt in range(attempts):
            if chat_id in self.unreachable:
                self.undelivered(conversation_id, Undelivered.BLOCKED)
                return None
            if self.held(conversation_id):
                return None
            if limited:
                await self.limiter.acquire(chat_id)
            try:
                return await make()
            except RetryAfter as error:
                seconds = retry_after_seconds(error)
                self.limiter.hold(chat_id, seconds)
                if self.undelivered(conversation_id, Undelivered.LIMITED):
                    log.warning("Telegram: 429 (retry after %.0f s) on a watched push", seconds)
                    return None  # its sender tries again later, rather than wait here
                log.warning("Telegram: 429, retrying after %.0f s", seconds)
                if not limited:
                    await self.sleep(seconds)
            except Forbidden as error:
                log.info("Telegram: chat unreachable (%s)", self.describe(error))
                self.mark_unreachable(chat_id)
                self.undelivered(conversation_id, Undelivered.BLOCKED)
                return None
            except BadRequest as error:
                if raise_bad_request:
                    raise
                log.warning("Telegram refused a call: %s", self.describe(error))
                return None
            except (InvalidToken, ChatMigrated) as error:
                log.error("Telegram refused a call: %s", self.describe(error))
                self.undelivered(conversation_id, Undelivered.FAILED)
                return None
            except NetworkError as error:  # 5xx, a timeout, a broken connection
                delay = min(self.backoff_cap, self.backoff_base * 2**attempt)
                log.warning(
                    "Telegram call failed (%s), attempt %d", self.describe(error), attempt + 1
                )
                if attempt + 1 < attempts:
                    await self.sleep(delay)
            except TelegramError as error:
                log.warning("Telegram call failed: %s", self.describe(error))
                self.undelivered(conversation_id, Undelivered.FAILED)
                return None
        log.error("Telegram call given up after %d attempts", attempts)
        self.undelivered(conversation_id, Undelivered.FAILED)
        return None

    def mark_unreachable(self, chat_id: int) -> None:
        """The customer blocked the bot: no more sends, and the engine told (UNFOLLOW), after
        the chat's current work (never inside it: the engine may be mid-event for the chat)."""
        if chat_id in self.unreachable or chat_id == 0:
            return
        if chat_id == self.support_chat_id:
            log.error("Telegram: the bot may not write in the support group (removed, no rights)")
            return
        self.unreachable.add(chat_id)
        self.exports.cancel(chat_id)
        event = Inbound(
            self.conversation_id(str(chat_id)),
            f"{CHANNEL}:blocked:{chat_id}:{uuid.uuid4().hex}",
            EventKind.UNFOLLOW,
        )
        try:
            self.lanes.submit(chat_id, lambda: self.engine.handle(event))
        except LanesClosed:
            log.info("Telegram: shutting down, a blocked chat is told to the engine next time")

    def describe(self, error: BaseException) -> str:
        return redact(f"{type(error).__name__}: {error}", self._secrets)

    async def idle(self) -> None:
        """Return once every update and push taken so far is worked off (for tests)."""
        await self.lanes.idle()

    async def close(self) -> None:
        await self.lanes.close(SHUTDOWN_GRACE)


def chat_id_of(conversation_id: str) -> int:
    """The chat in `telegram:<chat id>`."""
    channel, _, chat = conversation_id.partition(":")
    if channel != CHANNEL:
        raise ValueError(f"not a Telegram conversation: {conversation_id}")
    return int(chat)


def _chat_of(update: Update) -> int:
    chat = update.effective_chat
    return chat.id if chat is not None else 0


def _text_event(
    conversation: str, event_id: str, text: str, hint: str | None, username: str | None
) -> Inbound:
    """A typed text; a command as the engine's word for it (`/start` is a FOLLOW)."""
    command = command_in(text, username)
    if command == "start":
        return Inbound(conversation, event_id, EventKind.FOLLOW, locale_hint=hint)
    if command is not None:
        return Inbound(conversation, event_id, EventKind.TEXT, text=command, locale_hint=hint)
    return Inbound(conversation, event_id, EventKind.TEXT, text=text, locale_hint=hint)


def command_in(text: str, username: str | None) -> str | None:
    """`menu` for `/menu`, `/menu@CertDeskBot` or `/Menu extra`; None for no command (or one
    meant for another bot)."""
    found = _COMMAND.match(text)
    if found is None:
        return None
    name, addressee = found.group(1), found.group(2)
    if addressee and username and addressee.lower() != username.lower():
        return None
    return name.lower()


def _is_service_message(message: Message) -> bool:
    """Joins, pins, a changed title …: nothing the customer said."""
    return bool(
        message.new_chat_members
        or message.left_chat_member
        or message.pinned_message
        or message.new_chat_title
        or message.group_chat_created
    )


def retry_after_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return float(value.total_seconds() if hasattr(value, "total_seconds") else value)


def _strip_html(text: str) -> str:
    return html.unescape(re.sub(r"</?[a-z]+>", "", text))
