"""What the agent console's modules find on its sub-application."""

from __future__ import annotations

from aiohttp import web

from bot.web.chat import RateLimiter
from certcore.handoff import AgentSession, AgentSessions, CannedReplies

SESSIONS = web.AppKey("agent_sessions", AgentSessions)
CANNED = web.AppKey("agent_canned", CannedReplies)
CSRF_KEY = web.AppKey("agent_csrf_key", bytes)
"""The server key the console's CSRF tokens are HMACs under (derived from the OTP key, which
every instance shares, so a form served by one instance is accepted by another)."""
LOGIN_LIMITER = web.AppKey("agent_login_limiter", RateLimiter)

SESSION = web.RequestKey("agent_session", AgentSession)
"""The logged-in agent's session on the request (set by `auth.require_login`)."""
TOKEN = web.RequestKey("agent_token", str)
"""The session cookie's value on the request, for logout."""


def current(request: web.Request) -> AgentSession:
    """The logged-in agent's session; only called behind `auth.require_login`."""
    return request[SESSION]
