"""Delivery confirmation: once the channel has handed over the certificate file, say so in chat.

The engine calls the `delivered` step's handler for a DELIVERED event (its choice is the
delivery's token), whatever the conversation is doing. The confirmation is the manual's
「憑證申請完成」 with the serial number and validity; a renewal also says that the old
certificate is now revoked. When another flow is running it is not disturbed: the confirmation
is said and that flow's question asked again. Otherwise the customer is offered import help.
"""

from __future__ import annotations

from certcore.clock import taipei_text
from certcore.masking import mask_id
from certcore.otp import Operation
from certcore.pki import DeliveryState
from dialogs.turn import Flow, Input, Step, Turn

DELIVERED, NEXT = "delivered", "next"

NEXT_ACTIONS = (
    ("import_help", "menu.item.import_help"),
    ("query", "menu.item.query"),
)


async def on_delivered(turn: Turn, answer: Input) -> None:
    issued = await confirm(turn, answer.choice or "")
    if turn.conversation.flow is not None:
        await turn.reprompt()
    elif issued:
        await turn.start("delivery")
    else:
        await turn.menu()


async def confirm(turn: Turn, token: str) -> bool:
    """Say what became of the delivery; True when its certificate was issued."""
    delivery = await turn.services.deliveries.describe(token) if token else None
    if delivery is None or delivery.requester != turn.conversation.id:
        # Unknown, or opened by another conversation: say nothing about it here.
        turn.say("delivery.unknown")
        return False
    if delivery.serial is None:
        turn.say(
            "delivery.expired" if delivery.state is DeliveryState.EXPIRED else "delivery.pending"
        )
        return False
    certificates = turn.services.certificates
    record = await certificates.get(delivery.serial)
    old = await certificates.get(delivery.renewal_of) if delivery.renewal_of else None
    assert record is not None
    filename = (delivery.filename or "").replace(
        delivery.customer_id, mask_id(delivery.customer_id)
    )
    turn.say(
        "delivery.done.renew" if delivery.operation is Operation.RENEW else "delivery.done.apply",
        serial=record.serial,
        not_before=taipei_text(record.not_before),
        not_after=taipei_text(record.not_after),
        filename=filename,
    )
    if old is not None and old.revoked:
        turn.say("delivery.superseded", serial=old.serial)
    return True


async def ask_next(turn: Turn) -> None:
    options = [(key, label) for key, label in NEXT_ACTIONS if key in turn.flows]
    turn.ask("delivery.next", [*options, ("menu", "query.action.menu")])


async def on_next(turn: Turn, answer: Input) -> None:
    if answer.choice is not None and answer.choice != "menu" and answer.choice in turn.flows:
        await turn.start(answer.choice)
        return
    if answer.choice == "menu" or not answer.text:
        await turn.menu()
        return
    # Anything else is what the customer would have typed at the menu (a question, a word).
    await turn.at_menu(answer)


async def never_asked(turn: Turn) -> None:  # pragma: no cover - the engine only handles it
    await turn.menu()


FLOW = Flow(
    name="delivery",
    first_step=NEXT,
    steps={
        DELIVERED: Step(never_asked, on_delivered),
        NEXT: Step(ask_next, on_next),
    },
)
