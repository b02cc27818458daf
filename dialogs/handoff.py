"""The hand-off desk: a conversation handed to a person waits in certcore's queue.

`QueueDesk.request` records the request (one open per conversation), tells the customer a
person will answer (and, outside the service hours, from when), offers 取消轉接, and puts the
conversation in agent mode. In agent mode the engine stays silent (each event is still
recorded) except for the word that cancels a waiting request, which `cancel` handles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from certcore.audit import Actor
from certcore.clock import TAIPEI
from certcore.handoff import HandoffQueue, HandoffReason, ServiceHours
from certcore.masking import mask_id

if TYPE_CHECKING:
    from dialogs.turn import Turn

CANCEL_HANDOFF = "cancel_handoff"
"""The key of the 取消轉接 option offered with the request."""


def _actor(turn: Turn) -> Actor:
    conversation_id = turn.conversation.id
    return Actor(name=f"customer@{conversation_id}"[:64], channel=conversation_id.split(":")[0])


def _subject(turn: Turn) -> str:
    return mask_id(turn.customer_id) if turn.customer_id else "-"


class QueueDesk:
    def __init__(self, queue: HandoffQueue, hours: ServiceHours) -> None:
        self.queue = queue
        self.hours = hours

    async def request(self, turn: Turn, why: str = HandoffReason.ASKED) -> None:
        await turn.abandon()  # a running flow's code is voided before the chat goes quiet
        turn.end()
        handoff, made = await self.queue.request(turn.conversation.id, HandoffReason(why))
        if made:
            await turn.services.audit.record(
                _actor(turn),
                action="handoff.requested",
                subject=_subject(turn),
                details={"handoff": handoff.id, "reason": handoff.reason.value},
            )
        turn.conversation.agent_mode = True
        opening = self.hours.next_opening(turn.now)
        if opening is None:
            turn.say("handoff.requested")
        else:
            local = opening.astimezone(TAIPEI)
            turn.say(
                "handoff.requested.closed",
                date=local.strftime("%Y-%m-%d"),
                weekday=turn.t(f"handoff.weekday.{local.weekday()}"),
                time=local.strftime("%H:%M"),
            )
        turn.ask("handoff.waiting", [(CANCEL_HANDOFF, "handoff.button.cancel")])

    async def holds(self, turn: Turn) -> bool:
        """Whether the conversation's request is still open (waiting or with an agent)."""
        return await self.queue.open_for(turn.conversation.id) is not None

    async def cancel(self, turn: Turn) -> bool:
        """Cancel the waiting request and return to the bot with the menu; False (and nothing
        said) when no request is waiting (an agent has taken it)."""
        cancelled = await self.queue.cancel(turn.conversation.id)
        if cancelled is None:
            return False
        await turn.services.audit.record(
            _actor(turn),
            action="handoff.cancelled",
            subject=_subject(turn),
            details={"handoff": cancelled.id},
        )
        turn.conversation.agent_mode = False
        turn.say("handoff.cancelled")
        await turn.menu()
        return True
