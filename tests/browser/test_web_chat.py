"""The web chat in Chromium: an application from the first page view to the download link, on a
phone in Chinese and on a desktop in English, by keyboard alone, across a reload, and a push
(the download page's 「憑證申請完成」) arriving live.

The page is the real one, served by the whole app over the test's core on loopback; the codes
come from the development outbox, as a person trying `make run` reads them. Screenshots of the
key moments go to `test-artifacts/screenshots/<test>/`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from playwright.async_api import Browser, Locator, Page, expect

from bot.web import CHANNELS, create_app
from certcore.audit import Actor
from certcore.core import Core
from certcore.customers import load_demo_customers
from certcore.i18n import translate
from dialogs import EventKind, Inbound
from tests.browser.conftest import DESKTOP, PHONE
from tests.dialogs.catalogue import expected_pattern

CUSTOMER = "A123456789"  # 王小明 of the demo customers, born 民國80年1月1日
ROC_BIRTH = "800101"
CODE = re.compile(r"\b[A-Z]{4}-(\d{6})\b")
WAIT_MS = 15_000


@pytest.fixture(autouse=True)
async def demo_customers(core: Core) -> None:
    await load_demo_customers(core.db, core.clock())


@pytest.fixture
async def served_app(core: Core) -> AsyncIterator[tuple[str, web.Application]]:
    """As `served`, with the app itself, for a push from outside the page."""
    app = create_app(core)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", app
    finally:
        await runner.cleanup()


class ChatPage:
    """The customer's side of the page: taps, typing, and what the chat shows."""

    def __init__(self, page: Page, core: Core, locale: str, shots: Path) -> None:
        self.page = page
        self.core = core
        self.locale = locale
        self.shots = shots
        self.bot = page.locator(".msg.bot")

    def t(self, key: str) -> str:
        return translate(self.locale, key)

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=False)

    async def expect_last(self, key: str) -> None:
        """Wait until the newest bot message reads as the catalogue's `key` (its words exactly,
        line breaks included, each placeholder one value)."""
        pattern = expected_pattern(self.locale, key)
        shown = ""
        deadline = asyncio.get_running_loop().time() + WAIT_MS / 1000
        while asyncio.get_running_loop().time() < deadline:
            texts = await self.page.locator(".msg.bot .text, .msg.bot caption").all_text_contents()
            shown = texts[-1] if texts else ""
            if pattern.fullmatch(shown):
                return
            await asyncio.sleep(0.05)
        await self.shot(f"failed-{key}")
        raise AssertionError(f"the last message is not {key}: {shown!r}")

    def option(self, key: str) -> Locator:
        return self.page.locator(f'button.choice:not([disabled])[data-action$=":{key}"]')

    async def tap(self, key: str) -> None:
        await self.option(key).first.click(timeout=WAIT_MS)

    async def type(self, text: str) -> None:
        box = self.page.get_by_label(self.t("webchat.ui.input_label"))
        await box.fill(text)
        await box.press("Enter")

    async def code(self) -> str:
        assert self.core.outbox is not None
        entries = await self.core.outbox.since(0)
        found = CODE.search(entries[-1].body)
        assert found is not None
        return found.group(1)

    async def no_sideways_scroll(self) -> None:
        width = await self.page.evaluate("document.documentElement.scrollWidth")
        viewport = await self.page.evaluate("window.innerWidth")
        assert width <= viewport, f"the page scrolls sideways: {width} > {viewport}"

    async def link_and_verify(self) -> None:
        """From the menu: 憑證查詢 asks who the customer is; ID, birth date, code."""
        await self.tap("query")
        await self.expect_last("link.id.prompt")
        await self.type(CUSTOMER)
        await self.expect_last("verify.birth_date.prompt")
        await self.type(ROC_BIRTH)
        await self.tap("sms")
        await self.tap("send")
        await self.expect_last("verify.code.prompt")
        await self.type(await self.code())
        await self.expect_last("query.empty")

    async def apply_to_delivery(self) -> str:
        """憑證申請 through 「立即申請憑證」: the download link's href."""
        await self.tap("apply")
        await self.expect_last("apply.consent")
        await self.shot("3-consent")
        await self.tap("agree")
        await self.expect_last("verify.birth_date.prompt")
        await self.type(ROC_BIRTH)
        await self.tap("sms")
        await self.tap("send")
        await self.expect_last("verify.code.prompt")
        await self.type(await self.code())
        await self.tap("issue")
        await self.expect_last("apply.delivery")
        link = self.bot.last.locator("a.link-button")
        await expect(link).to_have_text(self.t("webchat.delivery.link"), timeout=WAIT_MS)
        href = await link.get_attribute("href")
        assert href is not None
        return href


