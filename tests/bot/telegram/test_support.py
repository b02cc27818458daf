"""The Telegram support group end to end: the whole app with Telegram on and a support group
configured, customers on the web chat and on Telegram asking for a person, agents answering in
the fake Bot API's forum topics. Relay rounds are run by the test (`relay`), one after another
until nothing is left to post; the send budget is checked on the limiter's injected clock."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from bot.channels.telegram import SUPPORT, SupportGroup
from bot.channels.telegram.adapter import RecentIds
from bot.channels.telegram.limits import SendLimiter
from bot.web import CHANNELS
from certcore.clock import FrozenClock
from certcore.config import load_settings
from certcore.errors import ConfigurationError
from certcore.handoff import Handoff, HandoffState
from certcore.i18n import translate
from dialogs import EventKind, Inbound
from tests.bot.telegram.conftest import CHAT, CUSTOMER, Telegram
from tests.bot.telegram.test_limits import FakeTime
from tests.fakes.telegram_api import FakeTelegramApi

GROUP = -1001234567890
AGENT = 4242
OTHER_AGENT = 4343


def t(key: str, **params: object) -> str:
    return translate("zh_TW", key, **params)


class WebCustomer:
    """A web chat page: its session, what it sends, the conversation's log."""

    def __init__(self, server: TestServer, session: ClientSession, secret: str) -> None:
        self.server = server
        self.session = session
        self.secret = secret

    @property
    def conversation_id(self) -> str:
        return "web:" + hashlib.sha256(self.secret.encode()).hexdigest()[:32]

    @classmethod
    async def open(cls, tg: Telegram) -> WebCustomer:
        async with tg.session.post(tg.server.make_url("/api/chat/sessions")) as response:
            assert response.status == 201, await response.text()
            secret = (await response.json())["session"]
        return cls(tg.server, tg.session, secret)

    async def say(self, text: str) -> None:
        url = self.server.make_url(f"/api/chat/sessions/{self.secret}/messages")
        async with self.session.post(url, json={"text": text}) as response:
            assert response.status == 200, await response.text()

    async def log(self) -> list[str]:
        """What the page shows from the bot, oldest first."""
        url = self.server.make_url(f"/api/chat/sessions/{self.secret}/messages")
        async with self.session.get(url, params={"after": "0"}) as response:
            assert response.status == 200, await response.text()
            messages: list[dict[str, Any]] = (await response.json())["messages"]
        return [m["text"] for m in messages if m["from"] == "bot"]


@pytest.fixture
async def desk(telegram_app: Any, fake_tg: FakeTelegramApi) -> Telegram:
    fake_tg.forum(GROUP)
    tg: Telegram = await telegram_app(telegram_support_chat_id=str(GROUP))
    # The group's budget is raised for the flows, as the conftest raises the others; it is
    # tested on the limiter's fake clock below.
    support_of(tg).per_minute = 60_000
    for _ in range(500):  # the relay waits for the bot's getMe at start-up
        if tg.channel.bot_username() is not None:
            break
        await asyncio.sleep(0.01)
    return tg


def support_of(tg: Telegram) -> SupportGroup:
    return tg.server.app[SUPPORT]


async def relay(tg: Telegram) -> None:
    """Relay rounds until one posts nothing (bounded: a round that always posts is a bug)."""
    for _ in range(50):
        if not await support_of(tg).relay():
            return
    raise AssertionError("the relay never settles")


async def handoff_of(tg: Telegram, conversation_id: str) -> Handoff:
    handoff = await tg.core.handoffs.open_for(conversation_id)
    assert handoff is not None, f"{conversation_id} has no open hand-off"
    return handoff


async def topic_of(tg: Telegram, conversation_id: str) -> int:
    topic = (await handoff_of(tg, conversation_id)).topic_id
    assert topic is not None
    return topic


async def agent_writes(
    tg: Telegram, topic: int, text: str | None, user_id: int = AGENT, **values: Any
) -> dict[str, Any]:
    update = tg.fake.topic_message(GROUP, topic, text, user_id=user_id, **values)
    assert await tg.send(update) == 200
    return update


def group_texts(tg: Telegram) -> list[str]:
    return tg.fake.texts_to(GROUP)


