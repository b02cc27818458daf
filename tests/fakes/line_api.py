"""A fake LINE Messaging API on loopback: the real line-bot-sdk client is pointed at it with
`CERTDESK_LINE_API_BASE` (one base URL serves both api.line.me and api-data.line.me paths).

It keeps LINE's rules, so a rendering or a sending strategy that LINE would refuse fails here
too: a Bearer token, 1–5 messages a request, quick replies of at most 13 items with labels of at
most 20 characters, `altText` on Flex and template messages, a reply token used once (an unknown
or spent one is `400 Invalid reply token`), and a push's `X-Line-Retry-Key` accepted once (a
repeat is `409`, the request already accepted), and the monthly push quota: `quota` pushes a
month when set (`GET /v2/bot/message/quota` and `…/quota/consumption` tell it, every accepted
push counts, replies do not), then `429 You have reached your monthly limit.`. Every request
is recorded (headers and JSON bodies) for assertions, and faults can be injected per endpoint:
429 with or without `Retry-After`, 5xx, 403 for a user who blocked the account; an endpoint can
also be made slow (a blob download that takes its time), to show what overtakes what meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "fake-line-channel-access-token"
BODY = web.RequestKey("body", object)
SECRET = "fake-line-channel-secret"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    times: int = 1


@dataclass
class Sent:
    """A reply or push LINE accepted: to whom, and the messages."""

    via: str
    to: str
    messages: list[dict[str, Any]]
    retry_key: str | None = None


@dataclass
class FakeLineApi:
    token: str = TOKEN
    requests: list[Recorded] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    delays: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    reply_tokens: dict[str, str] = field(default_factory=dict)
    """Unused reply tokens, to the user they answer."""
    retry_keys: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)
    contents: dict[str, bytes] = field(default_factory=dict)
    link_tokens: dict[str, str] = field(default_factory=dict)
    rich_menus: dict[str, dict[str, Any]] = field(default_factory=dict)
    rich_menu_images: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    default_rich_menu: str | None = None
    loading: list[str] = field(default_factory=list)
    quota: int | None = None
    """Pushes a month; None for no limit (`{"type": "none"}`)."""
    pushes_this_month: int = 0
    base_url: str = ""
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition | None = None

    # -- the test's side ---------------------------------------------------------------------

    def reply_token(self, user: str) -> str:
        token = secrets.token_hex(16)
        self.reply_tokens[token] = user
        return token

    def fail(
        self, endpoint: str, status: int, *, retry_after: str | None = None, times: int = 1
    ) -> None:
        """The next `times` calls of `endpoint` (reply, push, loading, content, …) fail."""
        self.faults[endpoint].append(Fault(status, retry_after, times))

    def slow(self, endpoint: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` calls of `endpoint` wait `seconds` before they are answered."""
        self.delays[endpoint].extend([seconds] * times)

    def to(self, user: str) -> list[Sent]:
        return [s for s in self.sent if s.to == user]

    def messages_to(self, user: str) -> list[dict[str, Any]]:
        return [m for s in self.to(user) for m in s.messages]

    def texts_to(self, user: str) -> list[str]:
        return [message_text(m) for m in self.messages_to(user)]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Until `predicate()` holds (checked on every request), or fail after `timeout`."""
        assert self._changed is not None

        async def waiting() -> None:
            assert self._changed is not None
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(waiting(), timeout)

    async def wait_sent(self, user: str, count: int, timeout: float = 10.0) -> list[Sent]:
        await self.wait_for(lambda: len(self.to(user)) >= count, timeout)
        return self.to(user)

    # -- serving -----------------------------------------------------------------------------

    async def start(self) -> str:
        self._changed = asyncio.Condition()
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.add_routes(
            [
                web.post("/v2/bot/message/reply", self._reply),
                web.post("/v2/bot/message/push", self._push),
                web.post("/v2/bot/chat/loading/start", self._loading),
                web.post("/v2/bot/user/{user}/linkToken", self._link_token),
                web.get("/v2/bot/message/{id}/content", self._content),
                web.post("/v2/bot/richmenu", self._create_rich_menu),
                web.post("/v2/bot/richmenu/{id}/content", self._rich_menu_image),
                web.post("/v2/bot/user/all/richmenu/{id}", self._default_rich_menu),
                web.get("/v2/bot/profile/{user}", self._profile),
                web.get("/v2/bot/message/quota", self._quota),
                web.get("/v2/bot/message/quota/consumption", self._consumption),
            ]
        )
        app.middlewares.append(self._middleware)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        body: Any
        try:
            body = json.loads(raw) if raw and request.content_type == "application/json" else raw
        except ValueError:
            body = raw
        recorded = Recorded(request.method, request.path, dict(request.headers), body)
        self.requests.append(recorded)
        request[BODY] = body
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                response: web.StreamResponse = _error(401, "Authentication failed")
            else:
                await self._delay(request)
                response = self._fault(request) or await handler(request)
        except web.HTTPException as error:
            response = error
        recorded.status = response.status
        await self._notify()
        return response

    async def _delay(self, request: web.Request) -> None:
        delays = self.delays.get(_endpoint(request))
        if delays:
            await self._notify()  # the request is seen (recorded) while it is held
            await asyncio.sleep(delays.pop(0))

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def _fault(self, request: web.Request) -> web.Response | None:
        queue = self.faults.get(_endpoint(request))
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        messages = {429: "Too Many Requests", 403: "Forbidden", 500: "Internal Server Error"}
        return _error(fault.status, messages.get(fault.status, "error"), headers)

    # -- endpoints ---------------------------------------------------------------------------

    async def _reply(self, request: web.Request) -> web.Response:
        body: Any = request[BODY]
        token = body.get("replyToken", "")
        problem = check_messages(body.get("messages"))
        if problem:
            return _error(400, problem)
        user = self.reply_tokens.pop(token, None)
        if user is None:
            return _error(400, "Invalid reply token")
        self.sent.append(Sent("reply", user, body["messages"]))
        return web.json_response({"sentMessages": _sent_ids(body["messages"])})

    async def _push(self, request: web.Request) -> web.Response:
        body: Any = request[BODY]
        key = request.headers.get("X-Line-Retry-Key")
        if key is not None and key in self.retry_keys:
            return _error(409, "The retry key is already accepted")
        problem = check_messages(body.get("messages"))
        if problem:
            return _error(400, problem)
        to = body.get("to", "")
        if to in self.blocked:
            return _error(403, "Forbidden")
        if self.quota is not None and self.pushes_this_month >= self.quota:
            return _error(429, "You have reached your monthly limit.")
        if key is not None:
            self.retry_keys.add(key)
        self.pushes_this_month += 1
        self.sent.append(Sent("push", to, body["messages"], key))
        return web.json_response({"sentMessages": _sent_ids(body["messages"])})

    async def _loading(self, request: web.Request) -> web.Response:
        body: Any = request[BODY]
        seconds = body.get("loadingSeconds", 20)
        if not isinstance(seconds, int) or seconds % 5 or not 5 <= seconds <= 60:
            return _error(400, "loadingSeconds must be 5..60 in steps of 5")
        self.loading.append(body.get("chatId", ""))
        return web.json_response({}, status=202)

    async def _link_token(self, request: web.Request) -> web.Response:
        token = secrets.token_urlsafe(24)
        self.link_tokens[token] = request.match_info["user"]
        return web.json_response({"linkToken": token})

    async def _content(self, request: web.Request) -> web.Response:
        data = self.contents.get(request.match_info["id"])
        if data is None:
            return _error(404, "Not found")
        return web.Response(body=data, content_type="application/octet-stream")

    async def _create_rich_menu(self, request: web.Request) -> web.Response:
        body: Any = request[BODY]
        areas = body.get("areas") or []
        size = body.get("size") or {}
        if (size.get("width"), size.get("height")) not in ((2500, 1686), (2500, 843)):
            return _error(400, "size must be 2500x1686 or 2500x843")
        if not 1 <= len(areas) <= 20 or len(body.get("chatBarText", "")) > 14:
            return _error(400, "1..20 areas, chatBarText ≤ 14 characters")
        menu_id = f"richmenu-{secrets.token_hex(16)}"
        self.rich_menus[menu_id] = body
        return web.json_response({"richMenuId": menu_id})

    async def _rich_menu_image(self, request: web.Request) -> web.Response:
        menu_id = request.match_info["id"]
        if menu_id not in self.rich_menus:
            return _error(404, "Not found")
        data = request[BODY]
        if not isinstance(data, bytes) or len(data) > 1024 * 1024:
            return _error(400, "image must be at most 1 MB")
        if request.content_type not in ("image/png", "image/jpeg"):
            return _error(415, "image/png or image/jpeg")
        self.rich_menu_images[menu_id] = (request.content_type, data)
        return web.json_response({})

    async def _default_rich_menu(self, request: web.Request) -> web.Response:
        menu_id = request.match_info["id"]
        if menu_id not in self.rich_menu_images:
            return _error(400, "the rich menu has no image")
        self.default_rich_menu = menu_id
        return web.json_response({})

    async def _quota(self, request: web.Request) -> web.Response:
        if self.quota is None:
            return web.json_response({"type": "none"})
        return web.json_response({"type": "limited", "value": self.quota})

    async def _consumption(self, request: web.Request) -> web.Response:
        return web.json_response({"totalUsage": self.pushes_this_month})

    async def _profile(self, request: web.Request) -> web.Response:
        user = request.match_info["user"]
        return web.json_response({"userId": user, "displayName": "客戶", "language": "zh-TW"})


_ENDPOINTS = {
    "/v2/bot/message/reply": "reply",
    "/v2/bot/message/push": "push",
    "/v2/bot/chat/loading/start": "loading",
    "/v2/bot/user/{user}/linkToken": "link_token",
    "/v2/bot/message/{id}/content": "content",
    "/v2/bot/richmenu": "richmenu",
    "/v2/bot/richmenu/{id}/content": "richmenu_image",
    "/v2/bot/user/all/richmenu/{id}": "richmenu_default",
    "/v2/bot/profile/{user}": "profile",
    "/v2/bot/message/quota": "quota",
    "/v2/bot/message/quota/consumption": "quota_consumption",
}


def _endpoint(request: web.Request) -> str:
    route = request.match_info.route.resource
    return _ENDPOINTS.get(route.canonical if route is not None else "", "")


def check_messages(messages: Any) -> str | None:
    """What LINE would refuse in a request's messages, or None."""
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        return "messages: 1 to 5 messages a request"
    for message in messages:
        kind = message.get("type")
        if kind == "text":
            text = message.get("text", "")
            if not text or len(text) > 5000:
                return "text: 1 to 5000 characters"
        elif kind in ("flex", "template"):
            alt = message.get("altText", "")
            if not alt or len(alt) > 400:
                return "altText: 1 to 400 characters"
            for action in _actions(message.get("contents") or message.get("template")):
                label = action.get("label", "")
                if len(label) > 20:
                    return "action label: at most 20 characters"
                if action.get("type") == "uri" and not str(action.get("uri", "")).startswith(
                    ("http://", "https://", "line://", "tel:")
                ):
                    return "uri: http, https, line or tel"
        else:
            return f"unexpected message type {kind}"
        quick = message.get("quickReply")
        if quick is not None:
            items = quick.get("items") or []
            if not 1 <= len(items) <= 13:
                return "quickReply: 1 to 13 items"
            for item in items:
                action = item.get("action") or {}
                if not 1 <= len(action.get("label", "")) <= 20:
                    return "quickReply label: 1 to 20 characters"
                if action.get("type") == "postback" and len(action.get("data", "")) > 300:
                    return "postback data: at most 300 characters"
    return None


def _actions(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        action = node.get("action")
        if isinstance(action, dict):
            found.append(action)
        for value in node.values():
            found.extend(_actions(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_actions(value))
    return found


def message_text(message: dict[str, Any]) -> str:
    """What a person reads of a message: its text, or a Flex message's altText."""
    return str(message.get("text") or message.get("altText") or "")


def uri_buttons(message: dict[str, Any]) -> list[str]:
    return [a["uri"] for a in _actions(message.get("contents")) if a.get("type") == "uri"]


def _sent_ids(messages: list[Any]) -> list[dict[str, str]]:
    return [{"id": secrets.token_hex(8), "quoteToken": secrets.token_hex(8)} for _ in messages]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"message": message}, status=status, headers=headers)
