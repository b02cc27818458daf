"""The certificate download page, `GET|POST /d/{token}` (DESIGN §4, manual 四、憑證匯出).

LINE and the web chat cannot hand over a file, so the chat sends a one-time link; this page is
the one place where the export password is typed (twice), and where the certificate is made
(`DeliveryService.fulfil`: the key pair and the certificate come into being when the password is
set). The page explains the password rule from the rule the code checks
(`certcore.pki.EXPORT_PASSWORD`), detects the platform and recommends the standard or the
compatible .pfx as 檢查電腦環境 does (`bot.web.download_page`), and shows the import help.

What a POST does, by the delivery's state:
- open: the two typings are checked as the console checks them
  (`certcore.pki.export_password_problem`); a mismatch, a password outside the rule or an
  unknown format re-shows the form with the error (422, nothing issued); otherwise the
  certificate is issued and the .pfx is the response, as an attachment named as DESIGN §4 says.
- issued, within the window and under the download limit: the same file again
  (`download_again`), for a download that broke. **No password is asked for or checked then**:
  the kept file is already encrypted under the customer's own password, so a re-download hands
  over nothing that password does not protect, and the holder is proven the only way the first
  download was proven, by the link's token (with the form key below). Asking for the password
  again would add no protection and would only invite a different password, which the kept file
  cannot have; the page says that the file opens with the password set the first time, and
  password fields sent again are ignored.
- expired, used up (the limit reached), unknown: a page saying what to do (apply again in the
  chat, or revoke and apply when the file is lost), 410 or 404.

Every response under `/d/` and the page's static files carries `Cache-Control: no-store` (the
page holds a secret link and the response a private key), `Referrer-Policy: no-referrer` (the
token is in the URL), a CSP allowing only this site's own CSS and script and no framing,
`nosniff` and `X-Frame-Options: DENY`. The forms carry a key, an HMAC of the token under a key
derived from the OTP key (which every instance shares, so a form served by one instance is
accepted by another), checked in constant time; `Origin` and `Sec-Fetch-Site`, when the browser
sends them, must name this site. A POST failing either gets a 403 page.

Once a download has been written to the customer, the chat is told (`EventKind.DELIVERED`,
through `app[CHANNELS]`, which pushes 「憑證申請完成」 on the conversation's own channel) in a
background task, so a slow chat platform never delays the file; a failure is logged without the
token. A download whose writing failed (the browser went away) tells nothing; the re-download
that then succeeds does (each download has its own event id, so the confirmation is not lost
when the first attempt broke, and is said again after a re-download).
Issuance itself is slow (an RSA key, 600,000 PBKDF2 rounds) and runs in the core's KeyWork
(worker processes under `serve`): the handler only awaits it and never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

from aiohttp import web

from bot.web import download_page as pages
from bot.web.clients import is_https
from bot.web.download_page import AgainView, FormView, Page, Words, detect_platform
from bot.web.keys import CHANNELS, CORE
from bot.web.limits import body_deadline
from certcore.audit import Actor
from certcore.clock import taipei_text
from certcore.core import Core
from certcore.errors import CertdeskError, InvalidExportPassword
from certcore.i18n import DEFAULT_LOCALE
from certcore.masking import mask_id
from certcore.otp import Operation
from certcore.pki import (
    DeliveredFile,
    Delivery,
    DeliveryState,
    DeliveryUnavailable,
    PasswordProblem,
    Pkcs12Format,
    export_password_problem,
    token_hash,
)
from dialogs import EventKind, Inbound

log = logging.getLogger("certdesk.download")

CHANNEL = "download"
"""The audit trail's word for this page (`Actor.channel`)."""
PATH_PREFIX = "/d/"
STATIC_DIR = Path(__file__).resolve().parent / "static" / "download"
"""Package data of bot (`web/static/**/*` in pyproject.toml)."""
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
"""What `secrets.token_urlsafe` makes; anything else is not looked up."""
PKCS12_TYPE = "application/x-pkcs12"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
FORM_KEY_LABEL = b"certdesk/download-form/v1"
ISSUING_REFRESH_SECONDS = 3
SHUTDOWN_GRACE_SECONDS = 5.0

FORM_KEY = web.AppKey("download_form_key", bytes)
TASKS = web.AppKey("download_tasks", set[asyncio.Task[None]])


def mount(app: web.Application) -> None:
    """Add the page, its static files and its response headers to the app."""
    app[TASKS] = set()
    app.add_routes(
        [
            web.get("/d/{token}", show, allow_head=False),
            web.post("/d/{token}", download),
            web.static(pages.STATIC, STATIC_DIR, append_version=False),
        ]
    )
    app.on_startup.append(_derive_form_key)
    app.on_response_prepare.append(_security_headers)
    app.cleanup_ctx.append(_background_tasks)