async def test_a_web_chat_hand_off_through_the_support_group(desk: Telegram) -> None:
    tg = desk
    customer = await WebCustomer.open(tg)
    await customer.say("客服")
    await customer.say(f"我的身分證 {CUSTOMER} 不能用")
    conversation = customer.conversation_id
    handoff = await handoff_of(tg, conversation)
    await relay(tg)
    # One topic: named with the hand-off, its channel and no full ID number; the header, then
    # the customer's words, masked.
    (created,) = tg.fake.called("createForumTopic")
    name = str(created.params["name"])
    assert f"#{handoff.id}" in name and t("telegram.support.channel.web") in name
    topic = await topic_of(tg, conversation)
    shown = tg.fake.in_topic(GROUP, topic)
    assert shown[0].startswith(f"轉接 #{handoff.id}")
    assert t("telegram.support.reason.asked") in shown[0]
    assert any(text.endswith("：客服") for text in shown)
    assert any("A123XXX89" in text for text in shown)
    assert not any(CUSTOMER in text for text in [*group_texts(tg), name])
    # The first member to write takes it: the customer is told, then reads the words.
    await agent_writes(tg, topic, "您好，我來協助您")
    log = await customer.log()
    assert log[-2:] == [t("handoff.claimed"), t("handoff.agent_says", text="您好，我來協助您")]
    assert (await handoff_of(tg, conversation)).agent == f"tg:{AGENT}"
    # The customer answers; the next round copies it, once.
    await customer.say("謝謝，請幫我看")
    await relay(tg)
    await relay(tg)
    assert sum(text.endswith("謝謝，請幫我看") for text in tg.fake.in_topic(GROUP, topic)) == 1
    # /done: back to the bot, the customer asked for a rating; the topic gets its last line and
    # is closed.
    done = await agent_writes(tg, topic, "/done")
    log = await customer.log()
    assert log[-2:] == [t("handoff.resolved"), t("handoff.rate")]
    ended = await tg.core.handoffs.get(handoff.id)
    assert ended is not None and ended.state is HandoffState.CLOSED
    assert ended.outcome == "resolved"
    # The transcript names the agent for the words and for the hand-back.
    authors = {e.event_id: e.author for e in await tg.core.conversations.transcript(conversation)}
    assert authors[f"tg-topic:{GROUP}:{done['message']['message_id']}"] == f"tg:{AGENT}"
    await relay(tg)
    assert tg.fake.in_topic(GROUP, topic)[-1] == t("telegram.support.ended.resolved")
    assert tg.fake.topics[GROUP][topic].closed
    assert await tg.core.handoffs.relay_pending() == []
    # A member writing in the closed topic is not sent on, and the topic stays closed.
    await agent_writes(tg, topic, "還有問題嗎？")
    assert tg.fake.topics[GROUP][topic].closed
    assert (await customer.log())[-1] == t("handoff.rate")
    # Nothing of the group ever became a customer conversation of its own.
    assert await tg.core.conversations.find(f"telegram:{GROUP}") is None


async def test_a_telegram_customer_and_a_redelivered_update(desk: Telegram) -> None:
    tg = desk
    await tg.text(CHAT, "/start")
    await tg.text(CHAT, "/agent")
    tg.new(CHAT)
    conversation = f"telegram:{CHAT}"
    await relay(tg)
    topic = await topic_of(tg, conversation)
    update = await agent_writes(tg, topic, "請問您遇到什麼問題？")
    _, said = tg.expect(CHAT, "handoff.claimed", "handoff.agent_says")
    assert said.text == t("handoff.agent_says", text="請問您遇到什麼問題？")
    # Telegram delivers the same message again after a restart (its update id forgotten): the
    # engine's record of the event keeps the customer from reading it twice.
    tg.channel.seen = RecentIds()
    assert await tg.send(update) == 200
    assert tg.new(CHAT) == []
    # /back returns the chat to the bot, with the menu.
    await agent_writes(tg, topic, "/back")
    tg.expect(CHAT, "handoff.returned", "menu.prompt")
    await relay(tg)
    assert tg.fake.in_topic(GROUP, topic)[-1] == t("telegram.support.ended.returned")


