"""A LINE customer's hand-off answered in the Telegram support group: both channels on in one
app, the fake LINE API and the fake Bot API side by side. The customer's words appear in the
topic; the agent's words from the topic reach the customer on LINE."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from bot.channels.telegram import SUPPORT
from bot.web import create_app
from certcore.clock import FrozenClock
from certcore.config import load_settings
from certcore.core import Core
from certcore.i18n import translate
from tests.bot.line.conftest import Line
from tests.bot.telegram.conftest import PUBLIC_URL, SECRET, Telegram, add_customer
from tests.fakes.line_api import SECRET as LINE_SECRET
from tests.fakes.line_api import TOKEN as LINE_TOKEN
from tests.fakes.line_api import FakeLineApi
from tests.fakes.telegram_api import TOKEN, FakeTelegramApi

GROUP = -1009876543210
USER = "U4af4980629cccccccccccccccccccccc"


@pytest.fixture
async def both(
    fake_tg: FakeTelegramApi,
    data_dir: Path,
    clock: FrozenClock,
    rng: random.Random,
    environ: dict[str, str],
) -> AsyncIterator[tuple[Line, Telegram]]:
    fake_line = FakeLineApi()
    await fake_line.start()
    fake_tg.forum(GROUP)
    settings = load_settings(
        environ={},
        data_dir=data_dir,
        line_channel_secret=LINE_SECRET,
        line_channel_access_token=LINE_TOKEN,
        line_api_base=fake_line.base_url,
        telegram_bot_token=TOKEN,
        telegram_webhook_secret=SECRET,
        telegram_api_base=fake_tg.base_url,
        telegram_support_chat_id=str(GROUP),
        public_url=PUBLIC_URL,
    )
    core = await Core.open(settings, clock=clock, rng=rng, environ=environ)
    await add_customer(core)
    app = create_app(core)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    app[SUPPORT].per_minute = 60_000  # the flows' budget, as in test_support
    try:
        async with ClientSession() as session:
            telegram = Telegram(server, session, fake_tg)
            for _ in range(500):  # the relay waits for the bot's getMe at start-up
                if telegram.channel.bot_username() is not None:
                    break
                await asyncio.sleep(0.01)
            yield Line(server, session, fake_line), telegram
    finally:
        await server.close()
        await core.close()
        await fake_line.close()


async def test_a_line_customer_answered_from_the_support_group(
    both: tuple[Line, Telegram],
) -> None:
    line, tg = both
    await line.say(USER, "客服")
    assert await line.say(USER, "憑證匯出失敗") == []  # with a person: the bot is silent
    support = tg.server.app[SUPPORT]
    while await support.relay():
        pass
    handoff = await tg.core.handoffs.open_for(f"line:{USER}")
    assert handoff is not None and handoff.topic_id is not None
    topic = handoff.topic_id
    assert tg.fake.in_topic(GROUP, topic)[-1].endswith("：憑證匯出失敗")
    assert "LINE" in tg.fake.topics[GROUP][topic].name
    update = tg.fake.topic_message(GROUP, topic, "請問是哪一台電腦？", user_id=4242)
    assert await tg.send(update) == 200
    shown = [m["text"] for sent in line.sent(USER)[-2:] for m in sent.messages]
    assert shown == [
        translate("zh_TW", "handoff.claimed"),
        translate("zh_TW", "handoff.agent_says", text="請問是哪一台電腦？"),
    ]
