"""LINE's failures: 429 (with and without Retry-After) and 5xx retried with a bounded backoff
and the same retry key, so nothing is lost or doubled; a reply LINE will not take (a spent or
unknown token, a 5xx) pushed instead; 403 on a push stops pushing to that user."""

from __future__ import annotations

from bot.channels.line.adapter import conversation_following
from dialogs import Text
from tests.bot.line.conftest import Line
from tests.bot.line.test_flows import assert_keys

USER = "U55555555555555555555555555555555"
CONVERSATION = f"line:{USER}"


def calls(line: Line, path: str) -> list[int]:
    return [r.status for r in line.fake.requests if r.path == path]


async def test_a_reply_meeting_429_with_retry_after_is_retried_once_taken(line: Line) -> None:
    line.fake.fail("reply", 429, retry_after="1")
    texts = await line.say(USER, "選單")
    assert_keys(texts, "menu.prompt")
    assert calls(line, "/v2/bot/message/reply") == [429, 200]
    assert calls(line, "/v2/bot/message/push") == []


async def test_a_push_meeting_429_and_5xx_keeps_its_retry_key_and_arrives_once(
    line: Line,
) -> None:
    line.fake.fail("push", 429)  # no Retry-After: the backoff's own delay
    line.fake.fail("push", 503)
    await line.channel.send(CONVERSATION, [Text("提醒：憑證即將到期")])
    pushes = [r for r in line.fake.requests if r.path == "/v2/bot/message/push"]
    assert [r.status for r in pushes] == [429, 503, 200]
    assert len({r.headers["X-Line-Retry-Key"] for r in pushes}) == 1
    assert line.fake.texts_to(USER) == ["提醒：憑證即將到期"]


async def test_a_push_failing_for_good_gives_up_after_bounded_tries(line: Line) -> None:
    line.fake.fail("push", 500, times=10)
    await line.channel.send(CONVERSATION, [Text("提醒")])
    assert calls(line, "/v2/bot/message/push") == [500] * 4
    assert line.fake.sent == []


async def test_a_reply_token_line_rejects_or_a_5xx_reply_falls_back_to_push(line: Line) -> None:
    event = line.text_event(USER, "選單")
    event["replyToken"] = "expired-or-unknown"
    await line.deliver(event)
    assert calls(line, "/v2/bot/message/reply") == [400]
    [pushed] = line.fake.sent
    assert pushed.via == "push" and pushed.retry_key
    line.fake.fail("reply", 500)
    await line.say(USER, "選單")
    assert calls(line, "/v2/bot/message/reply") == [400, 500]  # a 5xx reply is not retried
    assert [s.via for s in line.fake.sent] == ["push", "push"]


async def test_403_on_a_push_stops_pushing_to_that_user(line: Line) -> None:
    await line.say(USER, "選單")
    line.fake.blocked.add(USER)
    await line.channel.send(CONVERSATION, [Text("提醒")])
    assert calls(line, "/v2/bot/message/push") == [403]
    await line.channel.send(CONVERSATION, [Text("再一次提醒")])
    assert calls(line, "/v2/bot/message/push") == [403]  # not tried again
    # Kept as an unfollow by the engine: a new process does not push either.
    assert not await conversation_following(line.channel.engine, CONVERSATION)


async def test_more_than_five_messages_go_as_a_reply_then_a_push(line: Line) -> None:
    await line.say(USER, "選單")
    answer_texts = [Text(str(n)) for n in range(7)]
    line.channel.engine.handle = _answering(answer_texts)  # type: ignore[method-assign]
    await line.say(USER, "anything")
    last_two = line.fake.to(USER)[-2:]
    assert [(s.via, len(s.messages)) for s in last_two] == [("reply", 5), ("push", 2)]


def _answering(replies: list[Text]):
    async def handle(event, progress=None):
        return replies

    return handle
