"""Reminders over the real channel adapters and the real e-mail sender: the LINE channel with the
real line-bot-sdk client against the fake LINE API, the Telegram channel with PTB against the
fake Bot API, and SmtpSender against a real SMTP server on loopback (aiosmtpd). The clock is the
frozen one of the fixtures: certificates made on 24 November 2026 reach their 30-day milestone
on 2027-10-25 23:59:59, so 336 days on (2027-10-26 10:00 Taipei) one reminder is due each.

What is checked: the e-mail route (fallback, also, off) with its Message-ID; LINE's monthly
quota asked once a sweep, and spent (by the quota, or by a 429 that says so) sending by e-mail;
blocked chats marked not following and left alone until they follow again; a platform's rate
limit holding the reminders back without counting an attempt; a crash between sending and
recording sending nothing twice (LINE's retry key reused and its 409 taken as sent, Telegram not
pushed again, the web chat's log keeping one copy).
"""

from __future__ import annotations

import email
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from bot import metrics
from bot.channels import Channels
from bot.channels.line import LineChannel
from bot.channels.line.api import LineApi
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram.client import make_bot
from bot.channels.telegram.limits import SendLimiter
from bot.channels.webchat import WebChat
from bot.reminders import (
    ALSO_BY_EMAIL,
    NO_CHAT,
    NO_REACHABLE_CHAT,
    QUOTA_SPENT,
    RATE_LIMITED,
    by_email,
    reminder_event_id,
    sweep,
)
from certcore.clock import FrozenClock
from certcore.config import load_settings
from certcore.core import Core
from certcore.customers import Customer, CustomerKind
from certcore.customers.directory import upsert_customers
from certcore.i18n import translate
from certcore.reminders import CLAIM_LEASE, Outcome
from certcore.storage import ChatLog
from dialogs import EventKind, Inbound, engine_for
from tests.certcore.test_notify_smtp import free_port
from tests.certcore.test_service import ALICE, BOB, holding
from tests.dialogs.scene import link_conversation
from tests.fakes.line_api import SECRET, TOKEN, FakeLineApi
from tests.fakes.telegram_api import TOKEN as TG_TOKEN
from tests.fakes.telegram_api import FakeTelegramApi

SENDER = "CertDesk <reminders@certdesk.example>"
EMAILS = {ALICE: "alice@example.com", BOB: "bob@example.com"}
DAYS_TO_30 = 336


