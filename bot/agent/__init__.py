"""The agent console at `/agent`: support staff log in, see the hand-off queue live, claim a
conversation, answer the customer on the customer's own channel, keep private notes and canned
replies, and give the conversation back to the bot or close it.

A sub-application of the web app, so its middlewares (security headers, login and CSRF) guard
exactly its own paths and nothing of the customers' side. One module per job:

    auth       login, logout, the session cookie, the login rate limit; the guard of every page
    csrf       the per-session token every POST carries, and the origin check
    security   the response headers (CSP, no framing, no caching)
    words      the console's language (zh_TW, English on request)
    summary    what an agent reads about a hand-off, gathered from the core and masked
    views      the HTML, escaped
    pages      the queue, a conversation and the canned replies (GET)
    actions    claim, reply, note, return, close, canned replies (POST)
    live       the JSON the pages poll for live updates

Accounts, sessions and the lock-out are certcore's (`certcore.handoff`: `AgentAccounts`,
`AgentSessions`); the queue and the notes are `HandoffQueue`'s; the customer hears an agent
only through the engine (AGENT and HANDBACK events).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.agent import actions, auth, csrf, live, pages
from bot.agent.keys import CANNED, LOGIN_LIMITER, SESSIONS
from bot.agent.security import security_headers
from bot.web.chat import RateLimiter
from bot.web.keys import CHANNELS, CORE
from certcore.handoff import AgentSessions, CannedReplies

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""Package data of bot (`agent/static/*` in pyproject.toml)."""


def mount(app: web.Application) -> None:
    """Add the console under `/agent` to the web application."""
    core = app[CORE]
    console = web.Application(middlewares=[security_headers, auth.require_login])
    console[CORE] = core
    console[CHANNELS] = app[CHANNELS]
    console[SESSIONS] = AgentSessions(core.db, core.clock, core.agents, core.audit)
    console[CANNED] = CannedReplies(core.db, core.clock)
    console[LOGIN_LIMITER] = RateLimiter(auth.LOGIN_ATTEMPTS, auth.LOGIN_WINDOW_SECONDS)
    console.on_startup.append(csrf.derive_key)
    console.add_routes(
        [
            web.get("/", pages.queue),
            web.get("/login", auth.login_form),
            web.post("/login", auth.login),
            web.post("/logout", auth.logout),
            web.get("/c/{handoff}", pages.conversation),
            web.post("/c/{handoff}/claim", actions.claim),
            web.post("/c/{handoff}/reply", actions.reply),
            web.post("/c/{handoff}/note", actions.note),
            web.post("/c/{handoff}/return", actions.return_to_bot),
            web.post("/c/{handoff}/close", actions.close),
            web.get("/canned", pages.canned),
            web.post("/canned", actions.add_canned),
            web.post("/canned/{reply}/remove", actions.remove_canned),
            web.get("/api/queue", live.queue),
            web.get("/api/c/{handoff}", live.conversation),
            web.static("/static", STATIC_DIR),
        ]
    )
    app.router.add_get("/agent", pages.root)
    app.add_subapp("/agent", console)
