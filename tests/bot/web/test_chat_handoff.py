"""A web chat customer with a person: the agent's words arrive in the chat's history (and so
in the page, by its event stream), the customer's own lines are kept for the agent masked, and
the rating after a resolved hand-off is answered in the chat."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.web import CHANNELS, CORE
from dialogs import EventKind, Inbound
from tests.bot.web.test_chat_api import CUSTOMER, link, new_chat, says
from tests.bot.web.test_chat_api import client as client  # the fixture


def agent_event(conversation_id: str, event_id: str, text: str) -> Inbound:
    return Inbound(conversation_id, event_id, EventKind.AGENT, choice="mei", text=text)


async def test_an_agent_answers_in_the_web_chat(client: TestClient[Any, Any]) -> None:
    app = client.app
    core = app[CORE]
    chat = await new_chat(client)
    await link(chat, core)
    assert says((await chat.say("客服"))[0], "handoff.requested")
    handoff = await core.handoffs.open_for(chat.conversation_id)
    assert handoff is not None
    await core.handoffs.claim(handoff.id, "mei")
    assert await chat.say(f"我的身分證 {CUSTOMER} 要怎麼匯出憑證") == []
    last = chat.messages[-1]["seq"]
    await app[CHANNELS].dispatch(agent_event(chat.conversation_id, "agent:1", ""))
    await app[CHANNELS].dispatch(agent_event(chat.conversation_id, "agent:2", "請問您的瀏覽器？"))
    pushed = [m for m in await chat.history(after=last) if m["from"] == "bot"]
    assert len(pushed) == 2
    assert says(pushed[0], "handoff.claimed") and says(pushed[1], "handoff.agent_says")
    transcript = await core.conversations.transcript(chat.conversation_id)
    assert all(CUSTOMER not in (entry.said or "") for entry in transcript)
    resolved = Inbound(
        chat.conversation_id, "handback:1", EventKind.HANDBACK, choice="resolved", text="mei"
    )
    await app[CHANNELS].dispatch(resolved)
    rating = await chat.history(after=pushed[-1]["seq"])
    assert says(rating[0], "handoff.resolved") and says(rating[1], "handoff.rate")
    assert says((await chat.say("5"))[0], "handoff.rated")
    rated = await core.handoffs.get(handoff.id)
    assert rated is not None and rated.rating == 5
