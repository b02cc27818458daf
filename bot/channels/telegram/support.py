"""The Telegram support group (issue 11): agents answer hand-offs from any channel in forum
topics of one supergroup, with the Telegram app they already use.

Why a relay driven by the database: a hand-off is made by the engine on whichever instance the
customer's message reached, on LINE, the web chat or Telegram; the queue in certcore is the
truth. So every couple of seconds `relay` reads the hand-offs with work (`relay_pending`) and
does it: a topic for each open one without one (named with the hand-off's number, the channel
and the customer's masked ID number, then a header with the reason; a conversation handed off
before gets its earlier topic back, reopened: one topic per conversation), the customer's new
messages copied in order from the masked transcript (what the engine recorded as `said`: a
secret input is "[secret]", ID numbers masked) with what an agent elsewhere (the console) said
to them, and for an ended one a closing line and `closeForumTopic`. The relay mark
(`relayed_at`) moves only after a copy was sent, so a restart or a failed send loses nothing.
The mark is a time, and events are recorded by the clocks of several instances: the last few
seconds before the mark are looked at again for events recorded late (`LOOKBACK`), each copied
once. Two instances relaying one hand-off at the same moment may copy a message twice; none is
lost.

Agents write in the topic (`on_message`, called by the channel for the support chat before any
customer handling). The first member to write in a waiting hand-off's topic claims it (the
customer is told a person took it), and their words go to the customer as an AGENT event on the
customer's own channel; while one member holds it, another member's message is not sent and is
answered in the topic with who holds it. `/done` ends it as resolved (the customer is asked for
a rating), `/back` returns it to the bot; only the member holding it may do either. The event
ids come from the group's message ids, and one already recorded is not dispatched again, so a
redelivered update never reaches the customer twice.

Topics go missing: a deleted topic (sendMessage answers "message thread not found") is made
anew, with the header and the copies not yet relayed; a closed one (TOPIC_CLOSED) is reopened
and the message sent again. Every post to the group draws on one budget shared by all topics
(`telegram_support_per_minute`, a token bucket in the channel's `SendLimiter`), and a 429's
`retry_after` is honoured by the channel's `call`. The group reads Chinese (the broker's staff).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web
from telegram import Message
from telegram.error import BadRequest

from bot.channels.base import Channels, channel_of
from bot.channels.telegram.adapter import TelegramChannel, command_in
from certcore.clock import TAIPEI
from certcore.handoff import NOTE_MAX, Handoff, HandoffState, HandoffTaken
from certcore.i18n import DEFAULT_LOCALE, translate
from certcore.masking import mask_id
from certcore.storage import TranscriptEntry
from dialogs import EventKind, Inbound

log = logging.getLogger("certdesk.telegram.support")

PER_HANDOFF = 5
"""Copies one hand-off gets per round, so a talkative customer does not hold back the others'
topics while the group's budget is short."""
BATCH = 50
"""Transcript entries read per hand-off and round (most are the customer's, copied or not)."""
CONTEXT = timedelta(minutes=5)
"""What the customer did in the minutes before asking is copied too: the agent's context."""
GROUP_BURST = 3
"""Posts the group may get at once; the rest of the minute's budget comes evenly."""
TOPIC_NAME_MAX = 128
COPY_MAX = 3500
"""Characters of one copied message (Telegram's limit is 4,096, the prefix included)."""
RECREATE_LIMIT = 2
"""Topics made anew for one hand-off in one round (each deleted at once is a config problem)."""
EVENT_PREFIX = "tg-topic"
COMMANDS = {"done": "resolved", "back": "returned"}
"""Commands in a topic and the outcome each ends the hand-off with."""
LOOKBACK = timedelta(seconds=10)
"""How far before the relay mark events are looked for again: one recorded at the same instant
as the mark, or by an instance whose clock is a little behind, after the mark had moved on.
After a restart nothing is remembered, and the mark is trusted (no copy twice)."""


class Posted(enum.Enum):
    SENT = "sent"
    GONE = "gone"
    """The topic was deleted."""
    CLOSED = "closed"
    """The topic is closed (`_post` reopens it and sends again; never returned by it)."""
    FAILED = "failed"
    """Not sent now (the network, a refusal): tried again next round."""


TopicCall = Callable[[], Awaitable[bool]]


