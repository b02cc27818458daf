"""憑證註銷 (manual 三): the 線上憑證註銷同意書, ROC date, one-time code, reason, 確認註銷.

A chat not linked yet gives its ID number and birth date first (the consent names the
customer), and the one code both authorises the revocation and links the chat.

Online revocation is limited per calendar year (Taipei); once the quota is spent the customer
gets the manual's branch instructions and the offer of an agent, and nothing starts. The quota
is checked before the consent and enforced again, atomically, by the certificate service when
the revocation happens (it may have been spent from another chat meanwhile). The verified code
is spent in the revocation's own transaction. Afterwards 「立即申請憑證」 leads into 申請.
"""

from __future__ import annotations

from certcore.errors import (
    AlreadyRevoked,
    OtpNoActiveCode,
    RevocationQuotaExhausted,
    UnknownCertificate,
)
from certcore.identity import roc_year
from certcore.masking import mask_id
from certcore.otp import Operation
from certcore.pki import RevocationReason
from dialogs.flows.apply import Whose, whose_chat
from dialogs.flows.common import (
    actor,
    current_certificate,
    go_to_chosen_flow,
    today,
)
from dialogs.flows.verification import (
    BIRTH_DATE,
    ID_NUMBER,
    SEND,
    abandon,
    binding,
    is_newcomer,
    link_newcomer,
    to_destination,
    verification_steps,
    verified_receipt,
)
from dialogs.turn import Flow, Input, Step, Turn

NOTHING, QUOTA, CONSENT, REASON, CONFIRM, DONE = (
    "nothing_to_revoke",
    "quota_spent",
    "consent",
    "reason",
    "confirm",
    "revoked",
)

REASONS: dict[str, str] = {
    RevocationReason.KEY_COMPROMISE.value: "revoke.reason.key_compromise",
    RevocationReason.CESSATION_OF_OPERATION.value: "revoke.reason.cessation_of_operation",
    RevocationReason.AFFILIATION_CHANGED.value: "revoke.reason.affiliation_changed",
}
"""The reasons a customer can give, as RFC 5280 reasons. *superseded* is the renewal's own,
*privilegeWithdrawn* the broker's; "unspecified" is never offered."""


async def begin(turn: Turn) -> None:
    turn.data["operation"] = Operation.REVOKE.value
    whose = await whose_chat(turn, "revoke")
    if whose is Whose.NEWCOMER:
        # The consent names the customer and their ID: it comes once the birth date matched.
        await turn.goto(ID_NUMBER)
    elif whose is Whose.LINKED and await revocable(turn):
        await turn.goto(CONSENT)


async def revocable(turn: Turn) -> bool:
    """A certificate to revoke and a revocation left this year; otherwise say so (False)."""
    id_number = turn.data["id_number"]
    record = await current_certificate(turn, id_number)
    if record is None:
        await turn.goto(NOTHING)
        return False
    turn.data["serial"] = record.serial
    if await turn.services.certificates.revocations_left(id_number) == 0:
        await turn.goto(QUOTA)
        return False
    return True


async def consent_after_identity(turn: Turn) -> bool:
    """A newcomer's identity matched: the certificate and the quota, then the consent."""
    if not is_newcomer(turn):
        return True
    if await revocable(turn):
        await turn.goto(CONSENT)
    return False


# -- nothing to revoke ----------------------------------------------------------------------


async def ask_nothing(turn: Turn) -> None:
    turn.ask("revoke.nothing", [("apply", "query.action.apply"), ("menu", "query.action.menu")])


# -- the yearly quota is spent: the branch, or an agent ----------------------------------------


async def ask_quota(turn: Turn) -> None:
    turn.ask(
        "revoke.quota.spent",
        [("agent", "revoke.button.agent"), ("menu", "query.action.menu")],
        limit=turn.services.settings.revocations_per_year,
    )


async def on_quota(turn: Turn, answer: Input) -> None:
    if answer.choice == "agent":
        turn.end()
        await turn.services.handoff.request(turn, "quota")
    elif answer.choice == "menu":
        await turn.menu()
    else:
        turn.say("verify.choose_an_option")
        await turn.reprompt()


# -- 線上憑證註銷同意書 ------------------------------------------------------------------------


