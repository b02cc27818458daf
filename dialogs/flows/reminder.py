"""Expiry reminders (issue 11): what a REMIND event says in the chat.

The engine hands a REMIND event (a planned reminder pushed by the service, not the customer's
doing) to `remind`. It is said only in a chat linked to the certificate's customer, that still
follows the account and has reminders on, while the certificate is still the one to renew (not
revoked, not expired); otherwise there is no reply at all, and the sender records that nothing
was shown. The reminder gives the expiry date and the renewal window (Taipei time). A running
flow is not disturbed: the reminder is said and that flow's question asked again; otherwise the
customer is offered 立即更新憑證 (the renewal flow, as a tap) and the menu.
"""

from __future__ import annotations

from certcore.clock import taipei_text
from certcore.pki import CertificateRecord
from dialogs.flows.common import go_to_chosen_flow
from dialogs.turn import Flow, Step, Turn

OFFER = "offer"


def parse_choice(choice: str) -> tuple[str, int] | None:
    """The certificate serial and milestone days of a REMIND event's choice, or None."""
    serial, separator, days = choice.rpartition(":")
    if not separator or not serial or not days.isascii() or not days.isdigit():
        return None
    return serial, int(days)


async def wanted(turn: Turn, choice: str) -> CertificateRecord | None:
    """The certificate to remind of, when this chat should hear of it now; else None."""
    parsed = parse_choice(choice)
    conversation = turn.conversation
    if parsed is None or conversation.customer_id is None:
        return None
    if not (conversation.reminders and conversation.following) or conversation.agent_mode:
        return None
    record = await turn.services.certificates.get(parsed[0])
    if record is None or record.customer_id != conversation.customer_id:
        return None
    if record.revoked or record.not_after < turn.now:
        return None
    return record


async def remind(turn: Turn, record: CertificateRecord) -> None:
    """Say the reminder; ask the running flow's question again, or offer the renewal."""
    window = record.renewal_window(turn.services.settings.renewal_window_days)
    turn.say(
        "reminder.expiry",
        serial=record.serial,
        not_after=taipei_text(record.not_after),
        start=taipei_text(window.start),
        end=taipei_text(window.end),
    )
    if turn.conversation.flow is not None:
        await turn.reprompt()
    else:
        await turn.start("reminder")


async def ask_offer(turn: Turn) -> None:
    turn.ask("reminder.offer", [("renew", "reminder.button.renew"), ("menu", "query.action.menu")])


FLOW = Flow(
    name="reminder",
    first_step=OFFER,
    steps={OFFER: Step(ask_offer, go_to_chosen_flow)},
)
