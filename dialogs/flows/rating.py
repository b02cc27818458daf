"""After a resolved hand-off: the customer may rate it, 1 to 5, or skip.

One question with the ratings as options (typed digits pick them too, as with any options);
the rating is kept once on the hand-off and audited, and the menu follows either way.
"""

from __future__ import annotations

from dialogs.handoff import RATE, RATINGS, SKIP_RATING
from dialogs.turn import Flow, Input, Step, Turn

ASK = "ask"


async def ask_rating(turn: Turn) -> None:
    turn.ask_text(
        turn.t("handoff.rate"),
        [*((n, n) for n in RATINGS), (SKIP_RATING, turn.t("handoff.button.skip_rating"))],
    )


async def on_rating(turn: Turn, answer: Input) -> None:
    if answer.choice in RATINGS:
        await turn.services.handoff.rate(turn, int(turn.data["handoff"]), int(answer.choice))
        turn.say("handoff.rated")
    elif answer.choice != SKIP_RATING:
        await turn.at_menu(answer)  # not a rating: read as anything typed at the menu
        return
    await turn.menu()


FLOW = Flow(name=RATE, first_step=ASK, steps={ASK: Step(ask_rating, on_rating)})