async def test_another_member_cannot_speak_for_the_one_holding_it(desk: Telegram) -> None:
    tg = desk
    customer = await WebCustomer.open(tg)
    await customer.say("客服")
    await relay(tg)
    topic = await topic_of(tg, customer.conversation_id)
    await agent_writes(tg, topic, "我來處理")
    before = await customer.log()
    await agent_writes(tg, topic, "我也來", user_id=OTHER_AGENT)
    await agent_writes(tg, topic, "/done", user_id=OTHER_AGENT)
    # An anonymous admin posts as the group itself (Telegram's GroupAnonymousBot): no agent.
    anonymous = tg.fake.topic_message(
        GROUP, topic, "匿名", user_id=1087968824, sender_chat=tg.fake.chat(GROUP)
    )
    anonymous["message"]["from"].update(
        is_bot=True, first_name="Group", username="GroupAnonymousBot"
    )
    assert await tg.send(anonymous) == 200
    assert await customer.log() == before
    assert tg.fake.in_topic(GROUP, topic)[-3:] == [
        t("telegram.support.held", agent=f"tg:{AGENT}"),
        t("telegram.support.not_yours"),
        t("telegram.support.anonymous"),
    ]
    assert (await handoff_of(tg, customer.conversation_id)).state is HandoffState.ACTIVE


async def test_a_deleted_topic_is_made_anew_with_nothing_lost(desk: Telegram) -> None:
    tg = desk
    customer = await WebCustomer.open(tg)
    await customer.say("客服")
    await relay(tg)
    first = await topic_of(tg, customer.conversation_id)
    tg.fake.delete_topic(GROUP, first)
    await customer.say("第一則")
    await customer.say("第二則")
    await relay(tg)
    second = await topic_of(tg, customer.conversation_id)
    assert second != first
    shown = tg.fake.in_topic(GROUP, second)
    assert shown[0].endswith(t("telegram.support.recreated"))
    assert [text.rpartition("：")[2] for text in shown[1:]] == ["第一則", "第二則"]
    # The new topic is the conversation's: an agent's words there reach the customer.
    await agent_writes(tg, second, "新主題")
    assert (await customer.log())[-1] == t("handoff.agent_says", text="新主題")


async def test_a_console_agents_words_are_copied_to_the_topic(desk: Telegram) -> None:
    tg = desk
    customer = await WebCustomer.open(tg)
    await customer.say("客服")
    await relay(tg)
    topic = await topic_of(tg, customer.conversation_id)
    handoff = await tg.core.handoffs.claim(
        (await handoff_of(tg, customer.conversation_id)).id, "alice"
    )
    channels = tg.server.app[CHANNELS]
    conversation = customer.conversation_id
    await channels.dispatch(Inbound(conversation, "console:1", EventKind.AGENT, choice="alice"))
    await channels.dispatch(
        Inbound(conversation, "console:2", EventKind.AGENT, choice="alice", text="我是 Alice")
    )
    await customer.say("好的")
    await relay(tg)
    assert tg.fake.in_topic(GROUP, topic)[-3:] == [
        t("telegram.support.agent", agent="alice", time="10:00", text=t("handoff.claimed")),
        t(
            "telegram.support.agent",
            agent="alice",
            time="10:00",
            text=t("handoff.agent_says", text="我是 Alice"),
        ),
        t("telegram.support.said", time="10:00", text="好的"),
    ]
    # A member of the group is told who has it.
    await agent_writes(tg, topic, "我來")
    assert tg.fake.in_topic(GROUP, topic)[-1] == t("telegram.support.held", agent=handoff.agent)


async def test_what_is_not_passed_on_is_said_in_the_topic(desk: Telegram) -> None:
    tg = desk
    customer = await WebCustomer.open(tg)
    await customer.say("客服")
    await relay(tg)
    topic = await topic_of(tg, customer.conversation_id)
    photo = [{"file_id": "AgAD1", "file_unique_id": "u1", "width": 1, "height": 1}]
    await agent_writes(tg, topic, None, photo=photo)
    await agent_writes(tg, topic, "/done")  # nobody has taken it yet
    await agent_writes(tg, topic, "/help")
    await agent_writes(tg, topic, "長" * 2001)
    assert tg.fake.in_topic(GROUP, topic)[-4:] == [
        t("telegram.support.text_only"),
        t("telegram.support.not_yours"),
        t("telegram.support.commands"),
        t("telegram.support.too_long", limit=2000),
    ]
    assert (await handoff_of(tg, customer.conversation_id)).state is HandoffState.WAITING
    # The customer cancels, and the topic is deleted before the relay closes it: nothing is
    # made anew for an ended hand-off.
    await customer.say("取消")
    tg.fake.delete_topic(GROUP, topic)
    await relay(tg)
    assert len(tg.fake.called("createForumTopic")) == 1
    assert await tg.core.handoffs.relay_pending() == []


