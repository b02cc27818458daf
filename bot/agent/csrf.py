"""CSRF protection of every POST under `/agent`.

A logged-in agent's forms (and the console's script) carry a token that is an HMAC of the
session's stored hash under a server key: it is tied to that one session (another agent's, or a
logged-out one, does not match), needs no storage, and is the same on every instance, since
the key is derived from the OTP key they share. The login form has no session yet: its token is
the HMAC of a random nonce held in a short-lived `SameSite=Strict` cookie (a double submit that
a cross-site page can neither read nor set). The token travels in the `csrf` form field or the
`X-CSRF-Token` header, and is compared in constant time. `Origin` and `Sec-Fetch-Site`, when the
browser sends them, must name this site (`bot.web.download.same_site`). A POST failing either
check is refused with 403 before its handler runs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from bot.agent.keys import CSRF_KEY
from bot.web.download import same_site
from bot.web.keys import CORE

KEY_LABEL = b"certdesk/agent-console-csrf/v1"
FIELD = "csrf"
HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "certdesk_agent_login"
"""The login form's nonce: `SameSite=Strict`, `HttpOnly`, for the form's lifetime."""
LOGIN_COOKIE_SECONDS = 3600


async def derive_key(app: web.Application) -> None:
    app[CSRF_KEY] = hmac.new(app[CORE].otp.key, KEY_LABEL, hashlib.sha256).digest()


def token_for(app: web.Application, bound_to: str) -> str:
    """The token of a session (its stored hash) or of a login nonce."""
    return hmac.new(app[CSRF_KEY], bound_to.encode("utf-8"), hashlib.sha256).hexdigest()


def new_login_nonce() -> str:
    return secrets.token_urlsafe(32)


def login_bound(nonce: str) -> str:
    """What a login form's token is bound to: kept apart from any session hash."""
    return f"login:{nonce}"


async def sent_token(request: web.Request) -> str:
    """The token the request carries: the header, else the form field (the body read once;
    aiohttp keeps it for the handler)."""
    header = request.headers.get(HEADER)
    if header:
        return header
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return ""
    fields = await request.post()
    value = fields.get(FIELD)
    return value if isinstance(value, str) else ""


async def check(request: web.Request, bound_to: str | None) -> bool:
    """Whether the POST comes from this site with the token bound to `bound_to` (None: nothing
    to bind to, so nothing can match)."""
    if not same_site(request):
        return False
    if bound_to is None:
        return False
    sent = await sent_token(request)
    expected = token_for(request.app, bound_to)
    return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())
