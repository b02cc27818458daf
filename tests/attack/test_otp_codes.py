"""Attack on the one-time codes: guessed codes against the attempt and send limits.

Threat: an attacker who knows a customer's ID number and birth date (both are far from secret)
gets past the identity check to the code step; the code, sent to the customer's own phone or
mailbox, is then the only thing between the attacker and a certificate in the customer's name
(or a revocation of theirs). The attacker guesses six digits.

Bound (DESIGN §3): 5 wrong entries void a code — the fifth is still checked, nothing after it
is — and at most 10 codes are sent per customer in any 24 hours (5 in an hour), whatever the
conversation asking. A code typed with another message's prefix is not checked at all (it says
"stale", whether the digits are right or not), so the prefix is no oracle. So the attacker's
chance per day is at most 5 × 10 / 10^6 = 5e-5, and it is this number the test asserts, from
what it measured: the checked guesses per code and the codes the service sent in the day.

Not 10,000 guesses here: each guess is a write transaction holding the customer's lock, with its
audit record (about 7 ms on this shared machine even with 200 at once), so 10,000 would take
over a minute. The guessing goes through `OtpService` (the layer that counts and voids) for one
whole day's budget instead: the 10 codes the day allows, each met with 100 guesses at once (a
race for the attempt counter: exactly 5 are checked, the other 95 refused unchecked), then the
right code after the void (refused), and the eleventh send refused until 24 hours after the
first. About 40 more guesses go through the web chat over HTTP, to show the conversation meets
the same limits: the fifth wrong code voids, the right code after it is not accepted, and the
sixth code in an hour is not sent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.web import create_app
from certcore.audit import Actor
from certcore.clock import FrozenClock
from certcore.core import Core
from certcore.customers import load_demo_customers
from certcore.errors import OtpError, OtpSendLimit
from certcore.notify import Medium
from certcore.otp import Binding, Operation
from tests.bot.web.test_chat_api import CUSTOMER, ROC_BIRTH, new_chat, says

CODES_A_DAY = 10
GUESSES_A_CODE = 100
"""Sent at once for each code (a race for the attempt counter): 1,000 guesses in the day."""
CODE_SPACE = 10**6
PER_DAY_BOUND = 5 * 10 / CODE_SPACE
"""DESIGN §3: 5 checked entries a code, 10 codes a day: 5e-5."""
_SENT = re.compile(r"\b([A-Z]{4})-(\d{6})\b")


async def _sent_code(core: Core, after: int) -> tuple[str, str]:
    assert core.outbox is not None
    (entry,) = await core.outbox.since(after)
    found = _SENT.search(entry.body)
    assert found is not None
    return found.group(1), found.group(2)


async def _send(core: Core, binding: Binding, actor: Actor) -> tuple[str, str] | None:
    """A new code (prefix, digits), or None when a send limit refuses it."""
    assert core.outbox is not None
    seen = await core.outbox.last_id()
    try:
        await core.otp.send(
            binding, medium=Medium.SMS, destination="0936123054", locale="zh_TW", actor=actor
        )
    except OtpSendLimit:
        return None
    return await _sent_code(core, seen)


async def _outcome(core: Core, binding: Binding, actor: Actor, entry: str) -> str:
    try:
        await core.otp.verify(binding, entry, actor=actor)
    except OtpError as error:
        return error.code
    return "accepted"


async def test_a_days_guessing_allows_at_most_5e_5(core: Core, clock: FrozenClock) -> None:
    await load_demo_customers(core.db, core.clock())
    binding = Binding(CUSTOMER, "web:attacker", Operation.APPLY)
    actor = Actor("customer@web:attacker", "web")
    walk = iter(range(CODE_SPACE))  # the attacker walks the code space in order
    checked_per_code: list[int] = []
    sent_at: list[datetime] = []
    guesses = 0

    while True:
        sent = await _send(core, binding, actor)
        if sent is None:  # the hour's limit: wait an hour; the day's: the day is spent
            clock.advance(hours=1)
            sent = await _send(core, binding, actor)
            if sent is None:
                break
        sent_at.append(clock())
        assert len(sent_at) <= CODES_A_DAY, f"an eleventh code within {clock() - sent_at[0]}"
        prefix, code = sent
        # Another message's prefix: not checked, right digits or not, and not counted.
        other = "ZZZZ" if prefix != "ZZZZ" else "YYYY"
        assert await _outcome(core, binding, actor, f"{other}-{code}") == "otp_stale_prefix"
        batch = [f"{n:06d}" for n in (next(walk) for _ in range(GUESSES_A_CODE + 1))]
        batch = [g for g in batch if g != code][:GUESSES_A_CODE]  # a lucky guess would end it
        outcomes = await asyncio.gather(*(_outcome(core, binding, actor, g) for g in batch))
        guesses += len(batch)
        assert "accepted" not in outcomes
        checked = outcomes.count("otp_wrong_code") + outcomes.count("otp_voided")
        assert outcomes.count("otp_voided") == 1, outcomes
        assert outcomes.count("otp_no_active_code") == len(batch) - checked
        checked_per_code.append(checked)
        # The code is void: even the right one is not checked any more.
        assert await _outcome(core, binding, actor, code) == "otp_no_active_code"

    # The day's budget is spent: no code until 24 hours after the first.
    assert clock() < sent_at[0] + timedelta(days=1)
    clock.advance(seconds=(sent_at[0] + timedelta(days=1) - clock()).total_seconds() - 60)
    assert await _send(core, binding, actor) is None
    clock.advance(minutes=1)
    assert await _send(core, binding, actor) is not None

    per_code = max(checked_per_code)
    per_day = len(sent_at)
    probability = per_code * per_day / CODE_SPACE
    assert guesses == CODES_A_DAY * GUESSES_A_CODE
    assert per_code == 5, checked_per_code
    assert per_day == CODES_A_DAY, sent_at
    assert sent_at[-1] - sent_at[0] < timedelta(days=1)
    assert probability <= PER_DAY_BOUND == 5e-5, probability


@pytest.fixture
async def client(core: Core) -> AsyncIterator[TestClient[Any, Any]]:
    await load_demo_customers(core.db, core.clock())
    async with TestClient(TestServer(create_app(core), host="127.0.0.1")) as test_client:
        yield test_client


async def test_the_web_chat_meets_the_same_limits(client: TestClient[Any, Any], core: Core) -> None:
    assert core.outbox is not None
    chat = await new_chat(client)
    await chat.tap("query")
    await chat.say(CUSTOMER)
    await chat.say(ROC_BIRTH)
    await chat.tap("sms")
    sent = 0
    while True:
        seen = await core.outbox.last_id()
        replies = await chat.tap("send")
        if any(says(m, "verify.send.limit") for m in replies):
            break
        sent += 1
        _, code = await _sent_code(core, seen)
        wrong = [f"{(int(code) + n) % CODE_SPACE:06d}" for n in range(1, 6)]
        for number, guess in enumerate(wrong, start=1):
            replies = await chat.say(guess)
            key = "verify.code.voided" if number == 5 else "verify.code.wrong"
            assert any(says(m, key) for m in replies), (number, replies)
        # The right code now: the void code is not checked, the chat offers a new one.
        replies = await chat.say(code)
        assert not any(says(m, "verify.code.accepted") for m in replies), replies
    assert sent == 5  # the hourly limit: a sixth code in the hour is not sent
