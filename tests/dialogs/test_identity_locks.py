"""The identity check's locks through the engine (issue 10, item 4): the conversation that
guesses is locked, not the ID's owner, who can still apply or revoke from a chat of their own;
the web chat's sessions of one client share its lock; a locked customer still reaches a person;
and the owner is told by SMS that their ID is being guessed."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from certcore.clock import FrozenClock
from certcore.core import Core
from certcore.customers.directory import upsert_customers
from certcore.handoff import HandoffReason
from certcore.storage.schema import dev_outbox
from dialogs import engine_for
from dialogs.engine import Engine
from dialogs.handoff import QueueDesk
from dialogs.messages import Choices, EventKind, Inbound, Outbound
from dialogs.turn import Turn
from tests.dialogs.scene import link_conversation
from tests.dialogs.test_engine import WANG, last_choices, says, tap

_ids = itertools.count(1)


class RecordingDesk(QueueDesk):
    """The hand-off desk: records who asked for a person."""

    def __init__(self, core: Core) -> None:
        super().__init__(core.handoffs, core.settings.service_hours)
        self.asked: list[str] = []

    async def request(self, turn: Turn, why: str = "asked") -> None:
        self.asked.append(turn.conversation.id)
        await super().request(turn, why)


@pytest.fixture
def desk(core: Core) -> RecordingDesk:
    return RecordingDesk(core)


@pytest.fixture
async def engine(core: Core, desk: RecordingDesk) -> AsyncIterator[Engine]:
    async with core.db.write() as conn:
        await upsert_customers(conn, [WANG], core.clock())
    yield engine_for(core, handoff=desk)


async def say(engine: Engine, conversation: str, text: str, client: str = "") -> list[Outbound]:
    event = Inbound(
        conversation, f"t{next(_ids)}", EventKind.TEXT, text=text, client=client, locale_hint="zh"
    )
    return await engine.handle(event)


async def press(
    engine: Engine, conversation: str, replies: list[Outbound], key: str, client: str = ""
) -> list[Outbound]:
    wire = tap(last_choices(replies), key, conversation)
    return await engine.handle(
        Inbound(conversation, wire.event_id, EventKind.CHOICE, choice=wire.choice, client=client)
    )


async def to_birth_date(
    engine: Engine, conversation: str, *, id_number: str | None, client: str = ""
) -> None:
    """Start 憑證申請 and answer up to the birth date (the ID number too, for a newcomer)."""
    consent = await say(engine, conversation, "我要申請憑證", client)
    asked = await press(engine, conversation, consent, "agree", client)
    if id_number is not None:
        assert says(asked, "link.id.prompt")
        asked = await say(engine, conversation, id_number, client)
    assert says(asked, "verify.birth_date.prompt")


async def guess(engine: Engine, conversation: str, times: int, client: str = "") -> list[Outbound]:
    replies: list[Outbound] = []
    for n in range(times):
        replies = await say(engine, conversation, f"76120{n % 4 + 1}", client)
    return replies


async def test_a_stranger_guessing_an_id_does_not_lock_its_owner_out(
    engine: Engine, core: Core
) -> None:
    attacker, owner = "line:Uattacker", "line:Uowner"
    await to_birth_date(engine, attacker, id_number=WANG.id_number)
    replies = await guess(engine, attacker, 5)
    assert says(replies, "verify.identity.locked")
    assert says(replies, "handoff.offer_agent.locked")
    # The owner, in their own chat (linked or not), goes on at once.
    await link_conversation(core, owner, WANG.id_number)
    await to_birth_date(engine, owner, id_number=None)
    assert says(await say(engine, owner, "761205"), "verify.destination.prompt")
    newcomer = "telegram:4242"
    await to_birth_date(engine, newcomer, id_number=WANG.id_number)
    assert says(await say(engine, newcomer, "761205"), "verify.destination.prompt")
    # The attacker's chat stays locked, for the owner's ID and any other.
    await to_birth_date(engine, attacker, id_number=WANG.id_number)
    assert says(await say(engine, attacker, "761205"), "verify.identity.locked")


async def test_the_web_chat_sessions_of_one_client_share_its_lock(engine: Engine) -> None:
    client = "web:203.0.113.7"
    for session in range(5):
        conversation = f"web:session{session}"
        await to_birth_date(engine, conversation, id_number=WANG.id_number, client=client)
        await guess(engine, conversation, 1, client)
    fresh = "web:session-fresh"
    await to_birth_date(engine, fresh, id_number=WANG.id_number, client=client)
    assert says(await say(engine, fresh, "761205", client), "verify.identity.locked")
    elsewhere = "web:session-elsewhere"
    other = "web:198.51.100.20"
    await to_birth_date(engine, elsewhere, id_number=WANG.id_number, client=other)
    assert says(await say(engine, elsewhere, "761205", other), "verify.destination.prompt")


async def test_a_locked_customer_still_reaches_a_person(
    engine: Engine, core: Core, desk: RecordingDesk
) -> None:
    owner = "line:Uowner"
    await link_conversation(core, owner, WANG.id_number)
    await to_birth_date(engine, owner, id_number=None)
    locked = await guess(engine, owner, 5)
    assert says(locked, "verify.identity.locked")
    menu = next(r for r in reversed(locked) if isinstance(r, Choices))
    assert "agent" in [o.key.partition(":")[2] for o in menu.options]
    assert says(await press(engine, owner, locked, "agent"), "handoff.requested")
    assert await say(engine, owner, "客服") == []  # with a person now: the bot is silent
    assert desk.asked == [owner]
    [handoff] = await core.handoffs.waiting()
    assert handoff.conversation_id == owner and handoff.reason is HandoffReason.IDENTITY_LOCK


async def test_a_lock_for_the_rest_of_the_day_says_which_day(
    engine: Engine, core: Core, clock: FrozenClock
) -> None:
    owner = "line:Uowner"
    await link_conversation(core, owner, WANG.id_number)
    await to_birth_date(engine, owner, id_number=None)
    offered = await guess(engine, owner, 5)
    await press(engine, owner, offered, "menu")  # the person offered with the lock: not now
    clock.advance(minutes=15)
    await to_birth_date(engine, owner, id_number=None)
    replies = await guess(engine, owner, 5)  # the tenth failure today
    [locked] = [r for r in replies if says([r], "verify.identity.locked")]
    assert re.search(r"11-25 10:00", getattr(locked, "text", ""))


async def test_the_owner_is_told_by_sms_that_their_id_is_being_guessed(
    engine: Engine, core: Core
) -> None:
    attacker = "line:Uattacker"
    await to_birth_date(engine, attacker, id_number=WANG.id_number)
    await guess(engine, attacker, 5)
    await core.identity.flush_notices()
    async with core.db.read() as conn:
        rows = (await conn.execute(select(dev_outbox.c.destination, dev_outbox.c.body))).all()
    assert [destination for destination, _ in rows] == [WANG.mobile]
    assert WANG.id_number not in rows[0][1]