async def _derive_form_key(app: web.Application) -> None:
    app[FORM_KEY] = hmac.new(app[CORE].otp.key, FORM_KEY_LABEL, hashlib.sha256).digest()


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith((PATH_PREFIX, pages.STATIC + "/")):
        response.headers.update(SECURITY_HEADERS)


async def _background_tasks(app: web.Application) -> AsyncIterator[None]:
    yield
    tasks = app[TASKS]
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
        for task in pending:
            task.cancel()


# -- GET -------------------------------------------------------------------------------------


async def show(request: web.Request) -> web.StreamResponse:
    """The page for the delivery's state; JSON `{"state": ...}` for the page's own script."""
    token = request.match_info["token"]
    locale = choose_locale(request)
    delivery = await _describe(request, token)
    state = page_state(request.app[CORE], delivery)
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response({"state": state}, status=_STATUS.get(state, 200))
    if delivery is None or state in ("expired", "spent", "unknown"):
        return gone(request, locale, state, delivery)
    if state == "issuing":
        return issuing(request, locale, delivery)
    if state == "issued":
        return again(request, locale, token, delivery)
    return form(request, locale, token, delivery)


_STATUS = {"unknown": 404, "expired": 410, "spent": 410}


def page_state(core: Core, delivery: Delivery | None) -> str:
    """open | issuing | issued | spent | expired | unknown."""
    if delivery is None:
        return "unknown"
    if delivery.state is DeliveryState.EXPIRED:
        return "spent" if delivery.serial is not None else "expired"
    if delivery.state is DeliveryState.ISSUED:
        if delivery.downloads >= core.settings.delivery_max_downloads:
            return "spent"
        return "issued"
    return delivery.state.value


async def _describe(request: web.Request, token: str) -> Delivery | None:
    if not TOKEN.fullmatch(token):
        return None
    return await request.app[CORE].deliveries.describe(token)


# -- POST ------------------------------------------------------------------------------------


async def download(request: web.Request) -> web.StreamResponse:
    """Issue and hand over the .pfx (first download), or the same file again."""
    token = request.match_info["token"]
    try:
        async with body_deadline():
            fields = await request.post()
    except ValueError:  # a body aiohttp cannot read as a form
        fields = None
    locale = choose_locale(request, None if fields is None else _field(fields, "lang"))
    if not TOKEN.fullmatch(token):
        return gone(request, locale, "unknown", None)
    if fields is None or not same_site(request) or not form_key_matches(request, token, fields):
        return refused(request, locale)
    core = request.app[CORE]
    delivery = await core.deliveries.describe(token)
    state = page_state(core, delivery)
    if delivery is None or state in ("expired", "spent", "unknown"):
        return gone(request, locale, state, delivery)
    if state == "issuing":
        return issuing(request, locale, delivery, status=409)
    actor = customer_actor(delivery)
    if state == "issued":
        return await _again(request, locale, token, delivery, actor)
    password = _field(fields, "password")
    confirmation = _field(fields, "password_confirm")
    chosen = _format(_field(fields, "format"))
    t = Words(locale)
    errors: list[str] = []
    problem = export_password_problem(password, confirmation)
    if problem is PasswordProblem.MISMATCH:
        errors.append(t.t("download.error.mismatch"))
    elif problem is PasswordProblem.INVALID:
        errors.append(t.t("download.error.invalid", **t.policy_params))
    if chosen is None:
        errors.append(t.t("download.error.format"))
    if errors:
        return form(request, locale, token, delivery, chosen=chosen, errors=errors, status=422)
    assert chosen is not None
    try:
        delivered = await core.deliveries.fulfil(token, password, actor=actor, fmt=chosen)
    except InvalidExportPassword:  # the check above is the same rule; kept for safety
        errors = [t.t("download.error.invalid", **t.policy_params)]
        return form(request, locale, token, delivery, chosen=chosen, errors=errors, status=422)
    except DeliveryUnavailable:
        # Another request claimed it a moment ago (a double submit), or it just expired.
        return await _after_race(request, locale, token)
    except CertdeskError as error:
        log.warning("download: issuance failed (%s)", error.code)
        return failed(request, locale)
    except Exception:
        log.exception("download: issuance failed")
        return failed(request, locale)
    response, written = await send_file(request, delivered)
    if written:
        tell_chat(request.app, delivery, token, download_number=1)
    return response


