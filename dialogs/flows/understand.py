"""What free text leads to, when it is not the answer to a question.

At the main menu (and wherever a flow hands typed words back to it), the intent matcher reads
the text (`dialogs.understanding`) and its certainty decides, as Rasa's two-stage fallback
does:

- clear: act on it as a tap would — start the flow (through linking when it needs a customer),
  answer the FAQ entry, do what the global word does; 登出 reached this way is confirmed first;
- unsure: ask 「您是要：」 with the best two or three and 「都不是」; 「都不是」 asks to rephrase,
  and a rephrasing still not understood offers a person;
- nothing near, or out of scope (small talk, stock prices, 你好): say so politely and show what
  the bot can do; after three misses in a row, offer a person.

Words about someone asking for a code, a password or the certificate file are answered first
with the warning that staff never ask for them, with revocation and a person offered. Text that
looks like a full ID number is not read at all: the customer is asked not to type it here, and
channels that can delete it from the chat do.
"""

from __future__ import annotations

import re

from dialogs.faq import FaqEntry
from dialogs.flows.words import act_on_word
from dialogs.text import normalise_words
from dialogs.turn import Flow, Input, Step, Turn
from dialogs.understanding import OUT_OF_SCOPE, Certainty, Intent, IntentKind

WHICH, REPHRASE, OFFER_AGENT, WARNED, LOCKED = (
    "which",
    "rephrase",
    "offer_agent",
    "warned",
    "locked",
)
AGENT_REASONS = {OFFER_AGENT: "misunderstood", LOCKED: "identity_lock"}
"""Why a person is asked for, by the step that offered one (else: the customer asked)."""
NONE_OF_THESE = "none"
MISSES_BEFORE_AGENT = 3
"""Misunderstood inputs in a row after which a person is offered."""
FULL_ID = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][12ABCD89]\d{8}(?!\d)|(?<!\d)\d{8}(?!\d)")
"""A national ID or resident number (A123456789, A800000014, AC01234567), or 8 digits (a
Unified Business Number), standing alone in the text."""


def could_be_words(text: str) -> bool:
    """Text that may be words rather than data: no digit at all (a birth date, a code, an ID
    number, a typed option number are never read as an intent)."""
    folded = normalise_words(text)
    return len(folded) >= 2 and not any(char.isdigit() for char in folded)


def looks_like_id_number(text: str) -> bool:
    return FULL_ID.search(text.replace(" ", "").upper()) is not None


async def understand(turn: Turn, text: str) -> None:
    """Free text with no question waiting for it (at the main menu)."""
    if looks_like_id_number(text):
        turn.forget_input()
        turn.say("understand.id_number")
        await turn.menu()
        return
    if not any(char.isalpha() for char in text):  # a number, a code: no words to read
        await miss(turn, out_of_scope=False)
        return
    reading = turn.services.matcher.read(text)
    intent = reading.best
    if intent is None or intent.id == OUT_OF_SCOPE or reading.certainty is Certainty.NONE:
        await miss(turn, out_of_scope=intent is not None and intent.id == OUT_OF_SCOPE)
        return
    if reading.certainty is Certainty.CLEAR:
        await act(turn, intent, guessed=True)
        return
    choices = [g.intent for g in reading.guesses if g.intent.id != OUT_OF_SCOPE]
    await turn.start("understand", choices=[choice.id for choice in choices])


def clear_request(turn: Turn, text: str) -> Intent | None:
    """What the words clearly ask for, when it is something the bot does; None for unclear
    words, small talk, and anything that looks like an ID number (never read)."""
    if not text or looks_like_id_number(text):
        return None
    intent = turn.services.matcher.read(text).clear
    return intent if intent is not None and intent.id != OUT_OF_SCOPE else None


async def elsewhere(turn: Turn, answer: Input, choose_key: str) -> None:
    """Words that are none of the options of a help list (操作說明, 憑證匯入, 檢查電腦環境): when
    they clearly ask for something else, it is done; otherwise the list is asked again."""
    intent = clear_request(turn, answer.text) if could_be_words(answer.text) else None
    if intent is not None:
        turn.end()
        await act(turn, intent, guessed=True)
        return
    turn.say(choose_key)
    await turn.reprompt()


async def act(turn: Turn, intent: Intent, *, guessed: bool) -> None:
    """Do what the intent means; `guessed` when it was read from words or a typed number
    rather than tapped (then what undoes something, 登出, is confirmed first)."""
    if intent.kind is IntentKind.FLOW:
        if intent.id == "logout" and guessed:
            await turn.start("logout", confirm=True)
        else:
            await turn.start(intent.id)
    elif intent.kind is IntentKind.GLOBAL:
        await act_on_word(turn, intent.id)
    elif intent.kind is IntentKind.WARNING:
        await warn(turn)
    elif intent.kind is IntentKind.FAQ:
        entry = turn.services.faq.get(intent.id)
        if entry is not None:
            turn.send(turn.services.faq.answer_message(entry, turn.locale))
        await turn.menu()
    else:
        await miss(turn, out_of_scope=True)


