"""The download page in Chromium: what a customer sees and does, on a phone and a desktop, in
both languages, with and without the page's script.

The customer types two different passwords, then one outside the rule, then a good one, and
downloads the file (Playwright's download event), which OpenSSL must open with that password;
the page then says the download started, and a reload offers the download again. Screenshots of
each step are kept under `test-artifacts/screenshots/<test>/`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from certcore.clock import FrozenClock
from certcore.core import Core
from certcore.customers import load_demo_customers
from certcore.i18n import translate
from tests.bot.web.test_download_page import UA, open_delivery
from tests.browser.conftest import DESKTOP, PHONE
from tests.pkitools import openssl_pkcs12_info, parse_pkcs12_info

PASSWORD = "Cert2026ok"
LOCALES = {"zh_TW": "zh-TW", "en": "en-US"}

CASES = [
    # (viewport name, viewport, locale, user agent, the format the page should recommend)
    ("desktop", DESKTOP, "zh_TW", "win10", "standard"),
    ("desktop", DESKTOP, "en", "macos", "compatible"),
    ("phone", PHONE, "zh_TW", "iphone", "compatible"),
    ("phone", PHONE, "en", "android", "standard"),
]


def t(locale: str, key: str, **params: object) -> str:
    return translate(locale, key, **params)


async def context_for(
    browser: Browser,
    viewport: dict[str, int],
    locale: str,
    agent: str,
    *,
    javascript: bool = True,
) -> BrowserContext:
    return await browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        locale=LOCALES[locale],
        user_agent=UA[agent],
        accept_downloads=True,
        java_script_enabled=javascript,
        is_mobile=viewport is PHONE,
        has_touch=viewport is PHONE,
        device_scale_factor=2 if viewport is PHONE else 1,
    )


@pytest.fixture
async def delivery_url(core: Core, served: str) -> AsyncIterator[str]:
    await load_demo_customers(core.db, core.clock())
    token = await open_delivery(core, requester="console:browser")
    yield f"{served}/d/{token}"


async def fill(page: Page, first: str, second: str) -> None:
    await page.fill("#password", first)
    await page.fill("#password_confirm", second)


async def shot(page: Page, folder: Path, name: str) -> None:
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


@pytest.mark.parametrize(("size", "viewport", "locale", "agent", "fmt"), CASES)
async def test_mismatch_policy_then_a_download_openssl_opens(
    browser: Browser,
    delivery_url: str,
    screenshots: Path,
    tmp_path: Path,
    size: str,
    viewport: dict[str, int],
    locale: str,
    agent: str,
    fmt: str,
) -> None:
    context = await context_for(browser, viewport, locale, agent)
    try:
        page = await context.new_page()
        response = await page.goto(delivery_url)
        assert response is not None and response.status == 200
        await expect(page.locator("#policy")).to_have_text(
            t(locale, "download.password.policy", min=4, max=12)
        )
        await expect(page.locator(f'input[name="format"][value="{fmt}"]')).to_be_checked()
        await expect(page.locator(f"#format-{fmt} .badge")).to_be_visible()
        await shot(page, screenshots, "1-form")

        await fill(page, "Abc123", "Abc124")
        await page.click("button[type=submit]")
        error = page.locator("#form-error")
        await expect(error).to_be_visible()
        await expect(error).to_contain_text(t(locale, "download.error.mismatch"))
        await shot(page, screenshots, "2-mismatch")

        await fill(page, "ab!", "ab!")
        await page.click("button[type=submit]")
        await expect(error).to_contain_text(t(locale, "download.error.invalid", min=4, max=12))
        await shot(page, screenshots, "3-policy")

        await fill(page, PASSWORD, PASSWORD)
        async with page.expect_download(timeout=60_000) as waiting:
            await page.click("button[type=submit]")
        download = await waiting.value
        assert download.suggested_filename == "A123456789-CERTDESK(2027-11-24).pfx"
        saved = tmp_path / download.suggested_filename
        await download.save_as(saved)
        info = parse_pkcs12_info(openssl_pkcs12_info(saved, PASSWORD))
        assert info.mac_hash == ("sha256" if fmt == "standard" else "sha1")
        await expect(page.locator("#after")).to_be_visible(timeout=15_000)
        await expect(error).to_be_hidden()
        await shot(page, screenshots, "4-downloaded")

        await page.reload()
        await expect(page.locator("h2", has_text=t(locale, "download.done.title"))).to_be_visible()
        await expect(page.locator("#password")).to_have_count(0)
        async with page.expect_download(timeout=30_000) as again:
            await page.click("#again-form button")
        assert (await again.value).suggested_filename == download.suggested_filename
        await shot(page, screenshots, "5-again")
    finally:
        await context.close()


async def test_without_the_script_the_server_answers_every_step(
    browser: Browser, delivery_url: str, screenshots: Path, tmp_path: Path
) -> None:
    context = await context_for(browser, DESKTOP, "zh_TW", "win7", javascript=False)
    try:
        page = await context.new_page()
        await page.goto(delivery_url)
        await expect(page.locator('input[name="format"][value="compatible"]')).to_be_checked()

        await fill(page, "Abc123", "Abc999")
        async with page.expect_navigation():
            await page.click("button[type=submit]")
        await expect(page.locator("#form-error")).to_contain_text(
            t("zh_TW", "download.error.mismatch")
        )
        await shot(page, screenshots, "1-mismatch")

        await fill(page, "密碼1234", "密碼1234")
        async with page.expect_navigation():
            await page.click("button[type=submit]")
        await expect(page.locator("#form-error")).to_contain_text(
            t("zh_TW", "download.error.invalid", min=4, max=12)
        )
        await shot(page, screenshots, "2-policy")

        await fill(page, PASSWORD, PASSWORD)
        async with page.expect_download(timeout=60_000) as waiting:
            await page.click("button[type=submit]")
        saved = tmp_path / "cert.pfx"
        await (await waiting.value).save_as(saved)
        info = parse_pkcs12_info(openssl_pkcs12_info(saved, PASSWORD))
        assert info.mac_hash == "sha1"  # the compatible file Windows 7 needs
    finally:
        await context.close()


async def test_client_hints_move_an_early_windows_10_to_the_compatible_file(
    browser: Browser, delivery_url: str, screenshots: Path
) -> None:
    """Windows 10 1607 (Server 2016) says `Windows NT 10.0` like 1709 does; its client hints
    say platformVersion 3, which the page's script reads."""
    context = await context_for(browser, DESKTOP, "en", "win10")
    await context.add_init_script(
        """
        Object.defineProperty(navigator, "userAgentData", {
          get: () => ({
            platform: "Windows",
            getHighEntropyValues: () => Promise.resolve({ platformVersion: "3.0.0" }),
          }),
        });
        """
    )
    try:
        page = await context.new_page()
        await page.goto(delivery_url)
        await expect(page.locator('input[name="format"][value="compatible"]')).to_be_checked()
        await expect(page.locator("#format-compatible .badge")).to_be_visible()
        await expect(page.locator("#advice-old")).to_be_visible()
        await expect(page.locator("#advice")).to_be_hidden()
        older = t("en", "environment.system.win_old")
        await expect(page.locator("#detected")).to_have_text(
            t("en", "download.environment.detected", system=older)
        )
        await shot(page, screenshots, "win10-1607")
    finally:
        await context.close()


@pytest.mark.parametrize(("size", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
async def test_a_dead_link_says_what_to_do(
    browser: Browser,
    delivery_url: str,
    served: str,
    clock: FrozenClock,
    screenshots: Path,
    size: str,
    viewport: dict[str, int],
) -> None:
    context = await context_for(browser, viewport, "zh_TW", "android")
    try:
        page = await context.new_page()
        clock.advance(minutes=16)
        response = await page.goto(delivery_url)
        assert response is not None and response.status == 410
        await expect(page.locator("h1")).to_have_text(t("zh_TW", "download.expired.title"))
        await shot(page, screenshots, "expired")
        await page.click("a.lang")
        await expect(page.locator("h1")).to_have_text(t("en", "download.expired.title"))
        await shot(page, screenshots, "expired-en")
        response = await page.goto(f"{served}/d/{'Q' * 43}")
        assert response is not None and response.status == 404
        await expect(page.locator("h1")).to_have_text(t("zh_TW", "download.unknown.title"))
        await shot(page, screenshots, "unknown")
    finally:
        await context.close()
