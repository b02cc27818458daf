"""LINE Account Link: the link flow offers CertDesk's page instead of asking the ID number in
chat; the page checks ID number, birth date and a code, with a CSRF defence and strict headers;
its nonce (kept only as SHA-256) links the chat once through the `accountLink` event; a failed
result and an unknown or spent nonce link nothing."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.web import create_app
from certcore.clock import FrozenClock
from certcore.config import load_settings
from certcore.core import Core
from certcore.i18n import translate
from certcore.storage.schema import account_links
from tests.bot.line.conftest import BIRTH, CUSTOMER, Line, add_customer
from tests.bot.line.test_flows import assert_keys
from tests.fakes.line_api import FakeLineApi, uri_buttons

USER = "U11111111111111111111111111111111"


@pytest.fixture
async def linking(
    fake_line: FakeLineApi,
    line_environ: dict[str, str],
    data_dir: Path,
    clock: FrozenClock,
    rng: random.Random,
    environ: dict[str, str],
    database_url: str,
) -> AsyncIterator[Line]:
    settings = load_settings(
        environ={**line_environ, "CERTDESK_LINE_ACCOUNT_LINK": "true"},
        data_dir=data_dir,
        database_url=database_url or None,
    )
    assert settings.line_account_link
    core = await Core.open(settings, clock=clock, rng=rng, environ=environ)
    await add_customer(core)
    server = TestServer(create_app(core), host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
            yield Line(server, session, fake_line)
    finally:
        await server.close()
        await core.close()


async def open_page(line: Line) -> tuple[str, str]:
    """Ask for 憑證查詢 in chat; follow the button to the page. (link token, csrf field)"""
    await line.say(USER, "選單")
    [offer] = await line.tap(USER, "憑證查詢")
    assert offer.startswith(translate("zh_TW", "line.link.offer"))
    [url] = uri_buttons(line.fake.messages_to(USER)[-1])
    token = parse_qs(urlsplit(url).query)["linkToken"][0]
    assert line.fake.link_tokens[token] == USER
    async with line.session.get(line.server.make_url(f"/line/link?linkToken={token}")) as page:
        assert page.status == 200
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["Referrer-Policy"] == "no-referrer"
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        body = await page.text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', body)
    assert csrf is not None
    return token, csrf.group(1)


async def post(line: Line, **form: str) -> tuple[int, str, str]:
    async with line.session.post(
        line.server.make_url("/line/link"), data=form, allow_redirects=False
    ) as response:
        return response.status, await response.text(), response.headers.get("Location", "")


async def test_the_page_links_the_chat_through_the_account_link_event(linking: Line) -> None:
    line = linking
    token, csrf = await open_page(line)
    # Typing the ID number in chat does not link: the page is offered again.
    again = await line.say(USER, CUSTOMER)
    assert again[-1].startswith(translate("zh_TW", "line.link.offer"))
    # A forged form (no matching cookie-and-field pair) is refused.
    status, _, _ = await post(line, csrf="forged", id_number=CUSTOMER, birth=BIRTH)
    assert status == 403
    status, body, _ = await post(
        line, csrf=csrf, step="identify", id_number=CUSTOMER, birth="761206"
    )
    assert status == 200 and "資料不正確" in body
    status, body, _ = await post(line, csrf=csrf, step="identify", id_number=CUSTOMER, birth=BIRTH)
    assert status == 200 and "驗證碼已傳送至 0936XXX054" in body
    status, body, _ = await post(line, csrf=csrf, step="code", code="000000")
    assert "驗證碼不正確" in body
    status, _, location = await post(line, csrf=csrf, step="code", code=await line.last_code())
    assert status == 303
    target = urlsplit(location)
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        "https://access.line.me/dialog/bot/accountLink"
    )
    query = parse_qs(target.query)
    assert query["linkToken"] == [token]
    nonce = query["nonce"][0]
    assert len(nonce) >= 22  # ≥ 128 bits
    async with line.core.db.read() as conn:
        rows = (await conn.execute(select(account_links))).all()
    assert [r.nonce_hash for r in rows] == [hashlib.sha256(nonce.encode()).hexdigest()]
    assert all(nonce not in str(tuple(r)) for r in rows)
    # LINE sends the accountLink event: the chat is linked and goes where it wanted (查詢).
    before = len(line.fake.messages_to(USER))
    event = line.event(USER, "accountLink", link={"result": "ok", "nonce": nonce})
    await line.deliver(event)
    assert_keys(line.fake.texts_to(USER)[before:], "link.done", "query.empty")
    # The same nonce again (another event): nothing more is linked.
    before = len(line.fake.messages_to(USER))
    await line.deliver(line.event(USER, "accountLink", link={"result": "ok", "nonce": nonce}))
    assert_keys(line.fake.texts_to(USER)[before:], "line.link.failed")
    # The page's session is spent too.
    status, _, _ = await post(line, csrf=csrf, step="code", code="123456")
    assert status == 403


async def test_a_failed_or_unknown_account_link_links_nothing(linking: Line) -> None:
    line = linking
    await line.say(USER, "選單")
    for link in (
        {"result": "failed", "nonce": "whatever-nonce-0987654321"},
        {"result": "ok", "nonce": "made-up-nonce-1234567890"},
    ):
        before = len(line.fake.messages_to(USER))
        await line.deliver(line.event(USER, "accountLink", link=link))
        assert_keys(line.fake.texts_to(USER)[before:], "line.link.failed")
    await line.tap(USER, "憑證查詢")
    offer = translate("zh_TW", "line.link.offer")
    assert line.fake.texts_to(USER)[-1].startswith(offer)  # still not linked


async def test_a_page_without_a_link_token_says_what_to_do(linking: Line) -> None:
    async with linking.session.get(linking.server.make_url("/line/link")) as page:
        assert page.status == 400
        assert "重新點選" in await page.text()
        assert page.headers["Cache-Control"] == "no-store"


async def test_the_pages_sessions_of_one_client_share_its_identity_lock(linking: Line) -> None:
    """A new page session costs a reload: five wrong birth dates from one address, one per
    session, lock the identity check of that address in a sixth (issue 10, item 4)."""
    line = linking
    for _ in range(5):
        _, csrf = await open_page(line)
        status, body, _ = await post(
            line, csrf=csrf, step="identify", id_number=CUSTOMER, birth="761206"
        )
    assert status == 200 and "錯誤次數過多" in body
    _, csrf = await open_page(line)  # locked for any ID now, not only the one guessed
    status, body, _ = await post(
        line, csrf=csrf, step="identify", id_number="F131104093", birth=BIRTH
    )
    assert status == 200 and "錯誤次數過多" in body
