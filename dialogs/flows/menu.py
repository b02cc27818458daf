"""The main menu (the portal's left-hand 憑證中心 menu).

When no flow runs, a tapped menu item starts its flow, and so does one typed by its number or
label (登出 typed is confirmed first: 「11」 alone must not log a chat out); other text is read
for what it means (`dialogs.flows.understand`); a file is taken for a certificate to check
(憑證資料檢核).
"""

from __future__ import annotations

from certcore.i18n import SUPPORTED_LOCALES, translate
from dialogs.flows.check import check_sent_file
from dialogs.flows.understand import understand
from dialogs.text import normalise_words
from dialogs.turn import Flow, Input, Step, Turn

MENU_ITEMS = (
    ("query", "menu.item.query"),
    ("apply", "menu.item.apply"),
    ("renew", "menu.item.renew"),
    ("revoke", "menu.item.revoke"),
    ("import_help", "menu.item.import_help"),
    ("check", "menu.item.check"),
    ("environment", "menu.item.environment"),
    ("guide", "menu.item.guide"),
    ("faq", "menu.item.faq"),
    ("settings", "menu.item.settings"),
    ("logout", "menu.item.logout"),
    ("agent", "menu.item.agent"),
)
"""At most 13 items: LINE shows no more quick replies than that."""


async def ask_menu(turn: Turn) -> None:
    turn.ask("menu.prompt", MENU_ITEMS)


def typed_menu_item(text: str) -> str | None:
    """A menu item typed by its label in any language, even when no menu is on screen."""
    folded = normalise_words(text)
    for key, label in MENU_ITEMS:
        if any(normalise_words(translate(loc, label)) == folded for loc in SUPPORTED_LOCALES):
            return key
    return None


async def on_menu(turn: Turn, answer: Input) -> None:
    choice = answer.choice or typed_menu_item(answer.text)
    typed = bool(answer.text)
    if choice == "agent":
        await turn.services.handoff.request(turn)
        return
    if choice == "logout" and typed:
        await turn.start("logout", confirm=True)
        return
    if choice is not None and choice in turn.flows:
        await turn.start(choice)
        return
    if answer.file is not None:  # a certificate file sent without asking first: check it
        await check_sent_file(turn, answer)
        return
    if answer.text:
        await understand(turn, answer.text)
        return
    turn.say("menu.not_understood")
    await ask_menu(turn)


FLOW = Flow(name="menu", first_step="main", steps={"main": Step(ask_menu, on_menu)})
