"""The LINE channel: webhook events in, the engine's replies out as replies or pushes.

How an answer reaches the customer (DESIGN §7): the event's reply token is used once, for the
first request of the first answer (five messages a request; the rest are pushed); everything
else is a push carrying an `X-Line-Retry-Key` derived from the event id and the batch number,
so a retried or repeated push is accepted once. A redelivered event (LINE's
`deliveryContext.isRedelivery`) is answered by push from the engine's record, with no step run
again (a file the engine answered is not downloaded again); an event answered before that is
no redelivery (a replayed body: LINE's signature holds no time) is not answered again at all.
One user's events are worked on one at a time in arrival order, the slow parts before the
engine included (a file's download, an Account Link nonce's redeem): a text sent just after a
file is answered after it; other users do not wait. Before a slow step the loading animation
shows, and from then on the event's answers are pushed (a reply token may not outlive the
step). Once a user unfollows (or a push meets 403), nothing more is pushed to them; the engine
keeps `following` in the database, so a restart still knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

from linebot.v3 import WebhookParser
from linebot.v3.webhooks import Event

from bot.channels.base import ChannelAdapter, Undelivered
from bot.channels.line import render as rendering
from bot.channels.line.api import LineApi, Pushed, retry_key
from bot.channels.line.events import (
    CHANNEL,
    AccountLinked,
    Context,
    Dispatch,
    FetchFile,
    Say,
    context_of,
    interpret,
)
from bot.channels.line.render import LineMessage
from bot.logs import REQUEST_ID
from certcore.i18n import DEFAULT_LOCALE, translate
from certcore.pki import MAX_FILE_BYTES
from certcore.storage import EVENT_RECORDS_KEPT
from dialogs import Delivery, Engine, EventKind, Inbound, Outbound, RecordedReplies

log = logging.getLogger("certdesk.line")

WORKERS = 64
"""Events worked on at once: enough to keep the database's writer and LINE's API busy."""
QUEUE_BOUND = 512
"""Queued bodies and batches beyond which the webhook waits for room before answering."""
BACKPRESSURE_SECONDS = 1.0
DRAIN_SECONDS = 5.0
MAX_EVENT_AGE = EVENT_RECORDS_KEPT - timedelta(days=1)
"""An event older than this is ignored: the record that would answer its replay from memory
may be forgotten (LINE's signature holds no time, so a captured body is valid forever), and LINE
itself redelivers within a much shorter time."""
REPLY_TOKEN_FRESH_SECONDS = 20.0
"""How long after its webhook an unused reply token is still tried: LINE gives no exact
lifetime ("use it promptly"; in practice tokens fail after about 30 s to a minute), and a
refused reply costs only the push that follows it."""
"""At shutdown, how long events still being worked on may take before they are cancelled."""


_UNDELIVERED = {
    Pushed.BLOCKED: Undelivered.BLOCKED,
    Pushed.LIMITED: Undelivered.LIMITED,
    Pushed.QUOTA: Undelivered.QUOTA,
    Pushed.FAILED: Undelivered.FAILED,
}


class AccountLinkHandler:
    """What the channel asks of Account Link (see `account_link`): the event an `accountLink`
    result becomes, or the catalogue key of the line to say instead, or None for nothing."""

    async def complete(self, context: Context, result: AccountLinked) -> Inbound | str | None:
        """Without Account Link configured, an `accountLink` event links nothing and is left
        unanswered."""
        return None


class Answer:
    """The way back to the customer for one event: its reply token, used once, then pushes."""

    def __init__(self, channel: LineChannel, context: Context) -> None:
        self.channel = channel
        self.context = context
        self.reply_token = None if context.redelivery else context.reply_token
        self.batch = 0

    def no_more_replies(self) -> None:
        self.reply_token = None

    async def send(self, messages: Sequence[LineMessage]) -> None:
        for batch in rendering.batches(messages):
            index, self.batch = self.batch, self.batch + 1
            token, self.reply_token = self.reply_token, None
            if token is not None and await self.channel.api.reply(token, batch):
                continue
            if self.context.user_id is not None:
                await self.channel.push(
                    self.context.user_id, batch, retry_key(self.context.event_id, index)
                )


class Loading:
    """The engine's `Progress` for one event: LINE's loading animation, then push only."""

    def __init__(self, channel: LineChannel, answer: Answer) -> None:
        self.channel = channel
        self.answer = answer

    async def working(self) -> None:
        self.answer.no_more_replies()
        user = self.answer.context.user_id
        if user is not None:
            await self.channel.api.loading(user)


class LineChannel(ChannelAdapter[LineMessage | None]):
    name = CHANNEL

    def __init__(
        self, engine: Engine, api: LineApi, *, account_link: AccountLinkHandler | None = None
    ) -> None:
        super().__init__(engine)
        self.api = api
        self.account_link = account_link or AccountLinkHandler()
        self.unfollowed: set[str] = set()
        """Users (LINE ids) known in this process not to follow the account: no pushes."""
        self.following: set[str] = set()
        """Users known in this process to follow (a FOLLOW, or an event of theirs)."""
        self._tasks: set[asyncio.Task[None]] = set()
        """The workers."""
        self._queue: asyncio.Queue[tuple[str, str] | list[tuple[Context, Event]]] = asyncio.Queue()
        self._room = asyncio.Event()
        self.parser: WebhookParser | None = None
        """Set by `mount`: what reads the bodies `accept_signed` queued."""
        self._order: dict[str, tuple[asyncio.Lock, int]] = {}
        """Per user: the lock that keeps one event worked off, answer sent, before the next."""
        self._unused_tokens: dict[str, tuple[str, float]] = {}
        """Per user: the reply token of their latest event that got no answer (the chat is with
        an agent), and when it came (monotonic seconds): an agent's reply within
        `REPLY_TOKEN_FRESH_SECONDS` uses it, as a reply is free where a push counts against the
        monthly quota. In this process only: another instance pushes instead."""
        self.monotonic = time.monotonic
        self.max_event_age: timedelta | None = MAX_EVENT_AGE

    # -- the contract ------------------------------------------------------------------------

    def render(self, message: Outbound) -> LineMessage | None:
        return rendering.render(message)

    async def send(self, conversation_id: str, replies: Sequence[Outbound]) -> None:
        """Push (an event that did not come by webhook: the download page's confirmation)."""
        # A retry inside `push` keeps the key; a new send is new.
        await self._push_replies(conversation_id, replies, f"push-{uuid.uuid4()}")

    async def dispatch(self, event: Inbound) -> list[Outbound]:
        """An event that did not come by webhook (a delivery confirmation, a reminder, an
        agent's words): its pushes carry retry keys derived from the event id, so dispatching
        the same event again (a reminder sweep retried after a crash) is one push as far as LINE
        is concerned. An agent's words take the customer's unused reply token while it is
        fresh."""
        user = event.conversation_id.partition(":")[2]
        async with self._in_order(user or None):  # after the customer's own events in flight
            replies = await self.engine.handle(event)
            token = self._fresh_token(user) if event.kind is EventKind.AGENT else None
            await self._push_replies(event.conversation_id, replies, event.event_id, token)
        return replies

    def _too_old(self, event: Event) -> bool:
        """Whether the event is older than `max_event_age` (an old body replayed)."""
        stamp = getattr(event, "timestamp", None)
        if self.max_event_age is None or not isinstance(stamp, int):
            return False
        sent = datetime.fromtimestamp(stamp / 1000, UTC)
        return self.engine.clock() - sent > self.max_event_age

    def _fresh_token(self, user: str) -> str | None:
        """The user's unused reply token if it is still fresh; it is spent either way."""
        token, received = self._unused_tokens.pop(user, (None, 0.0))
        if token is None or self.monotonic() - received > REPLY_TOKEN_FRESH_SECONDS:
            return None
        return token

    async def _push_replies(
        self,
        conversation_id: str,
        replies: Sequence[Outbound],
        once: str,
        reply_token: str | None = None,
    ) -> None:
        user = conversation_id.partition(":")[2]
        if not replies or not user:
            return
        if not await self._may_push(conversation_id, user):
            self.undelivered(conversation_id, Undelivered.BLOCKED)
            return
        messages = await self._rendered(conversation_id, replies)
        for index, batch in enumerate(rendering.batches(messages)):
            token, reply_token = reply_token, None
            if token is not None and await self.api.reply(token, batch):
                continue
            await self.push(user, batch, retry_key(once, index))

    # -- webhook events ----------------------------------------------------------------------

    async def accept_signed(self, body: str, signature: str) -> None:
        """Queue a webhook's body, its signature checked, to be parsed after the 200.

        When the queue is long (a burst larger than the workers keep up with) the webhook waits
        up to `BACKPRESSURE_SECONDS` for room before it answers, well inside LINE's 2 seconds:
        the sender slows down to what is worked off instead of the queue growing without end
        (after that wait the body is queued anyway: a 200 late is a redelivery, not a loss)."""
        self._start()
        if self._queue.qsize() >= QUEUE_BOUND:
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), BACKPRESSURE_SECONDS)
        self._queue.put_nowait((body, signature))

    def accept(self, events: Sequence[Event]) -> None:
        """Queue a webhook's events for after the 200: in order for each source (one queue
        item per source), worked off first come, first served by a bounded set of workers, so
        a burst waits its turn instead of every event slowing every other."""
        self._start()
        by_source: dict[str, list[tuple[Context, Event]]] = defaultdict(list)
        for event in events:
            context = context_of(event)
            by_source[context.user_id or _group_key(event)].append((context, event))
        for items in by_source.values():
            self._queue.put_nowait(items)

    def _start(self) -> None:
        if len(self._tasks) < WORKERS:
            for _ in range(WORKERS - len(self._tasks)):
                task = asyncio.create_task(self._worker())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _worker(self) -> None:
        while True:
            job = await self._queue.get()
            if self._queue.qsize() < QUEUE_BOUND:
                self._room.set()
            try:
                if isinstance(job, tuple):
                    self._parse(*job)
                else:
                    await self._work(job)
            finally:
                self._queue.task_done()

    def _parse(self, body: str, signature: str) -> None:
        """A queued body's events, queued in turn (behind what was queued before them; a
        source's events stay in order, since bodies are parsed in arrival order)."""
        if self.parser is None:
            return
        try:
            events = self.parser.parse(body, signature)
        except Exception as error:  # signed, so from LINE, but not a webhook payload
            log.warning("LINE webhook body not parsed: %s", type(error).__name__)
            return
        self.accept(events)

    async def drain(self, timeout: float = DRAIN_SECONDS) -> None:
        """Let the queued events be worked off (for `timeout` at most), then stop the workers;
        an event still running then is cancelled, and one not begun is left (LINE redelivers
        what it had no 200 for, and these had one: they are logged as dropped)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        left = self._queue.qsize()
        if left:
            log.warning("LINE: %d queued event batches dropped at shutdown", left)
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def idle(self) -> None:
        """Until every accepted event is worked off (tests, the benchmark)."""
        await self._queue.join()

    async def _work(self, items: list[tuple[Context, Event]]) -> None:
        """One webhook's events of one source (see `accept`), in that user's order: taken
        before anything is awaited, so in the order the webhooks were parsed."""
        async with self._in_order(items[0][0].user_id):
            for context, event in items:
                try:
                    await self.process(context, event)
                except Exception:
                    log.exception("LINE event %s (%s) failed", context.event_id, _kind(event))

    async def process(self, context: Context, event: Event) -> None:
        """One event, all of it: the caller holds its user's order (`_in_order`). Its log
        lines carry the webhook event's id as their request id."""
        token = REQUEST_ID.set(f"line-{context.event_id}")
        try:
            await self._process(context, event)
        finally:
            REQUEST_ID.reset(token)

    async def _process(self, context: Context, event: Event) -> None:
        if self._too_old(event):
            log.info("LINE event %s older than the records kept: ignored", context.event_id)
            return
        action = interpret(event, context)
        answer = Answer(self, context)
        if isinstance(action, Dispatch):
            await self._dispatch(action.event, answer)
        elif isinstance(action, FetchFile):
            await self._file(context, action, answer)
        elif isinstance(action, Say):
            if not context.redelivery:
                await self._say(context, action.key, answer)
        elif isinstance(action, AccountLinked):
            outcome = await self.account_link.complete(context, action)
            if isinstance(outcome, Inbound):
                await self._dispatch(outcome, answer)
            elif outcome is not None and not context.redelivery:
                await self._say(context, outcome, answer)

    async def _dispatch(self, event: Inbound, answer: Answer) -> None:
        user = answer.context.user_id
        assert user is not None
        if event.kind is EventKind.UNFOLLOW:
            self.unfollowed.add(user)
            self.following.discard(user)
        elif event.kind is EventKind.FOLLOW or user not in self.unfollowed:
            self.unfollowed.discard(user)
            self.following.add(user)
        replies = await self.engine.handle(event, Loading(self, answer))
        if isinstance(replies, RecordedReplies) and not answer.context.redelivery:
            # Answered before, yet not a redelivery: a replayed body (LINE's signature has no
            # time in it) or one id on several events. Answered once already; not again.
            log.info(
                "LINE event %s repeated without redelivery: not answered again", event.event_id
            )
            return
        if replies:
            await answer.send(await self._rendered(event.conversation_id, replies))
        elif answer.reply_token is not None:  # unanswered (with an agent): keep it for them
            self._unused_tokens[user] = (answer.reply_token, self.monotonic())

    @contextlib.asynccontextmanager
    async def _in_order(self, user: str | None) -> AsyncIterator[None]:
        """One user's events worked off one after another, in arrival order (asyncio locks are
        fair), everything slow in them included: the engine orders the turns, this orders the
        downloads and redeems before them and the answers after them. A group's or a room's
        events (no user) get at most one line each, and need no order."""
        if user is None:
            yield
            return
        lock, users = self._order.get(user, (asyncio.Lock(), 0))
        self._order[user] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._order[user]
            if users == 1:
                del self._order[user]
            else:
                self._order[user] = (lock, users - 1)

    async def _file(self, context: Context, action: FetchFile, answer: Answer) -> None:
        if action.size > MAX_FILE_BYTES:
            if not context.redelivery:
                await self._say(context, "line.file.too_large", answer)
            return
        if context.redelivery and await self._answered_before(context, answer):
            return
        try:
            data = await self.api.content(action.message_id)
        except Exception as error:
            log.warning("LINE file %s not fetched: %s", action.message_id, type(error).__name__)
            await self._say(context, "line.file.failed", answer)
            return
        event = Inbound(
            context.conversation_id,
            context.event_id,
            EventKind.FILE,
            file=data[: MAX_FILE_BYTES + 1],
            filename=action.filename,
        )
        await self._dispatch(event, answer)

    async def _answered_before(self, context: Context, answer: Answer) -> bool:
        """A redelivered event the engine already answered: its record sent again, and True
        (nothing is fetched again, so a download failing by now is not reported too)."""
        now = self.engine.clock()
        conversation = context.conversation_id
        async with self.engine.store.turn(
            conversation, context.event_id, DEFAULT_LOCALE, now
        ) as opened:
            recorded = opened.recorded
        if recorded is None:
            return False
        if recorded:
            await answer.send(await self._rendered(conversation, recorded))
        return True

    async def _say(self, context: Context, key: str, answer: Answer) -> None:
        locale = DEFAULT_LOCALE
        if context.user_id is not None:
            locale = await self.engine.locale_of(context.conversation_id) or DEFAULT_LOCALE
        text = translate(locale, key)
        await answer.send([rendering.text_message(text)])

    # -- pushing -----------------------------------------------------------------------------

    async def push(self, user: str, messages: Sequence[LineMessage], key: str) -> None:
        conversation_id = self.conversation_id(user)
        if self.held(conversation_id):
            return
        if user in self.unfollowed:
            log.info("LINE push to an unfollowed user left out")
            self.undelivered(conversation_id, Undelivered.BLOCKED)
            return
        outcome = await self.api.push(user, messages, key)
        if outcome is not Pushed.SENT:
            self.undelivered(conversation_id, _UNDELIVERED[outcome])
        if outcome is Pushed.BLOCKED and user not in self.unfollowed:
            log.info("LINE push refused (403): the user blocked the account; no more pushes")
            self.unfollowed.add(user)
            self.following.discard(user)
            # As an unfollow: the engine keeps it, so another process or a restart knows too.
            blocked = Inbound(f"{CHANNEL}:{user}", f"line-403-{uuid.uuid4()}", EventKind.UNFOLLOW)
            try:
                await self.engine.handle(blocked)
            except Exception:  # the engine never raises for a step; guard the storage anyway
                log.warning("LINE: the blocked user's unfollow was not recorded", exc_info=True)

    async def _may_push(self, conversation_id: str, user: str) -> bool:
        if user in self.unfollowed:
            return False
        if user in self.following:
            return True
        following = await conversation_following(self.engine, conversation_id)
        (self.following if following else self.unfollowed).add(user)
        return following

    async def _rendered(
        self, conversation_id: str, replies: Sequence[Outbound]
    ) -> list[LineMessage]:
        locale = DEFAULT_LOCALE
        if any(isinstance(r, Delivery) for r in replies):  # the only rendering with own words
            locale = await self.engine.locale_of(conversation_id) or DEFAULT_LOCALE
        return rendering.render_all(replies, locale)


async def conversation_following(engine: Engine, conversation_id: str) -> bool:
    """Whether the engine's record says the user follows the account (True for a chat never
    seen). A read through the engine's conversation store, not the database."""
    conversation = await engine.store.find(conversation_id)
    return True if conversation is None else bool(conversation.following)


def _group_key(event: Event) -> str:
    source = getattr(event, "source", None)
    return str(getattr(source, "group_id", None) or getattr(source, "room_id", None) or id(event))


def _kind(event: Event) -> str:
    return str(getattr(event, "type", type(event).__name__))
