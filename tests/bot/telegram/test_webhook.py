"""The webhook's guarantees and Telegram's faults: the secret, duplicates, out-of-order updates,
groups, 429 with `retry_after`, 403 blocked, a 5xx, and what the bot sets up at start-up."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.channels.telegram.adapter import TelegramChannel
from bot.channels.telegram.limits import SendLimiter
from bot.web import CHANNELS, ENGINE
from dialogs import Delivery, EventKind, Inbound
from tests.bot.telegram.conftest import CHAT, PUBLIC_URL, SECRET, Telegram
from tests.fakes.telegram_api import TOKEN

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after:DeprecationWarning")
"""PTB's RetryAfter reads its own deprecated attribute while it is built."""

MENU = "menu.prompt"
CONVERSATION = f"telegram:{CHAT}"


async def following(tg: Telegram, conversation: str = CONVERSATION) -> bool | None:
    found = await tg.server.app[ENGINE].store.find(conversation)
    return None if found is None else found.following


def sends_of(tg: Telegram, chat: int = CHAT) -> list[int]:
    """The status of every sendMessage to the chat, in order."""
    return [c.status for c in tg.fake.called("sendMessage") if c.chat_id == chat]


async def test_start_up_registers_the_webhook_and_the_commands(telegram_app) -> None:
    tg = await telegram_app()
    await tg.fake.wait_for(lambda: tg.fake.webhook is not None)
    assert tg.fake.webhook is not None
    assert tg.fake.webhook["url"] == f"{PUBLIC_URL}/telegram/webhook"
    assert tg.fake.webhook["secret_token"] == SECRET
    assert set(tg.fake.webhook["allowed_updates"]) == {
        "message",
        "callback_query",
        "my_chat_member",
    }
    assert set(tg.fake.commands) == {("default", ""), ("default", "en"), ("default", "zh")}
    english = {c["command"]: c["description"] for c in tg.fake.commands[("default", "en")]}
    chinese = {c["command"]: c["description"] for c in tg.fake.commands[("default", "")]}
    assert english["menu"] == "Main menu" and chinese["menu"] == "主選單"
    assert tg.fake.commands[("default", "zh")] == tg.fake.commands[("default", "")]
    assert not tg.fake.called("getUpdates")


async def test_a_bad_or_missing_secret_is_refused_and_changes_nothing(telegram_app) -> None:
    tg = await telegram_app()
    update = tg.fake.message(CHAT, "/start")
    assert await tg.post(update, secret="wrong") == 403
    assert await tg.post(update, secret=SECRET + "x") == 403
    assert await tg.post(update, secret=None) == 403
    await tg.idle()
    assert await following(tg) is None
    assert not tg.fake.to(CHAT)
    # The same update with the secret is then taken: it was not marked as seen.
    assert await tg.send(update) == 200
    tg.expect(CHAT, "welcome", MENU)


