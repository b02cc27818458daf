"""The agent console (`/agent`) through the real app on loopback: login, lock-out, CSRF, the
queue, claim, reply, notes, return, close, canned replies and masking, with web chat customers
driven through their own API (so an agent's reply is checked where the customer reads it).

The core's clock is frozen (Tuesday 24 November 2026, 10:00 Taipei, inside the service hours);
the lock-out's fifteen minutes pass by moving it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession, CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, select

from bot.web import ENGINE, create_app
from certcore.audit import Actor
from certcore.clock import FrozenClock
from certcore.core import Core
from certcore.customers import load_demo_customers
from certcore.handoff import HandoffOutcome, HandoffState
from certcore.i18n import translate
from certcore.storage.schema import agent_sessions, audit_log, conversation_events
from dialogs import EventKind, Inbound
from tests.bot.web.test_chat_api import CUSTOMER, Chat, last_code, link, new_chat

MEI, KAI = "mei", "kai"
PASSWORD = "correct horse battery"
Http = TestClient[Any, Any] | ClientSession
"""A browser: the test's client, or a second one with its own cookies (`agent_client`)."""
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def t(key: str, **params: object) -> str:
    return translate("zh_TW", key, **params)


@pytest.fixture
async def client(core: Core) -> AsyncIterator[TestClient[Any, Any]]:
    await load_demo_customers(core.db, core.clock())
    await core.agents.add(MEI, PASSWORD)
    await core.agents.add(KAI, PASSWORD)
    async with TestClient(TestServer(create_app(core))) as test_client:
        yield test_client


def agent_client(client: TestClient[Any, Any]) -> ClientSession:
    """A second browser (its own cookies) on the same server."""
    return ClientSession(base_url=str(client.make_url("/")), cookie_jar=CookieJar(unsafe=True))


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html[:500]
    return found.group(1)


async def login(client: Http, name: str = MEI, password: str = PASSWORD) -> ClientResponse:
    form = await client.get("/agent/login")
    assert form.status == 200
    token = csrf_of(await form.text())
    return await client.post(
        "/agent/login",
        data={"csrf": token, "name": name, "password": password},
        allow_redirects=False,
    )


async def logged_in(client: Http, name: str = MEI) -> str:
    """Log in; the session's CSRF token, read from the queue page."""
    response = await login(client, name)
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/agent/"
    page = await client.get("/agent/")
    assert page.status == 200
    return csrf_of(await page.text())


async def post(client: Http, path: str, token: str, **fields: str) -> ClientResponse:
    return await client.post(path, data={"csrf": token, **fields}, allow_redirects=False)


async def waiting_customer(client: TestClient[Any, Any], core: Core) -> tuple[Chat, int]:
    """A web chat customer who asked for a person; the hand-off's id."""
    chat = await new_chat(client)
    await chat.say("客服")
    handoff = await core.handoffs.open_for(chat.conversation_id)
    assert handoff is not None and handoff.state is HandoffState.WAITING
    return chat, handoff.id


def shown(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, ensure_ascii=False)


async def audit_actions(core: Core) -> list[str]:
    async with core.db.read() as conn:
        return list((await conn.execute(select(audit_log.c.action))).scalars())


# -- keeping everyone else out ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/agent/", "/agent/c/1", "/agent/canned"])
async def test_pages_send_a_stranger_to_the_login_form(
    client: TestClient[Any, Any], path: str
) -> None:
    response = await client.get(path, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/agent/login"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_the_live_queue_and_the_actions_refuse_a_stranger(
    client: TestClient[Any, Any], core: Core
) -> None:
    _, handoff_id = await waiting_customer(client, core)
    assert (await client.get("/agent/api/queue")).status == 401
    claim = await client.post(f"/agent/c/{handoff_id}/claim", allow_redirects=False)
    assert claim.status == 303 and claim.headers["Location"] == "/agent/login"
    handoff = await core.handoffs.get(handoff_id)
    assert handoff is not None and handoff.state is HandoffState.WAITING


