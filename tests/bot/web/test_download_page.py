"""The download page, `GET|POST /d/{token}`, driven over HTTP on loopback (DESIGN §4).

A delivery is opened as the apply flow opens one (a code sent to the development outbox,
typed back, then `core.deliveries.open`) for a conversation of a small recording channel, so
the DELIVERED event the page sends is seen arriving on that conversation's channel. The files
the page hands over are judged by OpenSSL and by `cryptography`.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import select, update

from bot.channels import ChannelAdapter
from bot.web import create_app
from bot.web.download import content_disposition
from bot.web.download_page import ADVICE, detect_platform
from bot.web.keys import CHANNELS, ENGINE
from certcore.audit import Actor
from certcore.clock import FrozenClock
from certcore.core import Core
from certcore.customers import load_demo_customers
from certcore.i18n import translate
from certcore.notify import Medium
from certcore.otp import Binding, Operation
from certcore.pki import (
    EXPORT_PASSWORD,
    ClientSystem,
    DeliveryState,
    Pkcs12Format,
    recommended_format,
    token_hash,
)
from certcore.storage.schema import audit_log, deliveries
from dialogs import Engine, EventKind, Inbound, Outbound
from dialogs.messages import Choices, Delivery, Text
from tests.dialogs.scene import link_conversation
from tests.pkitools import openssl_pkcs12_info, parse_pkcs12_info

CUSTOMER = "A123456789"
REQUESTER = "recorded:alice"
PASSWORD = "Abc123"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

UA = {
    "win7": "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/109.0.0.0 Safari/537.36",
    "win10": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "macos": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Safari/605.1.15",
    "iphone": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "android": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "firefox_linux": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
}


class Recorder(ChannelAdapter[str]):
    """A channel that keeps what the engine pushes on its conversations."""

    name = "recorded"

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.sent: list[tuple[str, Outbound]] = []
        self.arrived = asyncio.Event()

    def render(self, message: Outbound) -> str:
        if isinstance(message, Text | Choices):
            return message.text
        return repr(message)

    async def send(self, conversation_id: str, replies: Sequence[Outbound]) -> None:
        self.sent.extend((conversation_id, reply) for reply in replies)
        self.arrived.set()

    def texts(self) -> list[str]:
        return [self.render(reply) for _, reply in self.sent]


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    core: Core
    recorder: Recorder

    async def page(self, token: str, **headers: str) -> tuple[ClientResponse, str]:
        response = await self.client.get(f"/d/{token}", headers=headers)
        return response, await response.text()

    async def form_key(self, token: str) -> str:
        _, body = await self.page(token)
        match = re.search(r'name="form_key" value="([0-9a-f]+)"', body)
        assert match is not None, body[:500]
        return match.group(1)

    async def post(
        self,
        token: str,
        *,
        password: str = PASSWORD,
        confirm: str | None = None,
        fmt: str = "standard",
        form_key: str | None = "",
        headers: dict[str, str] | None = None,
        **extra: str,
    ) -> ClientResponse:
        fields = {
            "password": password,
            "password_confirm": password if confirm is None else confirm,
            "format": fmt,
            **extra,
        }
        if form_key == "":
            form_key = await self.form_key(token)
        if form_key is not None:
            fields["form_key"] = form_key
        return await self.client.post(f"/d/{token}", data=fields, headers=headers or {})

    async def state(self, token: str) -> DeliveryState | None:
        described = await self.core.deliveries.describe(token)
        return None if described is None else described.state


@pytest.fixture
async def site(core: Core) -> AsyncIterator[Site]:
    await load_demo_customers(core.db, core.clock())
    app = create_app(core)
    recorder = Recorder(app[ENGINE])
    app[CHANNELS].add(recorder)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Site(client, core, recorder)


async def open_delivery(
    core: Core, *, operation: Operation = Operation.APPLY, requester: str = REQUESTER
) -> str:
    """A delivery opened the way the apply flow opens one: with a freshly verified code."""
    binding = Binding(CUSTOMER, requester, operation)
    actor = Actor(f"customer@{requester}", requester.split(":")[0])
    assert core.outbox is not None
    seen = await core.outbox.last_id()
    await core.otp.send(
        binding, medium=Medium.SMS, destination="0936123054", locale="zh_TW", actor=actor
    )
    (entry,) = await core.outbox.since(seen)
    match = re.search(r"[A-Z]{4}-(\d{6})", entry.body)
    assert match is not None
    receipt = await core.otp.verify(binding, match.group(1), actor=actor)
    ticket = await core.deliveries.open(
        binding=binding, receipt=receipt, requester=requester, actor=actor
    )
    return ticket.token


def assert_security_headers(response: ClientResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no other host
    assert "unsafe" not in csp


def unescaped(body: str) -> str:
    return html.unescape(body)


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    async def until() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(until(), timeout)


# -- the page ----------------------------------------------------------------------------------


async def test_the_page_explains_the_rule_and_holds_the_form(site: Site) -> None:
    token = await open_delivery(site.core)
    response, body = await site.page(token)
    assert response.status == 200
    assert response.content_type == "text/html"
    assert_security_headers(response)
    text = unescaped(body)
    assert "密碼請設定4~12碼，英文、數字皆可。" in text  # the manual's words
    assert "匯出的憑證：A123XXX89" in text
    assert CUSTOMER not in text  # the ID number only masked
    for name in ("password", "password_confirm", "format", "form_key"):
        assert f'name="{name}"' in body
    assert body.count(f'pattern="{html.escape(EXPORT_PASSWORD.pattern)}"') == 2
    assert 'value="standard"' in body and 'value="compatible"' in body
    assert '<script src="/static/download/download.js"' in body
    assert "<script>" not in body and "style=" not in body  # nothing inline for the CSP
    assert await site.state(token) is DeliveryState.OPEN


@pytest.mark.parametrize(
    ("agent", "system", "fmt", "help_key"),
    [
        ("win7", ClientSystem.WINDOWS_OLD, "compatible", "import_help.steps.windows"),
        ("win10", ClientSystem.WINDOWS_10, "standard", "import_help.steps.windows"),
        ("macos", ClientSystem.MACOS, "compatible", "import_help.steps.macos"),
        ("iphone", ClientSystem.IOS, "compatible", "download.import.ios"),
        ("android", ClientSystem.ANDROID, "standard", "download.import.android"),
        ("firefox_linux", ClientSystem.OTHER, "standard", "import_help.steps.firefox"),
    ],
)
async def test_the_platform_decides_the_recommended_format_and_the_help(
    site: Site, agent: str, system: ClientSystem, fmt: str, help_key: str
) -> None:
    token = await open_delivery(site.core)
    response, body = await site.page(token, **{"User-Agent": UA[agent]})
    assert response.status == 200
    assert detect_platform(UA[agent]).system is system
    checked = re.search(r'name="format" value="(\w+)" checked', body)
    assert checked is not None and checked.group(1) == fmt
    recommended = re.search(r'id="format-(\w+)">(?:(?!</label>).)*class="badge"', body)
    assert recommended is not None and recommended.group(1) == fmt
    text = unescaped(body)
    assert translate("zh_TW", ADVICE[system]) in text  # the chat's own 檢查電腦環境 advice
    # The platform's import help is shown open, before the folded others.
    first_help = re.search(r'<div class="help" data-platform="(\w+)">', body)
    assert first_help is not None
    help_text = re.split(r"[（：]", translate("zh_TW", help_key).splitlines()[0])[0]
    assert f"<h3>{help_text}</h3>" in text
    assert text.index(help_text) < text.index("其他平台的匯入說明")
    if system is ClientSystem.WINDOWS_10:
        # A User-Agent cannot tell 1709 apart: the page says how to check.
        assert translate("zh_TW", "download.environment.win10_check") in text


def test_the_chat_advice_names_the_format_the_rule_recommends() -> None:
    """檢查電腦環境 in chat and the page's recommendation come from one rule."""
    for system, key in ADVICE.items():
        advice = translate("zh_TW", key)
        wanted = "相容格式" if recommended_format(system) is Pkcs12Format.COMPATIBLE else "標準格式"
        assert advice.startswith(("建議下載「" + wanted, "建議先下載「" + wanted)), system


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({}, "", "zh_TW"),
        ({"Accept-Language": "en-US,en;q=0.9"}, "", "en"),
        ({"Accept-Language": "ja, en;q=0.5, zh-TW;q=0.8"}, "", "zh_TW"),
        ({"Accept-Language": "fr"}, "", "zh_TW"),
        ({"Accept-Language": "en"}, "?lang=zh-TW", "zh_TW"),
        ({}, "?lang=en", "en"),
    ],
)
async def test_the_language_follows_accept_language_and_the_switch(
    site: Site, headers: dict[str, str], query: str, expected: str
) -> None:
    token = await open_delivery(site.core)
    response = await site.client.get(f"/d/{token}{query}", headers=headers)
    body = unescaped(await response.text())
    policy = translate(expected, "download.password.policy", min=4, max=12)
    assert policy in body
    other = "en" if expected == "zh_TW" else "zh-TW"
    assert f'href="/d/{token}?lang={other}"' in body
    assert f'name="lang" value="{"en" if expected == "en" else "zh-TW"}"' in body


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "confirm", "key"),
    [
        ("Abc123", "Abc124", "download.error.mismatch"),
        ("ab1", "ab1", "download.error.invalid"),  # too short
        ("Abcdef1234567", "Abcdef1234567", "download.error.invalid"),  # 13
        ("abc 123", "abc 123", "download.error.invalid"),  # a space
        ("ａｂｃ１２３", "ａｂｃ１２３", "download.error.invalid"),  # full-width
        ("", "", "download.error.invalid"),
    ],
)
async def test_a_mismatch_or_a_password_outside_the_rule_reshows_the_form(
    site: Site, password: str, confirm: str, key: str
) -> None:
    token = await open_delivery(site.core)
    response = await site.post(token, password=password, confirm=confirm, fmt="compatible")
    assert response.status == 422
    assert response.content_type == "text/html"
    assert_security_headers(response)
    body = await response.text()
    assert translate("zh_TW", key, min=4, max=12) in unescaped(body)
    assert 'name="format" value="compatible" checked' in body  # the choice is kept
    if password:
        assert password not in body  # never echoed
    assert await site.state(token) is DeliveryState.OPEN  # nothing issued


