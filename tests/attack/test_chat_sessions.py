"""Attack on the web chat's session ids, `/api/chat/sessions/{session}/…`: 10,000 guesses.

Threat: a session id is the whole of a web chat's authentication. Whoever holds a linked
session reads the conversation (masked, but the customer's certificates and the sealed text
open for the session) and acts as the customer in it: apply, revoke.

What limits the guessing: not a rate limit — new sessions are limited per client
(`SESSIONS_PER_WINDOW`, tested in `tests/bot/web/test_chat_api.py::
test_sessions_are_rate_limited_per_client`), but a request naming an unknown session is simply
answered 404 — and not needed: a session id is `secrets.token_urlsafe(32)`, 256 bits, and the
database holds only a hash of it (`web:<SHA-256>`), looked up whole.

Bound, written in the test: a year of guesses at `ATTACKER_RATE` (10^6/s) × live sessions
(10^7) / 2^256 ≈ 2.7e-57 < 1e-30. 10,000 guesses (half random, half the real id with one
character changed) go through the lowest layer that decides (`WebChat.exists`, the lookup
every session request makes); 10,000 HTTP requests would take about 45 s here, so a few hundred
go through the API to show it answers them the same way.

Guessing must not cost the real sessions anything either: a guessed id used to be remembered
like a real one, in the bounded set of sessions whose key seals a push for them, so a run of
guesses pushed the real sessions out and a link pushed to one afterwards was left out.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

import bot.channels.webchat
from bot.channels.webchat import Session
from bot.web import create_app
from bot.web.chat import WEBCHAT
from certcore.core import Core
from dialogs import Delivery
from tests.attack.guessing import (
    ATTACKER_RATE,
    BOUND,
    SECONDS_PER_YEAR,
    guesses_for,
    secret_bits,
    success_probability,
)

GUESSES = 10_000
HTTP_GUESSES = 300
BATCH = 100
REMEMBERED = 50
"""The sealing keys kept, made small so a few hundred guesses would push a real one out."""


@pytest.fixture
async def client(core: Core) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(core), host="127.0.0.1")) as test_client:
        yield test_client


async def test_10000_guessed_session_ids(
    client: TestClient[Any, Any], core: Core, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.channels.webchat, "_KEYS_REMEMBERED", REMEMBERED)
    created = await client.post("/api/chat/sessions")
    assert created.status == 201
    session = (await created.json())["session"]
    adapter = client.app[WEBCHAT]
    guesses = guesses_for(session, GUESSES + HTTP_GUESSES, rng)

    # 10,000 guesses at the lookup every session request makes: none names a conversation.
    found = 0
    for start in range(0, GUESSES, BATCH):
        batch = guesses[start : start + BATCH]
        exists = await asyncio.gather(*(adapter.exists(Session.of(g)) for g in batch))
        found += sum(exists)
    assert found == 0

    # Through the API, reading and writing: every guess answered 404, nothing else.
    for number, guess in enumerate(guesses[GUESSES:]):
        url = f"/api/chat/sessions/{guess}/messages"
        if number % 2:
            response = await client.post(url, json={"text": "選單"})
        else:
            response = await client.get(url)
        assert response.status == 404, guess
        assert (await response.json())["error"] == "unknown_session"

    # The real session is untouched, and a link pushed to it now is still sealed and shown.
    conversation = Session.of(session).conversation_id
    link = Delivery(delivery_id="d1", text="下載", url="/d/" + "t" * 43)
    await adapter.record(conversation, [link])
    response = await client.get(f"/api/chat/sessions/{session}/messages")
    assert response.status == 200
    shown = (await response.json())["messages"][-1]
    assert shown["link"] is not None, "the guesses pushed the real session's key out"
    assert shown["link"]["url"] == link.url

    # The bound: a year of guessing at ATTACKER_RATE against every live session at once.
    bits = secret_bits(session)
    probability = success_probability(ATTACKER_RATE * SECONDS_PER_YEAR, bits)
    assert bits >= 256, bits
    assert probability < BOUND, f"{bits}-bit session ids: {probability:.1e} a year"
