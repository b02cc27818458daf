"""Small pieces every flow shares: who is acting, the customer, dates in Taipei."""

from __future__ import annotations

from datetime import date

from certcore.audit import Actor
from certcore.pki.records import CertificateRecord, certificates_of
from certcore.clock import TAIPEI
from certcore.customers.directory import Customer, get_customer
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
    async with turn.services.db.read() as conn:
        return await get_customer(conn, turn.customer_id)


async def customer_by_id(turn: Turn, id_number: str) -> Customer | None:
    async with turn.services.db.read() as conn:
        return await get_customer(conn, id_number)


async def issued_certificates(turn: Turn, customer_id: str) -> list[CertificateRecord]:
    """The customer's certificates that exist (issued), newest first."""
    async with turn.services.db.read() as conn:
        records = await certificates_of(conn, customer_id)
    return [r for r in reversed(records) if r.der is not None]


async def current_certificate(turn: Turn, customer_id: str) -> CertificateRecord | None:
    """The one certificate that counts as the customer's valid one, if any."""
    for record in await issued_certificates(turn, customer_id):
        if record.occupies_holder_slot(turn.now):
            return record
    return None


async def go_to_chosen_flow(turn: Turn, answer: Input) -> None:
    """The answer to "what next?": an option named after a flow starts it, "menu" shows the
    menu, and anything else asks the same question again."""
    if answer.choice == "menu":
        await turn.menu()
    elif answer.choice is not None and answer.choice in turn.flows:
        await turn.start(answer.choice)
    else:
        turn.say("verify.choose_an_option")
        await turn.reprompt()
