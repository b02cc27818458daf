"""憑證申請 (manual 一): consent, ROC date, one-time code, then 「立即申請憑證」 and the delivery.

A chat not linked yet gives its ID number after the consent, and the one code both authorises
the application and links the chat (see `dialogs.flows.verification`).

A customer who already holds a certificate that counts as their one valid certificate is shown
it and offered what the portal offers (更新 inside the renewal window, 註銷), not a second one.
The delivery is opened only with this flow's verified code for the `apply` operation; the key
pair and the certificate are made when the customer sets the export password (DESIGN §4), and
the 「憑證申請完成」 confirmation comes from `dialogs.flows.delivery` once the file is handed over.

Renewal (`dialogs.flows.renew`) shares the consent step and the hand-over from here.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import Enum

from certcore.clock import taipei_text
from certcore.errors import OtpNoActiveCode
from certcore.masking import mask_id
from certcore.otp import Operation
from certcore.pki import CertificateStatus, pfx_filename, validity_period
from dialogs.flows.common import actor, current_certificate, linked_customer
from dialogs.flows.query import certificate_table
from dialogs.flows.verification import (
    BIRTH_DATE,
    ID_NUMBER,
    SEND,
    abandon,
    binding,
    is_newcomer,
    link_newcomer,
    verification_steps,
    verified_receipt,
)
from dialogs.messages import Delivery
from dialogs.turn import Flow, Input, Step, Turn

log = logging.getLogger("certdesk.dialogs")

HELD, CONSENT, READY = "held", "consent", "ready"


async def begin(turn: Turn) -> None:
    turn.data["operation"] = Operation.APPLY.value
    whose = await whose_chat(turn, "apply")
    if whose is Whose.ELSEWHERE:
        return
    if whose is Whose.LINKED and await current_certificate(turn, turn.data["id_number"]):
        await turn.goto(HELD)
        return
    await turn.goto(CONSENT)  # a newcomer gives the ID number after it


class Whose(Enum):
    LINKED = "linked"
    """The chat is a customer's: `id_number` is noted."""
    NEWCOMER = "newcomer"
    """Not linked: the flow's one identity check asks the ID number and links the chat."""
    ELSEWHERE = "elsewhere"
    """Sent to the channel's own linking page first; it comes back to the flow."""


async def whose_chat(turn: Turn, flow: str) -> Whose:
    """Whose chat this is, for an operation that needs a customer. Where the channel links
    chats on its own page (LINE Account Link, so that the ID number is never typed into the
    chat's history), a chat not linked goes there first instead of being a newcomer."""
    customer = await linked_customer(turn)
    if customer is not None:
        turn.data["id_number"] = customer.id_number
        return Whose.LINKED
    turn.conversation.customer_id = None  # none, or one the directory no longer has
    if turn.services.linker is not None:
        await turn.start("link", then=flow)
        return Whose.ELSEWHERE
    turn.data["newcomer"] = True
    return Whose.NEWCOMER


async def holds_none(turn: Turn) -> bool:
    """A newcomer's identity matched: one who holds a valid certificate is shown it instead."""
    if is_newcomer(turn) and await current_certificate(turn, turn.data["id_number"]):
        await turn.goto(HELD)
        return False
    return True


# -- a valid certificate is already held ---------------------------------------------------


async def ask_held(turn: Turn) -> None:
    record = await current_certificate(turn, turn.data["id_number"])
    if record is None:  # revoked or expired meanwhile: the slot is free again
        await turn.goto(CONSENT)
        return
    turn.say("apply.held")
    turn.send(certificate_table(turn, record))
    await ask_held_action(turn)


async def ask_held_action(turn: Turn) -> None:
    """更新 (inside the renewal window only), 註銷, or back to the menu."""
    record = await current_certificate(turn, turn.data["id_number"])
    status = record.status(turn.now, turn.services.settings.renewal_window_days) if record else None
    options = [("renew", "query.action.renew")] if status is CertificateStatus.RENEWAL_DUE else []
    options += [("revoke", "query.action.revoke"), ("menu", "query.action.menu")]
    turn.ask("apply.held.next", options)


async def on_held(turn: Turn, answer: Input) -> None:
    if answer.choice in ("renew", "revoke"):
        await turn.start(answer.choice)
    elif answer.choice == "menu":
        await turn.menu()
    else:  # a date, or a later step's button typed: the application does not start
        await ask_held_action(turn)


