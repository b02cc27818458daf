"""The agent console in Chromium: the login form, a stranger sent to it, the lock-out after
repeated failures, CSRF, and the whole hand-off seen from both sides — a web chat customer asks
for 客服 in one browser context, an agent's queue page (in another) shows the request without a
reload, the agent claims it and answers with a canned reply, and the words appear on the
customer's page. Screenshots go to `test-artifacts/screenshots/<test>/`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from certcore.core import Core
from certcore.customers import load_demo_customers
from certcore.handoff import CannedReplies
from certcore.i18n import translate
from tests.browser.conftest import DESKTOP, PHONE

AGENT, PASSWORD = "mei", "correct horse battery"
WAIT_MS = 10_000


def t(key: str, **params: object) -> str:
    return translate("zh_TW", key, **params)


@pytest.fixture(autouse=True)
async def agent_account(core: Core) -> None:
    await load_demo_customers(core.db, core.clock())
    await core.agents.add(AGENT, PASSWORD)


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    """Browser contexts made by `context()`, closed at the end."""
    made: list[BrowserContext] = []
    yield made
    for context in made:
        await context.close()


async def new_page(
    browser: Browser, contexts: list[BrowserContext], viewport: dict[str, int]
) -> tuple[Page, list[str]]:
    """A page in a context of its own (its own cookies), and the script errors it reports
    (a CSP violation is one). A refused login is answered 401 on purpose: Chromium's note of
    that status is not an error of the page."""
    context = await browser.new_context(viewport=viewport, locale="zh-TW")  # type: ignore[arg-type]
    contexts.append(context)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "status of 401" not in message.text
            else None
        ),
    )
    return page, errors


async def log_in(page: Page, password: str = PASSWORD) -> None:
    await page.get_by_label(t("agent.login.name")).fill(AGENT)
    await page.get_by_label(t("agent.login.password")).fill(password)
    await page.get_by_role("button", name=t("agent.login.submit")).click()


async def test_login_refused_without_login_and_the_lock_out(
    browser: Browser, served: str, contexts: list[BrowserContext], screenshots: Path
) -> None:
    page, errors = await new_page(browser, contexts, DESKTOP)
    await page.goto(served + "/agent/")
    await expect(page).to_have_url(served + "/agent/login")  # refused without login
    await expect(page.locator("h1")).to_have_text(t("agent.login.title"))
    await page.screenshot(path=str(screenshots / "1-login.png"))
    for _ in range(5):
        await log_in(page, "not the password")
        await expect(page.locator(".error")).to_have_text(t("agent.login.failed"))
    await page.screenshot(path=str(screenshots / "2-failed.png"))
    await log_in(page)  # the right password, while locked
    await expect(page.locator(".error")).to_have_text(t("agent.login.failed"))
    await expect(page).to_have_url(served + "/agent/login")
    await page.screenshot(path=str(screenshots / "3-locked.png"))
    assert not errors, errors


async def test_a_web_chat_customer_is_claimed_and_answered(
    browser: Browser,
    served: str,
    core: Core,
    contexts: list[BrowserContext],
    screenshots: Path,
) -> None:
    await CannedReplies(core.db, core.clock).add("問候", "您好，我是客服小美，", AGENT)
    agent, agent_errors = await new_page(browser, contexts, DESKTOP)
    await agent.goto(served + "/agent/login")
    await log_in(agent)
    await expect(agent).to_have_url(served + "/agent/")
    await expect(agent.locator("#queue-rows")).to_contain_text(t("agent.queue.empty"))
    await agent.evaluate("window.notReloaded = true")

    customer, customer_errors = await new_page(browser, contexts, PHONE)
    await customer.goto(served + "/")
    box = customer.get_by_label(t("webchat.ui.input_label"))
    await expect(customer.locator(".msg.bot").first).to_be_visible(timeout=WAIT_MS)
    await box.fill("客服")
    await box.press("Enter")
    await expect(customer.locator(".msg.bot .text").last).to_have_text(
        t("handoff.waiting"), timeout=WAIT_MS
    )
    await customer.screenshot(path=str(screenshots / "1-customer-waiting.png"))

    # The queue shows it without a reload (the page polls every 2 s).
    row = agent.locator("#queue-rows tr.waiting")
    await expect(row).to_contain_text(t("agent.channel.web"), timeout=WAIT_MS)
    await expect(row).to_contain_text(t("agent.reason.asked"))
    assert await agent.evaluate("window.notReloaded === true")
    await expect(agent).to_have_title(re.compile(r"^\(1\) "))  # seen from another tab too
    await agent.screenshot(path=str(screenshots / "2-queue-live.png"))

    await row.get_by_role("link").click()
    await agent.get_by_role("button", name=t("agent.action.claim")).click()
    await expect(agent.locator(".flash")).to_have_text(t("agent.flash.claimed"))
    await expect(customer.locator(".msg.bot .text").last).to_have_text(
        t("handoff.claimed"), timeout=WAIT_MS
    )

    await agent.locator("#canned").select_option(label="問候")
    reply = agent.get_by_label(t("agent.reply.label"))
    await expect(reply).to_have_value("您好，我是客服小美，")
    await reply.press("End")
    await reply.type("請問需要什麼協助？")
    await agent.screenshot(path=str(screenshots / "3-agent-replying.png"))
    await agent.get_by_role("button", name=t("agent.reply.submit")).click()
    await expect(agent.locator(".flash")).to_have_text(t("agent.flash.replied"))
    words = "您好，我是客服小美，請問需要什麼協助？"
    await expect(customer.locator(".msg.bot .text").last).to_have_text(
        t("handoff.agent_says", text=words), timeout=WAIT_MS
    )
    await customer.screenshot(path=str(screenshots / "4-customer-answered.png"))
    await expect(agent.locator("#transcript")).to_contain_text(words)
    # The customer answers: the agent's page shows it without a reload.
    await agent.evaluate("window.notReloaded = true")
    await box.fill("我的憑證無法匯入")
    await box.press("Enter")
    await expect(agent.locator("#transcript")).to_contain_text("我的憑證無法匯入", timeout=WAIT_MS)
    assert await agent.evaluate("window.notReloaded === true")
    await agent.screenshot(path=str(screenshots / "5-agent-transcript.png"))
    assert not agent_errors, agent_errors
    assert not customer_errors, customer_errors


async def test_a_post_without_the_csrf_token_is_refused(
    browser: Browser, served: str, core: Core, contexts: list[BrowserContext], screenshots: Path
) -> None:
    from certcore.handoff import HandoffReason

    handoff, _ = await core.handoffs.request("web:someone", HandoffReason.ASKED)
    page, _ = await new_page(browser, contexts, DESKTOP)
    await page.goto(served + "/agent/login")
    await log_in(page)
    await expect(page).to_have_url(served + "/agent/")
    await page.goto(f"{served}/agent/c/{handoff.id}")
    # A forged form: the same action, no token (as a page elsewhere would have to send it).
    await page.evaluate(
        "document.querySelectorAll('input[name=csrf]').forEach((field) => field.remove())"
    )
    await page.get_by_role("button", name=t("agent.action.claim")).click()
    await expect(page.locator("h1")).to_have_text(t("agent.refused.title"))
    await page.screenshot(path=str(screenshots / "1-refused.png"))
    await asyncio.sleep(0)  # nothing happened to the request
    still = await core.handoffs.get(handoff.id)
    assert still is not None and still.agent is None