async def test_a_conversation_handed_off_again_gets_its_topic_back(
    desk: Telegram, clock: FrozenClock
) -> None:
    tg = desk
    customer = await WebCustomer.open(tg)
    await customer.say("客服")
    await relay(tg)
    first = await handoff_of(tg, customer.conversation_id)
    topic = await topic_of(tg, customer.conversation_id)
    await agent_writes(tg, topic, "稍後再聯絡")
    await agent_writes(tg, topic, "/back")
    await relay(tg)
    assert tg.fake.topics[GROUP][topic].closed
    shown = len(tg.fake.in_topic(GROUP, topic))
    clock.advance(minutes=1)
    await customer.say("客服")
    await relay(tg)
    second = await handoff_of(tg, customer.conversation_id)
    assert second.id != first.id and second.topic_id == topic
    assert not tg.fake.topics[GROUP][topic].closed
    assert tg.fake.topics[GROUP][topic].name.startswith(f"#{second.id} ")
    assert len(tg.fake.called("createForumTopic")) == 1
    # The new header and what came since; nothing the topic showed already.
    again = tg.fake.in_topic(GROUP, topic)[shown:]
    assert again[0].startswith(f"轉接 #{second.id}")
    assert [text.rpartition("：")[2] for text in again[1:]] == ["客服"]
    await agent_writes(tg, topic, "又見面了")
    assert (await customer.log())[-1] == t("handoff.agent_says", text="又見面了")


async def test_a_closed_topic_is_reopened(desk: Telegram) -> None:
    tg = desk
    customer = await WebCustomer.open(tg)
    await customer.say("客服")
    await relay(tg)
    topic = await topic_of(tg, customer.conversation_id)
    tg.fake.close_topic(GROUP, topic)
    await customer.say("還在嗎")
    await relay(tg)
    assert not tg.fake.topics[GROUP][topic].closed
    assert tg.fake.in_topic(GROUP, topic)[-1].endswith("還在嗎")
    assert len(tg.fake.called("reopenForumTopic")) == 1
    assert len(tg.fake.called("createForumTopic")) == 1


async def test_late_events_and_a_restart_copy_each_message_once(
    desk: Telegram, clock: FrozenClock
) -> None:
    tg = desk
    customer = await WebCustomer.open(tg)
    await customer.say("客服")
    await relay(tg)
    topic = await topic_of(tg, customer.conversation_id)
    clock.advance(seconds=5)
    await customer.say("準時")
    await relay(tg)
    # Another instance, its clock 3 s behind, records the customer's next message: earlier
    # than the relay mark, still copied, and once.
    clock.advance(seconds=-3)
    await customer.say("遲到")
    clock.advance(seconds=3)
    await relay(tg)
    await relay(tg)
    copies = [text.rpartition("：")[2] for text in tg.fake.in_topic(GROUP, topic)]
    assert copies[-2:] == ["準時", "遲到"] and copies.count("遲到") == 1
    # A restart forgets what was copied: the stored mark is trusted, nothing comes twice.
    support = support_of(tg)
    support._marks.clear()
    support._seen.clear()
    posted = len(tg.fake.in_topic(GROUP, topic))
    await relay(tg)
    assert len(tg.fake.in_topic(GROUP, topic)) == posted
    clock.advance(seconds=1)
    await customer.say("重啟後")
    await relay(tg)
    assert tg.fake.in_topic(GROUP, topic)[posted:] == [
        t("telegram.support.said", time="10:00", text="重啟後")
    ]


