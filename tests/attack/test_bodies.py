"""Attack on every POST endpoint with oversized and malformed bodies.

Threat: a body that a handler does not expect — not JSON, JSON of the wrong shape or nested a
hundred thousand deep, not UTF-8, the wrong content type, a multipart form without its end, a
truncated document, megabytes of it — must be refused as the client's mistake (4xx) and never
become a 500 with a traceback: a 500 tells a prober where the code is weak, fills the logs, and
for LINE and Telegram makes the platform redeliver the same body again and again.

Bound: for each endpoint and each body, the status is below 500, every log line of the request
is below ERROR and carries no traceback, and the body is refused with 4xx — except where the
protocol itself says otherwise, each named in `ACCEPTED` with its reason. Huge bodies are 413
whether their length is declared or they come chunked.

The whole app with every channel on, on loopback: the LINE webhook (bodies signed as LINE
signs them, so they get past the signature and reach the parser), the Telegram webhook (with its
secret), the web chat, the download page, OCSP, LINE's Account Link page, and the agent
console (its login form, and two of its forms behind a logged-in agent's cookie). Already
covered elsewhere and not repeated: the web chat's malformed JSON, oversized bodies and wrong
content types (`tests/bot/web/test_chat_api.py::test_malformed_json`,
`::test_oversized_bodies_and_texts`,
`::test_wrong_methods_and_content_types`), Telegram's non-JSON and non-update bodies
(`tests/bot/telegram/test_webhook.py::test_malformed_bodies_get_400`), LINE's signed non-webhook
bodies (`tests/bot/line/test_webhook.py::
test_a_signed_body_that_is_no_webhook_is_acknowledged_and_logged`), and OCSP's over-limit and
trickled bodies over raw sockets (`tests/bot/web/test_http_limits.py`).
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import ClientResponse

from bot.channels.line import LINE
from bot.web.chat import LIMITER
from bot.web.limits import CLIENT_MAX_SIZE
from certcore.customers import load_demo_customers
from tests.bot.line.conftest import sign
from tests.bot.telegram.conftest import SECRET as TELEGRAM_SECRET
from tests.bot.telegram.conftest import Factory, Telegram
from tests.bot.web.test_download_page import open_delivery
from tests.fakes.line_api import SECRET as LINE_SECRET
from tests.fakes.line_api import TOKEN as LINE_TOKEN
from tests.fakes.line_api import FakeLineApi

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
AGENT, AGENT_PASSWORD = "mei", "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
HUGE = CLIENT_MAX_SIZE + 1024
"""Past the largest limit of any route (1 MB)."""


@dataclass(frozen=True)
class Body:
    content_type: str | None
    data: bytes
    chunked: bool = False


BODIES: dict[str, Body] = {
    "malformed JSON": Body(JSON, b'{"text": hi}'),
    "truncated JSON": Body(JSON, b'{"update_id": 5, "message": {"text": "\\u90'),
    "JSON nested 20,000 deep": Body(JSON, b"[" * 20_000),
    "JSON object nested 5,000 deep": Body(JSON, b'{"a":' * 5_000 + b"1" + b"}" * 5_000),
    "JSON of the wrong shape": Body(JSON, b'[{"text": "hi"}]'),
    "a huge number": Body(JSON, b'{"update_id": ' + b"9" * 5_000 + b"}"),
    "not UTF-8": Body(JSON, b'\xff\xfe{"text": "\xc0\xaf"}'),
    "NUL bytes": Body(JSON, b'{"text": "\x00\x00"}\x00'),
    "empty": Body(JSON, b""),
    "wrong content type": Body("text/plain", b'{"text": "hi"}'),
    "form instead of JSON": Body(FORM, b"text=hi&action=x"),
    "multipart without its end": Body(
        "multipart/form-data; boundary=zz",
        b'--zz\r\nContent-Disposition: form-data; name="password"\r\n\r\nabc',
    ),
    "multipart without a boundary": Body("multipart/form-data", b"--\r\n\r\n"),
    "a form with a broken escape": Body(FORM, b"password=%zz&form_key=%"),
    "binary garbage": Body("application/octet-stream", random.Random(1).randbytes(4096)),
    # Of the endpoint's own content type (`Target.natural`), so the size is what refuses it.
    "huge, declared": Body(None, b" " * HUGE),
    "huge, chunked": Body(None, b" " * HUGE, chunked=True),
}

ACCEPTED: dict[tuple[str, str], str] = {}
"""(endpoint, body) pairs answered 2xx, with the reason; every other pair is 4xx."""
for _body in BODIES:
    if not _body.startswith("huge"):
        # LINE: 200 for every signed body, parsed after the answer (a signed body that is no
        # webhook is logged and dropped, see the module docstring's reference).
        ACCEPTED["line webhook", _body] = "LINE answers every signed body 200"
        # OCSP: RFC 6960 §2.3 answers a malformed request with an OCSP error response, 200.
        ACCEPTED["ocsp", _body] = "an OCSP malformedRequest response"
for _body in BODIES:  # the web chat's file check takes any bytes: "not a certificate"
    if not _body.startswith("huge") and _body != "empty":
        ACCEPTED["chat file", _body] = "answered in chat: not a certificate file"
ACCEPTED["chat session", "empty"] = "a new session needs no body"


@dataclass
class Target:
    name: str
    path: str
    headers: dict[str, str]
    natural: str
    """The content type the endpoint takes."""


def _cookies(response: ClientResponse) -> str:
    return "; ".join(f"{name}={morsel.value}" for name, morsel in response.cookies.items())


async def _agent_cookies(app: Telegram) -> tuple[str, str]:
    """The login form's cookie, and a logged-in agent's session cookie, from the console's own
    login form. (Sent by hand: with an https public URL the console's cookies are `Secure`, and
    the test speaks http.)"""
    await app.core.agents.add(AGENT, AGENT_PASSWORD)
    url = app.server.make_url("/agent/login")
    async with app.session.get(url) as form:
        token = CSRF.search(await form.text())
        nonce = _cookies(form)
    assert token is not None and nonce
    fields = {"csrf": token.group(1), "name": AGENT, "password": AGENT_PASSWORD}
    async with app.session.post(
        url, data=fields, headers={"Cookie": nonce}, allow_redirects=False
    ) as response:
        assert response.status == 303, await response.text()
        return nonce, _cookies(response)


@pytest.fixture
async def everything(telegram_app: Factory, fake_line: FakeLineApi) -> Telegram:
    """The whole app: Telegram by webhook, LINE with Account Link, the web chat, the rest."""
    return await telegram_app(
        line_channel_secret=LINE_SECRET,
        line_channel_access_token=LINE_TOKEN,
        line_api_base=fake_line.base_url,
        line_account_link=True,
    )


async def _targets(app: Telegram) -> dict[str, Target]:
    limiter = app.server.app[LIMITER]  # new sessions per client: room for every body here
    limiter.capacity, limiter.rate = 1000, 1000 / 60
    created = await app.session.post(app.server.make_url("/api/chat/sessions"))
    session = (await created.json())["session"]
    await load_demo_customers(app.core.db, app.core.clock())
    token = await open_delivery(app.core)
    chat = f"/api/chat/sessions/{session}"
    login, session = await _agent_cookies(app)  # so that a body is read, not refused unread
    agent = {"Cookie": session}
    return {
        t.name: t
        for t in (
            Target("line webhook", "/line/webhook", {}, JSON),
            Target(
                "telegram webhook",
                "/telegram/webhook",
                {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
                JSON,
            ),
            Target("chat session", "/api/chat/sessions", {}, JSON),
            Target("chat message", f"{chat}/messages", {}, JSON),
            Target("chat file", f"{chat}/files", {}, "application/octet-stream"),
            Target("download page", f"/d/{token}", {}, FORM),
            Target("ocsp", "/ocsp", {}, "application/ocsp-request"),
            Target("line link page", "/line/link", {}, FORM),
            Target("agent login", "/agent/login", {"Cookie": login}, FORM),
            Target("agent reply", "/agent/c/1/reply", agent, FORM),
            Target("agent canned reply", "/agent/canned", agent, FORM),
        )
    }


ENDPOINTS = [
    "line webhook",
    "telegram webhook",
    "chat session",
    "chat message",
    "chat file",
    "download page",
    "ocsp",
    "line link page",
    "agent login",
    "agent reply",
    "agent canned reply",
]


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 64 * 1024):
        yield data[start : start + 64 * 1024]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_malformed_and_oversized_bodies_are_refused_with_4xx(
    everything: Telegram,
    fake_line: FakeLineApi,
    endpoint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = (await _targets(everything))[endpoint]
    url = everything.server.make_url(target.path)
    answers: dict[str, int] = {}
    with caplog.at_level(logging.DEBUG):
        for name, body in BODIES.items():
            headers = dict(target.headers)
            headers["Content-Type"] = body.content_type or target.natural
            if endpoint == "line webhook":
                headers["X-Line-Signature"] = sign(body.data)
            data = _chunks(body.data) if body.chunked else body.data
            caplog.clear()
            async with everything.session.post(url, data=data, headers=headers) as response:
                await response.read()
                answers[name] = response.status
            if endpoint == "line webhook":  # its bodies are parsed after the answer
                await everything.server.app[LINE].idle()
            bad = [
                r.getMessage()
                for r in caplog.records
                if r.levelno >= logging.ERROR or r.exc_info or "Traceback" in r.getMessage()
            ]
            assert not bad, (endpoint, name, bad)
    wrong = {}
    for name, status in answers.items():
        if name.startswith("huge"):
            expected = "413"
            ok = status == 413
        elif (endpoint, name) in ACCEPTED:
            expected = "< 500"
            ok = status < 500
        else:
            expected = "4xx"
            ok = 400 <= status < 500
        if not ok:
            wrong[name] = f"{status}, expected {expected}"
    assert not wrong, (endpoint, wrong)
    assert fake_line.requests == []  # nothing of it reached a customer on LINE