@dataclass
class Memory:
    """What this process copied of one hand-off lately, since the relay mark `since`."""

    since: datetime
    seen: dict[str, datetime] = field(default_factory=dict)
    """Event id: when it was recorded; forgotten once `LOOKBACK` behind the mark."""


class SupportGroup:
    def __init__(
        self, channel: TelegramChannel, channels: Channels, chat_id: int, per_minute: int
    ) -> None:
        self.channel = channel
        self.channels = channels
        self.chat_id = chat_id
        self.per_minute = per_minute
        self.core = channel.core
        self.queue = channel.core.handoffs
        self.locale = DEFAULT_LOCALE
        self._round = asyncio.Lock()
        self._marks: dict[int, datetime] = {}
        """Per hand-off: the relay mark this process last stored (the hand-off read at the
        start of a round does not know it)."""
        self._seen: dict[int, Memory] = {}
        """Per hand-off: the events this process relayed lately (`LOOKBACK`): events recorded
        at the mark's instant or just before it (another instance's clock a little behind) are
        copied too, and each once."""

    # -- the relay ----------------------------------------------------------------------------

    def budget(self) -> None:
        """The group's own limits in the channel's limiter: `per_minute` in any minute."""
        rate = (self.per_minute - GROUP_BURST) / 60.0
        self.channel.limiter.limit_chat(self.chat_id, rate, GROUP_BURST)

    async def relay(self) -> int:
        """One round over every hand-off with work; returns how many posts it made (tests run
        rounds until there is nothing left). One round at a time in this process."""
        if self.channel.bot_username() is None:
            return 0  # the bot is not initialised yet (getMe still to come at start-up)
        if not self.core.db.reachable:
            return 0  # a database outage: nothing to read, the jobs ask it until it answers
        async with self._round:
            self.budget()
            posts = 0
            pending = await self.queue.relay_pending()
            for gone in {*self._marks, *self._seen} - {handoff.id for handoff in pending}:
                self._marks.pop(gone, None)  # ended and closed (here or by another instance)
                self._seen.pop(gone, None)
            for handoff in pending:
                try:
                    posts += await self._relay(handoff)
                except Exception:  # one hand-off's trouble holds back no other
                    log.exception("support group: relaying hand-off %d failed", handoff.id)
            return posts

    async def _relay(self, handoff: Handoff) -> int:
        posts = 0
        topic = handoff.topic_id
        if topic is None:
            if not handoff.is_open:
                return 0
            topic = await self._open_topic(handoff, replacing=None)
            if topic is None:
                return 0
            posts += 2
        for _ in range(RECREATE_LIMIT):
            copied, outcome = await self._copy(handoff, topic)
            posts += copied
            if outcome is not Posted.GONE:
                break
            if not handoff.is_open:  # deleted after the end: nothing left to close
                await self.queue.topic_closed(handoff.id)
                return posts
            topic = await self._open_topic(handoff, replacing=topic)
            if topic is None:
                return posts
            posts += 2
        else:
            return posts
        if outcome is Posted.SENT and not handoff.is_open:
            posts += await self._close(handoff, topic)
        return posts

    async def _open_topic(self, handoff: Handoff, *, replacing: int | None) -> int | None:
        """The hand-off's topic, stored, with its header: the conversation's topic from an
        earlier hand-off, reopened and renamed (the agents see its history), or a new one (in
        place of the deleted `replacing`); None when Telegram refused. When another instance
        stored one first, ours (if new) is deleted and theirs is the hand-off's."""
        bot = self.channel.bot
        name = (await self._title(handoff))[:TOPIC_NAME_MAX]
        topic = None if replacing is not None else await self._reuse(handoff, name)
        made = topic is None
        if topic is None:
            created = await self.channel.call(
                self.chat_id, lambda: bot.create_forum_topic(self.chat_id, name)
            )
            if created is None:
                log.error("support group: no topic for hand-off %d (forum? rights?)", handoff.id)
                return None
            topic = created.message_thread_id
        stored = await self.queue.take_topic(handoff.id, topic, instead_of=replacing)
        if stored != topic:
            if made:
                await self._topic_call(lambda: bot.delete_forum_topic(self.chat_id, topic))
            return stored
        header = await self._header(handoff)
        if replacing is not None:
            header += "\n\n" + self.t("telegram.support.recreated")
        await self._post(topic, header)
        return topic

    async def _reuse(self, handoff: Handoff, name: str) -> int | None:
        """The conversation's topic from an earlier hand-off, reopened and renamed for this
        one; None when it had none or the topic is gone."""
        earlier = await self.queue.last_with_topic(handoff.conversation_id)
        topic = earlier.topic_id if earlier is not None else None
        if earlier is None or topic is None or earlier.id == handoff.id:
            return None
        bot = self.channel.bot
        reopened = await self._topic_call(lambda: bot.reopen_forum_topic(self.chat_id, topic))
        if reopened is not Posted.SENT:
            return None
        await self._topic_call(lambda: bot.edit_forum_topic(self.chat_id, topic, name=name))
        # What the topic shows already is not copied again as this hand-off's context.
        if earlier.relayed_at is not None and earlier.relayed_at > handoff.requested_at - CONTEXT:
            await self.queue.relayed(handoff.id, earlier.relayed_at)
            self._marks[handoff.id] = earlier.relayed_at
        return topic

    async def _copy(self, handoff: Handoff, topic: int) -> tuple[int, Posted]:
        """The customer's messages since the relay mark, in order, up to `PER_HANDOFF`; the
        mark follows each copy sent. SENT when everything due is in the topic."""
        mark = _later(handoff.relayed_at, self._marks.get(handoff.id))
        start = handoff.requested_at - CONTEXT if mark is None else mark
        memory = self._seen.get(handoff.id)
        if memory is None:  # from here on this process knows what it copied
            memory = self._seen[handoff.id] = Memory(start)
        seen = memory.seen
        entries = await self._transcript(handoff, start)
        if mark is not None and mark > memory.since:
            # Stragglers: events recorded at the mark's instant or just before it, since this
            # process began remembering (before that, the stored mark is trusted).
            late = await self._transcript(handoff, max(mark - LOOKBACK, memory.since))
            entries = [e for e in late if e.at <= mark and e.event_id not in seen] + entries
        copied = 0
        for entry in entries:
            if entry.event_id in seen:
                continue
            if handoff.ended_at is not None and entry.at > handoff.ended_at:
                return copied, Posted.SENT  # what came after the end is the bot's again
            copy = self._copy_of(entry)
            if copy is not None:
                if copied >= PER_HANDOFF:
                    return copied, Posted.FAILED  # the rest next round
                posted = await self._post(topic, copy)
                if posted is not Posted.SENT:
                    return copied, posted
                copied += 1
            seen[entry.event_id] = entry.at
            mark = entry.at if mark is None else max(mark, entry.at)
            self._marks[handoff.id] = mark
            await self.queue.relayed(handoff.id, entry.at)
        if mark is not None:  # what the stragglers' window no longer reaches is forgotten
            for event_id, at in list(seen.items()):
                if at < mark - LOOKBACK:
                    del seen[event_id]
        if len(entries) >= BATCH:
            return copied, Posted.FAILED  # the batch was full: the rest next round
        return copied, Posted.SENT

    async def _transcript(self, handoff: Handoff, after: datetime) -> list[TranscriptEntry]:
        return await self.core.conversations.transcript(
            handoff.conversation_id, limit=BATCH, after=after, earliest=True
        )

    async def _close(self, handoff: Handoff, topic: int) -> int:
        outcome = handoff.outcome or "returned"
        posted = await self._post(topic, self.t(f"telegram.support.ended.{outcome}"))
        if posted is Posted.FAILED:
            return 0
        if posted is Posted.SENT:
            bot = self.channel.bot
            await self._topic_call(lambda: bot.close_forum_topic(self.chat_id, topic))
        await self.queue.topic_closed(handoff.id)
        self._marks.pop(handoff.id, None)
        self._seen.pop(handoff.id, None)
        return 1 if posted is Posted.SENT else 0

    # -- posting ------------------------------------------------------------------------------

    async def _post(self, topic: int, text: str) -> Posted:
        """sendMessage in the topic, within the group's budget; a closed topic is reopened and
        the message sent again."""
        posted = await self._send(topic, text)
        if posted is not Posted.CLOSED:
            return posted
        bot = self.channel.bot
        reopened = await self._topic_call(lambda: bot.reopen_forum_topic(self.chat_id, topic))
        if reopened is not Posted.SENT:
            return reopened
        again = await self._send(topic, text)
        return Posted.FAILED if again is Posted.CLOSED else again

    async def _send(self, topic: int, text: str) -> Posted:
        bot = self.channel.bot
        try:
            sent = await self.channel.call(
                self.chat_id,
                lambda: bot.send_message(self.chat_id, text, message_thread_id=topic),
                raise_bad_request=True,
            )
        except BadRequest as error:
            if _gone(error):
                return Posted.GONE
            if "topic_closed" in error.message.lower():
                return Posted.CLOSED
            log.warning("support group refused a post: %s", self.channel.describe(error))
            return Posted.FAILED
        return Posted.SENT if sent is not None else Posted.FAILED

    async def _topic_call(self, make: TopicCall) -> Posted:
        """closeForumTopic, reopenForumTopic, editForumTopic, deleteForumTopic: SENT when
        done or nothing to change."""
        try:
            done = await self.channel.call(self.chat_id, make, raise_bad_request=True)
        except BadRequest as error:
            if "topic_not_modified" in error.message.lower():
                return Posted.SENT  # already as wanted
            if _gone(error):
                return Posted.GONE
            log.warning("support group refused a topic change: %s", self.channel.describe(error))
            return Posted.FAILED
        return Posted.SENT if done else Posted.FAILED

    async def tell(self, topic: int, key: str, **params: object) -> None:
        """One line of ours in a topic, for the agents; a closed or deleted topic stays so (a
        member writing in an ended hand-off's closed topic does not reopen it)."""
        await self._send(topic, self.t(key, **params))

    # -- agents writing -----------------------------------------------------------------------

    async def on_message(self, message: Message) -> None:
        """A message in the support group (in the group's lane, one after another)."""
        self.budget()  # what is said back draws on the group's budget, before any relay too
        user = message.from_user
        topic = message.message_thread_id if message.is_topic_message else None
        if topic is None:
            return  # the General topic: not about one hand-off
        sender = message.sender_chat
        if sender is not None and sender.id == self.chat_id and message.text is not None:
            await self.tell(topic, "telegram.support.anonymous")  # no agent to name
            return
        if user is None or user.is_bot:
            return  # a channel post, another bot: not an agent's reply
        text = message.text
        if text is None:
            if message.effective_attachment is not None:
                await self.tell(topic, "telegram.support.text_only")
            return  # service messages: a topic made, closed, renamed, a member joining
        handoff = await self.queue.by_topic(topic)
        if handoff is None:
            await self.tell(topic, "telegram.support.ended")
            return
        agent = f"tg:{user.id}"
        event_id = f"{EVENT_PREFIX}:{self.chat_id}:{message.message_id}"
        command = command_in(text, self.channel.bot_username())
        if command is not None:
            await self._command(handoff, topic, agent, command, event_id)
            return
        if len(text) > NOTE_MAX:
            await self.tell(topic, "telegram.support.too_long", limit=NOTE_MAX)
            return
        if handoff.state is HandoffState.WAITING:
            handoff = await self._claim(handoff, agent, event_id)
        if handoff.agent != agent or handoff.state is not HandoffState.ACTIVE:
            await self.tell(topic, "telegram.support.held", agent=handoff.agent or "-")
            return
        said = Inbound(handoff.conversation_id, event_id, EventKind.AGENT, text=text, choice=agent)
        if not await self._dispatch(said):
            await self.tell(topic, "telegram.support.not_sent")

    async def _claim(self, handoff: Handoff, agent: str, event_id: str) -> Handoff:
        """The first member writing takes a waiting hand-off; the customer is told."""
        try:
            claimed = await self.queue.claim(handoff.id, agent)
        except HandoffTaken:  # someone else was faster (or a console agent)
            return await self.queue.get(handoff.id) or handoff
        taken = Inbound(
            claimed.conversation_id, f"{event_id}:claim", EventKind.AGENT, text="", choice=agent
        )
        await self._dispatch(taken)
        return claimed

    async def _command(
        self, handoff: Handoff, topic: int, agent: str, command: str, event_id: str
    ) -> None:
        outcome = COMMANDS.get(command)
        if outcome is None:
            await self.tell(topic, "telegram.support.commands")
            return
        if handoff.agent != agent or handoff.state is not HandoffState.ACTIVE:
            await self.tell(topic, "telegram.support.not_yours")
            return
        ended = Inbound(
            handoff.conversation_id, event_id, EventKind.HANDBACK, text=agent, choice=outcome
        )
        if not await self._dispatch(ended):
            await self.tell(topic, "telegram.support.not_yours")

    async def _dispatch(self, event: Inbound) -> bool:
        """The event through the customer's own channel; True when the engine showed it (a
        redelivered one, already recorded, is not dispatched again: it was shown then)."""
        if await self.core.conversations.recorded(event.conversation_id, event.event_id):
            log.info("support group: %s was handled before", event.event_id)
            return True
        return bool(await self.channels.dispatch(event))

    # -- words --------------------------------------------------------------------------------

    def t(self, key: str, /, **params: object) -> str:
        return translate(self.locale, key, **params)

    async def _who(self, handoff: Handoff) -> tuple[str, str]:
        """The channel's name and the customer's masked ID number (never the full number)."""
        channel = self.t(f"telegram.support.channel.{channel_of(handoff.conversation_id)}")
        conversation = await self.channel.engine.store.find(handoff.conversation_id)
        customer_id = conversation.customer_id if conversation is not None else None
        customer = mask_id(customer_id) if customer_id else self.t("telegram.support.unlinked")
        return channel, customer

    async def _title(self, handoff: Handoff) -> str:
        channel, customer = await self._who(handoff)
        return self.t("telegram.support.topic", id=handoff.id, channel=channel, customer=customer)

    async def _header(self, handoff: Handoff) -> str:
        channel, customer = await self._who(handoff)
        return self.t(
            "telegram.support.header",
            id=handoff.id,
            channel=channel,
            customer=customer,
            reason=self.t(f"telegram.support.reason.{handoff.reason.value}"),
            at=handoff.requested_at.astimezone(TAIPEI).strftime("%Y-%m-%d %H:%M"),
        )

    def _copy_of(self, entry: TranscriptEntry) -> str | None:
        """What the topic shows of a transcript entry: the customer's doing, and what an agent
        elsewhere (the agent console) said to the customer; None for the rest (this group's
        own messages are in the topic already, a reminder is the bot's)."""
        time = entry.at.astimezone(TAIPEI).strftime("%H:%M")
        if entry.author is None:
            if entry.said is None:
                return None
            return self.t("telegram.support.said", time=time, text=_clipped(entry.said))
        if entry.event_id.startswith(f"{EVENT_PREFIX}:{self.chat_id}:"):
            return None
        shown = _first_text(entry.replies)
        if shown is None:
            return None  # not shown to the customer (it was not that agent's any more)
        return self.t("telegram.support.agent", agent=entry.author, time=time, text=shown)


