"""LINE Account Link: the chat is linked on CertDesk's own page, not by typing into LINE.

What a customer types into LINE stays in LINE's chat history (DESIGN §7), so with
`line_account_link` on, the link flow offers this instead of asking the ID number in chat:

1. the bot issues a link token for the user (`POST /v2/bot/user/{userId}/linkToken`) and sends
   a button to `GET /line/link?linkToken=…`, CertDesk's page;
2. there the customer types the ID number and ROC birth date (the identity check with its
   lockout, as in chat), then the one-time code sent to their mobile or e-mail;
3. on success the page makes a nonce (certcore's `AccountLinks`: 192 bits, kept only as its
   SHA-256, good once for ten minutes) and redirects to LINE's
   `https://access.line.me/dialog/bot/accountLink?linkToken=…&nonce=…`;
4. LINE sends the `accountLink` event with the nonce, and the channel turns it into the
   engine's `EventKind.LINKED` for that user's chat. A failed result, or an unknown, spent or
   expired nonce, links nothing and gets one polite line.

The page keeps what it learnt between its two forms in this process's memory, under a random
session id that is also its CSRF token (a cookie that must match the form's field); it is
served with `Cache-Control: no-store`, `Referrer-Policy: no-referrer` and a strict
Content-Security-Policy (no script at all, a nonce for its one style block).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from aiohttp import web

from bot.channels.base import channel_of
from bot.channels.line.adapter import AccountLinkHandler
from bot.channels.line.api import LineApi
from bot.channels.line.events import CHANNEL, AccountLinked, Context
from bot.web.clients import client_address
from bot.web.keys import CORE, ENGINE
from bot.web.limits import body_deadline
from certcore.audit import Actor
from certcore.clock import taipei_text
from certcore.core import Core
from certcore.customers import Attempt, IdentityOutcome
from certcore.errors import OtpError, OtpResendTooEarly, OtpSendFailed, OtpSendLimit
from certcore.i18n import normalise_locale, translate
from certcore.identity import RocDateError, classify_id, normalise_id, parse_roc_date
from certcore.notify import Medium
from certcore.otp import Binding, Operation
from certcore.storage import AccountLinks
from dialogs import EventKind, Inbound, Link, Linker
from dialogs.turn import Turn

log = logging.getLogger("certdesk.line")

PAGE_PATH = "/line/link"
LINE_ACCOUNT_LINK = "https://access.line.me/dialog/bot/accountLink"
COOKIE = "certdesk_line_link"
SESSION_MINUTES = 15
MAX_SESSIONS = 10_000
ACTOR = Actor(name="customer@line-link-page", channel=CHANNEL)


class AccountLinkOffer(Linker):
    """The engine's `Linker` for LINE chats: a link token and a button to the page."""

    def __init__(self, api: LineApi, public_url: str) -> None:
        self.api = api
        self.public_url = public_url.rstrip("/")

    async def offer(self, turn: Turn) -> bool:
        conversation_id = turn.conversation.id
        if channel_of(conversation_id) != CHANNEL:
            return False
        user = conversation_id.partition(":")[2]
        try:
            token = await self.api.link_token(user)
        except Exception as error:  # the chat must not fall back to asking the ID number
            log.warning("LINE link token not issued: %s", type(error).__name__)
            turn.say("line.link.unavailable")
            return True
        url = f"{self.public_url}{PAGE_PATH}?{urlencode({'linkToken': token})}"
        turn.send(Link(turn.t("line.link.offer"), url, turn.t("line.link.button")))
        return True


class AccountLinkCompletion(AccountLinkHandler):
    """The `accountLink` event: the nonce's customer, once, within its lifetime."""

    def __init__(self, links: AccountLinks) -> None:
        self.links = links

    async def complete(self, context: Context, result: AccountLinked) -> Inbound | str | None:
        if result.result != "ok":
            return "line.link.failed"
        customer_id = await self.links.redeem(result.nonce)
        if customer_id is None:
            log.info("LINE accountLink with an unknown, spent or expired nonce: nothing linked")
            return "line.link.failed"
        return Inbound(
            context.conversation_id, context.event_id, EventKind.LINKED, choice=customer_id
        )


@dataclass
class PageSession:
    link_token: str
    created_at: datetime
    customer_id: str | None = None
    prefix: str = ""
    destination: str = ""

    def binding(self, sid: str) -> Binding:
        assert self.customer_id is not None
        return Binding(
            customer_id=self.customer_id,
            conversation_id=page_conversation(sid),
            operation=Operation.LINK,
        )