async def open_chat(
    browser: Browser, url: str, core: Core, locale: str, viewport: dict[str, int], shots: Path
) -> ChatPage:
    context = await browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        locale="zh-TW" if locale == "zh_TW" else "en-US",
        has_touch=viewport is PHONE,
        is_mobile=viewport is PHONE,
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    await page.goto(url + ("/?lang=en" if locale == "en" else "/"))
    chat = ChatPage(page, core, locale, shots)
    await chat.expect_last("menu.prompt")
    assert not errors, errors  # no script error, no CSP violation
    return chat


@pytest.mark.parametrize(
    ("locale", "viewport"),
    [pytest.param("zh_TW", PHONE, id="zh_TW-phone"), pytest.param("en", DESKTOP, id="en-desktop")],
)
async def test_an_application_up_to_the_download_link(
    browser: Browser,
    served: str,
    core: Core,
    screenshots: Path,
    locale: str,
    viewport: dict[str, int],
) -> None:
    chat = await open_chat(browser, served, core, locale, viewport, screenshots)
    page = chat.page
    lang = await page.evaluate("document.documentElement.lang")
    assert lang == ("zh-Hant-TW" if locale == "zh_TW" else "en")
    await expect(chat.bot.first.locator(".text")).to_have_text(chat.t("welcome"))
    await expect(chat.option("query")).to_have_text(chat.t("menu.item.query"))
    await chat.no_sideways_scroll()
    await chat.shot("1-welcome")

    await chat.link_and_verify()
    # The ID number typed is hidden in the chat once the engine says it held a secret.
    hidden = page.locator(".msg.customer.hidden-input")
    await expect(hidden.first).to_have_text(re.compile(re.escape(chat.t("webchat.ui.hidden"))))
    assert CUSTOMER not in await page.locator("#log").inner_text()
    await chat.shot("2-linked")

    href = await chat.apply_to_delivery()
    assert href.startswith(served + "/d/"), href
    await chat.no_sideways_scroll()
    await chat.shot("4-download-link")


async def test_the_table_and_a_push_arrive_live(
    browser: Browser, served_app: tuple[str, web.Application], core: Core, screenshots: Path
) -> None:
    url, app = served_app
    chat = await open_chat(browser, url, core, "zh_TW", PHONE, screenshots)
    await chat.link_and_verify()
    href = await chat.apply_to_delivery()
    token = href.rsplit("/d/", 1)[1]
    # The download page hands the file over and tells the chat: the page shows it unasked.
    await core.deliveries.fulfil(token, "abc123", actor=Actor(name="test", channel="web"))
    conversation = "web:" + (
        await chat.page.evaluate(
            """async () => {
                const secret = sessionStorage.getItem("certdesk.webchat.session");
                const digest = await crypto.subtle.digest("SHA-256",
                    new TextEncoder().encode(secret));
                return Array.from(new Uint8Array(digest),
                    b => b.toString(16).padStart(2, "0")).join("").slice(0, 32);
            }"""
        )
    )
    await app[CHANNELS].dispatch(
        Inbound(conversation, "delivered-1", EventKind.DELIVERED, choice=token)
    )
    await chat.expect_last("delivery.next")
    done = chat.page.locator(".msg.bot .text").filter(
        has_text=expected_pattern("zh_TW", "delivery.done.apply")
    )
    await expect(done).to_have_count(1)
    await chat.shot("5-pushed")
    await chat.tap("query")
    table = chat.page.locator("table.cert-table")
    await expect(table).to_have_count(1, timeout=WAIT_MS)
    await expect(table.locator("caption")).to_have_text(chat.t("query.table.title"))
    assert await table.locator("tbody tr").count() == 1
    assert await table.locator("th").count() >= 3
    await chat.no_sideways_scroll()
    await chat.shot("6-table-phone")
    await chat.page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    await chat.shot("7-table-desktop")


