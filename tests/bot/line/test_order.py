"""One user's events are answered in arrival order, whatever part of them is slow: a file
message's blob download and an `accountLink` event's redeem happen inside that user's turn, so
a text sent just after them (in a later webhook) waits for their answer, while another user's
does not. A redelivered file the engine already answered is answered from its record, not
downloaded again (and so never meets a failing download)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.channels.line.adapter import AccountLinkHandler
from bot.channels.line.events import AccountLinked, Context
from dialogs import Inbound
from tests.bot.line.conftest import Line, sign
from tests.bot.line.test_flows import assert_keys, reads

USER = "U33333333333333333333333333333333"
OTHER = "U44444444444444444444444444444444"
SLOW = 1.0
"""Seconds the slow part takes: far longer than a text's answer takes to come back."""


def file_event(line: Line, message_id: str, *, redelivery: bool = False) -> dict[str, Any]:
    data = line.fake.contents.setdefault(message_id, b"not a certificate")
    message = {"id": message_id, "type": "file", "fileName": "mine.cer", "fileSize": len(data)}
    return line.event(USER, "message", message=message, redelivery=redelivery)


async def post_now(line: Line, *events: dict[str, Any]) -> None:
    """Post a webhook without waiting for its events to be worked off."""
    body = json.dumps({"destination": "Ubot", "events": list(events)}).encode()
    assert await line.post(body, sign(body)) == 200


async def test_a_text_after_a_slow_file_download_is_answered_after_the_file(line: Line) -> None:
    await line.say(OTHER, "選單")  # warmed up: a first turn may take longer
    line.fake.slow("content", SLOW)
    await post_now(line, file_event(line, "8001"))
    await line.fake.wait_for(lambda: any("/content" in r.path for r in line.fake.requests))
    await post_now(line, line.text_event(USER, "選單"))
    # Another user is not held up by this user's download: answered while it still runs.
    await post_now(line, line.text_event(OTHER, "選單"))
    await line.fake.wait_sent(OTHER, 2)
    assert not line.fake.to(USER), "the text overtook the file"
    await line.channel.idle()
    # Applied in order too: the menu leaves the certificate check the file had started.
    assert_keys(line.fake.texts_to(USER), "check.not_certificate", "flow.left", "menu.prompt")


class SlowLinks(AccountLinkHandler):
    """A redeem that takes its time, and finds the nonce spent."""

    async def complete(self, context: Context, result: AccountLinked) -> Inbound | str | None:
        await asyncio.sleep(SLOW)
        return "line.link.failed"


async def test_a_text_after_a_slow_account_link_is_answered_after_it(line: Line) -> None:
    line.channel.account_link = SlowLinks()
    link = {"result": "ok", "nonce": "a-nonce-that-takes-its-time"}
    await post_now(line, line.event(USER, "accountLink", link=link))
    await post_now(line, line.text_event(USER, "選單"))
    await line.channel.idle()
    assert_keys(line.fake.texts_to(USER), "line.link.failed", "menu.prompt")


async def test_a_redelivered_file_already_answered_is_answered_from_the_record(
    line: Line,
) -> None:
    event = file_event(line, "8002")
    await line.deliver(event)
    [first] = line.fake.to(USER)
    assert first.via == "reply"
    # LINE sends it again, and by now the file can no longer be fetched.
    del line.fake.contents["8002"]
    again = dict(event, deliveryContext={"isRedelivery": True})
    again["replyToken"] = line.fake.reply_token(USER)
    await line.deliver(again)
    assert not any(reads(text, "line.file.failed") for text in line.fake.texts_to(USER))
    second = line.fake.to(USER)[-1]
    assert second.via == "push" and second.messages == first.messages
