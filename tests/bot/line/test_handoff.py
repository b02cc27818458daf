"""A LINE customer with a person: silence while an agent has the chat, the agent's words on
the customer's screen (through the customer's unused reply token while it is fresh, which costs
no push, else a push with a retry key), and the chat back with the bot afterwards."""

from __future__ import annotations

import uuid

from bot.web.keys import CHANNELS
from dialogs import EventKind, Inbound
from tests.bot.line.conftest import Line
from tests.bot.line.test_flows import assert_keys, link

USER = "U4af4980629bbbbbbbbbbbbbbbbbbbbbb"
CHAT = f"line:{USER}"


async def agent_says(line: Line, text: str, agent: str = "mei") -> None:
    event = Inbound(CHAT, f"agent:{uuid.uuid4().hex}", EventKind.AGENT, choice=agent, text=text)
    await line.server.app[CHANNELS].dispatch(event)


async def test_an_agents_words_use_the_fresh_reply_token_then_pushes(line: Line) -> None:
    await link(line, USER)
    assert_keys(await line.say(USER, "客服"), "handoff.requested", "handoff.waiting")
    handoff = await line.core.handoffs.open_for(CHAT)
    assert handoff is not None
    await line.core.handoffs.claim(handoff.id, "mei")
    assert await line.say(USER, "我的憑證匯出失敗") == []  # with a person: the bot is silent
    await agent_says(line, "")  # taken: said through the unused reply token
    await agent_says(line, "請問您用哪一種瀏覽器？")  # the token is spent: a push
    sent = line.sent(USER)
    assert [s.via for s in sent[-2:]] == ["reply", "push"]
    assert sent[-1].retry_key
    assert_keys(
        [m["text"] for s in sent[-2:] for m in s.messages], "handoff.claimed", "handoff.agent_says"
    )
    # A token too old is not tried: the push comes at once.
    assert await line.say(USER, "Chrome") == []
    line.channel.monotonic = lambda: float("inf")
    await agent_says(line, "好的，請稍候")
    assert line.sent(USER)[-1].via == "push"
    # Another agent's words never reach the customer.
    before = len(line.sent(USER))
    await agent_says(line, "我來幫忙", agent="lin")
    assert len(line.sent(USER)) == before


async def test_back_with_the_bot_after_the_agent_returns_the_chat(line: Line) -> None:
    await link(line, USER)
    await line.say(USER, "客服")
    handoff = await line.core.handoffs.open_for(CHAT)
    assert handoff is not None
    await line.core.handoffs.claim(handoff.id, "mei")
    back = Inbound(CHAT, "handback:1", EventKind.HANDBACK, choice="returned", text="mei")
    await line.server.app[CHANNELS].dispatch(back)
    assert_keys(
        [m["text"] for m in line.sent(USER)[-1].messages], "handoff.returned", "menu.prompt"
    )
    assert_keys(await line.say(USER, "選單"), "menu.prompt")


async def test_a_customer_who_blocks_the_account_leaves_the_queue(line: Line) -> None:
    await link(line, USER)
    await line.say(USER, "客服")
    assert await line.core.handoffs.open_for(CHAT) is not None
    await line.deliver(line.event(USER, "unfollow"))
    assert await line.core.handoffs.open_for(CHAT) is None
    assert await line.core.handoffs.open_requests() == []