async def test_by_keyboard_alone(
    browser: Browser, served: str, core: Core, screenshots: Path
) -> None:
    chat = await open_chat(browser, served, core, "zh_TW", DESKTOP, screenshots)
    page = chat.page
    target = chat.t("menu.item.guide")
    for _ in range(40):  # Tab through the page until the option has the focus
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "document.activeElement && document.activeElement.textContent"
        )
        if focused == target:
            break
    else:
        pytest.fail(f"Tab never reached the option {target}")
    await chat.shot("1-focus-on-option")
    await page.keyboard.press("Enter")
    await expect(page.locator(".msg.customer .text").last).to_have_text(target, timeout=WAIT_MS)
    await chat.expect_last("guide.prompt")
    # The focus moves on to the next question's first option: Enter again picks it, no mouse.
    await expect(page.locator("button.choice:focus")).to_have_count(1)
    # Typing: the input is labelled, Enter sends.
    await page.get_by_label(chat.t("webchat.ui.input_label")).focus()
    await page.keyboard.type("選單")
    await page.keyboard.press("Enter")
    await chat.expect_last("menu.prompt")
    await chat.shot("2-after-keyboard")
    # 憑證資料檢核 with a file sent through the attach button.
    await chat.tap("check")
    await chat.expect_last("check.prompt")
    await expect(page.locator("#attach")).to_be_enabled()
    # after a tap the focus settles on the next question's first option: wait for it
    await expect(page.locator("button.choice:focus")).to_have_count(1)
    # The attach button is a real, labelled button in the Tab order; it opens the file input,
    # which is given the file here (a file chooser is the browser's own dialog, not the page's).
    attach = page.get_by_role("button", name=chat.t("webchat.ui.attach"))
    await attach.focus()
    assert await page.evaluate("document.activeElement.id") == "attach"
    der = core.ca.certificate.public_bytes(serialization.Encoding.DER)
    await page.locator("#file").set_input_files(
        {"name": "ca.cer", "mimeType": "application/pkix-cert", "buffer": der}
    )
    await chat.expect_last("check.ca_certificate")
    await expect(page.locator(".msg.customer .text").last).to_have_text("ca.cer")
    await chat.shot("3-file-checked")


async def test_the_conversation_survives_a_reload_and_switches_language(
    browser: Browser, served: str, core: Core, screenshots: Path
) -> None:
    chat = await open_chat(browser, served, core, "zh_TW", PHONE, screenshots)
    page = chat.page
    await chat.tap("query")
    await chat.expect_last("link.id.prompt")
    before = await page.locator(".msg").count()
    await page.reload()
    await chat.expect_last("link.id.prompt")
    assert await page.locator(".msg").count() == before
    await chat.type(CUSTOMER)  # the same conversation goes on where it was
    await chat.expect_last("verify.birth_date.prompt")
    await chat.shot("1-after-reload")

    await page.get_by_role("button", name=re.compile("English")).click()
    chat.locale = "en"
    await chat.expect_last("verify.birth_date.prompt")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#send")).to_have_text("Send")
    await chat.shot("2-english")
    await page.reload()
    await chat.expect_last("verify.birth_date.prompt")
    await expect(page.locator("#send")).to_have_text("Send")
