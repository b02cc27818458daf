"""The webhook's own rules: the signature on the exact raw body, 200 before any work, every
event type LINE sends accepted (the SDK's own corpus, signed as-is), a sticker, an image, a
video, a voice message or a location answered 1:1 with one polite line and left alone in a
group, groups and rooms refused without personal data, redelivery answered by push from the
record, follow and unfollow."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.web import CHANNELS
from dialogs import EventKind, Inbound, Outbound, Text
from tests.bot.line.conftest import Line, sign
from tests.bot.line.test_flows import assert_keys, link

CORPUS = Path("/work/shared/fixtures/line-sdk-webhook.json")
USER = "U77777777777777777777777777777777"


async def test_a_missing_or_wrong_signature_is_401_and_changes_nothing(line: Line) -> None:
    body = json.dumps({"destination": "Ubot", "events": [line.text_event(USER, "選單")]})
    raw = body.encode()
    assert await line.post(raw, None) == 401
    assert await line.post(raw, sign(raw, "another-secret")) == 401
    assert await line.post(raw, "not base64 at all") == 401
    # Signed, then changed by one byte on the way: the signature is of the exact raw body.
    assert await line.post(raw.replace(b"\\u9078", b"\\u9079"), sign(raw)) == 401
    await line.channel.idle()
    assert line.fake.requests == []
    assert await line.channel.engine.locale_of(f"line:{USER}") is None


async def test_the_sdk_corpus_goes_through_signed_as_is(
    line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    raw = CORPUS.read_bytes()
    line.fake.contents["325708"] = b"not a certificate"
    # The corpus's events are years old: taken as they are, not refused for their age (what
    # the age rule does is the attack tests' business), so every kind of event is worked on.
    line.channel.max_event_age = None
    with caplog.at_level(logging.INFO):
        assert await line.post(raw, sign(raw)) == 200
        await line.channel.idle()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
    user = "U206d25c2ea6bd87c17655609a1c37cb8"
    # The corpus's reply token is not one LINE issued here (400), so answers are pushed; all
    # its 28 events share one webhookEventId, so the engine answers every later one from the
    # record of the first (the text), and their pushes share its retry key: LINE takes the
    # first (200) and answers the others 409, already accepted. Nothing reaches a group.
    [sent] = line.fake.sent
    assert sent.to == user and sent.via == "push" and sent.retry_key
    assert_keys([m["text"] for m in sent.messages], "understand.out_of_scope", "menu.prompt")
    pushes = [r for r in line.fake.requests if r.path == "/v2/bot/message/push"]
    assert [r.status for r in pushes][1:] == [409] * (len(pushes) - 1)
    assert {r.body["to"] for r in pushes} == {user}
    replies = [r for r in line.fake.requests if r.path == "/v2/bot/message/reply"]
    assert {r.status for r in replies} == {400}
    # The file in the corpus (file.txt, 2 KB) is fetched through the blob API.
    assert any(r.path == "/v2/bot/message/325708/content" for r in line.fake.requests)


_MEDIA = {"type": "line"}
POLITE: list[tuple[dict[str, Any], str]] = [
    (
        {"type": "sticker", "packageId": "1", "stickerId": "1", "stickerResourceType": "STATIC"},
        "line.sticker",
    ),
    ({"type": "image", "contentProvider": _MEDIA}, "line.media"),
    ({"type": "video", "duration": 60000, "contentProvider": _MEDIA}, "line.media"),
    ({"type": "audio", "duration": 60000, "contentProvider": _MEDIA}, "line.media"),
    (
        {
            "type": "location",
            "title": "家",
            "address": "台北市",
            "latitude": 25.03,
            "longitude": 121.56,
        },
        "line.location",
    ),
]
"""Messages CertDesk cannot use, with the catalogue key of the one line each gets 1:1."""


def polite_event(line: Line, content: dict[str, Any], n: int) -> dict[str, Any]:
    message = {"id": f"61{n:04d}", "quoteToken": f"q{n}", **content}
    return line.event(USER, "message", message=message)  # each its own webhookEventId


async def test_stickers_media_and_locations_get_one_polite_line_1to1_only(line: Line) -> None:
    for n, (content, key) in enumerate(POLITE):
        before = len(line.fake.sent)
        await line.deliver(polite_event(line, content, n))
        [answer] = line.fake.sent[before:]
        assert answer.to == USER and answer.via == "reply"
        assert_keys([m["text"] for m in answer.messages], key)
    before = len(line.fake.requests)
    for n, (content, _) in enumerate(POLITE):
        for source in ({"groupId": "Cgroup1"}, {"roomId": "Rroom1"}):
            event = polite_event(line, content, n)
            kind = "group" if "groupId" in source else "room"
            event["source"] = {"type": kind, "userId": USER, **source}
            await line.deliver(event)
    assert line.fake.requests[before:] == []  # nothing said, nothing fetched


def group_text(line: Line, text: str, *, mentioned: bool) -> dict[str, object]:
    event = line.text_event(USER, text)
    event["source"] = {"type": "group", "groupId": "Cgroup1", "userId": USER}
    if mentioned:
        mention = {"index": 0, "length": 4, "type": "user", "userId": "Ubot", "isSelf": True}
        event["message"]["mention"] = {"mentionees": [mention]}
    return event


async def test_groups_and_rooms_never_start_a_flow(line: Line) -> None:
    join = line.event(USER, "join")
    join["source"] = {"type": "group", "groupId": "Cgroup1"}
    await line.deliver(join)
    [answer] = line.fake.sent
    assert answer.via == "reply"
    assert_keys([answer.messages[0]["text"]], "line.group.refused")
    # Plain group chatter is left alone; a mention gets the same one line, as a reply.
    await line.deliver(group_text(line, "選單", mentioned=False))
    await line.deliver(group_text(line, "@bot 憑證查詢 A123456789", mentioned=True))
    assert len(line.fake.sent) == 2 and line.fake.sent[1].via == "reply"
    assert_keys([line.fake.sent[1].messages[0]["text"]], "line.group.refused")
    room = line.text_event(USER, "選單")
    room["source"] = {"type": "room", "roomId": "Rroom1", "userId": USER}
    await line.deliver(room)
    assert len(line.fake.sent) == 2
    # No conversation was started for the member.
    assert await line.channel.engine.locale_of(f"line:{USER}") is None


async def test_a_redelivery_is_answered_by_push_from_the_record(line: Line) -> None:
    await line.say(USER, "選單")
    event = line.event(USER, "postback", postback={"data": line.quick_reply(USER, "憑證申請")})
    await line.deliver(event)
    first = line.fake.to(USER)[-1]
    assert first.via == "reply"
    again = dict(event, deliveryContext={"isRedelivery": True})
    again["replyToken"] = line.fake.reply_token(USER)
    await line.deliver(again)
    second = line.fake.to(USER)[-1]
    assert second.via == "push" and second.retry_key
    assert second.messages == first.messages
    # The same redelivery once more (a second process, a retry): the same retry key, so LINE
    # takes it once.
    await line.deliver(again)
    assert line.fake.to(USER)[-1] is second
    assert line.fake.requests[-1].status == 409


async def test_unfollow_stops_every_push_and_refollow_greets(line: Line) -> None:
    await link(line, USER)
    await line.deliver(line.event(USER, "unfollow"))
    count = len(line.fake.requests)
    channels = line.server.app[CHANNELS]
    await channels.dispatch(Inbound(f"line:{USER}", "after-unfollow", EventKind.TEXT, text="選單"))
    assert len(line.fake.requests) == count  # nothing pushed
    # A new process knows too: the engine keeps `following` with the conversation.
    line.channel.unfollowed.clear()
    line.channel.following.clear()
    await line.channel.send(f"line:{USER}", [Text("提醒")])
    assert len(line.fake.requests) == count
    follow = line.event(USER, "follow", follow={"isUnblocked": True})
    await line.deliver(follow)
    assert_keys(line.fake.texts_to(USER)[-2:], "welcome", "menu.prompt")
    await line.channel.send(f"line:{USER}", [Text("提醒")])
    assert line.fake.texts_to(USER)[-1] == "提醒"


async def test_the_200_comes_before_the_work_and_cleanup_ends_it_cleanly(line: Line) -> None:
    release = asyncio.Event()
    started = asyncio.Event()
    engine = line.channel.engine
    original = engine.handle

    async def slow(event: Inbound, progress: object = None) -> list[Outbound]:
        started.set()
        await release.wait()
        return await original(event)

    engine.handle = slow  # type: ignore[method-assign]
    body = json.dumps({"destination": "Ubot", "events": [line.text_event(USER, "選單")]})
    raw = body.encode()
    assert await line.post(raw, sign(raw)) == 200  # answered while the turn has not run
    await asyncio.wait_for(started.wait(), 5)
    assert line.fake.sent == []
    release.set()
    await line.channel.idle()
    assert_keys(line.fake.texts_to(USER), "menu.prompt")
    # A turn still running at shutdown is waited for, then cancelled without an error.
    release.clear()
    started.clear()
    assert await line.post(raw.replace(b"01J", b"02J"), sign(raw.replace(b"01J", b"02J"))) == 200
    await asyncio.wait_for(started.wait(), 5)
    await line.channel.drain(timeout=0.05)
    assert not line.channel._tasks and line.channel._queue.empty()


async def test_a_signed_body_that_is_no_webhook_is_acknowledged_and_logged(
    line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    for raw in (b"not json", b'{"destination": "Ubot"}', b'{"events": [42]}'):
        with caplog.at_level(logging.WARNING, logger="certdesk.line"):
            assert await line.post(raw, sign(raw)) == 200
            await line.channel.idle()
    assert line.fake.requests == []
    assert caplog.text.count("LINE webhook body not parsed") == 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_full_queue_slows_the_webhook_but_still_answers_and_loses_nothing(
    line: Line, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.channels.line import adapter

    monkeypatch.setattr(adapter, "QUEUE_BOUND", 1)
    monkeypatch.setattr(adapter, "WORKERS", 1)
    monkeypatch.setattr(adapter, "BACKPRESSURE_SECONDS", 0.05)
    release = asyncio.Event()
    engine = line.channel.engine
    original = engine.handle

    async def held(event: Inbound, progress: object = None) -> list[Outbound]:
        await release.wait()
        return await original(event)

    engine.handle = held  # type: ignore[method-assign]
    for _ in range(4):
        body = json.dumps({"destination": "Ubot", "events": [line.text_event(USER, "選單")]})
        raw = body.encode()
        assert await line.post(raw, sign(raw)) == 200
    release.set()
    await line.channel.idle()
    assert len(line.fake.messages_to(USER)) == 4