async def test_an_unknown_format_reshows_the_form(site: Site) -> None:
    token = await open_delivery(site.core)
    response = await site.post(token, fmt="rc2-40")
    assert response.status == 422
    assert translate("zh_TW", "download.error.format") in unescaped(await response.text())
    assert await site.state(token) is DeliveryState.OPEN


@pytest.mark.parametrize(
    ("form_key", "headers"),
    [
        (None, {}),  # no form key
        ("0" * 64, {}),  # a wrong one
        ("", {"Origin": "https://evil.example"}),
        ("", {"Origin": "null", "Sec-Fetch-Site": "cross-site"}),
        ("", {"Origin": "http://127.0.0.1:1"}),  # another port is another site
        ("", {"Sec-Fetch-Site": "cross-site"}),
        ("", {"Sec-Fetch-Site": "same-site"}),
    ],
)
async def test_a_post_without_the_form_key_or_from_another_site_is_refused(
    site: Site, form_key: str | None, headers: dict[str, str]
) -> None:
    token = await open_delivery(site.core)
    response = await site.post(token, form_key=form_key, headers=headers)
    assert response.status == 403
    assert_security_headers(response)
    body = unescaped(await response.text())
    assert translate("zh_TW", "download.forbidden.title") in body
    assert await site.state(token) is DeliveryState.OPEN


