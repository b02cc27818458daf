"""An agent's words reach a LINE customer: the customer asks for 客服 through the real webhook,
an agent claims and answers in the console (`/agent`), and the fake LINE API receives the
claim notice and the reply as pushes (the console's events bring no reply token), then the
return to the bot."""

from __future__ import annotations

from aiohttp import ClientSession, CookieJar

from certcore.i18n import translate
from tests.bot.line.conftest import Line
from tests.bot.web.test_agent_console import PASSWORD, logged_in, post
from tests.fakes.line_api import message_text

USER = "Uagentreply0001"


def t(key: str, **params: object) -> str:
    return translate("zh_TW", key, **params)


async def test_an_agents_reply_is_pushed_to_the_line_customer(line: Line) -> None:
    core = line.core
    await core.agents.add("mei", PASSWORD)
    await line.say(USER, "客服")
    handoff = await core.handoffs.open_for(f"line:{USER}")
    assert handoff is not None
    async with ClientSession(
        base_url=str(line.server.make_url("/")), cookie_jar=CookieJar(unsafe=True)
    ) as agent:
        token = await logged_in(agent)
        before = len(line.sent(USER))
        await post(agent, f"/agent/c/{handoff.id}/claim", token)
        await post(agent, f"/agent/c/{handoff.id}/reply", token, text="您好，請問哪裡需要協助？")
        await post(agent, f"/agent/c/{handoff.id}/return", token)
    sent = line.sent(USER)[before:]
    assert sent and all(s.via == "push" for s in sent)
    texts = [message_text(message) for s in sent for message in s.messages]
    assert t("handoff.claimed") in texts
    assert t("handoff.agent_says", text="您好，請問哪裡需要協助？") in texts
    assert t("handoff.returned") in texts
