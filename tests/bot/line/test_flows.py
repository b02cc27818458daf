"""Whole flows through the real `/line/webhook`, answered on the fake LINE API: linking typed in
chat, 憑證查詢 as a Flex table, 憑證申請 through the download page's hand-over, 憑證延展,
憑證註銷 and 憑證資料檢核 with a file message fetched through the blob API."""

from __future__ import annotations

import asyncio
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certcore.audit import Actor
from certcore.clock import FrozenClock
from tests.bot.line.conftest import BIRTH, CUSTOMER, Line
from tests.dialogs.catalogue import expected_pattern
from tests.fakes.line_api import uri_buttons

USER = "U4af4980629aaaaaaaaaaaaaaaaaaaaaa"
CONVERSATION = f"line:{USER}"


def reads(text: str, key: str) -> bool:
    """The text reads as the key (a question without its numbered options, a table's altText
    by its title line)."""
    pattern = expected_pattern("zh_TW", key)
    return bool(pattern.fullmatch(text.split("\n1. ")[0]) or pattern.fullmatch(text.split("\n")[0]))


def assert_keys(texts: list[str], *keys: str) -> None:
    assert len(texts) == len(keys), f"{keys} expected, got {texts}"
    for text, key in zip(texts, keys, strict=True):
        assert reads(text, key), f"{key} expected, got {text!r}"


async def verify(line: Line, user: str = USER) -> list[str]:
    """The identity steps of a flow: birth date, SMS, 「點我發送驗證碼」, the code."""
    assert_keys(await line.say(user, BIRTH), "verify.destination.prompt")
    assert_keys(await line.tap(user, 1), "verify.send.prompt")
    sending = len(line.fake.requests)
    assert_keys(await line.tap(user, 1), "verify.send.done", "verify.code.prompt")
    # A code send is slow: the loading sign first, then the answers pushed with a retry key.
    after = [r for r in line.fake.requests[sending:] if r.status < 400]
    assert [r.path for r in after] == ["/v2/bot/chat/loading/start", "/v2/bot/message/push"]
    assert after[1].headers["X-Line-Retry-Key"]
    return await line.say(user, await line.last_code())


async def link(line: Line, user: str = USER) -> None:
    """The chat's own linking flow, typed in LINE: 憑證查詢, ID number, then `verify`."""
    await line.say(user, "選單")
    assert_keys(await line.tap(user, "憑證查詢"), "link.id.prompt")
    assert_keys(await line.say(user, CUSTOMER), "verify.birth_date.prompt")
    assert_keys(await verify(line, user), "verify.code.accepted", "link.done", "query.empty")


async def issue_certificate(line: Line) -> None:
    await line.core.certificates.issue(CUSTOMER, "abc123", actor=Actor("operator:t", "cli"))


async def take_delivery(line: Line, user: str = USER) -> str:
    """The download page's part, on the real page: the URI button's one-time link opened, the
    export password typed twice there, the .pfx downloaded, and the hand-over told to the chat
    by the page (a push); returns what was pushed for it."""
    button = line.fake.messages_to(user)[-1]
    [url] = uri_buttons(button)
    token = url.rsplit("/", 1)[1]
    page = line.server.make_url(f"/d/{token}")
    async with line.session.get(page) as response:
        assert response.status == 200
        form = await response.text()
    found = re.search(r'name="form_key" value="([0-9a-f]+)"', form)
    assert found is not None
    before = len(line.fake.messages_to(user))
    fields = {
        "password": "abc123",
        "password_confirm": "abc123",
        "format": "standard",
        "form_key": found.group(1),
    }
    async with line.session.post(page, data=fields) as response:
        assert response.status == 200
        assert "attachment" in response.headers["Content-Disposition"]
        pfx = await response.read()
    key, certificate, _ = pkcs12.load_key_and_certificates(pfx, b"abc123")
    assert key is not None and certificate is not None
    for _ in range(200):  # the page tells the chat in the background
        if line.fake.texts_to(user)[before:]:
            await line.channel.idle()  # every message of the hand-over, not just the first
            return "\n".join(line.fake.texts_to(user)[before:])
        await asyncio.sleep(0.05)
    raise AssertionError("the chat was not told of the hand-over")


