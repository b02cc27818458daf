"""常見問題: the broker's FAQ catalogue (dialogs/faq.py) as a list of questions in chat.

A tap shows the answer; typed words are read as at the main menu (`dialogs.flows.understand`):
a question of the catalogue is answered here, anything else is taken as the menu would. After
an answer the list is offered again, with the main menu.
"""

from __future__ import annotations

from dialogs.flows.understand import understand
from dialogs.turn import Flow, Input, Step, Turn
from dialogs.understanding import IntentKind

CHOOSE, MORE = "question", "more"
MENU_KEY = "menu"


def _options(turn: Turn) -> list[tuple[str, str]]:
    entries = [(entry.id, entry.label(turn.locale)) for entry in turn.services.faq.entries]
    return [*entries, (MENU_KEY, turn.t("faq.action.menu"))]


async def ask_question(turn: Turn) -> None:
    if not turn.services.faq.entries:
        turn.say("faq.empty")
        await turn.menu()
        return
    turn.ask_text(turn.t("faq.prompt"), _options(turn))


async def ask_more(turn: Turn) -> None:
    turn.ask_text(turn.t("faq.more"), _options(turn))


async def on_question(turn: Turn, answer: Input) -> None:
    faq = turn.services.faq
    if answer.choice == MENU_KEY:
        await turn.menu()
        return
    if answer.choice is not None:
        entry = faq.get(answer.choice)
    elif answer.text:
        intent = turn.services.matcher.read(answer.text).clear
        entry = faq.get(intent.id) if intent is not None and intent.kind is IntentKind.FAQ else None
        if entry is None:
            turn.end()
            await understand(turn, answer.text)
            return
    else:
        entry = None
    if entry is None:
        turn.ask_text(turn.t("faq.no_match"), _options(turn))
        return
    turn.send(faq.answer_message(entry, turn.locale))
    await turn.goto(MORE)


FLOW = Flow(
    name="faq",
    first_step=CHOOSE,
    steps={CHOOSE: Step(ask_question, on_question), MORE: Step(ask_more, on_question)},
)
