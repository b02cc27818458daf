"""The identity steps every sensitive flow goes through, in the manual's order.

步驟一 the ROC birth (or registration) date, checked against the directory; then the account
(when the customer has several); then 步驟二 the one-time code: where to send it (mobile or
e-mail, masked), 「點我發送驗證碼」, and the code itself. Each flow puts these steps between its
own first step (consent, or the ID number when linking) and its action, and names the step to
go to once the code is verified.

A chat not linked yet that applies, renews or revokes is a newcomer: the ID number is asked
first (`ID_NUMBER`), and the one code, bound to the operation, both authorises it and links
the chat when the operation is done (`link_newcomer`), instead of two checks in a row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from certcore.clock import TAIPEI, taipei_text
from certcore.customers import Attempt, IdentityOutcome
from certcore.errors import (
    OtpError,
    OtpExpired,
    OtpMalformed,
    OtpResendTooEarly,
    OtpSendFailed,
    OtpSendLimit,
    OtpStalePrefix,
    OtpVoided,
    OtpWrongCode,
)
from certcore.identity import RocDateError, classify_id, normalise_id, parse_roc_date
from certcore.masking import mask_account, mask_email, mask_mobile
from certcore.notify import Medium, mask_destination
from certcore.otp import Binding, Operation
from dialogs.flows.common import actor, today
from dialogs.flows.understand import LOCKED
from dialogs.text import small_number
from dialogs.turn import OPTION_DIGITS, Input, Step, Turn

ID_NUMBER, BIRTH_DATE, ACCOUNT, DESTINATION, SEND, CODE = (
    "id_number",
    "birth_date",
    "account",
    "destination",
    "send_code",
    "enter_code",
)


def binding(turn: Turn) -> Binding:
    return Binding(
        customer_id=turn.data["id_number"],
        conversation_id=turn.conversation.id,
        operation=Operation(turn.data["operation"]),
    )


def verified_receipt(turn: Turn) -> int | None:
    """The receipt of this flow's verified code, or None: the action steps check it."""
    receipt = turn.data.get("receipt")
    return int(receipt) if receipt is not None else None


async def abandon(turn: Turn) -> None:
    """Void the flow's outstanding code when the customer leaves before using it."""
    if "id_number" in turn.data and "operation" in turn.data and "receipt" not in turn.data:
        await turn.services.otp.cancel(binding(turn))


IdentityChecked = Callable[[Turn], Awaitable[bool]]


def is_newcomer(turn: Turn) -> bool:
    """This flow verifies a chat not linked yet (its ID number was asked in the flow)."""
    return bool(turn.data.get("newcomer"))


async def link_newcomer(turn: Turn) -> None:
    """The operation a newcomer verified for is done (and `links_conversation` recorded the
    link in its transaction): the chat is the customer's from now on."""
    customer = await turn.services.customers.get(turn.data["id_number"])
    assert customer is not None
    turn.conversation.customer_id = customer.id_number
    turn.say("link.done", name=customer.name)


