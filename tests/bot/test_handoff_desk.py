"""The hand-off desk through the engine: what the agents' transcript keeps of the customer's
inputs (never a code, a birth date or a full ID number), who wrote an agent's reply, the
audit trail of a hand-off, and the timeout that hands a silent agent's conversation back."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.channels import Channels
from bot.jobs import time_out_handoffs_once
from certcore.clock import FrozenClock
from certcore.core import Core
from certcore.customers.directory import upsert_customers
from certcore.handoff import HandoffOutcome, HandoffState
from certcore.storage.schema import audit_log, conversation_events, dev_outbox
from dialogs import engine_for
from dialogs.engine import SECRET, Engine
from dialogs.messages import EventKind, Inbound, Outbound
from tests.dialogs.scene import link_conversation
from tests.dialogs.test_engine import WANG, last_choices, says, tap

CHAT = "line:Uhandoff"
_ids = itertools.count(1)


@pytest.fixture
async def engine(core: Core) -> AsyncIterator[Engine]:
    async with core.db.write() as conn:
        await upsert_customers(conn, [WANG], core.clock())
    yield engine_for(core)


async def say(engine: Engine, text: str) -> list[Outbound]:
    return await engine.handle(Inbound(CHAT, f"t{next(_ids)}", EventKind.TEXT, text=text))


async def press(engine: Engine, replies: list[Outbound], key: str) -> list[Outbound]:
    return await engine.handle(tap(last_choices(replies), key, CHAT))


async def agent(engine: Engine, name: str, text: str = "") -> list[Outbound]:
    event = Inbound(CHAT, f"a{next(_ids)}", EventKind.AGENT, choice=name, text=text)
    return await engine.handle(event)


async def test_the_transcript_never_keeps_a_secret_the_customer_typed(
    engine: Engine, core: Core
) -> None:
    consent = await say(engine, "我要申請憑證")
    asked = await press(engine, consent, "agree")
    assert says(asked, "link.id.prompt")
    await say(engine, WANG.id_number)  # the ID number, at its prompt
    destination = await say(engine, "761205")  # the birth date
    send = await press(engine, destination, "sms")
    code_asked = await press(engine, send, "send")
    assert says(code_asked, "verify.code.prompt")
    async with core.db.read() as conn:
        body = (await conn.execute(select(dev_outbox.c.body))).scalars().all()[-1]
    code = body.split("-")[1][:6]
    await say(engine, code)
    await say(engine, f"我的身分證是 {WANG.id_number}，驗證碼 {code} 對嗎")
    transcript = await core.conversations.transcript(CHAT)
    said = [entry.said or "" for entry in transcript]
    assert said[0] == "我要申請憑證" and said[1].startswith("[choice] ")
    assert said[2] == said[3] == SECRET  # the ID number, the birth date
    assert said[4].startswith("[choice] ") and said[5] == "[choice] 點我發送驗證碼"
    assert said[6] == SECRET  # the code
    assert said[7].startswith("我的身分證是 A")  # masked in free text, the rest kept
    everything = json.dumps([(e.said, e.replies) for e in transcript], ensure_ascii=False)
    assert WANG.id_number not in everything
    assert code not in everything
    assert not any("761205" in text for text in said)  # (the prompt's example is the same date)


async def test_an_agents_words_carry_the_agent_and_reach_only_while_theirs(
    engine: Engine, core: Core
) -> None:
    await link_conversation(core, CHAT, WANG.id_number)
    await say(engine, "客服")
    handoff = await core.handoffs.open_for(CHAT)
    assert handoff is not None
    assert await agent(engine, "mei", "hello") == []  # not claimed yet: nothing shown
    await core.handoffs.claim(handoff.id, "mei")
    assert says(await agent(engine, "mei"), "handoff.claimed")
    assert says(await agent(engine, "mei", "您好，請問需要什麼協助？"), "handoff.agent_says")
    assert await agent(engine, "lin", "我來") == []
    transcript = await core.conversations.transcript(CHAT)
    assert [e.author for e in transcript][-3:] == ["mei", "mei", "lin"]
    assert "您好" in transcript[-2].replies and transcript[-1].replies == "[]"
    async with core.db.read() as conn:
        actions = (await conn.execute(select(audit_log.c.action))).scalars().all()
    assert "handoff.requested" in actions and "handoff.claimed" in actions


async def test_a_silent_agent_hands_the_customer_back_once(
    engine: Engine, core: Core, clock: FrozenClock
) -> None:
    await link_conversation(core, CHAT, WANG.id_number)
    await say(engine, "客服")
    handoff = await core.handoffs.open_for(CHAT)
    assert handoff is not None
    await core.handoffs.claim(handoff.id, "mei")
    await agent(engine, "mei", "稍等")
    channels = Channels(engine)
    clock.advance(minutes=core.settings.handoff_timeout_minutes - 1)
    assert await time_out_handoffs_once(core, channels) == 0
    clock.advance(minutes=2)
    assert await time_out_handoffs_once(core, channels) == 1
    assert await time_out_handoffs_once(core, channels) == 0
    ended = await core.handoffs.get(handoff.id)
    assert ended is not None and ended.state is HandoffState.CLOSED
    assert ended.outcome == HandoffOutcome.TIMED_OUT.value
    replies = await say(engine, "選單")  # the bot answers again
    assert says(replies, "menu.prompt")
    async with core.db.read() as conn:
        rows = await conn.execute(
            select(conversation_events.c.replies).where(
                conversation_events.c.event_id.like("handback:%")
            )
        )
        assert len(rows.all()) == 1
    assert clock() - handoff.requested_at > timedelta(minutes=30)