async def test_a_null_origin_from_the_page_itself_is_accepted(site: Site) -> None:
    """Chromium posts the form with `Origin: null` (the page's referrer policy is no-referrer)
    and `Sec-Fetch-Site: same-origin`."""
    token = await open_delivery(site.core)
    response = await site.post(token, headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-pkcs12"


async def test_a_form_key_belongs_to_its_own_delivery(site: Site) -> None:
    first, second = await open_delivery(site.core), await open_delivery(site.core)
    response = await site.post(second, form_key=await site.form_key(first))
    assert response.status == 403
    assert await site.state(second) is DeliveryState.OPEN


async def test_an_unknown_or_malformed_token_says_what_to_do(site: Site) -> None:
    for token in ("A" * 43, "no.such/token"[:7], "x"):
        response, body = await site.page(token)
        assert response.status == 404, token
        assert_security_headers(response)
        text = unescaped(body)
        assert translate("zh_TW", "download.unknown.title") in text
        assert "「憑證申請」" in text  # the menu's own label
    response = await site.post("A" * 43, form_key="0" * 64)
    assert response.status in (403, 404)


# -- the file ------------------------------------------------------------------------------


def attachment_name(response: ClientResponse) -> str:
    header = response.headers["Content-Disposition"]
    match = re.fullmatch(r'attachment; filename="([^"]+)"', header)
    assert match is not None, header
    return match.group(1)


async def test_the_password_issues_a_standard_file_that_openssl_opens(
    site: Site, tmp_path: Path
) -> None:
    token = await open_delivery(site.core)
    origin = f"http://127.0.0.1:{site.client.port}"
    response = await site.post(token, headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/x-pkcs12"
    assert_security_headers(response)
    assert attachment_name(response) == f"{CUSTOMER}-CERTDESK(2027-11-24).pfx"
    data = await response.read()
    path = tmp_path / "cert.pfx"
    path.write_bytes(data)
    info = parse_pkcs12_info(openssl_pkcs12_info(path, PASSWORD))
    assert info.mac_hash == "sha256"
    assert any("AES-256-CBC" in algorithm for _, algorithm in info.encryptions)
    assert "Iteration 600000" in openssl_pkcs12_info(path, PASSWORD)
    key, certificate, extra = pkcs12.load_key_and_certificates(data, PASSWORD.encode())
    assert key is not None and certificate is not None and len(extra) == 1
    assert await site.state(token) is DeliveryState.ISSUED

    # The chat is told, on the conversation's own channel: 「憑證申請完成」.
    await wait_for(lambda: any("憑證申請完成" in t for t in site.recorder.texts()))
    assert all(conversation == REQUESTER for conversation, _ in site.recorder.sent)

    # The audit trail names the download page as the channel.
    async with site.core.db.read() as conn:
        rows = (
            await conn.execute(
                select(audit_log.c.actor, audit_log.c.channel).where(
                    audit_log.c.action == "delivery.downloaded"
                )
            )
        ).all()
    assert [(row.actor, row.channel) for row in rows] == [(f"customer@{REQUESTER}", "download")]


async def test_the_compatible_file_is_3des_and_sha1(site: Site, tmp_path: Path) -> None:
    token = await open_delivery(site.core)
    response = await site.post(token, fmt="compatible", headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status == 200
    data = await response.read()
    path = tmp_path / "compatible.pfx"
    path.write_bytes(data)
    output = openssl_pkcs12_info(path, PASSWORD)
    info = parse_pkcs12_info(output)
    assert info.mac_hash == "sha1"
    assert all("3-KeyTripleDES" in algorithm for _, algorithm in info.encryptions)
    key, certificate, _ = pkcs12.load_key_and_certificates(data, PASSWORD.encode())
    assert key is not None and certificate is not None


async def test_a_broken_download_is_retried_up_to_three_times_then_refused(site: Site) -> None:
    token = await open_delivery(site.core)
    first = await site.post(token)
    assert first.status == 200
    original = await first.read()
    response, body = await site.page(token)
    assert response.status == 200
    text = unescaped(body)
    assert translate("zh_TW", "download.done.title") in text
    assert "A123XXX89-CERTDESK(2027-11-24).pfx" in text and CUSTOMER not in text
    assert 'name="password"' not in body  # no password is asked for again
    assert translate("zh_TW", "download.again.text", until="10:15", left=2) in text
    # Again, with only the form key: the same file (its password fields would be ignored).
    for _ in range(2):
        again = await site.client.post(f"/d/{token}", data={"form_key": await site.form_key(token)})
        assert again.status == 200
        assert again.headers["Content-Type"] == "application/x-pkcs12"
        assert await again.read() == original
    response, body = await site.page(token)
    assert response.status == 410
    assert translate("zh_TW", "download.spent.title") in unescaped(body)
    refused = await site.client.post(f"/d/{token}", data={"form_key": "0" * 64})
    assert refused.status in (403, 410)
    key = re.search(r'name="form_key" value="([0-9a-f]+)"', body)
    assert key is None  # a spent link offers no form
    # The chat was told once per download, each with its own event id.
    await wait_for(lambda: sum("憑證申請完成" in t for t in site.recorder.texts()) == 3)


async def test_a_link_dies_after_fifteen_minutes(site: Site, clock: FrozenClock) -> None:
    token = await open_delivery(site.core)
    form_key = await site.form_key(token)
    clock.advance(minutes=15, seconds=1)
    response, body = await site.page(token)
    assert response.status == 410
    assert_security_headers(response)
    text = unescaped(body)
    assert translate("zh_TW", "download.expired.title") in text
    assert "「憑證申請」" in text
    posted = await site.post(token, form_key=form_key)
    assert posted.status == 410
    assert await site.state(token) is DeliveryState.EXPIRED


async def test_a_downloaded_file_is_not_given_again_after_the_window(
    site: Site, clock: FrozenClock
) -> None:
    token = await open_delivery(site.core)
    assert (await site.post(token)).status == 200
    form_key = await site.form_key(token)
    clock.advance(minutes=16)
    response = await site.client.post(f"/d/{token}", data={"form_key": form_key})
    assert response.status == 410
    assert "「憑證註銷」" in unescaped(await response.text())  # lost file: revoke, apply


async def test_a_renewal_is_titled_as_one(site: Site) -> None:
    token = await open_delivery(site.core, operation=Operation.RENEW)
    _, body = await site.page(token, **{"Accept-Language": "en"})
    assert translate("en", "download.title.renew") in unescaped(body)


async def test_the_page_script_reads_the_state_as_json(site: Site) -> None:
    token = await open_delivery(site.core)
    response = await site.client.get(f"/d/{token}", headers={"Accept": "application/json"})
    assert await response.json() == {"state": "open"}
    assert_security_headers(response)
    unknown = await site.client.get("/d/" + "B" * 43, headers={"Accept": "application/json"})
    assert unknown.status == 404 and await unknown.json() == {"state": "unknown"}


async def test_the_static_files_carry_the_headers_too(site: Site) -> None:
    for name, kind in (("download.css", "text/css"), ("download.js", "javascript")):
        response = await site.client.get(f"/static/download/{name}")
        assert response.status == 200, name
        assert kind in response.headers["Content-Type"]
        assert_security_headers(response)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (
            "A123456789-CERTDESK(2027-11-24).pfx",
            'attachment; filename="A123456789-CERTDESK(2027-11-24).pfx"',
        ),
        (
            "王三-憑證(2027-11-24).pfx",
            "attachment; filename=\"__-__(2027-11-24).pfx\"; filename*=UTF-8''"
            + quote("王三-憑證(2027-11-24).pfx", safe=""),
        ),
        ('../a"b\\c.pfx', 'attachment; filename="c.pfx"'),
        ('a"b.pfx', "attachment; filename=\"a_b.pfx\"; filename*=UTF-8''a%22b.pfx"),
    ],
)
def test_the_attachment_name_has_an_ascii_fallback_and_a_utf8_form(
    filename: str, expected: str
) -> None:
    assert content_disposition(filename) == expected


# -- with the chat -------------------------------------------------------------------------


async def test_an_application_in_chat_ends_here_and_the_chat_says_it_is_done(
    site: Site, tmp_path: Path
) -> None:
    """The apply flow through the engine hands over a Delivery; its link opens this page, the
    password issues the file, and the conversation's channel is told 「憑證申請完成」."""
    conversation = "recorded:bob"
    await link_conversation(site.core, conversation, CUSTOMER)
    channels = site.client.app[CHANNELS]
    events = iter(range(1, 100))

    async def act(kind: EventKind, **values: str) -> list[Outbound]:
        event = Inbound(conversation, f"e2e-{next(events)}", kind, **values)  # type: ignore[arg-type]
        return await channels.dispatch(event)

    async def tap(replies: list[Outbound], key: str) -> list[Outbound]:
        (question,) = [r for r in replies if isinstance(r, Choices)][-1:]
        (option,) = [o for o in question.options if o.key.split(":", 1)[1] == key]
        return await act(EventKind.CHOICE, choice=option.key)

    assert site.core.outbox is not None
    seen = await site.core.outbox.last_id()
    replies = await tap(await act(EventKind.TEXT, text="選單"), "apply")
    replies = await tap(replies, "agree")
    replies = await tap(await act(EventKind.TEXT, text="800101"), "sms")
    replies = await tap(replies, "send")
    (sent,) = await site.core.outbox.since(seen)
    code = re.search(r"[A-Z]{4}-(\d{6})", sent.body)
    assert code is not None
    replies = await tap(await act(EventKind.TEXT, text=code.group(1)), "issue")
    (delivery,) = [r for r in replies if isinstance(r, Delivery)]
    path = "/" + delivery.url.split("/", 3)[3]
    assert path == f"/d/{delivery.delivery_id}"

    page = await site.client.get(path)
    assert page.status == 200
    key = re.search(r'name="form_key" value="([0-9a-f]+)"', await page.text())
    assert key is not None
    fields = {"password": PASSWORD, "password_confirm": PASSWORD, "format": "standard"}
    response = await site.client.post(path, data={**fields, "form_key": key.group(1)})
    assert response.status == 200
    pfx = tmp_path / attachment_name(response)
    pfx.write_bytes(await response.read())
    assert "MAC: sha256" in openssl_pkcs12_info(pfx, PASSWORD)
    done = translate("zh_TW", "delivery.done.apply").split("\n")[0]
    await wait_for(lambda: any(done in t for t in site.recorder.texts()))


async def test_a_double_submit_issues_one_certificate(site: Site) -> None:
    token = await open_delivery(site.core)
    key = await site.form_key(token)
    first, second = await asyncio.gather(
        site.post(token, form_key=key), site.post(token, form_key=key)
    )
    statuses = sorted([first.status, second.status])
    assert statuses in ([200, 200], [200, 409]), statuses
    files = [await r.read() for r in (first, second) if r.status == 200]
    assert all(f == files[0] for f in files)  # the second, if any, is the same file again
    async with site.core.db.read() as conn:
        issued = (
            await conn.execute(
                select(audit_log.c.details).where(audit_log.c.action == "delivery.downloaded")
            )
        ).all()
    assert '"download": 1' in issued[0].details and len(issued) == len(files)


async def test_a_certificate_being_made_gets_a_page_that_refreshes(site: Site) -> None:
    token = await open_delivery(site.core)
    key = await site.form_key(token)
    async with site.core.db.write() as conn:  # as while another request issues it
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.token_hash == token_hash(token))
            .values(state=DeliveryState.ISSUING.value)
        )
    response, body = await site.page(token)
    assert response.status == 200
    assert '<meta http-equiv="refresh" content="3">' in body
    assert translate("zh_TW", "download.issuing.title") in unescaped(body)
    posted = await site.post(token, form_key=key)
    assert posted.status == 409
    assert translate("zh_TW", "download.issuing.title") in unescaped(await posted.text())


