"""The live parts of the console: JSON the pages poll every two seconds.

Polling rather than a push channel, because it works unchanged across several instances (the
queue is in the database; no instance needs to hear of another's change) and through any proxy.
Each answer carries the page's live fragments already rendered and escaped by the server
(`parts`: the element's `data-part` name → its new inner HTML, drawn by the same `views`
functions as the page), plus plain values for scripts and tests. 401 without a session: the
page's script then goes to the login form.
"""

from __future__ import annotations

from aiohttp import web

from bot.agent import pages, summary, views
from bot.agent.keys import current
from bot.agent.words import words_for
from bot.web.keys import CORE
from certcore.handoff import HandoffState


async def queue(request: web.Request) -> web.Response:
    w = words_for(request)
    core = request.app[CORE]
    items = await summary.queue_items(core, await core.handoffs.open_requests())
    return web.json_response(
        {
            "parts": {"queue-rows": views.queue_rows(w, items)},
            "waiting": sum(item.handoff.state is HandoffState.WAITING for item in items),
            "items": [
                {
                    "id": item.handoff.id,
                    "state": item.handoff.state.value,
                    "channel": item.channel,
                    "reason": item.handoff.reason.value,
                    "agent": item.handoff.agent,
                    "unread": item.unread,
                }
                for item in items
            ],
        }
    )


async def conversation(request: web.Request) -> web.Response:
    w = words_for(request)
    handoff = await pages.handoff_of(request)
    view = await pages.conversation_view(request, handoff)
    item = view.item
    return web.json_response(
        {
            "parts": {
                "status": views.status_block(w, item, current(request).agent),
                "actions": views.actions_block(w, view),
                "transcript": views.transcript_block(w, view.lines),
                "notes": views.notes_block(w, view.notes),
            },
            "state": item.handoff.state.value,
            "agent": item.handoff.agent,
            "lines": len(view.lines),
        }
    )
