"""操作說明: how the certificate center works, topic by topic, in chat.

Numbers in the answers (renewal window, code lifetime, revocation quota) come from the
settings, so the guide says what this deployment actually does.
"""

from __future__ import annotations

from dialogs.flows.understand import elsewhere
from dialogs.turn import Flow, Input, Step, Turn

TOPICS = (
    ("apply", "guide.topic.apply"),
    ("renew", "guide.topic.renew"),
    ("revoke", "guide.topic.revoke"),
    ("otp", "guide.topic.otp"),
    ("password", "guide.topic.password"),
    ("window", "guide.topic.window"),
)
ANSWERS = {
    "apply": "guide.answer.apply",
    "renew": "guide.answer.renew",
    "revoke": "guide.answer.revoke",
    "otp": "guide.answer.otp",
    "password": "guide.answer.password",
    "window": "guide.answer.window",
}
MENU_OPTION = ("menu", "guide.action.menu")
CHOOSE, MORE = "topic", "more"


def _numbers(turn: Turn) -> dict[str, object]:
    settings = turn.services.settings
    return {
        "days": settings.renewal_window_days,
        "months": settings.validity_months,
        "per_year": settings.revocations_per_year,
        "minutes": settings.otp_lifetime_minutes,
        "seconds": settings.otp_resend_seconds,
        "attempts": settings.otp_max_attempts,
    }


async def ask_topic(turn: Turn) -> None:
    turn.ask("guide.prompt", [*TOPICS, MENU_OPTION])


async def ask_more(turn: Turn) -> None:
    turn.ask("guide.more", [*TOPICS, MENU_OPTION])


async def on_topic(turn: Turn, answer: Input) -> None:
    choice = answer.choice
    if choice in ANSWERS:
        turn.say(ANSWERS[choice], **_numbers(turn))
        await turn.goto(MORE)
    elif choice == "menu":
        await turn.menu()
    else:
        await elsewhere(turn, answer, "guide.choose")


FLOW = Flow(
    name="guide",
    first_step=CHOOSE,
    steps={CHOOSE: Step(ask_topic, on_topic), MORE: Step(ask_more, on_topic)},
)