async def test_login_page_is_strict_about_caching_framing_and_script(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/agent/login")
    assert response.status == 200
    headers = response.headers
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    html = await response.text()
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert t("agent.login.title") in html
    script = await client.get("/agent/static/agent.js")
    assert script.status == 200 and script.headers["X-Frame-Options"] == "DENY"


async def test_a_login_opens_a_session_kept_only_as_a_hash(
    client: TestClient[Any, Any], core: Core
) -> None:
    response = await login(client)
    assert response.status == 303
    cookie = response.cookies["certdesk_agent"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/agent" and not cookie["secure"]  # plain http here
    token = cookie.value
    async with core.db.read() as conn:
        stored = list((await conn.execute(select(agent_sessions.c.token_hash))).scalars())
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert "agent.login" in await audit_actions(core)
    page = await client.get("/agent/")
    assert page.status == 200 and t("agent.nav.signed_in", name=MEI) in await page.text()


async def test_the_cookie_is_secure_behind_a_trusted_https_proxy(
    client: TestClient[Any, Any], core: Core
) -> None:
    core.settings = replace(core.settings, trusted_proxies="127.0.0.0/8")
    form = await client.get("/agent/login")
    response = await client.post(
        "/agent/login",
        data={"csrf": csrf_of(await form.text()), "name": MEI, "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.cookies["certdesk_agent"]["secure"]


async def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(
    client: TestClient[Any, Any], core: Core
) -> None:
    wrong = await login(client, MEI, "not the password")
    unknown = await login(client, "nobody", "not the password")
    assert wrong.status == unknown.status == 401
    wrong_text, unknown_text = await wrong.text(), await unknown.text()
    assert t("agent.login.failed") in wrong_text and t("agent.login.failed") in unknown_text
    assert "certdesk_agent" not in wrong.cookies and "certdesk_agent" not in unknown.cookies
    assert "nobody" not in unknown_text
    async with core.db.read() as conn:
        records = (await conn.execute(select(audit_log))).all()
    failed = [r for r in records if r.action == "agent.login_failed"]
    assert len(failed) == 2
    assert {r.subject for r in failed} == {MEI, "-"}  # an unknown name is never recorded


async def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    client: TestClient[Any, Any], core: Core, clock: FrozenClock
) -> None:
    for _ in range(5):
        assert (await login(client, MEI, "guess guess guess")).status == 401
    assert "agent.locked" in await audit_actions(core)
    locked = await login(client, MEI, PASSWORD)
    assert locked.status == 401  # the right password, refused while locked
    assert t("agent.login.failed") in await locked.text()  # and said no differently
    assert "certdesk_agent" not in locked.cookies
    async with agent_client(client) as other:  # other accounts are not locked
        assert (await login(other, KAI, PASSWORD)).status == 303
    clock.advance(minutes=14, seconds=59)
    assert (await login(client, MEI, PASSWORD)).status == 401
    clock.advance(seconds=2)
    assert (await login(client, MEI, PASSWORD)).status == 303  # the lock is over


async def test_wrong_passwords_with_a_success_between_do_not_lock(
    client: TestClient[Any, Any],
) -> None:
    for _ in range(4):
        assert (await login(client, MEI, "guess guess guess")).status == 401
    assert (await login(client, MEI, PASSWORD)).status == 303
    client.session.cookie_jar.clear()
    for _ in range(4):
        assert (await login(client, MEI, "guess guess guess")).status == 401
    assert (await login(client, MEI, PASSWORD)).status == 303


async def test_logins_from_one_address_are_rate_limited(client: TestClient[Any, Any]) -> None:
    statuses = [(await login(client, "nobody", "guess guess guess")).status for _ in range(11)]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429


async def test_logout_ends_the_session(client: TestClient[Any, Any], core: Core) -> None:
    token = await logged_in(client)
    response = await post(client, "/agent/logout", token)
    assert response.status == 303 and response.headers["Location"] == "/agent/login"
    async with core.db.read() as conn:
        assert (await conn.execute(select(agent_sessions))).first() is None
    assert (await client.get("/agent/", allow_redirects=False)).status == 303


# -- CSRF ---------------------------------------------------------------------------------


async def test_every_post_needs_the_sessions_csrf_token(
    client: TestClient[Any, Any], core: Core
) -> None:
    _, handoff_id = await waiting_customer(client, core)
    token = await logged_in(client)
    claim = f"/agent/c/{handoff_id}/claim"
    assert (await client.post(claim, allow_redirects=False)).status == 403
    assert (await post(client, claim, "0" * 64)).status == 403
    other = agent_client(client)
    try:
        foreign = await logged_in(other, KAI)  # a real token, of another session
    finally:
        await other.close()
    assert foreign != token
    assert (await post(client, claim, foreign)).status == 403
    cross_site = await client.post(
        claim,
        data={"csrf": token},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert cross_site.status == 403
    handoff = await core.handoffs.get(handoff_id)
    assert handoff is not None and handoff.state is HandoffState.WAITING
    response = await post(client, claim, token)
    assert response.status == 303
    assert response.headers["Location"] == f"/agent/c/{handoff_id}?m=claimed"


async def test_the_login_form_needs_its_token(client: TestClient[Any, Any]) -> None:
    await client.get("/agent/login")  # the nonce cookie, but no token sent
    response = await client.post(
        "/agent/login", data={"name": MEI, "password": PASSWORD}, allow_redirects=False
    )
    assert response.status == 403
    assert "certdesk_agent" not in response.cookies


# -- the queue ----------------------------------------------------------------------------


async def test_the_queue_lists_waiting_oldest_first_with_what_an_agent_needs(
    client: TestClient[Any, Any], core: Core, clock: FrozenClock
) -> None:
    linked = await new_chat(client)
    await link(linked, core)
    clock.advance(minutes=1)
    await linked.say("客服")
    clock.advance(minutes=1)
    stranger, stranger_id = await waiting_customer(client, core)
    clock.advance(seconds=5)
    await stranger.say("有人在嗎")
    clock.advance(seconds=5)
    await stranger.say("請問憑證怎麼更新")
    token = await logged_in(client)
    data = await (await client.get("/agent/api/queue")).json()
    ids = [item["id"] for item in data["items"]]
    linked_handoff = await core.handoffs.open_for(linked.conversation_id)
    assert linked_handoff is not None
    assert ids == [linked_handoff.id, stranger_id]
    assert [item["unread"] for item in data["items"]] == [0, 2]
    rows = data["parts"]["queue-rows"]
    assert t("agent.channel.web") in rows and t("agent.reason.asked") in rows
    assert "A123XXX89" in rows and CUSTOMER not in rows  # masked identity
    assert "王小明" in rows
    assert "請問憑證怎麼更新" in rows
    assert t("agent.customer.unlinked") in rows
    # Where the customer was: the bot's words before the request (here the menu after
    # linking), not the hand-off's own answer.
    assert t("agent.queue.bot_said", text="") in rows
    assert t("handoff.waiting") not in rows
    # Claimed, the conversation moves behind the waiting one; reading it clears the count.
    await post(client, f"/agent/c/{stranger_id}/claim", token)
    await client.get(f"/agent/c/{stranger_id}")
    data = await (await client.get("/agent/api/queue")).json()
    assert [item["id"] for item in data["items"]] == [linked_handoff.id, stranger_id]
    assert data["items"][1]["agent"] == MEI and data["items"][1]["unread"] == 0
    clock.advance(seconds=5)
    await stranger.say("還在嗎")
    data = await (await client.get("/agent/api/queue")).json()
    assert data["items"][1]["unread"] == 1


async def test_the_queue_shows_the_linked_certificates_status(
    client: TestClient[Any, Any], core: Core
) -> None:
    await core.certificates.issue(CUSTOMER, "abcd1234", actor=Actor("test", "test"))
    chat = await new_chat(client)
    await link(chat, core)
    await chat.say("客服")
    await logged_in(client)
    rows = (await (await client.get("/agent/api/queue")).json())["parts"]["queue-rows"]
    assert t("status.valid") in rows


# -- claim, reply, notes, return, close -------------------------------------------------


async def test_one_agent_claims_and_a_second_is_refused(
    client: TestClient[Any, Any], core: Core
) -> None:
    chat, handoff_id = await waiting_customer(client, core)
    token = await logged_in(client)
    assert (await post(client, f"/agent/c/{handoff_id}/claim", token)).status == 303
    assert t("handoff.claimed") in shown(await chat.history())
    assert "handoff.claimed" in await audit_actions(core)
    other = agent_client(client)
    try:
        other_token = await logged_in(other, KAI)
        refused = await post(other, f"/agent/c/{handoff_id}/claim", other_token)
        assert refused.headers["Location"] == f"/agent/c/{handoff_id}?e=taken"
        page = await other.get(refused.headers["Location"])
        html = await page.text()
        assert t("agent.error.taken") in html
        assert t("agent.status.other", name=MEI) in html
        # Nor may the second agent speak, return or close it.
        for action in ("reply", "return", "close"):
            attempt = await post(other, f"/agent/c/{handoff_id}/{action}", other_token, text="hi")
            assert attempt.headers["Location"].endswith("?e=not_holder"), action
    finally:
        await other.close()
    handoff = await core.handoffs.get(handoff_id)
    assert handoff is not None and handoff.agent == MEI and handoff.state is HandoffState.ACTIVE


async def test_a_reply_reaches_the_web_chat_customer(
    client: TestClient[Any, Any], core: Core
) -> None:
    chat, handoff_id = await waiting_customer(client, core)
    token = await logged_in(client)
    await post(client, f"/agent/c/{handoff_id}/claim", token)
    response = await post(client, f"/agent/c/{handoff_id}/reply", token, text="您好，我來協助您")
    assert response.headers["Location"] == f"/agent/c/{handoff_id}?m=replied"
    history = await chat.history()
    assert history[-1]["text"] == t("handoff.agent_says", text="您好，我來協助您")
    # The transcript names the agent; the engine ignores a reply from anyone else.
    page = await (await client.get(f"/agent/c/{handoff_id}")).text()
    assert t("agent.transcript.agent", name=MEI) in page and "您好，我來協助您" in page
    ignored = await client.app[ENGINE].handle(
        Inbound(chat.conversation_id, "agent:x", EventKind.AGENT, choice=KAI, text="冒名")
    )
    assert ignored == []
    assert "冒名" not in shown(await chat.history())


async def test_an_empty_reply_is_refused(client: TestClient[Any, Any], core: Core) -> None:
    chat, handoff_id = await waiting_customer(client, core)
    token = await logged_in(client)
    await post(client, f"/agent/c/{handoff_id}/claim", token)
    before = len(await chat.history())
    response = await post(client, f"/agent/c/{handoff_id}/reply", token, text="   ")
    assert response.headers["Location"].endswith("?e=empty")
    long = await post(client, f"/agent/c/{handoff_id}/reply", token, text="字" * 2001)
    assert long.headers["Location"].endswith("?e=too_long")
    assert len(await chat.history()) == before


async def test_notes_are_for_agents_only(client: TestClient[Any, Any], core: Core) -> None:
    chat, handoff_id = await waiting_customer(client, core)
    token = await logged_in(client)
    response = await post(client, f"/agent/c/{handoff_id}/note", token, text="客戶很急，先查憑證")
    assert response.headers["Location"] == f"/agent/c/{handoff_id}?m=noted"
    page = await (await client.get(f"/agent/c/{handoff_id}")).text()
    assert "客戶很急，先查憑證" in page
    assert "客戶很急" not in shown(await chat.history())
    transcript = await core.conversations.transcript(chat.conversation_id)
    assert all("客戶很急" not in entry.replies for entry in transcript)


async def test_return_to_the_bot(client: TestClient[Any, Any], core: Core) -> None:
    chat, handoff_id = await waiting_customer(client, core)
    token = await logged_in(client)
    await post(client, f"/agent/c/{handoff_id}/claim", token)
    response = await post(client, f"/agent/c/{handoff_id}/return", token)
    assert response.headers["Location"] == f"/agent/c/{handoff_id}?m=returned"
    assert t("handoff.returned") in shown(await chat.history())
    handoff = await core.handoffs.get(handoff_id)
    assert handoff is not None and handoff.outcome == HandoffOutcome.RETURNED.value
    again = await post(client, f"/agent/c/{handoff_id}/reply", token, text="還有嗎")
    assert again.headers["Location"].endswith("?e=not_holder")
    data = await (await client.get("/agent/api/queue")).json()
    assert data["items"] == []


async def test_close_as_resolved_asks_the_customer_for_a_rating(
    client: TestClient[Any, Any], core: Core
) -> None:
    chat, handoff_id = await waiting_customer(client, core)
    token = await logged_in(client)
    await post(client, f"/agent/c/{handoff_id}/claim", token)
    response = await post(client, f"/agent/c/{handoff_id}/close", token)
    assert response.headers["Location"] == f"/agent/c/{handoff_id}?m=closed"
    history = await chat.history()
    assert t("handoff.resolved") in shown(history)
    assert history[-1]["text"] == t("handoff.rate")
    assert len(history[-1]["choices"]) == 6  # 1–5 and skip
    handoff = await core.handoffs.get(handoff_id)
    assert handoff is not None and handoff.outcome == HandoffOutcome.RESOLVED.value
    assert "handoff.resolved" in await audit_actions(core)


# -- canned replies -----------------------------------------------------------------------


async def test_canned_replies_are_shared_and_offered_in_the_reply_form(
    client: TestClient[Any, Any], core: Core
) -> None:
    _, handoff_id = await waiting_customer(client, core)
    token = await logged_in(client)
    added = await post(client, "/agent/canned", token, title="問候", text="您好，<請稍候>")
    assert added.headers["Location"] == "/agent/canned?m=canned_added"
    duplicate = await post(client, "/agent/canned", token, title="問候", text="again")
    assert duplicate.headers["Location"] == "/agent/canned?e=canned_invalid"
    other = agent_client(client)
    try:
        other_token = await logged_in(other, KAI)
        await post(other, f"/agent/c/{handoff_id}/claim", other_token)
        page = await (await other.get(f"/agent/c/{handoff_id}")).text()
        assert 'data-text="您好，&lt;請稍候&gt;"' in page  # escaped
        assert "<請稍候>" not in page
    finally:
        await other.close()
    listing = await (await client.get("/agent/canned")).text()
    reply_id = re.search(r"/agent/canned/(\d+)/remove", listing)
    assert reply_id is not None
    removed = await post(client, f"/agent/canned/{reply_id.group(1)}/remove", token)
    assert removed.headers["Location"] == "/agent/canned?m=canned_removed"
    assert "問候" not in await (await client.get("/agent/canned")).text()


# -- masking ------------------------------------------------------------------------------


async def test_an_agent_never_sees_a_code_or_a_full_id_number(
    client: TestClient[Any, Any], core: Core
) -> None:
    chat = await new_chat(client)
    await link(chat, core)  # the ID number, the birth date and the code typed in this chat
    code = await last_code(core)
    await chat.say("客服")
    await chat.say(f"我的身分證是 {CUSTOMER}，驗證碼 {code}")
    handoff = await core.handoffs.open_for(chat.conversation_id)
    assert handoff is not None
    # An older record written before the engine masked (or by a mistake): still masked here.
    async with core.db.write() as conn:
        await conn.execute(
            insert(conversation_events).values(
                conversation_id=chat.conversation_id,
                event_id="old-unmasked",
                received_at=core.clock(),
                replies="[]",
                said=f"{CUSTOMER} ６５４３２１ b123456789",
            )
        )
    token = await logged_in(client)
    await post(client, f"/agent/c/{handoff.id}/claim", token)
    page = await (await client.get(f"/agent/c/{handoff.id}")).text()
    live = await (await client.get(f"/agent/api/c/{handoff.id}")).text()
    queue = await (await client.get("/agent/api/queue")).text()
    for shown_text in (page, live, queue):
        assert CUSTOMER not in shown_text
        assert code not in shown_text
        assert "６５４３２１" not in shown_text
        assert "b123456789" not in shown_text.lower()
    assert "A123XXX89" in page
    assert "我的身分證是" in page  # the words themselves are kept


async def test_a_customer_cannot_turn_a_line_around_on_the_agents_screen(
    client: TestClient[Any, Any], core: Core
) -> None:
    chat, handoff_id = await waiting_customer(client, core)
    await chat.say("請退款\u202e至帳戶")
    await logged_in(client)
    page = await (await client.get(f"/agent/c/{handoff_id}")).text()
    assert "\u202e" not in page
    assert "請退款\\u202e至帳戶" in page  # spelled out, as the operator commands show it
    assert "\\n" not in page  # the bot's own line breaks are still line breaks


# -- language and proxies ---------------------------------------------------------------


async def test_the_console_speaks_english_on_request(client: TestClient[Any, Any]) -> None:
    english = await client.get("/agent/login?lang=en")
    assert translate("en", "agent.login.title") in await english.text()
    again = await client.get("/agent/login")  # remembered
    assert translate("en", "agent.login.title") in await again.text()
    assert 'lang="en"' in await again.text()
    back = await client.get("/agent/login?lang=zh-TW")
    assert t("agent.login.title") in await back.text()


async def test_a_form_posted_over_https_through_a_trusted_proxy_is_accepted(
    client: TestClient[Any, Any], core: Core
) -> None:
    core.settings = replace(core.settings, trusted_proxies="127.0.0.0/8")
    form = await client.get("/agent/login")
    host = client.make_url("/").host
    port = client.make_url("/").port
    fields = {"csrf": csrf_of(await form.text()), "name": MEI, "password": PASSWORD}
    proxied = {"X-Forwarded-Proto": "https", "Origin": f"https://{host}:{port}"}
    response = await client.post(
        "/agent/login", data=fields, headers=proxied, allow_redirects=False
    )
    assert response.status == 303
    # The same origin without the proxy's word is another site.
    core.settings = replace(core.settings, trusted_proxies="")
    client.session.cookie_jar.clear()
    form = await client.get("/agent/login")
    fields["csrf"] = csrf_of(await form.text())
    refused = await client.post("/agent/login", data=fields, headers=proxied, allow_redirects=False)
    assert refused.status == 403


async def test_agent_without_a_slash_and_an_unknown_conversation(
    client: TestClient[Any, Any],
) -> None:
    bare = await client.get("/agent", allow_redirects=False)
    assert bare.status == 303 and bare.headers["Location"] == "/agent/"
    assert bare.headers["X-Frame-Options"] == "DENY"
    await logged_in(client)
    for path in ("/agent/c/999", "/agent/c/abc", "/agent/api/c/999"):
        missing = await client.get(path)
        assert missing.status == 404, path
        assert missing.headers["Cache-Control"] == "no-store"
        assert t("agent.error.not_found") in await missing.text()