async def ask_consent(turn: Turn) -> None:
    id_number = turn.data["id_number"]
    customer = await turn.services.customers.get(id_number)
    day = today(turn)
    turn.ask(
        "revoke.consent",
        [("agree", "revoke.button.agree")],
        brand=turn.t("brand.name"),
        name=customer.name if customer else "",
        id_number=mask_id(id_number),
        year=roc_year(day),
        month=day.month,
        day=day.day,
        limit=turn.services.settings.revocations_per_year,
        left=await turn.services.certificates.revocations_left(id_number),
    )


async def on_consent(turn: Turn, answer: Input) -> None:
    if answer.choice == "agree" and is_newcomer(turn):  # the birth date matched before
        await to_destination(turn)
        return
    if answer.choice == "agree":
        await turn.goto(BIRTH_DATE)
        return
    turn.ask("revoke.consent.reminder", [("agree", "revoke.button.agree")])


# -- after the code: reason, confirmation, revocation ------------------------------------------


async def ask_reason(turn: Turn) -> None:
    turn.ask("revoke.reason.prompt", list(REASONS.items()))


async def on_reason(turn: Turn, answer: Input) -> None:
    if answer.choice not in REASONS:
        turn.say("verify.choose_an_option")
        await turn.reprompt()
        return
    turn.data["reason"] = answer.choice
    await turn.goto(CONFIRM)


async def ask_confirm(turn: Turn) -> None:
    turn.ask(
        "revoke.confirm.prompt",
        [
            ("confirm", "revoke.button.confirm"),
            ("reason", "revoke.button.change_reason"),
            ("cancel", "revoke.button.cancel"),
        ],
        serial=turn.data["serial"],
        reason=turn.t(REASONS[turn.data["reason"]]),
    )


async def on_confirm(turn: Turn, answer: Input) -> None:
    if answer.choice == "reason":
        await turn.goto(REASON)
    elif answer.choice == "confirm":
        await revoke(turn)
    elif answer.choice == "cancel":  # the button does what the global word 取消 does
        await abandon(turn)
        turn.say("flow.cancelled")
        await turn.menu()
    else:
        turn.say("verify.choose_an_option")
        await turn.reprompt()


async def revoke(turn: Turn) -> None:
    receipt = verified_receipt(turn)
    if receipt is None:  # cannot happen through the steps; keep the invariant anyway
        turn.say("revoke.verification_needed")
        await turn.goto(BIRTH_DATE)
        return
    await turn.working()
    try:
        await turn.services.certificates.revoke(
            turn.data["serial"],
            RevocationReason(turn.data["reason"]),
            actor=actor(turn),
            online=True,
            verification=(binding(turn), receipt),
            links_conversation=is_newcomer(turn),
        )
    except RevocationQuotaExhausted:
        # Spent from another chat since this flow began; nothing was revoked or spent.
        await turn.goto(QUOTA)
        return
    except OtpNoActiveCode:
        # The verification is too old to authorise a revocation: verify again.
        turn.data.pop("receipt", None)
        turn.say("revoke.verification_expired")
        await turn.goto(SEND)
        return
    except (AlreadyRevoked, UnknownCertificate):
        # Revoked meanwhile (by the branch, or from another chat): nothing left to do here.
        turn.say("revoke.already_revoked", serial=turn.data["serial"])
        await turn.goto(NOTHING)
        return
    if is_newcomer(turn):
        await link_newcomer(turn)
    await turn.goto(DONE)


async def ask_done(turn: Turn) -> None:
    turn.ask(
        "revoke.done",
        [("apply", "revoke.button.apply"), ("menu", "query.action.menu")],
        serial=turn.data["serial"],
    )


FLOW = Flow(
    name="revoke",
    first_step=CONSENT,
    sensitive=True,
    begin=begin,
    abandon=abandon,
    steps={
        NOTHING: Step(ask_nothing, go_to_chosen_flow),
        QUOTA: Step(ask_quota, on_quota),
        CONSENT: Step(ask_consent, on_consent),
        **verification_steps(after=REASON, checked=consent_after_identity),
        REASON: Step(ask_reason, on_reason),
        CONFIRM: Step(ask_confirm, on_confirm),
        DONE: Step(ask_done, go_to_chosen_flow),
    },
)
