"""The web chat: the page at `/` and the JSON API it (and any other client) talks to.

    POST /api/chat/sessions                          → {"session": "<secret>"}
    POST /api/chat/sessions/{session}/messages       {"text": …} | {"action": …} [, "id": …]
    POST /api/chat/sessions/{session}/files          a certificate file's bytes (憑證資料檢核)
    GET  /api/chat/sessions/{session}/messages?after=<seq>
    GET  /api/chat/sessions/{session}/events?after=<seq>   server-sent events, one per message

The page is static files (no build step, no inline script, so `default-src 'self'` holds); the
server fills in only its language and the chrome's words from the `webchat` catalogue. Every
input is one engine event, its replies appended to the chat log (`bot.channels.webchat`) and
returned; the event stream sends whatever is appended later (a reminder, the download page's
confirmation) as it happens. Whatever goes wrong under `/api/` is answered as JSON with a
localised message — a bad body, an unknown session, a wrong method — never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from bot.channels.webchat import Session, WebChat, new_session
from bot.web.clients import client_address
from bot.web.keys import CHANNELS, CORE, ENGINE
from bot.web.limits import read_body
from bot.web.ops import RETRY_AFTER_SECONDS
from certcore.errors import DatabaseUnavailable
from certcore.i18n import DEFAULT_LOCALE, SUPPORTED_LOCALES, normalise_locale, translate
from certcore.pki import MAX_FILE_BYTES
from certcore.storage import ChatLog
from dialogs import EventKind, Inbound, small_number

log = logging.getLogger("certdesk.webchat")

STATIC_DIR = Path(__file__).resolve().parent / "static"
WEBCHAT = web.AppKey("webchat", WebChat)

MAX_BODY = 20 * 1024
"""A chat message is short; a pasted PEM certificate (for 憑證資料檢核) is about 2 KB, and
`MAX_TEXT` CJK characters written as JSON `\\uXXXX` escapes take 6 bytes each."""
MAX_TEXT = 3000
MAX_ACTION = 100
MAX_FILENAME = 200
SESSIONS_PER_WINDOW = 10
SESSION_WINDOW_SECONDS = 60.0
"""New sessions per client address: a page makes one, a reload none."""
HEARTBEAT_SECONDS = 15.0
"""How often an idle event stream says it is alive, and reads the log again (another instance's
appends arrive by then)."""

SEQ_DIGITS = 18
"""A chat log's message number fits a 64-bit integer."""