def _later(one: datetime | None, other: datetime | None) -> datetime | None:
    if one is None or other is None:
        return one or other
    return max(one, other)


def _clipped(text: str) -> str:
    return text if len(text) <= COPY_MAX else text[:COPY_MAX] + "…"


def _first_text(replies: str) -> str | None:
    """The first message's text among an event's recorded replies (JSON)."""
    try:
        messages = json.loads(replies)
    except ValueError:
        return None
    for message in messages if isinstance(messages, list) else []:
        text = message.get("text") if isinstance(message, dict) else None
        if isinstance(text, str) and text:
            return _clipped(text)
    return None


def _gone(error: BadRequest) -> bool:
    text = error.message.lower()
    return "thread not found" in text or "topic_id_invalid" in text or "topic_deleted" in text


SUPPORT = web.AppKey("telegram_support", SupportGroup)
"""The app's support group, when `telegram_support_chat_id` is set."""


def mount(app: web.Application, channel: TelegramChannel, channels: Channels) -> SupportGroup:
    """The support group on this app: its messages routed here by the channel, its relay run by
    `bot.jobs` for as long as the app runs."""
    settings = channel.core.settings
    chat_id = settings.telegram_support_chat
    assert chat_id is not None
    support = SupportGroup(channel, channels, chat_id, settings.telegram_support_per_minute)
    channel.support_chat_id = chat_id
    channel.on_support = support.on_message
    app[SUPPORT] = support
    return support