async def test_malformed_bodies_get_400(telegram_app) -> None:
    tg = await telegram_app()
    url = tg.server.make_url("/telegram/webhook")
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    for body in (b"{not json", b"[]", b'{"message": {}}'):
        async with tg.session.post(url, data=body, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["ok"] is False


async def test_a_duplicate_update_is_sent_once(telegram_app) -> None:
    tg = await telegram_app()
    update = tg.fake.message(CHAT, "/start")
    assert await tg.send(update) == 200
    assert await tg.send(update) == 200
    tg.expect(CHAT, "welcome", MENU)
    tap = tg.fake.callback(CHAT, tg.fake.to(CHAT)[-1].callback_data[0])
    assert await tg.send(tap) == 200
    assert await tg.send(tap) == 200
    tg.expect(CHAT, "link.id.prompt")
    assert len(tg.fake.called("answerCallbackQuery")) == 1


async def test_out_of_order_updates_and_a_stale_button(telegram_app) -> None:
    tg = await telegram_app()
    later = tg.fake.message(CHAT, "/start", update_id=900_001)
    earlier = tg.fake.message(CHAT, "/help", update_id=900_000)
    assert await tg.send(later) == 200
    assert await tg.send(earlier) == 200  # an older id after a newer one is still answered
    tg.expect(CHAT, "welcome", MENU, "help.step.menu", MENU)
    first_menu = tg.fake.to(CHAT)[1]
    await tg.tap(CHAT, "query")
    tg.expect(CHAT, "link.id.prompt")
    # A button of the first menu, tapped now, is stale: the engine says so and asks again.
    stale = tg.fake.callback(CHAT, first_menu.callback_data[1], message=first_menu)
    assert await tg.send(stale) == 200
    tg.expect(CHAT, "error.stale_button", "link.id.prompt")


async def test_groups_are_refused_with_one_short_line(telegram_app) -> None:
    tg = await telegram_app()
    group = -100200300
    for text in ("/start", "A123456789", "/start@CertDeskTestBot"):
        assert await tg.send(tg.fake.message(group, text, kind="supergroup", user_id=CHAT)) == 200
    tg.expect(group, "telegram.group.refused")
    assert not tg.fake.deleted
    assert await following(tg, f"telegram:{group}") is None  # the engine never saw the group
    assert await following(tg) is None  # nor the member's private chat


async def test_429_retry_after_is_honoured(telegram_app) -> None:
    tg = await telegram_app()
    tg.fake.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    await tg.text(CHAT, "/start")
    tg.expect(CHAT, "welcome", MENU)
    assert sends_of(tg) == [429, 200, 200]


async def test_5xx_and_broken_answers_are_retried(telegram_app) -> None:
    tg = await telegram_app()
    tg.fake.fail("sendMessage", 502, "Bad Gateway", count=2)
    tg.fake.fail("sendMessage", 500, "Internal Server Error", count=1)
    await tg.text(CHAT, "/start")
    tg.expect(CHAT, "welcome", MENU)  # each once: nothing lost, nothing doubled
    assert sends_of(tg) == [502, 502, 500, 200, 200]


async def test_403_blocked_marks_the_chat_unreachable(telegram_app) -> None:
    tg = await telegram_app()
    await tg.text(CHAT, "/start")
    tg.expect(CHAT, "welcome", MENU)
    assert await following(tg) is True
    tg.fake.block(CHAT)
    channels = tg.server.app[CHANNELS]
    await channels.dispatch(Inbound(CONVERSATION, "push:1", EventKind.TEXT, text="menu"))
    await tg.idle()
    assert sends_of(tg)[-1] == 403
    assert await following(tg) is False  # the engine was told (UNFOLLOW)
    attempts = len(tg.fake.called("sendMessage"))
    await channels.dispatch(Inbound(CONVERSATION, "push:2", EventKind.TEXT, text="menu"))
    await tg.idle()
    assert len(tg.fake.called("sendMessage")) == attempts  # nothing more is sent to the chat
    # Unblocked, the customer starts again and is greeted.
    tg.fake.blocked.discard(CHAT)
    assert await tg.send(tg.fake.membership(CHAT, "member", old="kicked")) == 200
    tg.new(CHAT)
    await tg.text(CHAT, "/start")
    tg.expect(CHAT, "welcome", MENU)
    assert await following(tg) is True


async def test_a_block_reported_by_telegram_is_an_unfollow(telegram_app) -> None:
    tg = await telegram_app()
    await tg.text(CHAT, "/start")
    tg.expect(CHAT, "welcome", MENU)
    assert await tg.send(tg.fake.membership(CHAT, "kicked")) == 200
    assert await following(tg) is False
    assert not tg.new(CHAT)


async def test_a_url_telegram_refuses_goes_into_the_text(telegram_app) -> None:
    """Telegram takes no loopback URL for a button (a laptop's http://127.0.0.1 download
    link): the link is then written in the message instead."""
    tg = await telegram_app()
    await tg.text(CHAT, "/start")
    tg.new(CHAT)
    channel: TelegramChannel = tg.channel
    url = "http://127.0.0.1:8080/d/some-token"
    await channel.deliver(CHAT, [Delivery("some-token", "請開啟下方的憑證下載連結", url)])
    (sent,) = tg.new(CHAT)
    assert url in sent.text and not sent.urls
    assert sends_of(tg)[-2:] == [400, 200]


async def test_the_token_and_the_secret_never_reach_a_log(telegram_app) -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    keeper = Keep(level=logging.DEBUG)
    logging.getLogger().addHandler(keeper)
    try:
        tg = await telegram_app()
        tg.fake.fail("sendMessage", 502, "Bad Gateway")
        await tg.text(CHAT, "/start")
        await tg.fake.wait_for(lambda: tg.fake.webhook is not None)
    finally:
        logging.getLogger().removeHandler(keeper)
    assert any("sendMessage" in r for r in records)  # the client did log its calls
    assert any("setWebhook" in r for r in records)
    leaked = [r for r in records if TOKEN.partition(":")[2] in r or SECRET in r]
    assert not leaked


async def test_many_chats_at_once_each_in_order(telegram_app) -> None:
    tg = await telegram_app()
    chats = [CHAT + n for n in range(1, 25)]
    updates = [tg.fake.message(chat, "/start") for chat in chats]
    statuses = await asyncio.gather(*(tg.post(update) for update in updates))
    assert set(statuses) == {200}
    await tg.idle()
    for chat in chats:
        tg.expect(chat, "welcome", MENU)


async def test_the_send_limiter_paces_one_chat(telegram_app) -> None:
    """The channel's sends go through its limiter: with a one-message burst, the second
    message of a reply waits a second (on the limiter's clock, not the wall's)."""
    tg = await telegram_app()
    slept: list[float] = []
    now = [0.0]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    tg.channel.limiter = SendLimiter(
        per_chat_rate=1, per_chat_burst=1, clock=lambda: now[0], sleep=sleep
    )
    await tg.text(CHAT, "/start")
    tg.expect(CHAT, "welcome", MENU)
    assert slept == [pytest.approx(1.0)]


async def test_every_other_kind_of_update_is_taken_quietly(telegram_app) -> None:
    tg = await telegram_app()
    fake = tg.fake
    base = fake.message(CHAT, "hello")["message"]
    group = fake.message(-100777, "hi", kind="group")["message"]
    sticker = {
        "file_id": "CAACAgIAAxkBAAEB",
        "file_unique_id": "AgADsticker",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    odd = [
        {"edited_message": {**base, "edit_date": base["date"] + 5, "text": "A123456789"}},
        {"channel_post": {**group, "chat": {"id": -100888, "type": "channel", "title": "C"}}},
        {
            "message_reaction": {
                "chat": base["chat"],
                "message_id": base["message_id"],
                "date": base["date"],
                "old_reaction": [],
                "new_reaction": [{"type": "emoji", "emoji": "👍"}],
            }
        },
        {"inline_query": {"id": "1", "from": base["from"], "query": "x", "offset": ""}},
        {"something_new_from_telegram": {"x": 1}},
        {"message": {"message_id": 1}},  # missing what PTB needs: unreadable, still 200
    ]
    for body in odd:
        assert await tg.send({"update_id": fake.next_update_id(), **body}) == 200
    assert not fake.sent
    # A sticker in a private chat gets a polite line.
    assert await tg.send(fake.message(CHAT, None, sticker=sticker)) == 200
    tg.expect(CHAT, "telegram.unsupported")
