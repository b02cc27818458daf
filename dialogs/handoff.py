"""The hand-off desk: a conversation handed to a person waits in certcore's queue.

`QueueDesk.request` records the request (one open per conversation), tells the customer a
person will answer (and, outside the service hours, from when), offers 取消轉接, and puts the
conversation in agent mode. In agent mode the engine stays silent (each event is still
recorded) except for the word that cancels a waiting request, which `cancel` handles.

An agent's words reach the customer as an AGENT event (`agent_says`), through the engine like
any message, so they are ordered with the customer's own events, recorded in the transcript
with the agent's name, and pushed on the conversation's own channel. The hand-off ends with a
HANDBACK event (`hand_back`): returned to the bot, resolved (the customer may rate it, 1–5), or
timed out with no agent reply. Each step is in the audit trail. The queue in certcore is the
truth: an agent who no longer holds the conversation says nothing to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from certcore.audit import Actor
from certcore.clock import TAIPEI
from certcore.handoff import (
    HandoffOutcome,
    HandoffQueue,
    HandoffReason,
    HandoffTaken,
    ServiceHours,
)
from certcore.masking import mask_id

if TYPE_CHECKING:
    from dialogs.turn import Turn

CANCEL_HANDOFF = "cancel_handoff"
"""The key of the 取消轉接 option offered with the request."""


RATE = "rate"
"""The rating flow's name; its options are the ratings 1–5 (`RATINGS`) and skip."""
RATINGS = tuple(str(n) for n in range(1, 6))
SKIP_RATING = "skip"


def _actor(turn: Turn) -> Actor:
    conversation_id = turn.conversation.id
    return Actor(name=f"customer@{conversation_id}"[:64], channel=conversation_id.split(":")[0])


def _agent(turn: Turn, agent: str) -> Actor:
    return Actor(name=f"agent:{agent}"[:64], channel=turn.conversation.id.split(":")[0])


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

    async def customer_left(self, turn: Turn) -> None:
        """The customer unfollowed or blocked the account: no reply can reach them, so the open
        request (waiting or with an agent) ends as cancelled, audited, and the queue drops it."""
        turn.conversation.agent_mode = False
        ended = await self.queue.end(turn.conversation.id, HandoffOutcome.CANCELLED)
        if ended is not None:
            await turn.services.audit.record(
                _actor(turn),
                action="handoff.cancelled",
                subject=_subject(turn),
                details={"handoff": ended.id, "why": "unfollowed"},
            )

    async def agent_says(self, turn: Turn, agent: str, text: str) -> bool:
        """The agent's words to the customer (an empty text: the agent has taken the chat);
        False, and nothing said, when the hand-off is not active with this agent."""
        try:
            handoff = await self.queue.held_by(turn.conversation.id, agent)
        except HandoffTaken:
            return False
        turn.conversation.agent_mode = True
        if text:
            turn.say("handoff.agent_says", text=text)
            await self.queue.replied(handoff.id, agent)
        else:
            turn.say("handoff.claimed")
            await turn.services.audit.record(
                _agent(turn, agent),
                action="handoff.claimed",
                subject=_subject(turn),
                details={"handoff": handoff.id},
            )
        return True

    async def hand_back(self, turn: Turn, outcome: str, agent: str) -> bool:
        """End the hand-off (`outcome`: returned, resolved, timed_out) and give the bot the
        conversation again; False, and nothing said, when it had ended already."""
        how = HandoffOutcome(outcome)
        ended = await self.queue.end(turn.conversation.id, how, agent=agent or None)
        if ended is None:
            return False
        await turn.services.audit.record(
            _agent(turn, agent) if agent else _actor(turn),
            action=f"handoff.{how.value}",
            subject=_subject(turn),
            details={"handoff": ended.id},
        )
        turn.conversation.agent_mode = False
        await turn.abandon()
        turn.end()
        turn.say(f"handoff.{how.value}")
        if how is HandoffOutcome.RESOLVED:
            await turn.start(RATE, handoff=ended.id)
        else:
            await turn.menu()
        return True

    async def rate(self, turn: Turn, handoff_id: int, rating: int) -> None:
        """The customer's rating of a resolved hand-off, kept once and audited."""
        if await self.queue.rate(handoff_id, rating):
            await turn.services.audit.record(
                _actor(turn),
                action="handoff.rated",
                subject=_subject(turn),
                details={"handoff": handoff_id, "rating": rating},
            )