def page_conversation(sid: str) -> str:
    """What the page's session is to the core: a conversation (never its secret id)."""
    return f"line-link:{hashlib.sha256(sid.encode()).hexdigest()[:32]}"


class LinkPage:
    def __init__(self, core: Core, links: AccountLinks) -> None:
        self.core = core
        self.links = links
        self.sessions: dict[str, PageSession] = {}

    # -- sessions ----------------------------------------------------------------------------

    def _fresh(self, session: PageSession) -> bool:
        return self.core.clock() - session.created_at < timedelta(minutes=SESSION_MINUTES)

    def _prune(self) -> None:
        for sid in [s for s, v in self.sessions.items() if not self._fresh(v)]:
            del self.sessions[sid]
        while len(self.sessions) >= MAX_SESSIONS:
            del self.sessions[next(iter(self.sessions))]

    def _session(self, request: web.Request, form_sid: str) -> tuple[str, PageSession] | None:
        cookie = request.cookies.get(COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie, form_sid):
            return None
        session = self.sessions.get(cookie)
        if session is None or not self._fresh(session):
            return None
        return cookie, session

    # -- handlers ----------------------------------------------------------------------------

    async def show(self, request: web.Request) -> web.Response:
        locale = _locale(request)
        token = request.query.get("linkToken", "")
        if not token or len(token) > 200:
            return _page(locale, _message(locale, "line.link.page.expired"), status=400)
        self._prune()
        sid = secrets.token_urlsafe(32)
        self.sessions[sid] = PageSession(link_token=token, created_at=self.core.clock())
        response = _page(locale, _identify_form(locale, sid))
        response.set_cookie(
            COOKIE,
            sid,
            max_age=SESSION_MINUTES * 60,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path=PAGE_PATH,
        )
        return response

    async def submit(self, request: web.Request) -> web.StreamResponse:
        locale = _locale(request)
        try:
            async with body_deadline():
                form = await request.post()
        except ValueError:  # a body aiohttp cannot read as a form: no CSRF token either
            return _page(locale, _message(locale, "line.link.page.expired"), status=403)
        found = self._session(request, str(form.get("csrf", "")))
        if found is None:
            return _page(locale, _message(locale, "line.link.page.expired"), status=403)
        sid, session = found
        if form.get("step") == "code" and session.customer_id is not None:
            return await self._code(locale, sid, session, str(form.get("code", "")))
        return await self._identify(
            locale,
            sid,
            session,
            str(form.get("id_number", "")),
            str(form.get("birth", "")),
            client_address(request),
        )

    async def _identify(
        self,
        locale: str,
        sid: str,
        session: PageSession,
        id_text: str,
        birth_text: str,
        client: str,
    ) -> web.Response:
        core = self.core
        id_number = normalise_id(id_text)
        try:
            birth = parse_roc_date(birth_text, today=core.clock().date())
        except RocDateError:
            birth = None
        if classify_id(id_number) is None or birth is None:
            return self._again(locale, sid, "line.link.page.mismatch")
        attempt = Attempt(conversation=page_conversation(sid), client=client)
        result = await core.identity.verify(id_number, birth, actor=ACTOR, attempt=attempt)
        if result.outcome is IdentityOutcome.LOCKED:
            until = taipei_text(result.locked_until)[11:16] if result.locked_until else ""
            return self._again(locale, sid, "line.link.page.locked", until=until)
        if result.outcome is not IdentityOutcome.VERIFIED:
            return self._again(locale, sid, "line.link.page.mismatch")
        customer = await core.customers.get(id_number)
        if customer is None:  # pragma: no cover - verified means known
            return self._again(locale, sid, "line.link.page.mismatch")
        if customer.mobile:
            medium, destination = Medium.SMS, customer.mobile
        elif customer.email:
            medium, destination = Medium.EMAIL, customer.email
        else:
            return _page(locale, _message(locale, "line.link.page.no_destination"))
        session.customer_id = id_number
        try:
            sent = await core.otp.send(
                session.binding(sid),
                medium=medium,
                destination=destination,
                locale=locale,
                actor=ACTOR,
            )
        except (OtpResendTooEarly, OtpSendLimit, OtpSendFailed):
            session.customer_id = None
            return self._again(locale, sid, "line.link.page.send_failed")
        session.prefix, session.destination = sent.prefix, sent.destination
        return _page(locale, _code_form(locale, sid, session))

    async def _code(
        self, locale: str, sid: str, session: PageSession, code: str
    ) -> web.StreamResponse:
        otp = self.core.otp
        binding = session.binding(sid)
        try:
            receipt = await otp.verify(binding, code, actor=ACTOR)
        except OtpError:
            notice = _message(locale, "line.link.page.code_wrong")
            return _page(locale, notice + _code_form(locale, sid, session))
        await otp.spend(binding, receipt, actor=ACTOR, action="line.account_link.verified")
        assert session.customer_id is not None
        nonce = await self.links.create(session.customer_id)
        del self.sessions[sid]
        target = (
            f"{LINE_ACCOUNT_LINK}?{urlencode({'linkToken': session.link_token, 'nonce': nonce})}"
        )
        response = web.HTTPSeeOther(target)
        _secure(response, "")
        response.del_cookie(COOKIE, path=PAGE_PATH)
        raise response

    def _again(self, locale: str, sid: str, key: str, **params: object) -> web.Response:
        return _page(locale, _message(locale, key, **params) + _identify_form(locale, sid))


