"""First contact and linking: ID number, ROC date and a one-time code tie this chat to a customer.

Queries and reminders need to know whose chat this is, so every flow that needs a customer
passes through here first and continues where the customer wanted to go. 登出 undoes it.
"""

from __future__ import annotations

from certcore.identity import classify_id, normalise_id
from certcore.masking import mask_id
from certcore.otp import Operation
from dialogs.flows.common import actor
from dialogs.flows.verification import (
    BIRTH_DATE,
    ID_NUMBER,
    abandon,
    binding,
    verification_steps,
    verified_receipt,
)
from dialogs.turn import Flow, Input, Step, Turn

DONE, ACCOUNT_LINKED = "linked", "account_linked"


async def ask_id_number(turn: Turn) -> None:
    """The ID number, typed in chat; or, where the channel links chats on its own page (LINE
    Account Link), the way to that page instead."""
    linker = turn.services.linker
    if linker is not None and await linker.offer(turn):
        turn.data["linker"] = True
        return
    turn.say("link.id.prompt")


async def on_id_number(turn: Turn, answer: Input) -> None:
    turn.forget_input()
    if turn.data.get("linker"):  # this chat links on the channel's page: offer it again
        await ask_id_number(turn)
        return
    id_number = normalise_id(answer.text)
    if classify_id(id_number) is None:
        turn.say("link.id.invalid")
        return
    turn.data["id_number"] = id_number
    turn.data["operation"] = Operation.LINK.value
    await turn.goto(BIRTH_DATE)


async def link_chat(turn: Turn) -> None:
    """Spend the verified code and tie the chat to the customer, then go where they wanted."""
    receipt = verified_receipt(turn)
    if receipt is None:  # never reached without a code; guard the invariant anyway
        await turn.goto(ID_NUMBER)
        return
    await turn.services.otp.spend(
        binding(turn), receipt, actor=actor(turn), action="conversation.linked"
    )
    customer = await turn.services.customers.get(turn.data["id_number"])
    assert customer is not None
    turn.conversation.customer_id = customer.id_number
    turn.say("link.done", name=customer.name)
    then = turn.data.get("then")
    if then:
        await turn.start(then)
    else:
        await turn.menu()


async def linked_elsewhere(turn: Turn, answer: Input) -> None:
    """`EventKind.LINKED`: the channel's page verified the customer (ID number, birth date and a
    code, spent there); tie the chat to them, audited as the chat's own linking is, and go
    where the customer wanted when the link flow sent them there."""
    customer = await turn.services.customers.get(answer.choice or "")
    if customer is None:  # the channel checked its nonce; guard the invariant anyway
        turn.say("error.unexpected")
        await turn.reprompt()
        return
    await turn.services.audit.record(
        actor(turn), action="conversation.linked", subject=mask_id(customer.id_number)
    )
    turn.conversation.customer_id = customer.id_number
    turn.say("link.done", name=customer.name)
    flow = turn.conversation.flow
    then = turn.data.get("then") if flow == "link" else None
    if then:
        await turn.start(then)
    elif flow in (None, "link"):
        await turn.menu()
    else:  # linked while in another flow: carry on with it
        await turn.reprompt()


async def nothing(turn: Turn) -> None:  # pragma: no cover - ACCOUNT_LINKED asks nothing
    return


async def never(turn: Turn, answer: Input) -> None:  # pragma: no cover - DONE asks nothing
    await turn.menu()


FLOW = Flow(
    name="link",
    first_step=ID_NUMBER,
    sensitive=True,
    abandon=abandon,
    steps={
        **verification_steps(after=DONE),
        ID_NUMBER: Step(ask_id_number, on_id_number),  # this flow's own: the channel's page first
        DONE: Step(link_chat, never),
        ACCOUNT_LINKED: Step(nothing, linked_elsewhere),
    },
)


async def logout(turn: Turn) -> None:
    """登出: unlink this chat from the customer; reminders stop with it. Reached by a typed
    number or words rather than a tap, it is confirmed first."""
    if turn.conversation.customer_id is not None and turn.data.get("confirm"):
        await turn.goto(CONFIRM_LOGOUT)
        return
    await log_out(turn)


async def log_out(turn: Turn) -> None:
    if turn.conversation.customer_id is None:
        turn.say("logout.not_linked")
    else:
        await turn.services.audit.record(
            actor(turn),
            action="conversation.unlinked",
            subject=mask_id(turn.conversation.customer_id),
        )
        turn.conversation.customer_id = None
        turn.say("logout.done")
    await turn.menu()


async def ask_confirm_logout(turn: Turn) -> None:
    turn.ask("logout.confirm", [("yes", "logout.button.confirm"), ("no", "logout.button.keep")])


async def on_confirm_logout(turn: Turn, answer: Input) -> None:
    if answer.choice == "yes":
        await log_out(turn)
    elif answer.choice == "no":
        turn.say("logout.kept")
        await turn.menu()
    else:
        turn.say("verify.choose_an_option")
        await ask_confirm_logout(turn)


CONFIRM_LOGOUT = "confirm"
LOGOUT = Flow(
    name="logout",
    first_step=CONFIRM_LOGOUT,
    steps={CONFIRM_LOGOUT: Step(ask_confirm_logout, on_confirm_logout)},
    begin=logout,
)