async def test_linking_then_query_shows_the_certificate_as_a_flex_table(line: Line) -> None:
    await link(line)
    await issue_certificate(line)
    await line.say(USER, "選單")
    answered = await line.tap(USER, "憑證查詢")
    assert_keys(answered, "query.heading", "query.table.title", "query.next.valid")
    table = line.fake.messages_to(USER)[-2]
    assert table["type"] == "flex"
    assert "A123XXX89" in table["altText"] and "A123456789" not in str(table)
    assert "有效" in str(table["contents"])
    # Nothing the customer typed is echoed: the ID number never comes back.
    assert not any(CUSTOMER in text for text in line.fake.texts_to(USER))


async def test_application_through_the_download_page(line: Line) -> None:
    await link(line)
    assert_keys(await line.tap(USER, "申請"), "apply.consent")
    assert_keys(await line.tap(USER, 1), "verify.birth_date.prompt")
    assert_keys(await verify(line), "apply.ready")
    assert_keys(await line.tap(USER, 1), "apply.delivery")
    delivery = line.fake.messages_to(USER)[-1]
    assert delivery["type"] == "flex" and uri_buttons(delivery)[0].startswith("http")
    done = await take_delivery(line)
    assert "憑證申請完成" in done
    [record] = await line.core.certificates.issued_of(CUSTOMER)
    assert not record.revoked


async def test_renewal_inside_the_window(line: Line, clock: FrozenClock) -> None:
    await link(line)
    await issue_certificate(line)
    clock.advance(days=340)  # inside 可更新區間 (the last 30 days)
    await line.say(USER, "選單")
    assert_keys(await line.tap(USER, "憑證延展"), "renew.consent")
    assert_keys(await line.tap(USER, 1), "verify.birth_date.prompt")
    assert_keys(await verify(line), "renew.ready")
    assert_keys(await line.tap(USER, 1), "renew.delivery")
    done = await take_delivery(line)
    assert "憑證更新完成" in done and "已自動註銷" in done


async def test_revocation(line: Line) -> None:
    await link(line)
    await issue_certificate(line)
    await line.say(USER, "選單")
    assert_keys(await line.tap(USER, "憑證註銷"), "revoke.consent")
    assert_keys(await line.tap(USER, 1), "verify.birth_date.prompt")
    assert_keys(await verify(line), "verify.code.accepted", "revoke.reason.prompt")
    assert_keys(await line.tap(USER, 1), "revoke.confirm.prompt")
    loading = len(line.fake.loading)
    assert_keys(await line.tap(USER, 1), "revoke.done")
    assert len(line.fake.loading) == loading + 1  # signing a revocation is a slow step
    [record] = await line.core.certificates.issued_of(CUSTOMER)
    assert record.revoked


async def test_certificate_check_by_file_message(line: Line) -> None:
    await issue_certificate(line)
    [record] = await line.core.certificates.issued_of(CUSTOMER)
    assert record.der is not None
    pem = x509.load_der_x509_certificate(record.der).public_bytes(serialization.Encoding.PEM)
    line.fake.contents["9001"] = pem
    message = {"id": "9001", "type": "file", "fileName": "mine.pem", "fileSize": len(pem)}
    await line.deliver(line.event(USER, "message", message=message))
    assert any(r.path == "/v2/bot/message/9001/content" for r in line.fake.requests)
    assert_keys(line.fake.texts_to(USER), "check.heading", "query.table.title", "check.next.valid")


async def test_a_file_too_large_for_a_certificate_is_refused_unread(line: Line) -> None:
    message = {"id": "9002", "type": "file", "fileName": "movie.mp4", "fileSize": 50_000_000}
    await line.deliver(line.event(USER, "message", message=message))
    assert not any("/content" in r.path for r in line.fake.requests)
    assert_keys(line.fake.texts_to(USER), "line.file.too_large")
