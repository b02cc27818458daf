"""The engine's own promises, independent of any one flow: order, redelivery, restarts,
timeouts, global words, typed choices and stale buttons, and no traceback ever."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from certcore.clock import FrozenClock
from certcore.core import Core
from certcore.customers import Customer, CustomerKind
from certcore.customers.directory import upsert_customers
from certcore.i18n import translate
from certcore.storage.conversations import ConversationRecords
from certcore.storage.schema import conversation_events, conversations, dev_outbox
from dialogs import engine_for
from dialogs.engine import Engine
from dialogs.flows import all_flows
from dialogs.messages import Choices, EventKind, Inbound, Outbound, Text
from dialogs.services import Services
from dialogs.turn import Flow, Turn, decode_choice
from tests.dialogs.catalogue import expected_pattern
from tests.dialogs.scene import link_conversation

CONVERSATION = "console:engine-test"
_ids = itertools.count(1)

WANG = Customer(
    id_number="A123456789",
    kind=CustomerKind.INDIVIDUAL,
    name="王三",
    birth_date=__import__("datetime").date(1987, 12, 5),
    mobile="0936123054",
    email=None,
    accounts=("1020-0324338",),
)


def text(body: str, conversation: str = CONVERSATION) -> Inbound:
    return Inbound(conversation, f"t{next(_ids)}", EventKind.TEXT, text=body, locale_hint="zh-TW")


def tap(reply: Choices, key: str, conversation: str = CONVERSATION) -> Inbound:
    wire = next(o.key for o in reply.options if decode_choice(o.key)[1] == key)  # type: ignore[index]
    return Inbound(conversation, f"c{next(_ids)}", EventKind.CHOICE, choice=wire)


def says(replies: list[Outbound], key: str, locale: str = "zh_TW") -> bool:
    pattern = expected_pattern(locale, key)
    return any(pattern.fullmatch(getattr(r, "text", "")) for r in replies)


def last_choices(replies: list[Outbound]) -> Choices:
    return next(r for r in reversed(replies) if isinstance(r, Choices))


@pytest.fixture(params=["group-commit", "async"])
async def engine(core: Core, request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    """The engine over both storage paths: SQLite's writer thread, and the async SQLAlchemy
    transactions PostgreSQL uses (run here on SQLite)."""
    async with core.db.write() as conn:
        await upsert_customers(conn, [WANG], core.clock())
    if request.param == "group-commit":
        yield engine_for(core)
        return
    records = ConversationRecords(core.db, core.clock, group_commit=False)
    try:
        yield engine_for(core, conversations=records)
    finally:
        records.close()


async def test_follow_greets_and_offers_the_menu(engine: Engine) -> None:
    replies = await engine.handle(Inbound(CONVERSATION, "f1", EventKind.FOLLOW))
    assert says(replies, "welcome")
    assert says(replies, "menu.prompt")


async def test_a_redelivered_event_is_answered_from_the_record_and_applied_once(
    engine: Engine, core: Core
) -> None:
    first = await engine.handle(text("憑證查詢"))
    event = text("A123456789")
    replies = await engine.handle(event)
    assert says(replies, "verify.birth_date.prompt")
    again = await engine.handle(event)
    assert again == replies
    async with core.db.read() as conn:
        row = (
            await conn.execute(select(conversations).where(conversations.c.id == CONVERSATION))
        ).one()
        events = (await conn.execute(select(conversation_events))).all()
    assert row.step == "birth_date"
    assert row.version == 2  # two events applied, the redelivery not
    assert len(events) == 2
    assert says(first, "link.id.prompt")


async def test_racing_events_of_one_conversation_are_applied_in_order(engine: Engine) -> None:
    await engine.handle(text("憑證查詢"))
    id_event, date_event = text("A123456789"), text("761205")
    # Both arrive at once; the second must see the state the first left behind.
    first, second = await asyncio.gather(engine.handle(id_event), engine.handle(date_event))
    assert says(first, "verify.birth_date.prompt")
    assert says(second, "verify.destination.prompt")


async def test_two_processes_share_one_conversation_through_the_saved_version(
    engine: Engine, core: Core
) -> None:
    records = ConversationRecords(core.db, core.clock)  # its own SQLite writer, as a process has
    other = engine_for(core, conversations=records)
    await engine.handle(text("憑證查詢"))
    try:
        first, second = await asyncio.gather(
            engine.handle(text("A123456789")), other.handle(text("761205"))
        )
    finally:
        records.close()
    steps = {says(first, "verify.birth_date.prompt"), says(second, "verify.birth_date.prompt")}
    assert steps == {True, False}  # exactly one of them saw the ID step, whichever went first


async def test_two_instances_tapping_send_at_once_send_one_code(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    """A double tap of 點我發送驗證碼 delivered to two instances (PostgreSQL's async path, run
    here on SQLite): the lease makes the second wait and read the state the first left, so one
    code is sent, the second tap is a stale button, and no event is applied twice."""
    caplog.set_level(logging.INFO, logger="certdesk.dialogs")
    async with core.db.write() as conn:
        await upsert_customers(conn, [WANG], core.clock())
    here = ConversationRecords(core.db, core.clock, group_commit=False)
    there = ConversationRecords(core.db, core.clock, group_commit=False)
    try:
        one = engine_for(core, conversations=here)
        two = engine_for(core, conversations=there)
        await one.handle(text("憑證查詢"))
        await one.handle(text("A123456789"))
        destination = await one.handle(text("761205"))
        send = await one.handle(tap(last_choices(destination), "sms"))
        choice = tap(last_choices(send), "send")
        again = Inbound(
            choice.conversation_id, "double-tap", EventKind.CHOICE, choice=choice.choice
        )
        first, second = await asyncio.gather(one.handle(choice), two.handle(again))
    finally:
        here.close()
        there.close()
    async with core.db.read() as conn:
        sent = (await conn.execute(select(func.count()).select_from(dev_outbox))).scalar()
    assert sent == 1
    assert "applying it again" not in caplog.text
    assert {says(first, "error.stale_button"), says(second, "error.stale_button")} == {
        True,
        False,
    }


async def test_state_survives_a_restart(
    core: Core, engine: Engine, settings, environ, clock
) -> None:
    await engine.handle(text("憑證查詢"))
    await engine.handle(text("A123456789"))
    reopened = await Core.open(settings, clock=clock, environ=environ)
    try:
        fresh = engine_for(reopened)
        replies = await fresh.handle(text("761205"))
    finally:
        await reopened.close()
    assert says(replies, "verify.destination.prompt")


async def test_ten_idle_minutes_end_a_flow_and_the_next_message_says_so(
    engine: Engine, clock: FrozenClock
) -> None:
    await engine.handle(text("憑證查詢"))
    await engine.handle(text("A123456789"))
    clock.advance(minutes=10)
    assert says(await engine.handle(text("761205")), "verify.destination.prompt")
    clock.advance(minutes=10, seconds=1)
    replies = await engine.handle(text("hello"))
    assert says(replies, "flow.timed_out")
    assert says(replies, "menu.prompt")


async def test_a_sensitive_flow_ends_after_thirty_minutes_however_active(
    engine: Engine, clock: FrozenClock
) -> None:
    await engine.handle(text("憑證查詢"))
    for _ in range(3):
        clock.advance(minutes=9)
        assert says(await engine.handle(text("A12")), "link.id.invalid")
    clock.advance(minutes=3, seconds=1)  # 30 minutes and a second since the flow began
    replies = await engine.handle(text("A123456789"))
    assert says(replies, "flow.too_long")


@pytest.mark.parametrize(
    ("word", "reply_key"),
    [
        ("選單", "menu.prompt"),
        ("MENU", "menu.prompt"),
        ("取消", "flow.cancelled"),
        ("cancel", "flow.cancelled"),
        ("說明", "help.step.link"),
        ("客服", "handoff.requested"),
    ],
)
async def test_global_words_work_in_any_state(engine: Engine, word: str, reply_key: str) -> None:
    await engine.handle(text("憑證查詢"))
    assert says(await engine.handle(text(word)), reply_key)


async def test_language_words_switch_and_repeat_the_question(engine: Engine) -> None:
    await engine.handle(text("憑證查詢"))
    replies = await engine.handle(text("English"))
    assert says(replies, "settings.language.changed", "en")
    assert says(replies, "link.id.prompt", "en")
    assert says(await engine.handle(text("中文")), "link.id.prompt", "zh_TW")


@pytest.mark.parametrize("typed", ["1", "１", "憑證查詢", " 憑證查詢 "])
async def test_an_option_can_be_typed_by_number_or_label(engine: Engine, typed: str) -> None:
    await engine.handle(Inbound(CONVERSATION, "f", EventKind.FOLLOW, locale_hint="zh-TW"))
    assert says(await engine.handle(text(typed)), "link.id.prompt")


LONG_NUMBERS = {
    "5000 digits": "1" * 5000,
    "5000 full-width digits": "１" * 5000,
    "4301 digits": "0" * 4300 + "1",
    "a digit int() refuses": "᧚",  # NEW TAI LUE THAM DIGIT ONE: str.isdigit, but not int()
}


@pytest.mark.parametrize("typed", LONG_NUMBERS.values(), ids=LONG_NUMBERS)
async def test_a_number_of_any_length_is_answered_at_every_kind_of_step(
    engine: Engine, core: Core, typed: str, caplog: pytest.LogCaptureFixture
) -> None:
    """int() refuses more than 4,300 digits: a typed number, as an option's number, a birth
    date or a code, must be answered as what it is, not with the generic error."""
    await link_conversation(core, CONVERSATION, WANG.id_number)
    menu = last_choices(await engine.handle(Inbound(CONVERSATION, "f", EventKind.FOLLOW)))
    at_menu = await engine.handle(text(typed))
    consent = last_choices(await engine.handle(tap(last_choices(at_menu), "apply")))
    await engine.handle(tap(consent, "agree"))
    at_birth_date = await engine.handle(text(typed))
    destination = last_choices(await engine.handle(text("761205")))
    send = last_choices(await engine.handle(tap(destination, "sms")))
    await engine.handle(tap(send, "send"))
    at_code = await engine.handle(text(typed))
    assert menu.options
    assert says(at_menu, "menu.not_understood")
    assert says(at_birth_date, "verify.birth_date.wrong_length") or says(
        at_birth_date, "verify.birth_date.not_digits"
    )
    assert says(at_code, "verify.code.malformed")
    for replies in (at_menu, at_birth_date, at_code):
        assert not says(replies, "error.unexpected")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("seq", ["9" * 5000, "１" * 5000, "9" * 19, "᧚"])
async def test_a_button_with_a_forged_sequence_number_is_stale(
    engine: Engine, seq: str, caplog: pytest.LogCaptureFixture
) -> None:
    await engine.handle(Inbound(CONVERSATION, "f", EventKind.FOLLOW))
    forged = Inbound(CONVERSATION, "forged", EventKind.CHOICE, choice=f"{seq}:query")
    replies = await engine.handle(forged)
    assert says(replies, "error.stale_button")
    assert not says(replies, "error.unexpected")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_stale_button_is_refused_and_the_current_question_repeated(engine: Engine) -> None:
    menu = last_choices(await engine.handle(Inbound(CONVERSATION, "f", EventKind.FOLLOW)))
    await engine.handle(tap(menu, "query"))
    replies = await engine.handle(tap(menu, "logout"))
    assert says(replies, "error.stale_button")
    assert says(replies, "link.id.prompt")


async def test_a_failing_step_keeps_the_conversation_where_it_was(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await engine.handle(text("憑證查詢"))
    await engine.handle(text("A123456789"))

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(engine.services.identity, "verify", broken)
    replies = await engine.handle(text("761205"))
    assert says(replies, "error.unexpected")
    assert says(replies, "verify.birth_date.prompt")
    assert not any("Traceback" in getattr(r, "text", "") for r in replies)
    monkeypatch.undo()
    assert says(await engine.handle(text("761205")), "verify.destination.prompt")


async def test_a_flow_that_asked_nothing_leaves_the_answer_to_the_main_menu(core: Core) -> None:
    """A flow whose `begin` neither asks a question nor ends has no step: the next message goes
    to the main menu, the flow is abandoned first, and no error is shown."""
    abandoned: list[str | None] = []

    async def ask_nothing(turn: Turn) -> None:
        turn.say("logout.not_linked")

    async def abandon(turn: Turn) -> None:
        abandoned.append(turn.conversation.flow)

    mute = Flow(name="logout", first_step="", steps={}, begin=ask_nothing, abandon=abandon)
    engine = Engine(Services.of(core), {**all_flows(), "logout": mute}, core.clock)
    await engine.handle(text(translate("zh_TW", "menu.item.logout")))
    conversation = await engine.store.find(CONVERSATION)
    assert conversation is not None
    assert (conversation.flow, conversation.step) == ("logout", None)

    replies = await engine.handle(text("憑證查詢"))
    assert not says(replies, "error.unexpected")
    assert says(replies, "link.id.prompt")  # the menu item, started from the main menu
    assert abandoned == ["logout"]


async def test_unfollow_is_recorded_and_answers_nothing(engine: Engine, core: Core) -> None:
    await engine.handle(text("憑證查詢"))
    assert await engine.handle(Inbound(CONVERSATION, "u", EventKind.UNFOLLOW)) == []
    async with core.db.read() as conn:
        row = (
            await conn.execute(select(conversations).where(conversations.c.id == CONVERSATION))
        ).one()
    assert row.following is False and row.flow is None


def test_every_global_word_has_synonyms_in_both_languages() -> None:
    from dialogs.flows.words import GLOBAL_WORDS

    for word in GLOBAL_WORDS:
        for locale in ("zh_TW", "en"):
            assert translate(locale, f"global.{word}") != f"global.{word}"
    assert isinstance(Text("x"), Text)


async def test_event_records_are_kept_a_week_for_redeliveries(
    engine: Engine, core: Core, clock: FrozenClock
) -> None:
    event = text("憑證查詢")
    replies = await engine.handle(event)
    clock.advance(days=7)
    assert await core.conversations.forget_old_events() == 0
    assert await engine.handle(event) == replies
    clock.advance(seconds=1)
    assert await core.conversations.forget_old_events() == 1
