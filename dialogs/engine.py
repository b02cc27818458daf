"""The conversation engine: one inbound event in, the replies out, the state saved.

One event is one unit of work: one read answers whether it is a redelivery (answered from its
record) and loads the conversation; then the timeouts, the input resolved (a button, a typed
number or label, a global word) and the current step, in memory and the services; then one save
of the new state and the replies together. This process queues one conversation's events in
arrival order (a lock per conversation, in memory only) and nothing else waits on them, so a
step that sends a code or signs a revocation stalls no other conversation. Across processes the
save is refused over a state another one wrote since the read, and the event is applied again
over that state. A failure inside a step never reaches the customer as a traceback and never
loses the conversation: the state stays as it was before the event, and the customer is asked
the same question again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from certcore.clock import Clock
from certcore.errors import ConcurrentUpdate, DatabaseUnavailable
from certcore.i18n import SUPPORTED_LOCALES, normalise_locale, translate
from certcore.masking import mask_text_ids, mask_transcript_text
from certcore.otp import parse_entry
from dialogs.conversation import Conversation, ConversationStore
from dialogs.flows import reminder
from dialogs.flows.understand import could_be_words, warn
from dialogs.flows.words import GLOBAL_WORDS, act_on_word
from dialogs.handoff import CANCEL_HANDOFF
from dialogs.messages import EventKind, ForgetInput, Inbound, Outbound, Progress
from dialogs.services import Services
from dialogs.text import normalise_words, small_number
from dialogs.turn import OPTION_DIGITS, Flow, Input, Turn, decode_choice
from dialogs.understanding import Intent, IntentKind

log = logging.getLogger("certdesk.dialogs")

WITH_AGENT = frozenset(
    {EventKind.TEXT, EventKind.CHOICE, EventKind.FILE, EventKind.MENU, EventKind.FOLLOW}
)
"""What the customer does while their conversation is with a person (silent, but recorded)."""

SERVICE_EVENTS = frozenset({EventKind.REMIND, EventKind.AGENT, EventKind.HANDBACK})
"""Events the service sends, not the customer: no 'not understood' when they say nothing."""

SECRET = "[secret]"
"""What the agents' transcript shows for an input that held a secret (a code, an ID number,
a birth date): never the input itself."""

OUTAGE_WAIT_SECONDS = 60.0
"""How long one event waits for a database that stopped answering before it fails (the
platform redelivers it later; the web application refuses new events meanwhile)."""
OUTAGE_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
"""The pauses between tries while the database does not answer (the last one repeats)."""

SAVE_ATTEMPTS = 3
"""Applications of one event over a state another process changed meanwhile, before it fails."""


@dataclass
class Handled:
    """What one event came to, for whoever watches the engine (the service's metrics): how it
    ended (`answered`, `silent`, `redelivered`: answered from its record, `failed`: a step
    raised and the customer was asked again, `error`: it could not be applied, e.g. the
    database was unreachable), the flow and step it was applied at, and the seconds it took
    once its conversation's turn came."""

    event: Inbound
    outcome: str = "error"
    flow: str | None = None
    step: str | None = None
    seconds: float = 0.0


Watcher = Callable[[Handled], None]


@cache
def _global_synonyms() -> dict[str, str]:
    """Every folded synonym of every global word, in every language, read from the catalogues
    once rather than for every message typed."""
    return {
        normalise_words(synonym): word
        for word in reversed(GLOBAL_WORDS)  # the first word listed wins a shared synonym
        for locale in SUPPORTED_LOCALES
        for synonym in translate(locale, f"global.{word}").split("|")
    }


def global_word(text: str) -> str | None:
    """Which global word the text is, in any supported language ("選單", "menu", "English")."""
    folded = normalise_words(text)
    return _global_synonyms().get(folded) if folded else None


class Engine:
    def __init__(self, services: Services, flows: Mapping[str, Flow], clock: Clock) -> None:
        self.services = services
        self.flows = flows
        self.clock = clock
        self.store = ConversationStore(services.conversations)
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}
        """Per conversation: the lock that queues this process's events, and how many use it."""
        self.outage_wait = OUTAGE_WAIT_SECONDS
        self.watchers: list[Watcher] = []
        """Told of every event handled (`Handled`); a watcher must be quick and never raise."""
        self.idle_limit = timedelta(minutes=services.settings.flow_idle_minutes)
        self.sensitive_limit = timedelta(minutes=services.settings.sensitive_flow_minutes)

    async def handle(self, event: Inbound, progress: Progress | None = None) -> list[Outbound]:
        """Apply one event and return its replies; one conversation's events queue up here in
        arrival order (asyncio locks are fair), while other conversations go on in parallel.
        `progress` is the channel's loading sign, shown before a slow step."""
        key = event.conversation_id
        lock, users = self._local.get(key, (asyncio.Lock(), 0))
        self._local[key] = (lock, users + 1)
        try:
            async with lock:
                if not self.watchers:
                    return await self._handle_in_order(event, progress, None)
                watch, started = Handled(event), time.perf_counter()
                try:
                    return await self._handle_in_order(event, progress, watch)
                finally:
                    watch.seconds = time.perf_counter() - started
                    self._tell(watch)
        finally:
            lock, users = self._local[key]
            if users == 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)

    def _tell(self, watch: Handled) -> None:
        for watcher in self.watchers:
            try:
                watcher(watch)
            except Exception:  # watching must never fail an event
                log.warning("an engine watcher failed", exc_info=True)

    async def locale_of(self, conversation_id: str) -> str | None:
        """The language the conversation speaks now; None for one never seen."""
        conversation = await self.store.find(conversation_id)
        return None if conversation is None else conversation.locale

    async def resumable(self, conversation_id: str) -> list[Outbound] | None:
        """For a channel reopening a chat (the console at start): a conversation left in the
        middle of an identity (sensitive) flow is resumed, since a FOLLOW would end that flow,
        and these are the replies to show again; None when a FOLLOW is the right start."""
        conversation = await self.store.find(conversation_id)
        flow = self.flows.get(conversation.flow or "") if conversation is not None else None
        if flow is None or not flow.sensitive:
            return None
        return await self.store.last_replies(conversation_id)

    async def _handle_in_order(
        self, event: Inbound, progress: Progress | None, watch: Handled | None
    ) -> list[Outbound]:
        """The event applied once the database answers: an outage is waited out (up to
        `outage_wait` seconds) and the whole unit of work tried again, which an event already
        saved answers from its record."""
        waited, pauses = 0.0, iter(OUTAGE_RETRY_SECONDS)
        pause = next(pauses)
        while True:
            try:
                return await self._applied(event, progress, watch)
            except DatabaseUnavailable:
                if waited >= self.outage_wait:
                    raise
                log.info("event %s waits for the database (%.1f s so far)", event.event_id, waited)
                await asyncio.sleep(pause)
                waited += pause
                pause = next(pauses, pause)

    async def _applied(
        self, event: Inbound, progress: Progress | None, watch: Handled | None
    ) -> list[Outbound]:
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            try:
                return await self._unit_of_work(event, progress, watch)
            except ConcurrentUpdate:
                # Another process saved this conversation after we read it (a second instance
                # on one SQLite file, or two racing to create it): apply the event again over
                # the state it left, rather than write over it.
                if attempt == SAVE_ATTEMPTS:
                    raise
                log.info("event %s met a newer state; applying it again", event.event_id)
        raise AssertionError("unreachable")

    async def _unit_of_work(
        self, event: Inbound, progress: Progress | None, watch: Handled | None
    ) -> list[Outbound]:
        """Read (one round trip), apply in memory and the services, save (one round trip)."""
        now = self.clock()
        locale = normalise_locale(event.locale_hint)
        async with self.store.turn(event.conversation_id, event.event_id, locale, now) as opened:
            if opened.recorded is not None:
                if watch is not None:
                    watch.outcome = "redelivered"
                return opened.recorded
            turn = Turn(opened.conversation, self.services, self.flows, now, progress, event.client)
            said = self._said(turn.conversation, event)
            failed = False
            if watch is not None:
                watch.flow, watch.step = turn.conversation.flow, turn.conversation.step
            try:
                await self._apply(turn, event)
            except DatabaseUnavailable:
                raise  # nothing of this event is saved: tried again once the database answers
            except Exception:
                failed = True
                log.exception(
                    "event %s of %s failed; the conversation stays where it was",
                    event.event_id,
                    event.conversation_id,
                )
                turn = Turn(opened.reloaded(), self.services, self.flows, now, None, event.client)
                turn.say("error.unexpected")
                await turn.reprompt()
            silent = event.kind is EventKind.UNFOLLOW or event.kind in SERVICE_EVENTS or turn.silent
            if not silent and not turn.replies:
                turn.say("error.not_understood")
            if event.kind is not EventKind.REMIND or turn.replies:
                turn.conversation.last_activity_at = now
            if any(isinstance(reply, ForgetInput) for reply in turn.replies):
                said = SECRET
            author = _author(event)
            await opened.save(turn.conversation, turn.replies, now, said=said, author=author)
            if watch is not None:
                watch.outcome = "failed" if failed else "answered" if turn.replies else "silent"
            return turn.replies

    async def _apply(self, turn: Turn, event: Inbound) -> None:
        conversation = turn.conversation
        if event.kind is EventKind.UNFOLLOW:
            conversation.following = False
            await turn.abandon()
            turn.end()
            if conversation.agent_mode:  # no agent can reach a chat that blocked the account
                await self.services.handoff.customer_left(turn)
            return
        if event.kind is EventKind.AGENT:
            await self.services.handoff.agent_says(turn, event.choice, event.text)
            return
        if event.kind is EventKind.HANDBACK:
            await self.services.handoff.hand_back(turn, event.choice, event.text)
            return
        if (
            conversation.agent_mode
            and event.kind in WITH_AGENT
            and await self._with_agent(turn, event)
        ):
            return
        if event.kind is EventKind.FOLLOW:
            conversation.following = True
            await turn.abandon()  # the menu below ends any flow: void its code first
            if event.locale_hint:
                conversation.locale = normalise_locale(event.locale_hint)
            turn.say("welcome")
            await turn.menu()
            return
        if event.kind is EventKind.LINKED:  # a channel's own linking page (LINE Account Link)
            linked = self.flows["link"].steps["account_linked"]
            await linked.handle(turn, Input(choice=event.choice))
            return
        if event.kind is EventKind.MENU:  # always on screen: taken whatever runs or timed out
            await turn.abandon()
            turn.end()
            item = Input(choice=event.choice) if event.choice else Input(text=event.text)
            await self.flows["menu"].steps["main"].handle(turn, item)
            return
        if event.kind is EventKind.REMIND:
            await self._remind(turn, event.choice)
            return
        if await self._timed_out(turn):
            return
        if event.kind is EventKind.DELIVERED:
            await self.flows["delivery"].steps["delivered"].handle(turn, Input(choice=event.choice))
            return
        answer = await self._resolve(turn, event)
        if answer is None:
            return
        flow, step = conversation.flow, conversation.step
        if flow is not None and step is not None:
            await self.flows[flow].steps[step].handle(turn, answer)
            return
        if flow is not None:
            # A flow with no current step has asked nothing (its `begin` neither asked a question
            # nor left it), so no step can take the answer: as `Turn.reprompt` does, the main
            # menu takes it, after the flow is left as on "menu" (its code voided).
            await turn.abandon()
            turn.end()
        await self.flows["menu"].steps["main"].handle(turn, answer)

    async def _with_agent(self, turn: Turn, event: Inbound) -> bool:
        """A conversation handed to a person: the event is recorded with no reply, except the
        word (or the 取消轉接 option) that cancels a waiting request. False when the request
        has ended meanwhile: the bot has the conversation again and handles the event."""
        conversation, desk = turn.conversation, self.services.handoff
        if not await desk.holds(turn):
            conversation.agent_mode = False
            return False
        if event.kind is EventKind.FOLLOW:
            conversation.following = True
        if self._cancels_handoff(conversation, event) and await desk.cancel(turn):
            return True
        turn.silent = True
        return True

    @staticmethod
    def _cancels_handoff(conversation: Conversation, event: Inbound) -> bool:
        if event.kind is EventKind.TEXT:
            return global_word(event.text) == "cancel"
        if event.kind is EventKind.CHOICE:
            decoded = decode_choice(event.choice)
            return decoded == (conversation.seq, CANCEL_HANDOFF) and any(
                option.key == CANCEL_HANDOFF for option in conversation.options
            )
        return False

    async def _remind(self, turn: Turn, choice: str) -> None:
        """A reminder, said only where it is wanted (else no reply at all). A flow that has
        timed out meanwhile is left quietly: the reminder's own question replaces it."""
        record = await reminder.wanted(turn, choice)
        if record is None:
            return
        if self._overdue(turn) is not None:
            await turn.abandon()
            turn.end()
        await reminder.remind(turn, record)

    def _overdue(self, turn: Turn) -> str | None:
        """ "idle" or "too_long" when the running flow has timed out; None otherwise."""
        conversation = turn.conversation
        flow = self.flows.get(conversation.flow or "")
        if flow is None:
            return None
        last, started = conversation.last_activity_at, conversation.flow_started_at
        if last is not None and turn.now - last > self.idle_limit:
            return "idle"
        if flow.sensitive and started is not None and turn.now - started > self.sensitive_limit:
            return "too_long"
        return None

    async def _timed_out(self, turn: Turn) -> bool:
        """End a flow left idle too long, or a sensitive flow past its absolute limit."""
        overdue = self._overdue(turn)
        if overdue is None:
            return False
        idle = overdue == "idle"
        await turn.abandon()
        limit = self.idle_limit if idle else self.sensitive_limit
        turn.say(
            "flow.timed_out" if idle else "flow.too_long",
            minutes=int(limit.total_seconds() // 60),
        )
        await turn.menu()
        return True

    def _surely(self, text: str) -> Intent | None:
        """The intent the text clearly means, at the in-step probability, or None."""
        matcher = self.services.matcher
        reading = matcher.read(text)
        intent = reading.clear
        if intent is None or reading.guesses[0].score < matcher.catalogue.confidence.in_step:
            return None
        return intent

    async def _resolve(self, turn: Turn, event: Inbound) -> Input | None:
        """Turn a tap, a typed number or label, or a global word into the step's input."""
        conversation = turn.conversation
        if event.kind is EventKind.FILE:
            return Input(file=event.file, filename=event.filename)
        if event.kind is EventKind.CHOICE:
            decoded = decode_choice(event.choice)
            keys = {option.key for option in conversation.options}
            if decoded is None or decoded[0] != conversation.seq or decoded[1] not in keys:
                turn.say("error.stale_button")
                await turn.reprompt()
                return None
            return Input(choice=decoded[1])
        text = event.text
        word = global_word(text)
        if word is not None:
            await act_on_word(turn, word)
            return None
        if self._reads_code(conversation) and parse_entry(text) is not None:
            return Input(text=text)
        choice = _typed_choice(conversation, text)
        if choice is not None:
            return Input(choice=choice, text=text)
        if conversation.step is not None and could_be_words(text):
            # Inside a step only what is surely a global word (我要取消, 回主選單, 找真人) or the
            # warning about someone asking for a code leaves it; anything else is the answer.
            intent = self._surely(text)
            if intent is not None and intent.kind is IntentKind.GLOBAL:
                await act_on_word(turn, intent.id)
                return None
            if intent is not None and intent.kind is IntentKind.WARNING:
                await warn(turn)
                return None
        return Input(text=text)

    def _said(self, conversation: Conversation, event: Inbound) -> str | None:
        """What the customer did, for the agents' transcript, before the event is applied: the
        words typed (a code, anything typed where a code is asked, ID numbers and long numbers
        masked; the engine replaces it all when the step says the input was secret), the option
        tapped, the file's name. None for what the service did (a reminder, an agent)."""
        kind = event.kind
        if kind is EventKind.TEXT:
            text = event.text
            if self._reads_code(conversation) or parse_entry(text) is not None:
                return SECRET
            return mask_transcript_text(text)
        if kind is EventKind.CHOICE:
            decoded = decode_choice(event.choice)
            key = decoded[1] if decoded is not None else ""
            labels = {option.key: option.label for option in conversation.options}
            return f"[{kind.value}] {labels.get(key, key)}"
        if kind is EventKind.MENU:
            return f"[{kind.value}] {event.choice or mask_text_ids(event.text)}"
        if kind is EventKind.FILE:
            return f"[{kind.value}] {event.filename}"
        if kind in (EventKind.FOLLOW, EventKind.UNFOLLOW, EventKind.LINKED, EventKind.DELIVERED):
            return f"[{kind.value}]"  # LINKED's choice is an ID number: never copied
        return None

    def _reads_code(self, conversation: Conversation) -> bool:
        flow = self.flows.get(conversation.flow or "")
        step = flow.steps.get(conversation.step or "") if flow is not None else None
        return step is not None and step.reads_code


def _author(event: Inbound) -> str | None:
    """The agent an event came from, for the transcript: an AGENT event's `choice`, a
    HANDBACK's `text` (its `choice` is the outcome); None for a timeout and the customer's."""
    if event.kind is EventKind.AGENT:
        return event.choice or None
    if event.kind is EventKind.HANDBACK:
        return event.text or None
    return None


def _typed_choice(conversation: Conversation, text: str) -> str | None:
    """An option picked by typing its number (1, １) or its label, as on LINE PC."""
    options = conversation.options
    folded = normalise_words(text)
    number = small_number(folded, digits=OPTION_DIGITS)
    if number is not None:
        return options[number - 1].key if 0 < number <= len(options) else None
    for option in options:
        if normalise_words(option.label) == folded:
            return option.key
    return None