# -- the consent (同意書), shared with renewal ------------------------------------------------


def consent_step(text_key: str, reminder_key: str, button_key: str) -> Step:
    """The 同意書 with 「我已閱讀並同意，下一步」; nothing else moves the flow on."""

    async def ask_consent(turn: Turn) -> None:
        customer = await linked_customer(turn)
        greeting = (
            turn.t("consent.greeting.named", name=customer.name)
            if customer
            else turn.t("consent.greeting")
        )
        turn.ask(text_key, [("agree", button_key)], greeting=greeting, brand=turn.t("brand.name"))

    async def on_consent(turn: Turn, answer: Input) -> None:
        if answer.choice == "agree":
            await turn.goto(ID_NUMBER if is_newcomer(turn) else BIRTH_DATE)
            return
        # A date typed before agreeing (the portal has both on one screen) is not taken:
        # the consent comes first. Ask again, briefly, with the button.
        turn.ask(reminder_key, [("agree", button_key)])

    return Step(ask_consent, on_consent)


# -- 驗證成功, then the delivery -------------------------------------------------------------


async def ask_ready(turn: Turn) -> None:
    turn.ask("apply.ready", [("issue", "apply.button.issue")])


async def on_ready(turn: Turn, answer: Input) -> None:
    if answer.choice != "issue":
        turn.say("verify.choose_an_option")
        await turn.reprompt()
        return
    if await current_certificate(turn, turn.data["id_number"]) is not None:
        # Issued meanwhile (another chat of the same customer): do not open a second one.
        await turn.goto(HELD)
        return
    await hand_over(turn, text_key="apply.delivery", renewal_of=None)


async def hand_over(turn: Turn, *, text_key: str, renewal_of: str | None) -> None:
    """Spend this flow's verified code on a delivery and hand it to the channel; end the flow.

    Never opens a delivery without a verified code for this flow's operation: the receipt is
    checked here, and DeliveryService spends it in the same transaction that opens the delivery.
    """
    receipt = verified_receipt(turn)
    if receipt is None:  # cannot happen through the steps; keep the invariant anyway
        log.error("%s: hand-over without a verified code", turn.conversation.id)
        turn.say("apply.verification_needed")
        await turn.goto(BIRTH_DATE)
        return
    try:
        ticket = await turn.services.deliveries.open(
            binding=binding(turn),
            receipt=receipt,
            requester=turn.conversation.id,
            actor=actor(turn),
            renewal_of=renewal_of,
            links_conversation=is_newcomer(turn),
        )
    except OtpNoActiveCode:
        # The verification is too old (or was spent): verify again before anything is issued.
        turn.data.pop("receipt", None)
        turn.say("apply.verification_expired")
        await turn.goto(SEND)
        return
    if is_newcomer(turn):
        await link_newcomer(turn)
    settings = turn.services.settings
    turn.send(
        Delivery(
            delivery_id=ticket.token,
            text=turn.t(
                text_key,
                filename=_expected_filename(turn, ticket.expires_at),
                minutes=settings.delivery_window_minutes,
                until=taipei_text(ticket.expires_at)[11:16],
                downloads=settings.delivery_max_downloads,
            ),
            url=ticket.url,
        )
    )
    turn.end()


def _expected_filename(turn: Turn, link_expires_at: datetime) -> str:
    """`A120XXX53-TAG(2027-11-24).pfx`, masked as the manual shows it.

    The date is the new certificate's last day, fixed when the export password is set; when
    the link's lifetime spans midnight in Taipei that day is not known yet, and the name says
    「到期日」 instead of a date.
    """
    settings = turn.services.settings
    id_number = mask_id(turn.data["id_number"])
    now_end = validity_period(turn.now, settings.validity_months).end
    late_end = validity_period(link_expires_at, settings.validity_months).end
    if now_end.date() != late_end.date():
        return f"{id_number}-{settings.issuer_tag}({turn.t('apply.delivery.expiry_date')}).pfx"
    return pfx_filename(id_number, settings.issuer_tag, now_end)


FLOW = Flow(
    name="apply",
    first_step=CONSENT,
    sensitive=True,
    begin=begin,
    abandon=abandon,
    steps={
        HELD: Step(ask_held, on_held),
        CONSENT: consent_step("apply.consent", "apply.consent.reminder", "apply.button.agree"),
        **verification_steps(after=READY, announce=False, checked=holds_none),
        READY: Step(ask_ready, on_ready),
    },
)
