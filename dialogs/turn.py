"""One event's worth of work on a conversation: what flows read, and how they answer.

Flows are tables of steps. A step has a `prompt` (ask its question) and a `handle` (react to
the customer's answer). A flow moves on with `await turn.goto(step)`, which asks the next
question at once, so the state saved after the turn always matches the question on screen.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from certcore.i18n import translate
from dialogs.conversation import Conversation
from dialogs.messages import Choices, ForgetInput, Option, Outbound, Progress, Text
from dialogs.text import small_number

if TYPE_CHECKING:
    from dialogs.services import Services

log = logging.getLogger("certdesk.dialogs")


@dataclass(frozen=True)
class Input:
    """The customer's answer to the current step, after buttons, numbers and labels are resolved."""

    text: str = ""
    choice: str | None = None
    file: bytes | None = field(default=None, repr=False)
    filename: str = ""


StepPrompt = Callable[["Turn"], Awaitable[None]]
StepHandler = Callable[["Turn", Input], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    prompt: StepPrompt
    handle: StepHandler
    reads_code: bool = False
    """The answer is a one-time code: text that reads as one (`123456`, `HFCR-123456`) is
    handed to `handle` as typed, never taken for an option's number (`000001` is a code, not
    option 1) nor read for words."""


@dataclass(frozen=True)
class Flow:
    name: str
    steps: Mapping[str, Step]
    first_step: str
    sensitive: bool = False
    """Identity and OTP flows: limited to `sensitive_flow_minutes` from their start."""
    needs_link: bool = False
    """Only for a chat linked to a customer; others go through linking first."""
    begin: Callable[[Turn], Awaitable[None]] | None = None
    """Runs instead of going straight to `first_step`, for checks before the first question."""
    abandon: Callable[[Turn], Awaitable[None]] | None = None
    """Runs when the flow is left unfinished (cancel, menu, timeout): void what it started."""


CHOICE_SEPARATOR = ":"
SEQ_DIGITS = 18
"""A question's number fits in 18 digits (a 64-bit integer); a longer one is forged."""
OPTION_DIGITS = 3
"""An option's number (typed, or in an option's key) has at most 3 digits: no question has
more options; a longer number is never an option."""


def encode_choice(seq: int, key: str) -> str:
    """Option keys carry the question's number, so a button from an earlier question is known."""
    return f"{seq}{CHOICE_SEPARATOR}{key}"


def decode_choice(wire: str) -> tuple[int, str] | None:
    """The question's number and the option's key, or None for what no button of ours sends."""
    seq, separator, key = wire.partition(CHOICE_SEPARATOR)
    number = small_number(seq, digits=SEQ_DIGITS)
    if not separator or number is None or not key:
        return None
    return number, key


class Turn:
    def __init__(
        self,
        conversation: Conversation,
        services: Services,
        flows: Mapping[str, Flow],
        now: datetime,
        progress: Progress | None = None,
        client: str = "",
    ) -> None:
        self.conversation = conversation
        self.services = services
        self.flows = flows
        self.now = now
        self.progress = progress
        self.client = client
        """The event's `Inbound.client`: who is behind the conversation, where a channel knows."""
        self.replies: list[Outbound] = []
        self.silent = False
        """No reply at all is the answer (the conversation is with an agent)."""

    # -- reading -----------------------------------------------------------------------------

    @property
    def locale(self) -> str:
        return self.conversation.locale

    @property
    def data(self) -> dict[str, Any]:
        return self.conversation.data

    @property
    def customer_id(self) -> str | None:
        return self.conversation.customer_id

    def t(self, key: str, /, **params: object) -> str:
        return translate(self.locale, key, **params)

    # -- answering ---------------------------------------------------------------------------

    def send(self, message: Outbound) -> None:
        self.replies.append(message)

    def forget_input(self) -> None:
        """The answer being handled held a secret: channels that can, delete it from the chat."""
        if not any(isinstance(reply, ForgetInput) for reply in self.replies):
            self.replies.append(ForgetInput())

    async def working(self) -> None:
        """Before a slow step (sending a code, signing a revocation): the channel's loading sign,
        shown once per event."""
        progress, self.progress = self.progress, None
        if progress is None:
            return
        try:
            await progress.working()
        except Exception:  # a missing loading sign must not fail the customer's step
            log.warning("the channel's progress sign failed", exc_info=True)

    def say(self, key: str, /, **params: object) -> None:
        self.send(Text(self.t(key, **params)))

    def ask(self, key: str, options: Sequence[tuple[str, str]], /, **params: object) -> None:
        """Ask a question with options given as (option key, catalogue key of its label)."""
        self.ask_text(self.t(key, **params), [(k, self.t(label)) for k, label in options])

    def ask_text(self, text: str, options: Sequence[tuple[str, str]]) -> None:
        """Ask with labels already in words (masked accounts, destinations, FAQ questions)."""
        conversation = self.conversation
        conversation.seq += 1
        conversation.options = [Option(key, label) for key, label in options]
        self.send(
            Choices(
                text,
                tuple(Option(encode_choice(conversation.seq, k), label) for k, label in options),
            )
        )

    # -- moving ------------------------------------------------------------------------------

    async def goto(self, step: str) -> None:
        flow = self.flows[self.conversation.flow or ""]
        self.conversation.step = step
        self.conversation.options = []
        await flow.steps[step].prompt(self)

    async def start(self, name: str, **data: Any) -> None:
        """Leave whatever flow is running and start `name` (through linking if it needs it)."""
        flow = self.flows[name]
        if flow.needs_link and self.conversation.customer_id is None:
            await self.start("link", then=name)
            return
        conversation = self.conversation
        conversation.flow, conversation.step = name, None
        conversation.data = dict(data)
        conversation.options = []
        conversation.flow_started_at = self.now
        if flow.begin is not None:
            await flow.begin(self)
        else:
            await self.goto(flow.first_step)

    async def abandon(self) -> None:
        """Let the running flow clean up (void its one-time code) before it is left."""
        flow = self.flows.get(self.conversation.flow or "")
        if flow is not None and flow.abandon is not None:
            await flow.abandon(self)

    def end(self) -> None:
        conversation = self.conversation
        conversation.flow = conversation.step = conversation.flow_started_at = None
        conversation.data = {}
        conversation.options = []

    async def menu(self) -> None:
        """End any flow and offer the main menu."""
        self.end()
        await self.flows["menu"].steps["main"].prompt(self)

    async def at_menu(self, answer: Input) -> None:
        """End any flow and take the answer as if given at the main menu (a question, a word
        typed where a flow's options were expected)."""
        self.end()
        await self.flows["menu"].steps["main"].handle(self, answer)

    async def reprompt(self) -> None:
        """Ask the current question again (after a stale button, a language switch, help)."""
        conversation = self.conversation
        if conversation.flow is None or conversation.step is None:
            await self.menu()
            return
        await self.flows[conversation.flow].steps[conversation.step].prompt(self)
