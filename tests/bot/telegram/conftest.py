"""The Telegram channel end to end: `create_app(core)` served on loopback with Telegram switched
on, python-telegram-bot's real `Bot` pointed at the fake Bot API (`tests/fakes/telegram_api`),
and updates posted to the real `/telegram/webhook` with the secret header, or fed to the fake's
getUpdates for long polling.

The send limits are raised for the flows (they are tested on their own with a fake clock in
`test_limits.py`), and the retry backoff made short, so a whole application takes a second or
two instead of a minute of Telegram's one message a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from bot.channels.telegram import POLLER, TELEGRAM, TelegramChannel
from bot.channels.telegram.limits import SendLimiter
from bot.channels.telegram.polling import Backoff
from bot.web import CORE, create_app
from certcore.clock import FrozenClock
from certcore.config import load_settings
from certcore.core import Core
from certcore.customers import Customer, CustomerKind
from certcore.customers.directory import upsert_customers
from certcore.identity import parse_roc_date
from dialogs.turn import decode_choice
from tests.dialogs.catalogue import expected_pattern
from tests.fakes.telegram_api import TOKEN, FakeTelegramApi, Sent

SECRET = "tg-webhook-secret_0123456789"
CHAT = 5550001
CUSTOMER = "A123456789"
BIRTH = "761205"
PUBLIC_URL = "https://certdesk.example"
_CODE = re.compile(r"\b([A-Z]{4})-(\d{6})\b")


@pytest.fixture
async def fake_tg() -> AsyncIterator[FakeTelegramApi]:
    fake = FakeTelegramApi()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


class Telegram:
    """The customers' side of Telegram: posts updates to the webhook, reads what came back."""

    def __init__(self, server: TestServer, session: ClientSession, fake: FakeTelegramApi) -> None:
        self.server = server
        self.session = session
        self.fake = fake
        self.core: Core = server.app[CORE]
        self.seen: dict[int, int] = {}
        """Per chat, how many of the bot's messages `expect` has looked at."""

    @property
    def channel(self) -> TelegramChannel:
        return self.server.app[TELEGRAM]

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with self.session.post(
            self.server.make_url("/telegram/webhook"), json=update, headers=headers
        ) as response:
            await response.read()
            return response.status

    async def send(self, update: dict[str, Any]) -> int:
        """Post the update, then wait until the bot has worked it off."""
        status = await self.post(update)
        await self.idle()
        return status

    async def idle(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(self.channel.idle(), timeout)

    async def text(self, chat: int, text: str, **values: Any) -> dict[str, Any]:
        update = self.fake.message(chat, text, **values)
        assert await self.send(update) == 200
        return update

    async def tap(self, chat: int, key: str) -> dict[str, Any]:
        """Tap the button for option `key` on the newest question with it."""
        for sent in reversed(self.fake.to(chat)):
            for data in sent.callback_data:
                decoded = decode_choice(self.channel.keys.key_for(data))
                if decoded is not None and decoded[1] == key:
                    update = self.fake.callback(chat, data, message=sent)
                    assert await self.send(update) == 200
                    return update
        raise AssertionError(f"no button {key!r} was offered to {chat}")

    async def code(self, chat: int) -> dict[str, Any]:
        """Type the code last sent to the development outbox."""
        assert self.core.outbox is not None
        entries = await self.core.outbox.since(0)
        codes = [m.group(2) for e in entries for m in [_CODE.search(e.body)] if m]
        assert codes, "no code was sent"
        return await self.text(chat, codes[-1])

    def new(self, chat: int) -> list[Sent]:
        sent = self.fake.to(chat)
        start = self.seen.get(chat, 0)
        self.seen[chat] = len(sent)
        return sent[start:]

    def expect(self, chat: int, *keys: str, locale: str = "zh_TW") -> list[Sent]:
        """The bot's messages to the chat since the last look are these catalogue keys, in
        order, all of them (a key ending in `*` need only begin the message: a table)."""
        sent = self.new(chat)
        got = [s.text for s in sent]
        assert len(sent) == len(keys), f"expected {list(keys)}, got:\n" + "\n---\n".join(got)
        for message, key in zip(sent, keys, strict=True):
            pattern = expected_pattern(locale, key.rstrip("*"))
            matched = (
                pattern.match(message.text)
                if key.endswith("*")
                else pattern.fullmatch(message.text)
            )
            assert matched, f"expected {key}, got {message.text!r}"
        return sent


async def add_customer(core: Core, id_number: str = CUSTOMER) -> None:
    customer = Customer(
        id_number=id_number,
        kind=CustomerKind.INDIVIDUAL,
        name="王三",
        birth_date=parse_roc_date(BIRTH, today=core.clock().date()),
        mobile="0936123054",
        email=None,
        accounts=("1020-0324338",),
    )
    async with core.db.write() as conn:
        await upsert_customers(conn, [customer], core.clock())


Factory = Callable[..., Awaitable[Telegram]]


@pytest.fixture
async def telegram_app(
    fake_tg: FakeTelegramApi,
    data_dir: Any,
    clock: FrozenClock,
    rng: random.Random,
    environ: dict[str, str],
    database_url: str,
) -> AsyncIterator[Factory]:
    """`await telegram_app(**settings)`: the whole app with Telegram on, served on loopback
    (by default in webhook mode: an https public URL), the demo customer 王三 on file."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(fast: bool = True, **overrides: Any) -> Telegram:
            values: dict[str, Any] = {
                "telegram_bot_token": TOKEN,
                "telegram_webhook_secret": SECRET,
                "telegram_api_base": fake_tg.base_url,
                "public_url": PUBLIC_URL,
                "database_url": database_url or None,
                **overrides,
            }
            settings = load_settings(environ={}, data_dir=data_dir, **values)
            core = await Core.open(settings, clock=clock, rng=rng, environ=environ)
            stack.push_async_callback(core.close)
            await add_customer(core)
            app = create_app(core)
            channel = app[TELEGRAM]
            if fast:
                channel.limiter = SendLimiter(
                    per_chat_rate=1000, per_chat_burst=1000, overall_rate=1000, overall_burst=1000
                )
            channel.backoff_base = 0.01
            app[POLLER].backoff = Backoff(0.01, 0.05)
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            stack.push_async_callback(server.close)
            session = ClientSession()
            stack.push_async_callback(session.close)
            return Telegram(server, session, fake_tg)

        yield start
