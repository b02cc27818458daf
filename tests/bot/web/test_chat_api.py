"""The web chat's API, driven through the real app on loopback (aiohttp's TestServer).

A whole conversation goes through it as the page would send it: a session, the welcome, linking
with an ID number, a ROC birth date and the code from the development outbox, an application up
to the one-time download link, the download page's confirmation pushed afterwards (read back by
`?after=` and by the event stream), and the certificate table. Then every way a request can be
wrong, the rate limit, the sealed download link, and the development pages.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from bot.channels.webchat import Session
from bot.web import CHANNELS, create_app
from bot.web.chat import MAX_BODY, MAX_TEXT, SESSIONS_PER_WINDOW, WEBCHAT
from certcore.audit import Actor
from certcore.config import Settings, load_settings
from certcore.core import Core
from certcore.customers import load_demo_customers
from certcore.i18n import translate
from certcore.pki import MAX_FILE_BYTES
from certcore.storage import ChatLog
from certcore.storage.schema import chat_messages
from dialogs import EventKind, Inbound
from dialogs.turn import decode_choice
from tests.dialogs.catalogue import expected_pattern

CUSTOMER = "A123456789"  # 王小明 of the demo customers, born 民國80年1月1日
ROC_BIRTH = "800101"
CODE = re.compile(r"\b[A-Z]{4}-(\d{6})\b")
WAIT = 10.0


@pytest.fixture
async def client(core: Core) -> AsyncIterator[TestClient[Any, Any]]:
    await load_demo_customers(core.db, core.clock())
    async with TestClient(TestServer(create_app(core))) as test_client:
        yield test_client


class Chat:
    """One browser's session, as the page drives it."""

    def __init__(self, client: TestClient[Any, Any], session: str) -> None:
        self.client = client
        self.session = session
        self.messages: list[dict[str, Any]] = []

    @property
    def base(self) -> str:
        return f"/api/chat/sessions/{self.session}"

    @property
    def conversation_id(self) -> str:
        return "web:" + hashlib.sha256(self.session.encode()).hexdigest()[:32]

    async def post(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self.client.post(f"{self.base}/messages", json=body)
        assert response.status == 200, await response.text()
        replies: list[dict[str, Any]] = (await response.json())["messages"]
        self.messages.extend(replies)
        return replies

    async def say(self, text: str) -> list[dict[str, Any]]:
        return await self.post({"text": text})

    async def tap(self, key: str) -> list[dict[str, Any]]:
        return await self.post({"action": self.action(key)})

    def action(self, key: str) -> str:
        for message in reversed(self.messages):
            for choice in message["choices"]:
                decoded = decode_choice(choice["action"])
                if decoded is not None and decoded[1] == key:
                    return str(choice["action"])
        raise AssertionError(f"no option {key} offered: {self.messages[-1]}")

    async def history(self, after: int = 0) -> list[dict[str, Any]]:
        response = await self.client.get(f"{self.base}/messages", params={"after": str(after)})
        assert response.status == 200, await response.text()
        messages: list[dict[str, Any]] = (await response.json())["messages"]
        return messages


async def new_chat(client: TestClient[Any, Any], lang: str | None = None) -> Chat:
    response = await client.post("/api/chat/sessions", json={"lang": lang} if lang else None)
    assert response.status == 201, await response.text()
    session = (await response.json())["session"]
    chat = Chat(client, session)
    chat.messages = await chat.history()
    return chat


async def last_code(core: Core) -> str:
    assert core.outbox is not None
    entries = await core.outbox.since(0)
    found = CODE.search(entries[-1].body)
    assert found is not None, entries[-1].body
    return found.group(1)


def t(key: str, locale: str = "zh_TW", **params: object) -> str:
    return translate(locale, key, **params)


def says(message: dict[str, Any], key: str, locale: str = "zh_TW") -> bool:
    """The message reads as the catalogue's `key`, each placeholder one value."""
    return expected_pattern(locale, key).fullmatch(message["text"]) is not None


async def link(chat: Chat, core: Core) -> list[dict[str, Any]]:
    """Link the chat to the demo customer: 憑證查詢 asks who it is first."""
    replies = await chat.tap("query")
    assert replies[-1]["text"] == t("link.id.prompt")
    await chat.say(CUSTOMER)
    await chat.say(ROC_BIRTH)
    await chat.tap("sms")
    await chat.tap("send")
    return await chat.say(await last_code(core))


# -- sessions ---------------------------------------------------------------------------------


async def test_a_session_starts_with_the_welcome_and_the_menu(
    client: TestClient[Any, Any], core: Core
) -> None:
    response = await client.post("/api/chat/sessions")
    assert response.status == 201
    session = (await response.json())["session"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", session)  # 256 bits
    chat = Chat(client, session)
    messages = await chat.history()
    assert [m["seq"] for m in messages] == [1, 2]
    assert messages[0]["text"] == t("welcome")
    assert messages[1]["text"] == t("menu.prompt")
    labels = [c["label"] for c in messages[1]["choices"]]
    assert "憑證查詢及申請" in labels or any("憑證" in label for label in labels)
    assert all(set(m) >= {"seq", "text", "choices", "table", "link"} for m in messages)
    # Only a hash of the secret names the conversation; the secret is stored nowhere.
    async with core.db.read() as conn:
        rows = (await conn.execute(select(chat_messages))).all()
    assert {row.conversation_id for row in rows} == {chat.conversation_id}
    assert not any(session in row.message for row in rows)


async def test_a_session_in_english(client: TestClient[Any, Any]) -> None:
    chat = await new_chat(client, "en")
    assert chat.messages[0]["text"] == t("welcome", "en")
    response = await client.get(f"{chat.base}/messages")
    assert (await response.json())["locale"] == "en"


async def test_two_sessions_are_two_conversations(client: TestClient[Any, Any]) -> None:
    first, second = await new_chat(client), await new_chat(client)
    assert first.session != second.session
    await first.say("English")
    assert (await second.history())[-1]["text"] == t("menu.prompt")


# -- a whole flow ----------------------------------------------------------------------------


async def test_link_apply_delivery_and_the_certificate_table(
    client: TestClient[Any, Any], core: Core
) -> None:
    chat = await new_chat(client)
    replies = await link(chat, core)
    assert any(says(m, "link.done") for m in replies)
    assert says(replies[-1], "query.empty")

    await chat.tap("apply")
    await chat.tap("agree")
    await chat.say(ROC_BIRTH)
    await chat.tap("sms")
    await chat.tap("send")
    await chat.say(await last_code(core))
    replies = await chat.tap("issue")
    delivery = replies[-1]
    assert delivery["link"] is not None
    assert delivery["link"]["label"] == t("webchat.delivery.link")
    url = delivery["link"]["url"]
    assert url.startswith("/d/"), url  # on this same site, whatever address it was opened at
    token = url.removeprefix("/d/")

    # The sealed link: the database row holds neither the token nor the URL.
    async with core.db.read() as conn:
        stored = [row.message for row in (await conn.execute(select(chat_messages))).all()]
    assert not any(token in message for message in stored)
    # … and the session's own reading opens it again, working.
    history = await chat.history()
    assert history[-1]["link"]["url"] == url
    # Any other key opens nothing: the link is left out rather than shown broken.
    stranger = Session(chat.conversation_id, key=Session.of("x" * 43).key)
    entries = await ChatLog(core.db, core.clock).after(chat.conversation_id, 0)
    shown = [client.app[WEBCHAT].shown(entry, stranger) for entry in entries]
    assert [m["link"] for m in shown if m is not None] == [None] * len(entries)
    assert says(history[-1], "apply.delivery")

    # The download page hands the file over: the confirmation is pushed into this chat.
    last = history[-1]["seq"]
    await core.deliveries.fulfil(token, "abc123", actor=Actor(name="test", channel="web"))
    pushed = await client.app[CHANNELS].dispatch(
        Inbound(chat.conversation_id, "delivered-1", EventKind.DELIVERED, choice=token)
    )
    assert pushed
    later = await chat.history(after=last)
    assert says(later[0], "delivery.done.apply")
    chat.messages.extend(later)

    replies = await chat.tap("query")
    tables = [m for m in replies if m["table"] is not None]
    assert len(tables) == 1
    table = tables[0]
    assert table["text"] == t("query.table.title")
    assert table["table"]["columns"] and len(table["table"]["rows"]) == 1
    row = table["table"]["rows"][0]
    assert len(row) == len(table["table"]["columns"])
    assert any("A123XXX89" in cell for cell in row)
    assert not any(CUSTOMER in json.dumps(m) for m in replies)


async def test_the_customers_own_lines_are_kept_and_secrets_hidden(
    client: TestClient[Any, Any], core: Core
) -> None:
    chat = await new_chat(client)
    query = chat.action("query")
    query_label = next(c["label"] for c in chat.messages[1]["choices"] if c["action"] == query)
    await chat.say("測試訊息甲乙丙")
    await chat.tap("query")
    await chat.say(CUSTOMER)
    history = await chat.history()
    said = [m for m in history if m["from"] == "customer"]
    # Typed text as typed, a tap as its label, the ID number hidden (the engine's ForgetInput).
    assert [m["text"] for m in said] == ["測試訊息甲乙丙", query_label, ""]
    assert said[2].get("hidden") is True
    async with core.db.read() as conn:
        stored = " ".join(r.message for r in (await conn.execute(select(chat_messages))).all())
    assert CUSTOMER not in stored  # not kept at all
    assert "甲乙丙" not in stored  # typed text is sealed under the session's key
    # Another session's key does not open it (and sees none of it).
    other = await new_chat(client)
    assert all(m["from"] == "bot" for m in await other.history())


async def test_reload_shows_the_whole_conversation(
    client: TestClient[Any, Any], core: Core
) -> None:
    chat = await new_chat(client)
    await chat.tap("guide")
    first = await chat.history()
    # A reload: the page still has the session secret and asks for everything.
    again = await Chat(client, chat.session).history(after=0)
    assert again == first
    seqs = [m["seq"] for m in again]
    assert seqs == list(range(1, len(seqs) + 1))
    assert await chat.history(after=seqs[-1]) == []
    assert await chat.history(after=seqs[-2]) == again[-1:]


async def test_a_retried_message_is_answered_once(client: TestClient[Any, Any]) -> None:
    chat = await new_chat(client)
    body = {"action": chat.action("guide"), "id": "client-1"}
    first = await chat.post(body)
    again = await chat.post(body)
    assert again == first
    history = await chat.history()
    assert len([m for m in history if m["from"] == "customer"]) == 1


# -- pushes ----------------------------------------------------------------------------------


async def test_a_push_arrives_by_after_and_by_the_event_stream(
    client: TestClient[Any, Any],
) -> None:
    chat = await new_chat(client)
    last = chat.messages[-1]["seq"]
    stream = await client.get(f"{chat.base}/events", params={"after": str(last)})
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    # A push from outside the chat's own transport (the download page's report of an unknown
    # delivery here: any event will do).
    await client.app[CHANNELS].dispatch(
        Inbound(chat.conversation_id, "push-1", EventKind.DELIVERED, choice="no-such-delivery")
    )
    pushed = await chat.history(after=last)
    assert pushed and says(pushed[0], "delivery.unknown")
    events = await read_events(stream, len(pushed))
    assert [e["seq"] for e in events] == [m["seq"] for m in pushed]
    assert events == pushed
    stream.close()


async def test_the_event_stream_resumes_after_the_last_event_id(
    client: TestClient[Any, Any],
) -> None:
    chat = await new_chat(client)
    stream = await client.get(f"{chat.base}/events", headers={"Last-Event-ID": "1"})
    events = await read_events(stream, 1)
    assert [e["seq"] for e in events] == [2]
    stream.close()


async def read_events(stream: ClientResponse, count: int) -> list[dict[str, Any]]:
    """The next `count` messages of a server-sent event stream (within a bounded time)."""
    events: list[dict[str, Any]] = []
    data: list[str] = []

    async def collect() -> None:
        while len(events) < count:
            line = (await stream.content.readline()).decode()
            if not line:
                raise AssertionError("the stream ended")
            line = line.rstrip("\n")
            if line.startswith("data: "):
                data.append(line.removeprefix("data: "))
            elif line == "" and data:
                events.append(json.loads("\n".join(data)))
                data.clear()

    await asyncio.wait_for(collect(), WAIT)
    return events


# -- what a client can get wrong --------------------------------------------------------------


async def assert_error(response: ClientResponse, status: int, code: str) -> None:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"] == code
    assert body["message"] and body["message"] != f"webchat.error.{code}"
    assert "Traceback" not in json.dumps(body)


async def test_malformed_json(client: TestClient[Any, Any]) -> None:
    chat = await new_chat(client)
    for raw in (b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"):
        response = await client.post(
            f"{chat.base}/messages", data=raw, headers={"Content-Type": "application/json"}
        )
        await assert_error(response, 400, "bad_json")


async def test_missing_or_wrong_fields(client: TestClient[Any, Any]) -> None:
    chat = await new_chat(client)
    url = f"{chat.base}/messages"
    await assert_error(await client.post(url, json={}), 400, "missing_input")
    await assert_error(await client.post(url, json={"text": 5}), 400, "missing_input")
    await assert_error(
        await client.post(url, json={"text": "a", "action": "b"}), 400, "missing_input"
    )
    await assert_error(await client.post(url, json={"text": "   "}), 400, "empty_text")
    await assert_error(await client.post(url, json={"action": ""}), 400, "missing_input")
    await assert_error(await client.post(url, json={"text": "a", "id": "a b"}), 400, "bad_id")
    response = await client.get(url, params={"after": "x"})
    await assert_error(response, 400, "bad_after")
    await assert_error(await client.get(url, params={"after": "-1"}), 400, "bad_after")


@pytest.mark.parametrize("after", ["9" * 20, "9" * 4000, "9" * 5000, "１２", "+1"])
async def test_a_message_number_past_any_message_is_refused(
    client: TestClient[Any, Any], after: str
) -> None:
    """A number over 18 digits overflowed the database's integer (a 500), and over 4,300
    digits int() itself; neither is a message number."""
    chat = await new_chat(client)
    url = f"{chat.base}/messages"
    await assert_error(await client.get(url, params={"after": after}), 400, "bad_after")
    stream = await client.get(f"{chat.base}/events", headers={"Last-Event-ID": after})
    await assert_error(stream, 400, "bad_after")


async def test_unknown_sessions(client: TestClient[Any, Any]) -> None:
    unknown = "A" * 43
    for url in (f"/api/chat/sessions/{unknown}/messages", "/api/chat/sessions/short/messages"):
        await assert_error(await client.get(url), 404, "unknown_session")
        await assert_error(await client.post(url, json={"text": "hi"}), 404, "unknown_session")
    await assert_error(
        await client.get(f"/api/chat/sessions/{unknown}/events"), 404, "unknown_session"
    )
    await assert_error(await client.get("/api/chat/nothing-here"), 404, "not_found")


async def test_oversized_bodies_and_texts(client: TestClient[Any, Any]) -> None:
    chat = await new_chat(client)
    url = f"{chat.base}/messages"
    huge = json.dumps({"text": "x" * (MAX_BODY + 10)})
    response = await client.post(url, data=huge, headers={"Content-Type": "application/json"})
    await assert_error(response, 413, "too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read until the limit
        for _ in range(40):
            yield b" " * 1024

    response = await client.post(url, data=chunks(), headers={"Content-Type": "application/json"})
    await assert_error(response, 413, "too_large")
    await assert_error(
        await client.post(url, json={"text": "字" * (MAX_TEXT + 1)}), 413, "text_too_long"
    )
    assert (await client.post(url, json={"text": "字" * MAX_TEXT})).status == 200


async def test_wrong_methods_and_content_types(client: TestClient[Any, Any]) -> None:
    chat = await new_chat(client)
    url = f"{chat.base}/messages"
    await assert_error(await client.put(url, json={"text": "a"}), 405, "method_not_allowed")
    await assert_error(await client.delete(url), 405, "method_not_allowed")
    await assert_error(await client.get("/api/chat/sessions"), 405, "method_not_allowed")
    response = await client.post(url, data="text=a", headers={"Content-Type": "text/plain"})
    await assert_error(response, 415, "unsupported_media_type")
    response = await client.post(
        "/api/chat/sessions", data="lang=en", headers={"Content-Type": "text/plain"}
    )
    await assert_error(response, 415, "unsupported_media_type")


async def test_the_sessions_of_one_client_share_its_identity_lock(
    client: TestClient[Any, Any], core: Core
) -> None:
    """New sessions cost nothing: five wrong birth dates from one address, one per session,
    lock the identity check in a sixth session of that address too (issue 10, item 4)."""
    for _ in range(5):
        chat = await new_chat(client)
        await chat.tap("query")
        await chat.say(CUSTOMER)
        replies = await chat.say("800102")
    assert says(replies[0], "verify.identity.locked")
    chat = await new_chat(client)  # locked for any ID now, not only the one guessed
    await chat.tap("query")
    await chat.say("A120786753")  # 王三 of the demo customers
    replies = await chat.say("761205")
    assert says(replies[0], "verify.identity.locked")


async def test_errors_are_localised(client: TestClient[Any, Any]) -> None:
    url = f"/api/chat/sessions/{'A' * 43}/messages"
    zh = await (await client.get(url)).json()
    en = await (await client.get(url, headers={"Accept-Language": "en-US,en;q=0.9"})).json()
    assert zh["message"] == t("webchat.error.unknown_session")
    assert en["message"] == t("webchat.error.unknown_session", "en")


async def test_sessions_are_rate_limited_per_client(client: TestClient[Any, Any]) -> None:
    for _ in range(SESSIONS_PER_WINDOW):
        assert (await client.post("/api/chat/sessions")).status == 201
    response = await client.post("/api/chat/sessions")
    await assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1


# -- the page's headers ------------------------------------------------------------------------


async def test_the_page_and_its_security_headers(client: TestClient[Any, Any]) -> None:
    page = await client.get("/")
    assert page.status == 200
    body = await page.text()
    assert '<html lang="zh-Hant-TW">' in body and "憑證中心" in body
    assert "<script>" not in body  # no inline script: the data block is not executed
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    english = await (await client.get("/", params={"lang": "en"})).text()
    assert '<html lang="en">' in english and "Certificate Center" in english
    for name in ("chat.js", "chat.css", "site.css"):
        static = await client.get(f"/static/{name}")
        assert static.status == 200, name
        assert static.headers["X-Content-Type-Options"] == "nosniff"
    api = await client.post("/api/chat/sessions")
    assert api.headers["Cache-Control"] == "no-store"


# -- retention ---------------------------------------------------------------------------------


async def test_old_chat_logs_are_forgotten(client: TestClient[Any, Any], core: Core) -> None:
    chat = await new_chat(client)
    log = ChatLog(core.db, core.clock)
    assert await log.forget_old() == 0
    core.clock.advance(days=31)  # type: ignore[attr-defined]
    assert await log.forget_old() == 2
    await assert_error(await client.get(f"{chat.base}/messages"), 404, "unknown_session")


# -- the development pages -------------------------------------------------------------------


async def test_the_outbox_pages_in_dev_mode(client: TestClient[Any, Any], core: Core) -> None:
    chat = await new_chat(client)
    await chat.tap("query")
    await chat.say(CUSTOMER)
    await chat.say(ROC_BIRTH)
    await chat.tap("sms")
    await chat.tap("send")
    code = await last_code(core)
    listed = await client.get("/dev/outbox.json")
    assert listed.status == 200
    entries = await listed.json()
    assert entries[-1]["channel"] == "sms"
    assert entries[-1]["to"] == "0900000001"
    assert code in entries[-1]["text"]
    assert entries[-1]["sent_at"].startswith("2026-11-24T")
    page = await client.get("/dev/outbox")
    assert page.status == 200
    html = await page.text()
    assert "DEVELOPMENT ONLY" in html and code in html
    assert page.headers["Cache-Control"] == "no-store"


async def test_no_outbox_pages_with_a_real_sender(core: Core, settings: Settings) -> None:
    configured = load_settings(
        environ={"CERTDESK_SMTP_HOST": "127.0.0.1", "CERTDESK_SMTP_FROM": "ca@example.com"},
        data_dir=settings.data_dir,
        database_url=settings.database_url or None,
    )
    assert not configured.outbox_mode
    real = Core(**{**core.__dict__, "settings": configured})
    async with TestClient(TestServer(create_app(real))) as other:
        assert (await other.get("/dev/outbox")).status == 404
        assert (await other.get("/dev/outbox.json")).status == 404
        assert (await other.get("/")).status == 200


# -- a certificate file (憑證資料檢核) ---------------------------------------------------------


async def test_a_certificate_file_is_checked(client: TestClient[Any, Any], core: Core) -> None:
    chat = await new_chat(client)
    await chat.tap("check")
    url = f"{chat.base}/files"
    der = core.ca.certificate.public_bytes(serialization.Encoding.DER)
    name = f"{CUSTOMER}.cer"  # named after its holder: only in a header, sealed in the log
    response = await client.post(
        url,
        data=der,
        headers={"Content-Type": "application/octet-stream", "X-Filename": quote(name)},
    )
    assert response.status == 200, await response.text()
    replies = (await response.json())["messages"]
    assert says(replies[0], "check.ca_certificate")
    said = [m for m in await chat.history() if m["from"] == "customer"]
    assert said[-1]["text"] == name
    async with core.db.read() as conn:
        stored = " ".join(r.message for r in (await conn.execute(select(chat_messages))).all())
    assert CUSTOMER not in stored

    garbage = await client.post(url, data=b"not a certificate")
    assert says((await garbage.json())["messages"][0], "check.not_certificate")
    await assert_error(await client.post(url, data=b""), 400, "empty_file")
    too_big = b"x" * (MAX_FILE_BYTES + 1)
    await assert_error(await client.post(url, data=too_big), 413, "too_large")
    await assert_error(await client.post(url, json={"text": "a"}), 415, "unsupported_media_type")
