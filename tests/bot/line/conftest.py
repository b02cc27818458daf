"""The LINE channel end to end: `create_app(core)` served on loopback with LINE switched on,
the real line-bot-sdk client pointed at the fake LINE API, and webhooks signed as LINE signs
them posted to the real `/line/webhook`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from bot.channels.line import LINE, LineChannel
from bot.web import CORE, create_app
from certcore.clock import FrozenClock
from certcore.config import Settings, load_settings
from certcore.core import Core
from certcore.customers import Customer, CustomerKind
from certcore.customers.directory import upsert_customers
from certcore.identity import parse_roc_date
from tests.fakes.line_api import SECRET, TOKEN, FakeLineApi, Sent

CUSTOMER = "A123456789"
BIRTH = "761205"
_CODE = re.compile(r"\b([A-Z]{4})-(\d{6})\b")
_ids = itertools.count(1)


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
async def fake_line() -> AsyncIterator[FakeLineApi]:
    fake = FakeLineApi()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.fixture
def line_environ(fake_line: FakeLineApi) -> dict[str, str]:
    return {
        "CERTDESK_LINE_CHANNEL_SECRET": SECRET,
        "CERTDESK_LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
        "CERTDESK_LINE_API_BASE": fake_line.base_url,
    }


@pytest.fixture
def line_settings(data_dir: Path, line_environ: dict[str, str], database_url: str) -> Settings:
    return load_settings(environ=line_environ, data_dir=data_dir, database_url=database_url or None)


@pytest.fixture
async def line_core(
    line_settings: Settings, clock: FrozenClock, rng: random.Random, environ: dict[str, str]
) -> AsyncIterator[Core]:
    opened = await Core.open(line_settings, clock=clock, rng=rng, environ=environ)
    try:
        await add_customer(opened)
        yield opened
    finally:
        await opened.close()


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


class Line:
    """The customer's side of LINE: sends signed webhooks and reads what the bot sent back."""

    def __init__(self, server: TestServer, session: ClientSession, fake: FakeLineApi) -> None:
        self.server = server
        self.session = session
        self.fake = fake
        self.core: Core = server.app[CORE]

    @property
    def channel(self) -> LineChannel:
        return self.server.app[LINE]

    async def post(self, body: bytes, signature: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Line-Signature"] = signature
        async with self.session.post(
            self.server.make_url("/line/webhook"), data=body, headers=headers
        ) as response:
            await response.read()
            return response.status

    async def deliver(self, *events: dict[str, Any]) -> int:
        """Post the events signed, then wait until the bot has worked them off."""
        body = json.dumps({"destination": "Ubot", "events": list(events)}).encode()
        status = await self.post(body, sign(body))
        await self.channel.idle()
        return status

    def event(
        self, user: str, kind: str, *, redelivery: bool = False, **values: Any
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": kind,
            "mode": "active",
            "timestamp": int(self.core.clock().timestamp() * 1000),
            "source": {"type": "user", "userId": user},
            "webhookEventId": f"01J{next(_ids):020d}",
            "deliveryContext": {"isRedelivery": redelivery},
            **values,
        }
        if kind not in ("unfollow",):
            event["replyToken"] = self.fake.reply_token(user)
        return event

    def text_event(self, user: str, text: str) -> dict[str, Any]:
        message = {"id": str(next(_ids)), "type": "text", "text": text, "quoteToken": "q"}
        return self.event(user, "message", message=message)

    async def say(self, user: str, text: str) -> list[str]:
        """Type a text; the texts that came back for it."""
        before = len(self.fake.messages_to(user))
        assert await self.deliver(self.text_event(user, text)) == 200
        return self.fake.texts_to(user)[before:]

    async def tap(self, user: str, label: str | int) -> list[str]:
        """Tap the quick reply with this label (or at this 1-based place) on the newest
        question."""
        before = len(self.fake.messages_to(user))
        data = self.quick_reply(user, label)
        event = self.event(user, "postback", postback={"data": data})
        assert await self.deliver(event) == 200
        return self.fake.texts_to(user)[before:]

    def quick_reply(self, user: str, label: str | int) -> str:
        for message in reversed(self.fake.messages_to(user)):
            items = (message.get("quickReply") or {}).get("items") or []
            if items and isinstance(label, int):
                return str(items[label - 1]["action"]["data"])
            if items:
                for item in items:
                    if item["action"]["label"] == label:
                        return str(item["action"]["data"])
                for item in items:
                    if item["action"]["label"].startswith(label):
                        return str(item["action"]["data"])
                labels = [item["action"]["label"] for item in items]
                raise AssertionError(f"no quick reply {label!r} in {labels}")
        raise AssertionError("no question with quick replies was sent")

    async def last_code(self) -> str:
        outbox = self.core.outbox
        assert outbox is not None
        codes = [m.group(2) for e in await outbox.since(0) if (m := _CODE.search(e.body))]
        assert codes, "no code was sent"
        return codes[-1]

    def sent(self, user: str) -> list[Sent]:
        return self.fake.to(user)


@pytest.fixture
async def line(fake_line: FakeLineApi, line_core: Core) -> AsyncIterator[Line]:
    app = create_app(line_core)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as session:
            yield Line(server, session, fake_line)
    finally:
        await server.close()
