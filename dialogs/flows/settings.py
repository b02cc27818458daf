"""設定: the conversation's language, and expiry reminders on or off.

Reminders go to a chat linked to a customer, so turning them on or off needs a linked chat;
an unlinked chat is offered linking first and comes back here afterwards. A language change is
confirmed in the new language.
"""

from __future__ import annotations

from certcore.i18n import SUPPORTED_LOCALES
from dialogs.turn import Flow, Input, Step, Turn

MAIN, LANGUAGE, REMINDERS, NEEDS_LINK = "main", "language", "reminders", "needs_link"
LANGUAGES = (("zh_TW", "settings.language.option.zh_TW"), ("en", "settings.language.option.en"))
BACK_OPTION = ("back", "settings.action.back")
MENU_OPTION = ("menu", "settings.action.menu")


def _reminder_state(turn: Turn) -> str:
    if turn.customer_id is None:
        return turn.t("settings.reminders.state.unlinked")
    if turn.conversation.reminders:
        return turn.t("settings.reminders.state.on")
    return turn.t("settings.reminders.state.off")


async def ask_main(turn: Turn) -> None:
    turn.ask(
        "settings.prompt",
        [
            ("language", "settings.item.language"),
            ("reminders", "settings.item.reminders"),
            MENU_OPTION,
        ],
        language=turn.t("settings.language.name"),
        reminders=_reminder_state(turn),
    )


async def on_main(turn: Turn, answer: Input) -> None:
    choice = answer.choice
    if choice == "language":
        await turn.goto(LANGUAGE)
    elif choice == "reminders":
        await turn.goto(REMINDERS if turn.customer_id is not None else NEEDS_LINK)
    elif choice == "menu":
        await turn.menu()
    else:
        await _not_an_option(turn)


async def ask_language(turn: Turn) -> None:
    turn.ask("settings.language.prompt", [*LANGUAGES, BACK_OPTION])


async def on_language(turn: Turn, answer: Input) -> None:
    choice = answer.choice
    if choice in SUPPORTED_LOCALES:
        turn.conversation.locale = choice
        turn.say("settings.language.changed")
        await turn.goto(MAIN)
    elif choice == "back":
        await turn.goto(MAIN)
    else:
        await _not_an_option(turn)


async def ask_reminders(turn: Turn) -> None:
    turn.ask(
        "settings.reminders.prompt",
        [
            ("on", "settings.reminders.turn_on"),
            ("off", "settings.reminders.turn_off"),
            BACK_OPTION,
        ],
        state=_reminder_state(turn),
    )


async def on_reminders(turn: Turn, answer: Input) -> None:
    choice = answer.choice
    if turn.customer_id is None and choice in ("on", "off"):  # unlinked since the question
        await turn.goto(NEEDS_LINK)
    elif choice == "on":
        turn.conversation.reminders = True
        turn.say("settings.reminders.turned_on")
        await turn.goto(MAIN)
    elif choice == "off":
        turn.conversation.reminders = False
        turn.say("settings.reminders.turned_off")
        await turn.goto(MAIN)
    elif choice == "back":
        await turn.goto(MAIN)
    else:
        await _not_an_option(turn)


async def ask_link(turn: Turn) -> None:
    turn.ask(
        "settings.reminders.needs_link",
        [("link", "settings.action.link"), BACK_OPTION, MENU_OPTION],
    )


async def on_link(turn: Turn, answer: Input) -> None:
    choice = answer.choice
    if choice == "link":
        await turn.start("link", then=FLOW.name)
    elif choice == "back":
        await turn.goto(MAIN)
    elif choice == "menu":
        await turn.menu()
    else:
        await _not_an_option(turn)


async def _not_an_option(turn: Turn) -> None:
    turn.say("settings.choose")
    await turn.reprompt()


FLOW = Flow(
    name="settings",
    first_step=MAIN,
    steps={
        MAIN: Step(ask_main, on_main),
        LANGUAGE: Step(ask_language, on_language),
        REMINDERS: Step(ask_reminders, on_reminders),
        NEEDS_LINK: Step(ask_link, on_link),
    },
)