# -- the page ------------------------------------------------------------------------------


def _locale(request: web.Request) -> str:
    wanted = request.query.get("lang") or request.headers.get("Accept-Language") or ""
    return normalise_locale(wanted.split(",")[0].strip() or None)


def _t(locale: str, key: str, **params: object) -> str:
    return html.escape(translate(locale, key, **params))


def _message(locale: str, key: str, **params: object) -> str:
    return f'<p class="notice" role="alert">{_t(locale, key, **params)}</p>'


def _identify_form(locale: str, sid: str) -> str:
    return (
        f"<p>{_t(locale, 'line.link.page.intro')}</p>"
        f'<form method="post" action="{PAGE_PATH}">'
        f'<input type="hidden" name="csrf" value="{html.escape(sid)}">'
        '<input type="hidden" name="step" value="identify">'
        f"<label>{_t(locale, 'line.link.page.id')}"
        '<input name="id_number" autocomplete="off" maxlength="16" required></label>'
        f"<label>{_t(locale, 'line.link.page.birth_date')}"
        '<input name="birth" inputmode="numeric" autocomplete="off" maxlength="8" required></label>'
        f'<button type="submit">{_t(locale, "line.link.page.send")}</button>'
        "</form>"
    )


def _code_form(locale: str, sid: str, session: PageSession) -> str:
    sent = _t(
        locale,
        "line.link.page.code_sent",
        destination=session.destination,
        prefix=session.prefix,
    )
    return (
        f"<p>{sent}</p>"
        f'<form method="post" action="{PAGE_PATH}">'
        f'<input type="hidden" name="csrf" value="{html.escape(sid)}">'
        '<input type="hidden" name="step" value="code">'
        f"<label>{_t(locale, 'line.link.page.code')}"
        '<input name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="11" '
        "required></label>"
        f'<button type="submit">{_t(locale, "line.link.page.confirm")}</button>'
        "</form>"
    )


_STYLE = (
    "body{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.6;color:#212529}label{display:block;margin:1rem 0}"
    "input{display:block;width:100%;font-size:1.1rem;padding:.5rem;box-sizing:border-box}"
    "button{font-size:1.1rem;padding:.6rem 1.2rem;background:#1f5fa6;color:#fff;border:0;"
    "border-radius:.4rem}.notice{background:#fff3cd;padding:.6rem;border-radius:.4rem}"
)


def _page(locale: str, body: str, *, status: int = 200) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    lang = "zh-Hant-TW" if locale == "zh_TW" else "en"
    title = _t(locale, "line.link.page.title")
    document = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title}</title><style nonce="{nonce}">{_STYLE}</style></head>'
        f"<body><main><h1>{title}</h1>{body}</main></body></html>"
    )
    response = web.Response(text=document, content_type="text/html", status=status)
    _secure(response, nonce)
    return response


def _secure(response: web.StreamResponse, nonce: str) -> None:
    style = f"'nonce-{nonce}'" if nonce else "'none'"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src {style}; form-action 'self' https://access.line.me; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def mount(app: web.Application, api: LineApi) -> AccountLinkCompletion:
    """The page's routes, the engine's `Linker` for LINE chats, and the event's completion."""
    core = app[CORE]
    links = AccountLinks(core.db, core.clock)
    page = LinkPage(core, links)
    app.router.add_get(PAGE_PATH, page.show)
    app.router.add_post(PAGE_PATH, page.submit)
    engine = app[ENGINE]
    if engine.services.linker is None:
        engine.services.linker = AccountLinkOffer(api, core.settings.public_url)
    return AccountLinkCompletion(links)
