"""憑證延展 (manual 二): only inside the renewal window; the application's steps, a new key pair.

Outside the window the customer is shown the window (可更新區間, Taipei time) and nothing
starts; with no certificate, a revoked or an expired one there is nothing to renew, and 申請 is
offered instead. The old certificate is revoked as superseded by the certificate service at the
moment the new one is issued (when the export password is set), not here.
"""

from __future__ import annotations

from certcore.clock import taipei_text
from certcore.otp import Operation
from certcore.pki import CertificateRecord, CertificateStatus
from dialogs.flows.apply import Whose, consent_step, hand_over, whose_chat
from dialogs.flows.common import current_certificate, go_to_chosen_flow
from dialogs.flows.verification import abandon, is_newcomer, verification_steps
from dialogs.turn import Flow, Input, Step, Turn

NOTHING, CONSENT, READY = "nothing_to_renew", "consent", "ready"


async def begin(turn: Turn) -> None:
    turn.data["operation"] = Operation.RENEW.value
    whose = await whose_chat(turn, "renew")
    if whose is Whose.NEWCOMER:
        await turn.goto(CONSENT)  # the ID number after it; what to renew once it matched
    elif whose is Whose.LINKED and await renewable(turn) is not None:
        await turn.goto(CONSENT)


async def renewable_now(turn: Turn) -> bool:
    """A newcomer's identity matched: go on only with a certificate to renew now."""
    return not is_newcomer(turn) or await renewable(turn) is not None


async def renewable(turn: Turn) -> CertificateRecord | None:
    """The certificate to renew now; or None, after telling the customer why there is none."""
    record = await current_certificate(turn, turn.data["id_number"])
    settings = turn.services.settings
    if record is None:
        records = await turn.services.certificates.issued_of(turn.data["id_number"])
        status = records[0].status(turn.now, settings.renewal_window_days) if records else None
        turn.data["why"] = (
            status.value
            if status in (CertificateStatus.REVOKED, CertificateStatus.EXPIRED)
            else "none"
        )
        await turn.goto(NOTHING)
        return None
    window = record.renewal_window(settings.renewal_window_days)
    if turn.now not in window:
        turn.say(
            "renew.outside_window",
            serial=record.serial,
            start=taipei_text(window.start),
            end=taipei_text(window.end),
        )
        await turn.menu()
        return None
    turn.data["serial"] = record.serial
    return record


# -- nothing to renew: offer 申請 -----------------------------------------------------------

NOTHING_TEXTS = {
    "none": "renew.nothing.none",
    "revoked": "renew.nothing.revoked",
    "expired": "renew.nothing.expired",
}


async def ask_nothing(turn: Turn) -> None:
    turn.ask(
        NOTHING_TEXTS[turn.data.get("why", "none")],
        [("apply", "query.action.apply"), ("menu", "query.action.menu")],
    )


# -- 驗證成功, then the delivery -------------------------------------------------------------


async def ask_ready(turn: Turn) -> None:
    turn.ask("renew.ready", [("renew", "renew.button.renew")])


async def on_ready(turn: Turn, answer: Input) -> None:
    if answer.choice != "renew":
        turn.say("verify.choose_an_option")
        await turn.reprompt()
        return
    # The window may have closed (or the certificate been revoked) since the flow began.
    record = await renewable(turn)
    if record is None:
        return
    await hand_over(turn, text_key="renew.delivery", renewal_of=record.serial)


FLOW = Flow(
    name="renew",
    first_step=CONSENT,
    sensitive=True,
    begin=begin,
    abandon=abandon,
    steps={
        NOTHING: Step(ask_nothing, go_to_chosen_flow),
        CONSENT: consent_step("renew.consent", "renew.consent.reminder", "renew.button.agree"),
        **verification_steps(after=READY, announce=False, checked=renewable_now),
        READY: Step(ask_ready, on_ready),
    },
)
