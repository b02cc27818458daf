"""Logging in and out of the agent console, and keeping everyone else out of it.

The session cookie holds a random token (`AgentSessions`: only its SHA-256 is stored), and is
`HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends it), limited to
`Path=/agent`, and `Secure` whenever the browser reached us over https, directly or through a
trusted proxy (`bot.web.clients.is_https`). Every page but the login form and the static files
needs a live session: a page is redirected to the login form, the JSON the pages poll answers
401. Every POST then passes the CSRF check (`bot.agent.csrf`) before its handler runs.

A failed login says the same thing whatever went wrong — an unknown name, a wrong password, a
locked account — so the form tells nobody which names exist or which are locked; the audit trail
has the difference. Login attempts are also limited per client address (a token bucket in
memory, `LOGIN_ATTEMPTS` per `LOGIN_WINDOW_SECONDS`; each instance keeps its own, the account
lock-out in the database is the limit that holds across instances).
"""

from __future__ import annotations

from aiohttp import web

from bot.agent import csrf, views
from bot.agent.keys import LOGIN_LIMITER, SESSION, SESSIONS, TOKEN
from bot.agent.security import Handler
from bot.agent.words import Words, remember, words_for
from bot.web.clients import client_address, is_https
from bot.web.limits import body_deadline

COOKIE = "certdesk_agent"
PATH = "/agent"
LOGIN_ATTEMPTS = 10
LOGIN_WINDOW_SECONDS = 300.0
"""Ten attempts, then one every 30 s, per client address."""
OPEN_PATHS = ("/agent/login", "/agent/static/")


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        path=PATH,
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
        max_age=max_age,
    )


def _is_open(request: web.Request) -> bool:
    return request.path.startswith(OPEN_PATHS)


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/agent/api/")


@web.middleware
async def require_login(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The agent's live session on the request (`keys.SESSION`), or no further; then the CSRF
    check of a POST."""
    if _is_open(request):
        return await handler(request)
    token = request.cookies.get(COOKIE, "")
    session = await request.app[SESSIONS].find(token) if token else None
    if session is None:
        if _wants_json(request):
            return web.json_response({"error": "login_required"}, status=401)
        raise web.HTTPSeeOther(f"{PATH}/login")
    request[SESSION] = session
    request[TOKEN] = token
    if request.method == "POST" and not await _csrf_ok(request, session.token_hash):
        return refused(request)
    response = await handler(request)
    remember(request, response)
    return response


async def _csrf_ok(request: web.Request, bound_to: str | None) -> bool:
    try:
        async with body_deadline():
            return await csrf.check(request, bound_to)
    except ValueError:  # a body aiohttp cannot read as a form
        return False


def refused(request: web.Request) -> web.Response:
    w = words_for(request)
    title = w.t("agent.refused.title")
    page = views.layout(views.Chrome(w), title, views.message_body(w, w.t("agent.refused.text")))
    return html(page, status=403)


def html(body: str, *, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


# -- the login form ---------------------------------------------------------------------------


async def login_form(request: web.Request) -> web.Response:
    w = words_for(request)
    if await _logged_in(request):
        raise web.HTTPSeeOther(f"{PATH}/")
    return _login_page(request, w)


def _login_page(
    request: web.Request, w: Words, *, error: str = "", status: int = 200
) -> web.Response:
    nonce = csrf.new_login_nonce()
    token = csrf.token_for(request.app, csrf.login_bound(nonce))
    page = views.layout(
        views.Chrome(w), w.t("agent.login.title"), views.login_body(w, token), error=error
    )
    response = html(page, status=status)
    set_cookie(request, response, csrf.LOGIN_COOKIE, nonce, csrf.LOGIN_COOKIE_SECONDS)
    remember(request, response)
    return response


async def _logged_in(request: web.Request) -> bool:
    token = request.cookies.get(COOKIE, "")
    return bool(token) and await request.app[SESSIONS].find(token) is not None


async def login(request: web.Request) -> web.StreamResponse:
    """Check the name and password; a session cookie and the queue, or the form again with the
    one generic error."""
    w = words_for(request)
    nonce = request.cookies.get(csrf.LOGIN_COOKIE, "")
    if not await _csrf_ok(request, csrf.login_bound(nonce) if nonce else None):
        return refused(request)
    client = client_address(request)
    wait = request.app[LOGIN_LIMITER].take(client or "unknown")
    if wait:
        response = _login_page(request, w, error=w.t("agent.login.slow_down"), status=429)
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    fields = await request.post()
    name, password = fields.get("name"), fields.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        return _login_page(request, w, error=w.t("agent.login.failed"), status=401)
    result = await request.app[SESSIONS].login(name.strip(), password, client=client)
    if result.token is None:
        return _login_page(request, w, error=w.t("agent.login.failed"), status=401)
    response = web.HTTPSeeOther(f"{PATH}/")
    set_cookie(
        request, response, COOKIE, result.token, int(request.app[SESSIONS].lifetime.total_seconds())
    )
    response.del_cookie(csrf.LOGIN_COOKIE, path=PATH)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session everywhere (it is the database's), and forget the cookie."""
    await request.app[SESSIONS].end(request[TOKEN])
    response = web.HTTPSeeOther(f"{PATH}/login")
    response.del_cookie(COOKIE, path=PATH)
    raise response