async def test_one_budget_paces_the_group_and_a_429_is_honoured(desk: Telegram) -> None:
    tg = desk
    time = FakeTime()
    limiter = SendLimiter(
        per_chat_rate=1000,
        per_chat_burst=1000,
        overall_rate=1000,
        overall_burst=1000,
        clock=time.clock,
        sleep=time.sleep,
    )
    tg.channel.limiter = limiter
    support_of(tg).per_minute = 20  # the setting's default and Telegram's limit
    granted: list[float] = []
    acquire = limiter.acquire

    async def counted(chat_id: int) -> float:
        waited = await acquire(chat_id)
        if chat_id == GROUP:
            granted.append(time.now)
        return waited

    limiter.acquire = counted  # type: ignore[method-assign]
    customers = [await WebCustomer.open(tg) for _ in range(3)]
    for number, customer in enumerate(customers):
        await customer.say("客服")
        for line in range(8):
            await customer.say(f"客戶{number} 訊息{line}")
    tg.fake.fail("sendMessage", 429, "Too Many Requests: retry after 30", retry_after=30)
    await relay(tg)
    # 3 topics, 3 headers, 3 × 10 copies (the page opened, 客服, 8 lines); one send was refused
    # with 429 and tried again.
    assert len(tg.fake.called("createForumTopic")) == 3
    assert len(granted) == 3 + 3 + 30 + 1
    for start in granted:
        assert sum(start <= at < start + 60 for at in granted) <= 20
    assert any(wait >= 30 for wait in time.slept)  # the 429's retry_after, on the fake clock
    for number, customer in enumerate(customers):
        topic = await topic_of(tg, customer.conversation_id)
        copies = [text.rpartition("：")[2] for text in tg.fake.in_topic(GROUP, topic)[1:]]
        assert copies == ["[follow]", "客服", *(f"客戶{number} 訊息{line}" for line in range(8))]


async def test_the_group_is_never_a_customer(desk: Telegram) -> None:
    tg = desk
    general = tg.fake.message(GROUP, "/start", kind="supergroup", user_id=AGENT)
    assert await tg.send(general) == 200
    ended_topic = tg.fake.topic_message(GROUP, 999, "hello", user_id=AGENT)
    assert await tg.send(ended_topic) == 200
    assert await tg.core.conversations.find(f"telegram:{GROUP}") is None
    assert t("telegram.group.refused") not in group_texts(tg)


def test_the_support_chat_must_be_a_supergroup_and_needs_the_bot(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="telegram_support_chat_id"):
        load_settings(environ={}, data_dir=tmp_path, telegram_support_chat_id="12345")
    with pytest.raises(ConfigurationError, match="needs telegram_bot_token"):
        load_settings(environ={}, data_dir=tmp_path, telegram_support_chat_id=str(GROUP))
    settings = load_settings(
        environ={},
        data_dir=tmp_path,
        telegram_bot_token="1:x",
        telegram_support_chat_id=str(GROUP),
    )
    assert settings.telegram_support_chat == GROUP


async def test_long_polling_brings_the_agents_words_too(
    telegram_app: Any, fake_tg: FakeTelegramApi
) -> None:
    fake_tg.forum(GROUP)
    tg: Telegram = await telegram_app(
        public_url="http://127.0.0.1:8080",
        telegram_webhook_secret="",
        telegram_support_chat_id=str(GROUP),
    )
    support_of(tg).per_minute = 60_000
    await fake_tg.wait_for(lambda: fake_tg.called("getUpdates"))
    customer = await WebCustomer.open(tg)
    await customer.say("客服")
    await relay(tg)
    topic = await topic_of(tg, customer.conversation_id)
    polls = len(fake_tg.called("getUpdates"))
    fake_tg.queue(fake_tg.topic_message(GROUP, topic, "輪詢也收得到", user_id=AGENT))
    # The poll open now takes the update; by the next one the update is in its lane.
    await fake_tg.wait_for(lambda: len(fake_tg.called("getUpdates")) >= polls + 1)
    await tg.idle()
    assert (await customer.log())[-1] == t("handoff.agent_says", text="輪詢也收得到")


async def test_no_relay_round_during_a_database_outage(desk: Telegram) -> None:
    tg = desk
    customer = await WebCustomer.open(tg)
    await customer.say("客服")
    tg.core.db.outage_since = 0.0  # noted by a failed statement; the jobs' ping ends it
    assert await support_of(tg).relay() == 0
    assert tg.fake.called("createForumTopic") == []
    tg.core.db.outage_since = None
    await relay(tg)
    assert len(tg.fake.called("createForumTopic")) == 1
