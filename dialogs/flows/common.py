"""Small pieces every flow shares: who is acting, the customer, dates in Taipei."""

from __future__ import annotations

from datetime import date

from certcore.audit import Actor
from certcore.clock import TAIPEI
from certcore.customers import Customer
from certcore.pki import CertificateRecord
from dialogs.flows.understand import could_be_words, understand
from dialogs.turn import Input, Turn


def actor(turn: Turn) -> Actor:
    """The customer in this conversation, on this conversation's channel, for the audit trail."""
    conversation_id = turn.conversation.id
    return Actor(name=f"customer@{conversation_id}"[:64], channel=conversation_id.split(":")[0])


def today(turn: Turn) -> date:
    return turn.now.astimezone(TAIPEI).date()


async def linked_customer(turn: Turn) -> Customer | None:
    if turn.customer_id is None:
        return None
    return await turn.services.customers.get(turn.customer_id)


async def current_certificate(turn: Turn, customer_id: str) -> CertificateRecord | None:
    """The one certificate that counts as the customer's valid one, if any."""
    return await turn.services.certificates.current_of(customer_id, turn.now)


async def go_to_chosen_flow(turn: Turn, answer: Input) -> None:
    """The answer to "what next?": an option named after a flow starts it, "menu" shows the
    menu, words are read as at the main menu, and anything else asks the same question again."""
    if answer.choice == "menu":
        await turn.menu()
    elif answer.choice is not None and answer.choice in turn.flows:
        await turn.start(answer.choice)
    elif answer.text and could_be_words(answer.text):
        turn.end()
        await understand(turn, answer.text)
    else:
        turn.say("verify.choose_an_option")
        await turn.reprompt()