class Inbox:
    """The loopback SMTP server's side: every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 2.0.0 Ok: queued"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@dataclass
class World:
    core: Core
    hub: Channels
    line: LineChannel
    telegram: TelegramChannel
    fake_line: FakeLineApi
    fake_tg: FakeTelegramApi
    inbox: Inbox

    async def sweep(self, **kwargs: Any) -> Any:
        done = await sweep(self.core, self.hub, self.core.clock(), **kwargs)
        await self.telegram.idle()
        return done

    def line_pushes(self) -> list[Any]:
        return [r for r in self.fake_line.requests if r.path == "/v2/bot/message/push"]

    def tg_sends(self) -> list[Any]:
        return self.fake_tg.called("sendMessage")

    async def following(self, conversation_id: str) -> bool:
        found = await self.core.conversations.find(conversation_id)
        assert found is not None
        return bool(found["following"])

    async def rows(self) -> list[tuple[str, str | None, int]]:
        return [(r.state.value, r.reason, r.attempts) for r in await self.core.reminders.listing()]


async def no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeLineApi, FakeTelegramApi]]:
    line, telegram = FakeLineApi(), FakeTelegramApi()
    await line.start()
    await telegram.start()
    try:
        yield line, telegram
    finally:
        await telegram.close()
        await line.close()


Opener = Callable[..., Awaitable[World]]


@pytest.fixture
async def world(
    data_dir: Path,
    clock: FrozenClock,
    rng: random.Random,
    environ: dict[str, str],
    fakes: tuple[FakeLineApi, FakeTelegramApi],
    inbox: tuple[Inbox, int],
) -> AsyncIterator[Opener]:
    """`await world(**settings)`: the core with LINE, Telegram and SMTP configured, Alice and
    Bob in the directory with e-mail addresses, each holding a certificate."""
    opened: list[tuple[Core, LineChannel, TelegramChannel]] = []
    fake_line, fake_tg = fakes

    async def open_world(**overrides: Any) -> World:
        settings = load_settings(
            environ={},
            data_dir=data_dir,
            line_channel_secret=SECRET,
            line_channel_access_token=TOKEN,
            line_api_base=fake_line.base_url,
            telegram_bot_token=TG_TOKEN,
            telegram_webhook_secret="tg-webhook-secret_0123456789",
            telegram_api_base=fake_tg.base_url,
            public_url="https://certdesk.example",
            smtp_host="127.0.0.1",
            smtp_port=inbox[1],
            smtp_from=SENDER,
            smtp_starttls=False,
            **overrides,
        )
        core = await Core.open(settings, clock=clock, rng=rng, environ=environ)
        engine = engine_for(core)
        hub = Channels(engine)
        line = LineChannel(engine, LineApi(settings, sleep=no_sleep))
        telegram = TelegramChannel(
            core,
            engine,
            make_bot(settings),
            limiter=SendLimiter(
                per_chat_rate=1000,
                per_chat_burst=1000,
                overall_rate=1000,
                overall_burst=1000,
                sleep=no_sleep,
            ),
            sleep=no_sleep,
        )
        hub.add(line)
        hub.add(telegram)
        opened.append((core, line, telegram))
        async with core.db.write() as conn:
            await upsert_customers(conn, [customer(ALICE), customer(BOB)], clock())
        return World(core, hub, line, telegram, fake_line, fake_tg, inbox[0])

    yield open_world
    for core, line, telegram in opened:
        await telegram.close()
        await line.api.close()
        await core.close()


def customer(id_number: str) -> Customer:
    return Customer(
        id_number=id_number,
        kind=CustomerKind.INDIVIDUAL,
        name="王三",
        birth_date=date(1987, 12, 5),
        mobile=None,
        email=EMAILS[id_number],
        accounts=("1020-0324338",),
    )


async def due(world: World, clock: FrozenClock, *holders: str) -> list[str]:
    serials = [await holding(world.core, holder) for holder in holders]
    clock.advance(days=DAYS_TO_30)
    return serials


# -- the e-mail route ------------------------------------------------------------------------


async def test_without_a_chat_the_reminder_goes_by_email_once(
    world: Opener, clock: FrozenClock
) -> None:
    w = await world()
    [serial] = await due(w, clock, ALICE)

    done = await w.sweep()
    assert [r.serial for r in done.emailed] == [serial]
    assert await w.rows() == [("sent", by_email(NO_CHAT), 1)]
    [message] = w.inbox.to(EMAILS[ALICE])
    assert message["Message-ID"] == f"<certdesk-reminder.{serial.lower()}.30d@certdesk.example>"
    assert message["Subject"] == translate(
        "zh_TW", "reminder.email.subject", not_after="2027-11-24 23:59:59"
    )
    body = message.get_content()
    assert "2027-11-24 23:59:59" in body and "2027-10-25 23:59:59" in body
    assert "A123XXX89" in body and ALICE not in body
    assert "https://certdesk.example/" in body

    again = await w.sweep()
    assert again.emailed == [] and len(w.inbox.messages) == 1


async def test_email_speaks_the_language_of_the_customers_chat(
    world: Opener, clock: FrozenClock
) -> None:
    w = await world()
    await link_conversation(w.core, "telegram:1001", ALICE, "en")
    w.fake_tg.block(1001)
    await due(w, clock, ALICE)

    await w.sweep()
    [message] = w.inbox.to(EMAILS[ALICE])
    assert message["Subject"].startswith("CertDesk: your certificate expires on")
    assert await w.rows() == [("sent", by_email(NO_REACHABLE_CHAT), 1)]


async def test_also_sends_the_email_beside_the_chat_and_off_sends_none(
    world: Opener, clock: FrozenClock
) -> None:
    w = await world(reminder_email="also")
    await link_conversation(w.core, "line:U1", ALICE)
    await due(w, clock, ALICE)
    done = await w.sweep()
    assert [chats for _, chats in done.sent] == [["line:U1"]]
    assert len(w.inbox.to(EMAILS[ALICE])) == 1
    assert await w.rows() == [("sent", ALSO_BY_EMAIL, 1)]


async def test_off_sends_no_email(world: Opener, clock: FrozenClock) -> None:
    w = await world(reminder_email="off")
    await due(w, clock, ALICE)
    done = await w.sweep()
    assert done.emailed == [] and w.inbox.messages == []
    assert await w.rows() == [("skipped", NO_CHAT, 1)]


# -- LINE's monthly quota ----------------------------------------------------------------------


async def test_line_quota_is_asked_once_and_spent_sends_by_email(
    world: Opener, clock: FrozenClock
) -> None:
    w = await world()
    w.fake_line.quota = 1
    await link_conversation(w.core, "line:U1", ALICE)
    await link_conversation(w.core, "line:U2", BOB)
    await due(w, clock, ALICE, BOB)

    done = await w.sweep()
    assert len(w.line_pushes()) == 1
    assert [r.path for r in w.fake_line.requests if r.method == "GET"] == [
        "/v2/bot/message/quota",
        "/v2/bot/message/quota/consumption",
    ]
    assert len(done.emailed) == 1 and len(w.inbox.messages) == 1
    assert sorted(await w.rows(), key=str) == [
        ("sent", by_email(QUOTA_SPENT), 1),
        ("sent", None, 1),
    ]
    # The quota as LINE reported it is in the metrics (used: none when it was read).
    assert metrics.LINE_QUOTA_LIMIT._value.get() == 1
    assert metrics.LINE_QUOTA_USED._value.get() == 0


async def test_a_monthly_limit_429_stops_line_and_sends_by_email(
    world: Opener, clock: FrozenClock
) -> None:
    """The quota could not be read (LINE answered 500): pushes go, and the first refused for
    the monthly limit is the last one this sweep, not retried."""
    w = await world()
    w.fake_line.quota = 0
    w.fake_line.fail("quota", 500, times=10)
    await link_conversation(w.core, "line:U1", ALICE)
    await link_conversation(w.core, "line:U2", BOB)
    await due(w, clock, ALICE, BOB)

    done = await w.sweep()
    assert [r.status for r in w.line_pushes()] == [429]
    assert len(done.emailed) == 2
    assert {EMAILS[ALICE], EMAILS[BOB]} == {m["To"] for m in w.inbox.messages}
    assert await w.rows() == [("sent", by_email(QUOTA_SPENT), 1)] * 2


# -- blocked chats -----------------------------------------------------------------------------


async def test_blocked_chats_are_marked_not_following_until_they_follow_again(
    world: Opener, clock: FrozenClock
) -> None:
    w = await world(reminder_email="off")
    await link_conversation(w.core, "line:U1", ALICE)
    await link_conversation(w.core, "telegram:1001", ALICE)
    w.fake_tg.chat(1001)
    w.fake_line.blocked.add("U1")
    w.fake_tg.block(1001)
    await due(w, clock, ALICE)

    done = await w.sweep()
    assert [why for _, why in done.skipped] == [NO_REACHABLE_CHAT]
    assert not await w.following("line:U1") and not await w.following("telegram:1001")

    # The 7-day milestone: nothing is pushed to either chat any more.
    pushes, sends = len(w.line_pushes()), len(w.tg_sends())
    clock.advance(days=23)
    later = await w.sweep()
    assert [why for _, why in later.skipped] == [NO_REACHABLE_CHAT]
    assert (len(w.line_pushes()), len(w.tg_sends())) == (pushes, sends)

    # Following again (LINE follow, Telegram /start) makes the chats reachable again.
    for chat in ("line:U1", "telegram:1001"):
        await w.hub.engine.handle(Inbound(chat, f"follow-{chat}", EventKind.FOLLOW))
        assert await w.following(chat)


# -- rate limits -------------------------------------------------------------------------------


async def test_a_rate_limit_holds_the_platforms_reminders_without_an_attempt(
    world: Opener, clock: FrozenClock
) -> None:
    w = await world()
    for chat in (1001, 1002):
        w.fake_tg.chat(chat)
    await link_conversation(w.core, "telegram:1001", ALICE)
    await link_conversation(w.core, "telegram:1002", BOB)
    w.fake_tg.fail("sendMessage", 429, "Too Many Requests: retry after 30", retry_after=30)
    await due(w, clock, ALICE, BOB)

    done = await w.sweep()
    assert len(done.deferred) == 2 and "telegram" in done.stopped
    assert len(w.tg_sends()) == 1  # the second reminder was not tried on Telegram at all
    assert w.inbox.messages == []  # held back, not given up: no e-mail fallback
    assert await w.rows() == [("pending", RATE_LIMITED, 0)] * 2

    clock.advance(minutes=5)
    again = await w.sweep()
    assert len(again.sent) == 2
    assert {s.chat_id for s in w.fake_tg.sent} == {1001, 1002}
    assert await w.rows() == [("sent", None, 1)] * 2


# -- a crash between sending and recording -------------------------------------------------------


async def crash_before_recording(w: World) -> None:
    """A sweep that sends and then dies before its outcomes are recorded."""
    record = w.core.reminders.record

    async def crashing(outcomes: Sequence[Outcome]) -> list[Outcome]:
        w.core.reminders.record = record  # type: ignore[method-assign]
        raise ConnectionResetError("the process died")

    w.core.reminders.record = crashing  # type: ignore[method-assign]
    with pytest.raises(ConnectionResetError):
        await w.sweep()


async def test_a_crash_after_sending_sends_nothing_twice(world: Opener, clock: FrozenClock) -> None:
    w = await world()
    w.fake_tg.chat(1001)
    await link_conversation(w.core, "line:U1", ALICE)
    await link_conversation(w.core, "telegram:1001", ALICE)
    await due(w, clock, ALICE)

    await crash_before_recording(w)
    assert len(w.fake_line.sent) == 1 and len(w.fake_tg.sent) == 2
    assert await w.rows() == [("pending", "sending", 0)]

    # Within the claim's lease nobody takes it; after it, the next sweep does.
    assert (await w.sweep()).sent == []
    clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    done = await w.sweep()
    assert [sorted(chats) for _, chats in done.sent] == [["line:U1", "telegram:1001"]]
    # LINE: the same retry key again, answered 409, counted as sent; one message shown.
    first, second = w.line_pushes()
    assert first.headers["X-Line-Retry-Key"] == second.headers["X-Line-Retry-Key"]
    assert (first.status, second.status) == (200, 409)
    assert len(w.fake_line.sent) == 1
    # Telegram: the engine had answered the event, so it is not pushed again.
    assert len(w.fake_tg.sent) == 2
    assert w.inbox.messages == []
    assert await w.rows() == [("sent", None, 1)]


async def test_a_reminder_held_back_is_pushed_on_telegram_after_all(
    world: Opener, clock: FrozenClock
) -> None:
    """The engine's record alone does not stop a push: a reminder the sweep itself held back
    (a rate limit, recorded as such) has never reached the chat, and goes out next time."""
    w = await world()
    w.fake_tg.chat(1001)
    await link_conversation(w.core, "telegram:1001", ALICE)
    await due(w, clock, ALICE)
    w.fake_tg.fail("sendMessage", 429, "Too Many Requests: retry after 5", retry_after=5)
    await w.sweep()
    assert w.fake_tg.sent == []
    clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    await w.sweep()
    assert len(w.fake_tg.sent) == 2


async def test_the_web_chat_shows_a_redispatched_reminder_once(
    core: Core, clock: FrozenClock
) -> None:
    engine = engine_for(core)
    chatlog = ChatLog(core.db, core.clock)
    web = WebChat(engine, chatlog, core.settings)
    serial = await holding(core, ALICE)
    await link_conversation(core, "web:s1", ALICE)
    clock.advance(days=DAYS_TO_30)
    event = Inbound(
        "web:s1",
        reminder_event_id(serial, 30, "web:s1"),
        EventKind.REMIND,
        choice=f"{serial}:30",
    )
    first = await web.dispatch(event)
    assert first
    rows = await chatlog.recent("web:s1", 50)
    assert await web.dispatch(event) == first
    assert await chatlog.recent("web:s1", 50) == rows
    web.close()
