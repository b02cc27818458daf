"""Long polling: without an https public URL the bot asks Telegram for its updates (a laptop),
survives the API's errors, and confirms the offset when it stops."""

from __future__ import annotations

import logging

from bot.channels.telegram import POLLER
from tests.bot.telegram.conftest import CHAT

LAPTOP = "http://127.0.0.1:8080"


async def test_long_polling_delivers_an_update_end_to_end(telegram_app, fake_tg) -> None:
    fake = fake_tg
    fake.webhook = {"url": "https://old.example/telegram/webhook"}  # left by an earlier run
    fake.fail("getUpdates", 502, "Bad Gateway")
    fake.fail("setMyCommands", 500, "Internal Server Error")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    keeper = Keep(level=logging.DEBUG)
    logging.getLogger().addHandler(keeper)
    tg = await telegram_app(public_url=LAPTOP, telegram_webhook_secret="")
    await fake.wait_for(lambda: len(fake.called("getUpdates")) >= 2)
    assert fake.webhook is None and fake.called("deleteWebhook")
    update = fake.message(CHAT, "/start")
    fake.queue(update)
    await fake.wait_for(lambda: len(fake.to(CHAT)) >= 2)
    await tg.idle()
    tg.expect(CHAT, "welcome", "menu.prompt")
    secretive = fake.message(CHAT, "Pa55word761205")
    fake.queue(secretive)
    await fake.wait_for(lambda: len(fake.to(CHAT)) >= 3)
    await tg.idle()
    assert tg.new(CHAT)
    logging.getLogger().removeHandler(keeper)
    assert any("getUpdates" in r for r in records)
    assert not [r for r in records if "Pa55word761205" in r]  # what customers type: never
    update = secretive
    # The next poll asks past the update taken, and the webhook endpoint is shut (no secret).
    await fake.wait_for(
        lambda: any(
            c.params.get("offset") == update["update_id"] + 1 for c in fake.called("getUpdates")
        )
    )
    assert await tg.post(fake.message(CHAT, "/help")) == 403
    statuses = [c.status for c in fake.called("getUpdates")]
    assert statuses[0] == 502 and 200 in statuses

    poller = tg.server.app[POLLER]
    assert poller.offset == update["update_id"] + 1
    await tg.server.close()  # the app's cleanup: polling stops, the offset is confirmed
    last = fake.called("getUpdates")[-1]
    assert last.params.get("offset") == update["update_id"] + 1
    assert last.params.get("timeout") == 0
    assert fake.commands  # the commands were set in polling mode too