_SESSION = re.compile(r"^[A-Za-z0-9_-]{43}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

UI_KEYS = (
    "title",
    "heading",
    "subtitle",
    "log_label",
    "input_label",
    "placeholder",
    "send",
    "switch_label",
    "switch_to",
    "switch_word",
    "you",
    "bot",
    "hidden",
    "connecting",
    "offline",
    "failed",
    "restart",
    "restart_confirm",
    "table_scroll",
    "attach",
)
"""The page's own words (`webchat.ui.<key>`), in both languages for the language switch."""


class ApiError(Exception):
    """A 4xx answered as `{"error": code, "message": <localised>}`."""

    def __init__(self, status: int, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.headers = headers or {}


class RateLimiter:
    """A token bucket per client address, in memory: enough to stop one client making sessions
    in a loop (several instances each keep their own)."""

    MAX_CLIENTS = 10_000

    def __init__(self, capacity: int, window_seconds: float) -> None:
        self.capacity = capacity
        self.rate = capacity / window_seconds
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str) -> float:
        """0 when the client may go on (a token taken), else the seconds until it may."""
        now = asyncio.get_running_loop().time()
        tokens, then = self._buckets.get(client, (float(self.capacity), now))
        tokens = min(float(self.capacity), tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate
        if len(self._buckets) >= self.MAX_CLIENTS and client not in self._buckets:
            self._forget_full(now)
        self._buckets[client] = (tokens - 1, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        full = [
            client
            for client, (tokens, then) in self._buckets.items()
            if tokens + (now - then) * self.rate >= self.capacity
        ]
        for client in full or list(self._buckets)[: self.MAX_CLIENTS // 10]:
            del self._buckets[client]


LIMITER = web.AppKey("webchat_limiter", RateLimiter)


def mount(app: web.Application) -> None:
    """Add the page, its API and the static files; register the web chat channel."""
    core = app[CORE]
    adapter = WebChat(app[ENGINE], ChatLog(core.db, core.clock), core.settings)
    app[WEBCHAT] = adapter
    app[LIMITER] = RateLimiter(SESSIONS_PER_WINDOW, SESSION_WINDOW_SECONDS)
    app[CHANNELS].add(adapter)
    app.middlewares.append(security_headers)  # outermost: the JSON errors get the headers too
    app.middlewares.append(api_errors)
    app.add_routes(
        [
            web.get("/", page),
            web.post("/api/chat/sessions", create_session),
            web.post("/api/chat/sessions/{session}/messages", post_message),
            web.get("/api/chat/sessions/{session}/messages", get_messages),
            web.post("/api/chat/sessions/{session}/files", post_file),
            web.get("/api/chat/sessions/{session}/events", events),
            web.static("/static/", STATIC_DIR),
        ]
    )
    app.on_shutdown.append(_close_streams)


async def _close_streams(app: web.Application) -> None:
    app[WEBCHAT].close()


# -- middleware ------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under `/api/`: every failure as a JSON error, never aiohttp's HTML or a traceback."""
    if not _is_api(request):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as error:
        return _error(request, error.status, error.code, error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = _HTTP_CODES.get(error.status, "bad_request" if error.status < 500 else "internal")
        headers = {k: v for k, v in error.headers.items() if k in ("Allow", "Retry-After")}
        return _error(request, error.status, code, headers)
    except asyncio.CancelledError:
        raise
    except DatabaseUnavailable:  # waited out for a while already: the browser tries again
        return _error(request, 503, "unavailable", {"Retry-After": str(RETRY_AFTER_SECONDS)})
    except Exception:
        log.exception("web chat API %s %s failed", request.method, request.match_info.route.name)
        return _error(request, 500, "internal")


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}


def _error(
    request: web.Request, status: int, code: str, headers: dict[str, str] | None = None
) -> web.Response:
    locale = normalise_locale(request.headers.get("Accept-Language"))
    response = web.json_response(
        {"error": code, "message": translate(locale, f"webchat.error.{code}")},
        status=status,
        headers=headers,
    )
    return response


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The page, its files and its API: a strict CSP, no sniffing, no referrer; the API is
    never cached (it holds the conversation)."""
    path = request.path
    mine = path == "/" or path.startswith(("/api/chat/", "/static/"))
    if path.startswith("/static/download/"):
        mine = False  # the download page's own files, with its own headers
    if not mine:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as error:
        error.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
    return response


# -- the page --------------------------------------------------------------------------------


def ui_strings(locale: str) -> dict[str, str]:
    return {key: translate(locale, f"webchat.ui.{key}") for key in UI_KEYS}


def _page_locale(request: web.Request) -> str:
    asked = request.query.get("lang", "")
    return asked if asked in SUPPORTED_LOCALES else DEFAULT_LOCALE


async def page(request: web.Request) -> web.Response:
    """The chat page in the language asked for (`?lang=en`), zh_TW by default; the words of
    both languages ride along as a JSON data block for the switch (not a script: CSP allows)."""
    locale = _page_locale(request)
    words = ui_strings(locale)
    template = Template((STATIC_DIR / "chat.html").read_text(encoding="utf-8"))
    strings = json.dumps({loc: ui_strings(loc) for loc in SUPPORTED_LOCALES}, ensure_ascii=False)
    body = template.safe_substitute(
        {f"ui_{key}": html.escape(value) for key, value in words.items()},
        lang=html.escape(locale),
        html_lang="zh-Hant-TW" if locale == "zh_TW" else "en",
        strings=strings.replace("<", "\\u003c"),
    )
    return web.Response(
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


# -- the API ---------------------------------------------------------------------------------


async def _json_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object, read at most `MAX_BODY` bytes far."""
    raw = await read_body(request, MAX_BODY)
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(400, "bad_json")
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # nested deeper than json reads
        raise ApiError(400, "bad_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json")
    return data


async def _known_session(request: web.Request) -> Session:
    """The request's session, if it names one that exists. Only then is it remembered (its key
    seals what is pushed to it): a run of guessed ids must not push the real sessions out."""
    secret = request.match_info["session"]
    if not _SESSION.fullmatch(secret):
        raise ApiError(404, "unknown_session")
    adapter = request.app[WEBCHAT]
    if not await adapter.exists(Session.of(secret)):
        raise ApiError(404, "unknown_session")
    return adapter.session(secret)


def _after(request: web.Request) -> int:
    """The last message the client has: `after`, or the event stream's `Last-Event-ID`. A
    message's number has at most `SEQ_DIGITS` digits; a longer one would overflow the
    database's integer (a 500), or `int()` itself past 4,300 digits."""
    after = small_number(request.query.get("after", "0"), digits=SEQ_DIGITS)
    last_event = request.headers.get("Last-Event-ID", "")
    if after is None:
        raise ApiError(400, "bad_after")
    if last_event:
        resumed = small_number(last_event, digits=SEQ_DIGITS)
        if resumed is None:
            raise ApiError(400, "bad_after")
        after = max(after, resumed)
    return after


async def create_session(request: web.Request) -> web.Response:
    """A new session: its secret to the browser, the welcome and the menu into its log."""
    wait = request.app[LIMITER].take(client_address(request) or "unknown")
    if wait:
        raise ApiError(429, "rate_limited", {"Retry-After": str(max(1, round(wait)))})
    data = await _json_body(request, optional=True)
    lang = data.get("lang")
    hint = lang if isinstance(lang, str) and lang in SUPPORTED_LOCALES else None
    adapter = request.app[WEBCHAT]
    secret = new_session()
    session = adapter.session(secret)
    event = Inbound(
        session.conversation_id, f"web-follow-{uuid.uuid4()}", EventKind.FOLLOW, locale_hint=hint
    )
    replies = await request.app[ENGINE].handle(event)
    await adapter.record(session.conversation_id, replies, event_id=event.event_id)
    return web.json_response({"session": secret}, status=201)


async def post_message(request: web.Request) -> web.Response:
    """One input (typed text or a tapped option) → the bot's replies to it."""
    adapter = request.app[WEBCHAT]
    session = await _known_session(request)
    data = await _json_body(request)
    text, action, client_id = data.get("text"), data.get("action"), data.get("id")
    if client_id is not None and not (
        isinstance(client_id, str) and _CLIENT_ID.fullmatch(client_id)
    ):
        raise ApiError(400, "bad_id")
    if (text is None) == (action is None):
        raise ApiError(400, "missing_input")
    event_id = f"web-{client_id}" if client_id else f"web-{uuid.uuid4()}"
    conversation = session.conversation_id
    client = client_address(request)
    if text is not None:
        if not isinstance(text, str):
            raise ApiError(400, "missing_input")
        text = text.strip()
        if not text:
            raise ApiError(400, "empty_text")
        if len(text) > MAX_TEXT:
            raise ApiError(413, "text_too_long")
        event = Inbound(conversation, event_id, EventKind.TEXT, text=text, client=client)
        said = adapter.said(session, text=text)
    else:
        if not isinstance(action, str) or not action or len(action) > MAX_ACTION:
            raise ApiError(400, "missing_input")
        event = Inbound(conversation, event_id, EventKind.CHOICE, choice=action, client=client)
        said = adapter.said(session, label=await adapter.choice_label(session, action))
    replies = await request.app[ENGINE].handle(event)
    messages = await adapter.record(conversation, replies, said=said, event_id=event_id)
    locale = await request.app[ENGINE].locale_of(conversation) or DEFAULT_LOCALE
    return web.json_response({"messages": messages, "locale": locale})


async def post_file(request: web.Request) -> web.Response:
    """A certificate file for 憑證資料檢核: the raw bytes, its name in `X-Filename` (URL-encoded,
    never in the URL itself: a file is often named after its holder's ID number)."""
    adapter = request.app[WEBCHAT]
    session = await _known_session(request)
    if request.content_type not in ("application/octet-stream", ""):
        raise ApiError(415, "unsupported_media_type")
    data = await read_body(request, MAX_FILE_BYTES)
    if not data:
        raise ApiError(400, "empty_file")
    filename = unquote(request.headers.get("X-Filename", "")).strip()[:MAX_FILENAME]
    client_id = request.headers.get("X-Message-Id")
    if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
        raise ApiError(400, "bad_id")
    event_id = f"web-{client_id}" if client_id else f"web-{uuid.uuid4()}"
    conversation = session.conversation_id
    event = Inbound(
        conversation,
        event_id,
        EventKind.FILE,
        file=data,
        filename=filename,
        client=client_address(request),
    )
    said = adapter.said(session, text=filename or "file")
    replies = await request.app[ENGINE].handle(event)
    messages = await adapter.record(conversation, replies, said=said, event_id=event_id)
    locale = await request.app[ENGINE].locale_of(conversation) or DEFAULT_LOCALE
    return web.json_response({"messages": messages, "locale": locale})


async def get_messages(request: web.Request) -> web.Response:
    """Every message after `after` (the customer's own lines among them, `"from": "customer"`)."""
    adapter = request.app[WEBCHAT]
    session = await _known_session(request)
    messages = await adapter.messages_after(session, _after(request))
    locale = await request.app[ENGINE].locale_of(session.conversation_id) or DEFAULT_LOCALE
    return web.json_response({"messages": messages, "locale": locale})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: each message after `after` (or the browser's Last-Event-ID), then
    each one appended later, until the page goes away or the app stops."""
    adapter = request.app[WEBCHAT]
    session = await _known_session(request)
    after = _after(request)
    conversation = session.conversation_id
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
            **SECURITY_HEADERS,
        }
    )
    await response.prepare(request)
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        await response.write(b"retry: 2000\n\n")
        while not adapter.closing:
            waiter = adapter.listen(conversation)
            try:
                messages = await adapter.messages_after(session, after)
                for message in messages:
                    data = json.dumps(message, ensure_ascii=False)
                    await response.write(f"id: {message['seq']}\ndata: {data}\n\n".encode())
                    after = message["seq"]
                if messages:
                    continue  # read again before waiting: more may have come meanwhile
                try:
                    await asyncio.wait_for(waiter.wait(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    await response.write(b": alive\n\n")
            finally:
                adapter.unlisten(conversation, waiter)
    return response