async def _again(
    request: web.Request, locale: str, token: str, delivery: Delivery, actor: Actor
) -> web.StreamResponse:
    try:
        delivered = await request.app[CORE].deliveries.download_again(token, actor=actor)
    except DeliveryUnavailable:
        return gone(request, locale, "spent", delivery)
    response, written = await send_file(request, delivered)
    if written:
        tell_chat(request.app, delivery, token, download_number=delivery.downloads + 1)
    return response


async def _after_race(request: web.Request, locale: str, token: str) -> web.StreamResponse:
    delivery = await request.app[CORE].deliveries.describe(token)
    state = page_state(request.app[CORE], delivery)
    if delivery is None or state in ("expired", "spent", "unknown"):
        return gone(request, locale, state, delivery)
    if state == "open":  # the other attempt failed and let go
        return failed(request, locale)
    return issuing(request, locale, delivery, status=409)


def customer_actor(delivery: Delivery) -> Actor:
    return Actor(name=f"customer@{delivery.requester}"[:64], channel=CHANNEL)


def _field(fields: Mapping[str, object], name: str) -> str:
    """A text field's value; "" when it is missing or a file."""
    value = fields.get(name)
    return value if isinstance(value, str) else ""


def _format(value: str) -> Pkcs12Format | None:
    try:
        return Pkcs12Format(value)
    except ValueError:
        return None


# -- the file --------------------------------------------------------------------------------


def content_disposition(filename: str) -> str:
    """`attachment; filename="<ASCII>"`, plus `filename*=UTF-8''…` (RFC 6266/8187) when the
    name is not plain ASCII: old clients read the first, every current browser the second."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1] or "certificate.pfx"
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f")
    fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '"\\' else "_" for ch in name)
    header = f'attachment; filename="{fallback}"'
    if fallback != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


async def send_file(
    request: web.Request, delivered: DeliveredFile
) -> tuple[web.StreamResponse, bool]:
    """Write the .pfx as the response; whether all of it was written (the client stayed)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": PKCS12_TYPE,
            "Content-Disposition": content_disposition(delivered.filename),
        }
    )
    response.content_length = len(delivered.pkcs12)
    try:
        await response.prepare(request)
        await response.write(delivered.pkcs12)
        await response.write_eof()
    except ConnectionError:
        log.info("download: the client left before the file was written")
        return response, False
    return response, True


# -- telling the chat ------------------------------------------------------------------------


def tell_chat(
    app: web.Application, delivery: Delivery, token: str, *, download_number: int
) -> None:
    """DELIVERED on the requester's conversation, in the background."""
    event = Inbound(
        conversation_id=delivery.requester,
        event_id=f"delivered:{token_hash(token)[:16]}:{download_number}",
        kind=EventKind.DELIVERED,
        choice=token,
    )
    task = asyncio.create_task(_dispatch(app, event))
    app[TASKS].add(task)
    task.add_done_callback(app[TASKS].discard)


async def _dispatch(app: web.Application, event: Inbound) -> None:
    try:
        await app[CHANNELS].dispatch(event)
    except Exception as error:  # never the token: the event id is a hash prefix of it
        log.warning(
            "download: telling %s failed (%s, event %s)",
            event.conversation_id,
            type(error).__name__,
            event.event_id,
        )


# -- CSRF ------------------------------------------------------------------------------------


def form_key(app: web.Application, token: str) -> str:
    return hmac.new(app[FORM_KEY], token.encode("ascii"), hashlib.sha256).hexdigest()


def form_key_matches(request: web.Request, token: str, fields: Mapping[str, object]) -> bool:
    sent = _field(fields, "form_key")
    return bool(sent) and hmac.compare_digest(sent.encode(), form_key(request.app, token).encode())


