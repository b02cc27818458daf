"""A Telegram customer with a person: the bot is silent while an agent has the chat, the
agent's words arrive as messages in the customer's chat, and 取消 does not take the chat from
an agent who has it."""

from __future__ import annotations

from bot.web import CHANNELS
from dialogs import EventKind, Inbound
from tests.bot.telegram.conftest import CHAT
from tests.bot.telegram.test_flows import link


async def test_an_agent_answers_in_telegram(telegram_app) -> None:
    tg = await telegram_app()
    await link(tg)
    await tg.text(CHAT, "客服")
    tg.expect(CHAT, "handoff.requested", "handoff.waiting")
    conversation = f"telegram:{CHAT}"
    handoff = await tg.core.handoffs.open_for(conversation)
    assert handoff is not None
    await tg.core.handoffs.claim(handoff.id, "mei")
    await tg.text(CHAT, "我的憑證匯出失敗")
    await tg.text(CHAT, "取消")
    tg.expect(CHAT)  # silent: the customer is with a person
    for number, text in enumerate(("", "請問您用哪一種瀏覽器？")):
        event = Inbound(conversation, f"agent:{number}", EventKind.AGENT, choice="mei", text=text)
        await tg.server.app[CHANNELS].dispatch(event)
    await tg.idle()
    tg.expect(CHAT, "handoff.claimed", "handoff.agent_says")
    back = Inbound(conversation, "handback:1", EventKind.HANDBACK, choice="returned", text="mei")
    await tg.server.app[CHANNELS].dispatch(back)
    await tg.idle()
    tg.expect(CHAT, "handoff.returned", "menu.prompt")