def verification_steps(
    *, after: str, announce: bool = True, checked: IdentityChecked | None = None
) -> dict[str, Step]:
    """The steps from the (newcomer's) ID number to a verified code; then `after` is asked.

    `announce` says 「驗證成功。」 before `after`; a flow whose next question says so itself
    (the manual's 「驗證成功，請立即申請憑證!!!」) passes False. `checked` runs once the birth
    date matched, before the destination is asked: a newcomer's flow checks there what a linked
    customer's checked before its consent (a certificate to renew or revoke, the quota), and
    returns False when it took the conversation elsewhere.
    """

    async def ask_id_number(turn: Turn) -> None:
        turn.say("link.id.prompt")

    async def on_id_number(turn: Turn, answer: Input) -> None:
        turn.forget_input()
        id_number = normalise_id(answer.text)
        if classify_id(id_number) is None:
            turn.say("link.id.invalid")
            return
        turn.data["id_number"] = id_number
        await turn.goto(BIRTH_DATE)

    async def ask_birth_date(turn: Turn) -> None:
        turn.say("verify.birth_date.prompt")

    async def on_birth_date(turn: Turn, answer: Input) -> None:
        turn.forget_input()
        try:
            birth_date = parse_roc_date(answer.text, today=today(turn))
        except RocDateError as error:
            turn.say(f"verify.birth_date.{error.problem.name.lower()}")
            return
        id_number = turn.data["id_number"]
        attempt = Attempt(
            conversation=turn.conversation.id,
            client=turn.client,
            linked=turn.customer_id == id_number,
        )
        result = await turn.services.identity.verify(
            id_number, birth_date, actor=actor(turn), attempt=attempt
        )
        if result.outcome is IdentityOutcome.LOCKED:
            assert result.locked_until is not None
            turn.say("verify.identity.locked", until=_until(turn, result.locked_until))
            # A person is offered (recorded as an identity lock if taken); a locked check
            # closes nothing else.
            await turn.start("understand", ask=LOCKED)
            return
        if result.outcome is IdentityOutcome.MISMATCH:
            turn.say("verify.identity.mismatch")
            return
        turn.data["identity_ok"] = True
        if checked is not None and not await checked(turn):
            return
        await to_destination(turn)

    async def ask_account(turn: Turn) -> None:
        customer = await turn.services.customers.get(turn.data["id_number"])
        assert customer is not None
        turn.ask_text(
            turn.t("verify.account.prompt"),
            [(f"acct.{i}", mask_account(a)) for i, a in enumerate(customer.accounts)],
        )

    async def on_account(turn: Turn, answer: Input) -> None:
        customer = await turn.services.customers.get(turn.data["id_number"])
        assert customer is not None
        index = _index(answer.choice, "acct.")
        if index is None or index >= len(customer.accounts):
            turn.say("verify.choose_an_option")
            await ask_account(turn)
            return
        turn.data["account"] = customer.accounts[index]
        await turn.goto(DESTINATION)

    async def ask_destination(turn: Turn) -> None:
        customer = await turn.services.customers.get(turn.data["id_number"])
        assert customer is not None
        options = []
        if customer.mobile:
            options.append(
                (Medium.SMS.value, turn.t("verify.via.sms", number=mask_mobile(customer.mobile)))
            )
        if customer.email:
            options.append(
                (
                    Medium.EMAIL.value,
                    turn.t("verify.via.email", address=mask_email(customer.email)),
                )
            )
        turn.ask_text(turn.t("verify.destination.prompt"), options)

    async def on_destination(turn: Turn, answer: Input) -> None:
        if answer.choice not in (Medium.SMS.value, Medium.EMAIL.value):
            turn.say("verify.choose_an_option")
            await ask_destination(turn)
            return
        customer = await turn.services.customers.get(turn.data["id_number"])
        assert customer is not None
        medium = Medium(answer.choice)
        turn.data["medium"] = medium.value
        address = customer.mobile if medium is Medium.SMS else customer.email
        turn.data["destination_masked"] = mask_destination(medium, address or "")
        await turn.goto(SEND)

    async def ask_send(turn: Turn) -> None:
        turn.ask(
            "verify.send.prompt",
            [("send", "verify.button.send"), ("change", "verify.button.change_destination")],
            destination=_masked_destination(turn),
        )

    async def on_send(turn: Turn, answer: Input) -> None:
        if answer.choice == "change":
            await turn.goto(DESTINATION)
        elif answer.choice == "send":
            await _send_code(turn)
        else:
            turn.say("verify.choose_an_option")
            await ask_send(turn)

    async def ask_code(turn: Turn) -> None:
        turn.ask(
            "verify.code.prompt",
            [("resend", "verify.button.resend"), ("change", "verify.button.change_destination")],
            prefix=turn.data["prefix"],
        )

    async def on_code(turn: Turn, answer: Input) -> None:
        if answer.choice == "resend":
            await _send_code(turn)
            return
        if answer.choice == "change":
            await turn.goto(DESTINATION)
            return
        try:
            receipt = await turn.services.otp.verify(binding(turn), answer.text, actor=actor(turn))
        except OtpError as error:
            await _explain_rejection(turn, error)
            return
        turn.data["receipt"] = receipt
        if announce:
            turn.say("verify.code.accepted")
        await turn.goto(after)

    return {
        ID_NUMBER: Step(ask_id_number, on_id_number),
        BIRTH_DATE: Step(ask_birth_date, on_birth_date),
        ACCOUNT: Step(ask_account, on_account),
        DESTINATION: Step(ask_destination, on_destination),
        SEND: Step(ask_send, on_send),
        CODE: Step(ask_code, on_code, reads_code=True),
    }


async def to_destination(turn: Turn) -> None:
    """The identity matched: the account (when there are several), then where the code goes."""
    customer = await turn.services.customers.get(turn.data["id_number"])
    assert customer is not None
    if len(customer.accounts) > 1:
        await turn.goto(ACCOUNT)
    else:
        turn.data["account"] = customer.accounts[0] if customer.accounts else None
        await turn.goto(DESTINATION)


async def _send_code(turn: Turn) -> None:
    customer = await turn.services.customers.get(turn.data["id_number"])
    assert customer is not None
    medium = Medium(turn.data["medium"])
    destination = customer.mobile if medium is Medium.SMS else customer.email
    assert destination is not None
    await turn.working()
    try:
        sent = await turn.services.otp.send(
            binding(turn),
            medium=medium,
            destination=destination,
            locale=turn.locale,
            actor=actor(turn),
        )
    except OtpResendTooEarly as error:
        turn.say("verify.send.too_early", seconds=error.wait_seconds)
        await turn.reprompt()
        return
    except OtpSendLimit:
        turn.say("verify.send.limit")
        await turn.menu()
        return
    except OtpSendFailed as error:
        turn.say(f"verify.send.failed.{error.reason.value}")
        await turn.goto(DESTINATION)
        return
    turn.data["prefix"] = sent.prefix
    turn.say(
        "verify.send.done",
        destination=sent.destination,
        prefix=sent.prefix,
        minutes=turn.services.settings.otp_lifetime_minutes,
    )
    await turn.goto(CODE)


async def _explain_rejection(turn: Turn, error: OtpError) -> None:
    if isinstance(error, OtpWrongCode):
        turn.say("verify.code.wrong", left=error.attempts_left)
    elif isinstance(error, OtpStalePrefix):
        turn.say("verify.code.stale", prefix=turn.data.get("prefix", ""))
    elif isinstance(error, OtpMalformed):
        turn.say("verify.code.malformed", prefix=turn.data.get("prefix", ""))
    elif isinstance(error, OtpVoided):
        turn.say("verify.code.voided")
        await turn.goto(SEND)
    elif isinstance(error, OtpExpired):
        turn.say("verify.code.expired")
        await turn.goto(SEND)
    else:
        turn.say("verify.code.none")
        await turn.goto(SEND)


def _until(turn: Turn, moment: datetime) -> str:
    """When a lock ends, on the Taipei clock: the time today, the date too on another day."""
    shown = taipei_text(moment)
    return shown[11:16] if moment.astimezone(TAIPEI).date() == today(turn) else shown[5:16]


def _masked_destination(turn: Turn) -> str:
    masked: str = turn.data.get("destination_masked", "")
    return masked


def _index(choice: str | None, prefix: str) -> int | None:
    if not choice or not choice.startswith(prefix):
        return None
    return small_number(choice.removeprefix(prefix), digits=OPTION_DIGITS)