async def warn(turn: Turn) -> None:
    """Someone asked the customer for a code, a password or the file: the flow running (and
    its code) is left, the warning said, and revocation and a person offered."""
    await turn.abandon()
    await turn.start("understand", ask=WARNED)


async def miss(turn: Turn, *, out_of_scope: bool) -> None:
    """Not understood (or not ours): say so, show the menu; the third miss in a row offers a
    person. The count lives in the idle conversation's data, which any start clears."""
    misses = int(turn.data.get("misses", 0)) + 1 if turn.conversation.flow is None else 1
    turn.say("understand.out_of_scope" if out_of_scope else "menu.not_understood")
    if misses >= MISSES_BEFORE_AGENT:
        await turn.start("understand", ask=OFFER_AGENT)
        return
    await turn.menu()
    turn.data["misses"] = misses


def label(turn: Turn, intent: Intent) -> str:
    if intent.kind is IntentKind.FLOW:
        return turn.t(f"menu.item.{intent.id}")
    if intent.kind is IntentKind.FAQ:
        entry: FaqEntry | None = turn.services.faq.get(intent.id)
        if entry is not None:
            return entry.label(turn.locale)
    return turn.t(f"understand.intent.{intent.id}")


# -- 您是要： -------------------------------------------------------------------------------------


def _choices(turn: Turn) -> list[Intent]:
    catalogue = turn.services.matcher.catalogue
    found = (catalogue.get(intent_id) for intent_id in turn.data.get("choices", []))
    return [intent for intent in found if intent is not None]


async def begin(turn: Turn) -> None:
    await turn.goto(turn.data.get("ask", WHICH))


async def ask_which(turn: Turn) -> None:
    options = [(intent.id, label(turn, intent)) for intent in _choices(turn)]
    none = (NONE_OF_THESE, turn.t("understand.option.none"))
    turn.ask_text(turn.t("understand.which"), [*options, none])


async def on_which(turn: Turn, answer: Input) -> None:
    if answer.choice == NONE_OF_THESE:
        await turn.goto(REPHRASE)
        return
    chosen = next((i for i in _choices(turn) if i.id == answer.choice), None)
    if chosen is not None:
        await act(turn, chosen, guessed=bool(answer.text))
        return
    turn.end()  # other words: read afresh, as at the menu
    await understand(turn, answer.text)


async def ask_rephrase(turn: Turn) -> None:
    turn.say("understand.rephrase")


async def on_rephrase(turn: Turn, answer: Input) -> None:
    intent = clear_request(turn, answer.text)
    if intent is not None:
        await act(turn, intent, guessed=True)
        return
    if looks_like_id_number(answer.text):
        turn.forget_input()
    turn.say("menu.not_understood")
    await turn.goto(OFFER_AGENT)


# -- a person, or the menu ----------------------------------------------------------------------


async def ask_offer_agent(turn: Turn) -> None:
    turn.ask(
        "understand.offer_agent",
        [("agent", "understand.button.agent"), ("menu", "understand.button.menu")],
    )


async def ask_offer_agent_locked(turn: Turn) -> None:
    turn.ask(
        "handoff.offer_agent.locked",
        [("agent", "understand.button.agent"), ("menu", "understand.button.menu")],
    )


async def ask_warned(turn: Turn) -> None:
    turn.ask(
        "understand.fraud",
        [
            ("revoke", "understand.button.revoke"),
            ("agent", "understand.button.agent"),
            ("menu", "understand.button.menu"),
        ],
    )


async def on_offer(turn: Turn, answer: Input) -> None:
    if answer.choice == "agent":
        reason = AGENT_REASONS.get(turn.conversation.step or "", "asked")
        turn.end()
        await turn.services.handoff.request(turn, reason)
    elif answer.choice == "revoke":
        await turn.start("revoke")
    elif answer.choice == "menu":
        await turn.menu()
    else:
        turn.end()
        await understand(turn, answer.text)


FLOW = Flow(
    name="understand",
    first_step=WHICH,
    begin=begin,
    steps={
        WHICH: Step(ask_which, on_which),
        REPHRASE: Step(ask_rephrase, on_rephrase),
        OFFER_AGENT: Step(ask_offer_agent, on_offer),
        WARNED: Step(ask_warned, on_offer),
        LOCKED: Step(ask_offer_agent_locked, on_offer),
    },
)