async def test_markup_in_the_address_is_escaped(site: Site) -> None:
    response = await site.client.get("/d/%3Cscript%3Ealert(1)%3C%2Fscript%3E?lang=%22%3E%3Cb%3E")
    assert response.status == 404
    body = await response.text()
    assert "<script>alert" not in body and "<b>" not in body


class Failing(Recorder):
    name = "failing"

    async def send(self, conversation_id: str, replies: Sequence[Outbound]) -> None:
        raise ConnectionError("the chat platform is down")


async def test_a_chat_that_cannot_be_told_does_not_hold_the_file_back(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    failing = Failing(site.client.app[ENGINE])
    site.client.app[CHANNELS].add(failing)
    token = await open_delivery(site.core, requester="failing:carol")
    response = await site.post(token)
    assert response.status == 200 and len(await response.read()) > 1000
    await wait_for(lambda: any("telling failing:carol failed" in m for m in caplog.messages))
    ours = [r.getMessage() for r in caplog.records if r.name != "aiohttp.access"]
    assert not [m for m in ours if token in m]  # (the test server's access log names paths)


@pytest.mark.parametrize("version", ["1" * 5000, "１" * 5000, "10" + "0" * 4299])
async def test_a_forged_windows_version_of_any_length_is_answered(site: Site, version: str) -> None:
    """`Windows NT <5,000 digits>` once reached int() (4,300 digits at most): a 500."""
    agent = f"Mozilla/5.0 (Windows NT {version}.0; Win64; x64)"
    assert detect_platform(agent).system is ClientSystem.WINDOWS_OLD
    if agent.isascii():  # aiohttp itself refuses a header that is not
        token = await open_delivery(site.core)
        response, _ = await site.page(token, **{"User-Agent": agent})
        assert response.status == 200