def same_site(request: web.Request) -> bool:
    """`Sec-Fetch-Site` and `Origin`, when the browser sends them, name this site.

    `Origin: null` says nothing: browsers send it for a form posted from a page whose referrer
    policy is `no-referrer`, as this one's is (so that the token never leaks in a Referer).
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    return origin in own_origins(request)


def own_origins(request: web.Request) -> set[str]:
    public = urlsplit(request.app[CORE].settings.public_url)
    origins = {f"{request.scheme}://{request.host}"}
    if is_https(request):  # TLS ended at a trusted proxy: the browser's origin is https
        origins.add(f"https://{request.host}")
    if public.scheme and public.netloc:
        origins.add(f"{public.scheme}://{public.netloc}")
    return origins


# -- the language ----------------------------------------------------------------------------


def choose_locale(request: web.Request, field: str | None = None) -> str:
    """`lang` (form field, then query), else the best of `Accept-Language`; zh_TW by default."""
    for hint in (field, request.query.get("lang")):
        locale = _supported(hint)
        if locale is not None:
            return locale
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(request.headers.get("Accept-Language", "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = _supported(tag.strip())
        if locale is not None and quality > 0:
            ranked.append((-quality, index, locale))
    return min(ranked)[2] if ranked else DEFAULT_LOCALE


def _supported(hint: str | None) -> str | None:
    if not hint:
        return None
    lowered = hint.replace("_", "-").lower()
    if lowered == "en" or lowered.startswith("en-"):
        return "en"
    if lowered == "zh" or lowered.startswith("zh-"):
        return "zh_TW"
    return None


def switch_href(request: web.Request, locale: str) -> str:
    other = "en" if locale == "zh_TW" else "zh_TW"
    return f"{request.path}?lang={pages.LANG_PARAM[other]}"


# -- the pages -------------------------------------------------------------------------------


def html_response(
    request: web.Request,
    locale: str,
    title: str,
    body: str,
    *,
    status: int = 200,
    refresh: int | None = None,
) -> web.Response:
    page = Page(
        locale=locale,
        title=title,
        switch_href=switch_href(request, locale),
        body=body,
        refresh_seconds=refresh,
    )
    return web.Response(
        text=page.render(),
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Language": pages.HTML_LANG[locale]},
    )


def _title(t: Words, delivery: Delivery) -> str:
    return t.t(
        "download.title.renew" if delivery.operation is Operation.RENEW else "download.title.apply"
    )


def _until(delivery: Delivery) -> str:
    return taipei_text(delivery.expires_at)[11:16]


def form(
    request: web.Request,
    locale: str,
    token: str,
    delivery: Delivery,
    *,
    chosen: Pkcs12Format | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> web.Response:
    t = Words(locale)
    view = FormView(
        token=token,
        form_key=form_key(request.app, token),
        locale=locale,
        title=_title(t, delivery),
        id_number=mask_id(delivery.customer_id),
        until=_until(delivery),
        downloads=request.app[CORE].settings.delivery_max_downloads,
        platform=detect_platform(request.headers.get("User-Agent")),
        chosen=chosen,
        errors=tuple(errors or ()),
    )
    return html_response(request, locale, view.title, pages.form_body(view), status=status)


def again(request: web.Request, locale: str, token: str, delivery: Delivery) -> web.Response:
    t = Words(locale)
    settings = request.app[CORE].settings
    filename = (delivery.filename or "").replace(
        delivery.customer_id, mask_id(delivery.customer_id)
    )
    view = AgainView(
        token=token,
        form_key=form_key(request.app, token),
        locale=locale,
        title=_title(t, delivery),
        id_number=mask_id(delivery.customer_id),
        filename=filename,
        until=_until(delivery),
        left=max(settings.delivery_max_downloads - delivery.downloads, 0),
        platform=detect_platform(request.headers.get("User-Agent")),
    )
    return html_response(request, locale, view.title, pages.again_body(view))


def issuing(
    request: web.Request, locale: str, delivery: Delivery, *, status: int = 200
) -> web.Response:
    t = Words(locale)
    title = t.t("download.issuing.title")
    body = pages.message_body(locale, title, t.t("download.issuing.text"), status_class="wait")
    return html_response(
        request, locale, title, body, status=status, refresh=ISSUING_REFRESH_SECONDS
    )


def gone(request: web.Request, locale: str, state: str, delivery: Delivery | None) -> web.Response:
    """A link that leads nowhere any more, and what to do instead."""
    t = Words(locale)
    settings = request.app[CORE].settings
    menu = {"apply": t.t("menu.item.apply"), "revoke": t.t("menu.item.revoke")}
    minutes = settings.delivery_window_minutes
    if state == "expired":
        title = t.t("download.expired.title")
        text = t.t("download.expired.text", minutes=minutes, **menu)
    elif state == "spent":
        title = t.t("download.spent.title")
        text = t.t(
            "download.spent.text",
            minutes=minutes,
            downloads=settings.delivery_max_downloads,
            **menu,
        )
    else:
        title = t.t("download.unknown.title")
        text = t.t("download.unknown.text", **menu)
    status = 404 if delivery is None else 410
    body = pages.message_body(locale, title, text, status_class="gone")
    return html_response(request, locale, title, body, status=status)


def refused(request: web.Request, locale: str) -> web.Response:
    t = Words(locale)
    title = t.t("download.forbidden.title")
    body = pages.message_body(locale, title, t.t("download.forbidden.text"), status_class="refused")
    return html_response(request, locale, title, body, status=403)


def failed(request: web.Request, locale: str) -> web.Response:
    t = Words(locale)
    title = t.t("download.failed.title")
    body = pages.message_body(locale, title, t.t("download.failed.text"), status_class="failed")
    return html_response(request, locale, title, body, status=503)
