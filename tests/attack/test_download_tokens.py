"""Attack on the one-time download links, `/d/{token}`: 10,000 guessed tokens.

Threat: whoever holds a live link sets the export password and takes the customer's new
certificate and private key. An attacker who cannot read the chat guesses tokens.

What limits the guessing: not a rate limit — the page answers every guess (404) and keeps no
count per client — but the token's size and its short life. A token is
`secrets.token_urlsafe(32)`, 256 bits, stored only as its SHA-256 and looked up by the whole
hash; it lives `delivery_window_minutes` (15) and at most 3 downloads. A POST also needs the
form key (an HMAC of the token), so a guess by POST is refused (403) before the lookup.

Bound, written in the test: guesses in a year at `ATTACKER_RATE` (10^6/s) × live links
(10^7) / 2^256 ≈ 2.7e-57 < 1e-30. 10,000 guesses (half random, half the real token with one
character changed) go through the lowest layer that decides (`DeliveryService.describe`, the
lookup the page makes); 10,000 HTTP requests would take about 25 s here, so a few hundred go
through the page itself to show it answers them the same way. The real link still works after
all of them: guessing cannot lock its owner out.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.web import create_app
from certcore.core import Core
from certcore.customers import load_demo_customers
from certcore.pki import DeliveryState
from tests.attack.guessing import (
    ATTACKER_RATE,
    BOUND,
    SECONDS_PER_YEAR,
    guesses_for,
    secret_bits,
    success_probability,
)
from tests.bot.web.test_download_page import open_delivery

GUESSES = 10_000
HTTP_GUESSES = 300
POST_GUESSES = 50
BATCH = 100


@pytest.fixture
async def client(core: Core) -> AsyncIterator[TestClient[Any, Any]]:
    await load_demo_customers(core.db, core.clock())
    async with TestClient(TestServer(create_app(core), host="127.0.0.1")) as test_client:
        yield test_client


async def test_10000_guessed_download_tokens(
    client: TestClient[Any, Any], core: Core, rng: random.Random
) -> None:
    token = await open_delivery(core)
    guesses = guesses_for(token, GUESSES + HTTP_GUESSES + POST_GUESSES, rng)

    # 10,000 guesses at the lookup the page makes: none finds a delivery.
    found = 0
    for start in range(0, GUESSES, BATCH):
        batch = guesses[start : start + BATCH]
        described = await asyncio.gather(*(core.deliveries.describe(g) for g in batch))
        found += sum(d is not None for d in described)
    assert found == 0

    # Through the page: every guess is answered "unknown" (no limit applies, none is needed).
    answered = 0
    for guess in guesses[GUESSES : GUESSES + HTTP_GUESSES]:
        response = await client.get(f"/d/{guess}", headers={"Accept": "application/json"})
        assert response.status == 404, guess
        assert await response.json() == {"state": "unknown"}
        answered += 1
    assert answered == HTTP_GUESSES
    # By POST without the token's form key: refused before any lookup.
    for guess in guesses[GUESSES + HTTP_GUESSES :]:
        fields = {"password": "abc123", "password_confirm": "abc123", "format": "standard"}
        response = await client.post(f"/d/{guess}", data={**fields, "form_key": "0" * 64})
        assert response.status == 403, guess
        assert response.content_type == "text/html"

    # The owner's link is untouched by all of it.
    owner = await core.deliveries.describe(token)
    assert owner is not None and owner.state is DeliveryState.OPEN
    page = await client.get(f"/d/{token}")
    assert page.status == 200

    # The bound: a year of guessing at ATTACKER_RATE against every live link at once.
    bits = secret_bits(token)
    probability = success_probability(ATTACKER_RATE * SECONDS_PER_YEAR, bits)
    assert bits >= 256, bits
    assert probability < BOUND, f"{bits}-bit download tokens: {probability:.1e} a year"
