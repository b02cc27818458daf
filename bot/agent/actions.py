"""What an agent does to a conversation: claim, reply, note, return to the bot, close; and the
team's canned replies. Every handler here runs behind the login and CSRF checks
(`bot.agent.auth.require_login`) and answers with a redirect to the page it came from, saying
what happened (`?m=`) or why not (`?e=`).

The queue in certcore is the truth and the engine the only way to the customer. A claim is
`HandoffQueue.claim` (one conditional update: a second agent's claim is refused, on any
instance), then an AGENT event with no text, which tells the customer a person has taken the
chat and is audited by the engine. A reply is an AGENT event with the words, a return or a close
a HANDBACK event, each dispatched on the conversation's own channel (`Channels.dispatch`), so
the agent's words are ordered with the customer's, recorded in the transcript, and pushed as
any reply is. The engine says nothing for an agent who no longer holds the conversation; the
console checks `held_by` first only to tell the agent clearly.
"""

from __future__ import annotations

import logging
import uuid

from aiohttp import web

from bot.agent.keys import CANNED, current
from bot.agent.pages import handoff_of
from bot.web.keys import CHANNELS, CORE
from certcore.errors import InvalidInput
from certcore.handoff import NOTE_MAX, Handoff, HandoffOutcome, HandoffTaken
from dialogs import EventKind, Inbound

log = logging.getLogger("certdesk.agent")


def back(handoff: Handoff, *, m: str = "", e: str = "") -> web.HTTPSeeOther:
    query = f"?m={m}" if m else f"?e={e}" if e else ""
    return web.HTTPSeeOther(f"/agent/c/{handoff.id}{query}")


async def _text(request: web.Request) -> str:
    fields = await request.post()
    value = fields.get("text")
    return value.strip() if isinstance(value, str) else ""


async def _tell(
    request: web.Request, handoff: Handoff, kind: EventKind, choice: str, text: str
) -> bool:
    """Dispatch one agent event; whether the engine said anything (False: the hand-off is no
    longer this agent's). A channel that fails to push is logged (never the words) and counts
    as said: the engine has applied and recorded the event (the agent sees it in the
    transcript), and a channel's delivery retries are the channel's own business."""
    event = Inbound(
        handoff.conversation_id,
        event_id=f"agent:{uuid.uuid4().hex}",
        kind=kind,
        choice=choice,
        text=text,
    )
    try:
        replies = await request.app[CHANNELS].dispatch(event)
    except Exception as error:
        log.warning(
            "agent console: pushing %s to %s failed (%s)",
            kind.value,
            handoff.conversation_id,
            type(error).__name__,
        )
        return True
    return bool(replies)


async def _held(request: web.Request, handoff: Handoff) -> bool:
    """Whether this request is open and with the agent asking."""
    try:
        held = await request.app[CORE].handoffs.held_by(
            handoff.conversation_id, current(request).agent
        )
    except HandoffTaken:
        return False
    return held.id == handoff.id


async def claim(request: web.Request) -> web.StreamResponse:
    handoff = await handoff_of(request)
    agent = current(request).agent
    try:
        await request.app[CORE].handoffs.claim(handoff.id, agent)
    except HandoffTaken:
        raise back(handoff, e="taken") from None
    await _tell(request, handoff, EventKind.AGENT, agent, "")
    raise back(handoff, m="claimed")


async def reply(request: web.Request) -> web.StreamResponse:
    handoff = await handoff_of(request)
    text = await _text(request)
    if not text:
        raise back(handoff, e="empty")
    if len(text) > NOTE_MAX:
        raise back(handoff, e="too_long")
    if not await _held(request, handoff):
        raise back(handoff, e="not_holder")
    if not await _tell(request, handoff, EventKind.AGENT, current(request).agent, text):
        raise back(handoff, e="ended")
    raise back(handoff, m="replied")


async def note(request: web.Request) -> web.StreamResponse:
    handoff = await handoff_of(request)
    text = await _text(request)
    if len(text) > NOTE_MAX:
        raise back(handoff, e="too_long")
    try:
        await request.app[CORE].handoffs.add_note(handoff.id, current(request).agent, text)
    except InvalidInput:
        raise back(handoff, e="empty") from None
    raise back(handoff, m="noted")


async def _hand_back(request: web.Request, outcome: HandoffOutcome) -> web.StreamResponse:
    handoff = await handoff_of(request)
    if not await _held(request, handoff):
        raise back(handoff, e="not_holder")
    agent = current(request).agent
    if not await _tell(request, handoff, EventKind.HANDBACK, outcome.value, agent):
        raise back(handoff, e="ended")
    raise back(handoff, m="closed" if outcome is HandoffOutcome.RESOLVED else "returned")


async def return_to_bot(request: web.Request) -> web.StreamResponse:
    return await _hand_back(request, HandoffOutcome.RETURNED)


async def close(request: web.Request) -> web.StreamResponse:
    return await _hand_back(request, HandoffOutcome.RESOLVED)


async def add_canned(request: web.Request) -> web.StreamResponse:
    fields = await request.post()
    title, text = fields.get("title"), fields.get("text")
    if not isinstance(title, str) or not isinstance(text, str):
        raise web.HTTPSeeOther("/agent/canned?e=canned_invalid")
    try:
        await request.app[CANNED].add(title, text, current(request).agent)
    except InvalidInput:
        raise web.HTTPSeeOther("/agent/canned?e=canned_invalid") from None
    raise web.HTTPSeeOther("/agent/canned?m=canned_added")


async def remove_canned(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["reply"]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        raise web.HTTPSeeOther("/agent/canned?e=not_found")
    if not await request.app[CANNED].remove(int(raw)):
        raise web.HTTPSeeOther("/agent/canned?e=not_found")
    raise web.HTTPSeeOther("/agent/canned?m=canned_removed")
