"""The console's pages: the queue, one conversation, the canned replies.

Each page is drawn whole by the server (`bot.agent.views`); the queue and a conversation then
stay live through their JSON twins (`bot.agent.live`), which return the same fragments. A
conversation's page marks what its holder has read (`HandoffQueue.seen`), so the queue's unread
count starts again. What an action did (or why it was refused) comes back after its redirect as
`?m=` or `?e=`, a word from a fixed list, never text from the request.
"""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from bot.agent import csrf, summary, views
from bot.agent.auth import html
from bot.agent.keys import CANNED, current
from bot.agent.words import Words, words_for
from bot.web.download import SECURITY_HEADERS
from bot.web.keys import CORE
from certcore.handoff import NOTE_MAX, Handoff

FLASH = frozenset(
    {"claimed", "replied", "noted", "returned", "closed", "canned_added", "canned_removed"}
)
ERRORS = frozenset(
    {"taken", "not_holder", "empty", "too_long", "ended", "canned_invalid", "not_found"}
)


def chrome(request: web.Request, w: Words, live: str = "") -> views.Chrome:
    session = current(request)
    return views.Chrome(
        words=w,
        agent=session.agent,
        csrf=csrf.token_for(request.app, session.token_hash),
        live=live,
    )


def notices(request: web.Request, w: Words) -> tuple[str, str]:
    """The redirect's `?m=` / `?e=`, as text; an unknown word shows nothing."""
    flash, error = request.query.get("m", ""), request.query.get("e", "")
    return (
        w.t(f"agent.flash.{flash}") if flash in FLASH else "",
        w.t(f"agent.error.{error}", max=NOTE_MAX) if error in ERRORS else "",
    )


async def root(request: web.Request) -> web.StreamResponse:
    """`/agent` (served by the main app, outside the console's middlewares) to `/agent/`."""
    raise web.HTTPSeeOther("/agent/", headers=SECURITY_HEADERS)


async def queue(request: web.Request) -> web.Response:
    w = words_for(request)
    core = request.app[CORE]
    items = await summary.queue_items(core, await core.handoffs.open_requests())
    flash, error = notices(request, w)
    page = views.layout(
        chrome(request, w, live="/agent/api/queue"),
        w.t("agent.queue.title"),
        views.queue_body(w, items),
        flash=flash,
        error=error,
    )
    return html(page)


async def handoff_of(request: web.Request) -> Handoff:
    """The hand-off named in the path, or a 404 page."""
    raw = request.match_info["handoff"]
    handoff = None
    if raw.isascii() and raw.isdigit() and len(raw) <= 12:
        handoff = await request.app[CORE].handoffs.get(int(raw))
    if handoff is None:
        w = words_for(request)
        page = views.layout(
            chrome(request, w),
            w.t("agent.error.not_found"),
            views.message_body(w, w.t("agent.error.not_found")),
        )
        raise web.HTTPNotFound(text=page, content_type="text/html")
    return handoff


async def conversation_view(request: web.Request, handoff: Handoff) -> views.ConversationView:
    """Everything the conversation page shows; what the holder now sees is marked read."""
    core = request.app[CORE]
    session = current(request)
    item = await summary.queue_item(core, handoff)
    if item.unread and handoff.agent == session.agent and handoff.is_open:
        # Only when there is something new: the page polls, and a write per poll is waste.
        await core.handoffs.seen(handoff.id, session.agent)
        item = replace(item, unread=0)
    return views.ConversationView(
        item=item,
        lines=await summary.transcript(core, handoff.conversation_id),
        notes=summary.note_lines(await core.handoffs.notes(handoff.conversation_id)),
        canned=await request.app[CANNED].all(),
        me=session.agent,
        csrf=csrf.token_for(request.app, session.token_hash),
    )


async def conversation(request: web.Request) -> web.Response:
    w = words_for(request)
    handoff = await handoff_of(request)
    view = await conversation_view(request, handoff)
    flash, error = notices(request, w)
    page = views.layout(
        chrome(request, w, live=f"/agent/api/c/{handoff.id}"),
        w.t("agent.conversation.title", id=handoff.id),
        views.conversation_body(w, view),
        flash=flash,
        error=error,
    )
    return html(page)


async def canned(request: web.Request) -> web.Response:
    w = words_for(request)
    replies = await request.app[CANNED].all()
    flash, error = notices(request, w)
    page = views.layout(
        chrome(request, w),
        w.t("agent.canned.heading"),
        views.canned_body(w, replies, chrome(request, w).csrf),
        flash=flash,
        error=error,
    )
    return html(page)
