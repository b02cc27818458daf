"""Attack on `POST /line/webhook`: forged signatures and replayed webhooks.

Threat: anyone on the internet can post to the webhook. A forged event would drive a customer's
conversation (send codes to their phone, start a revocation) without LINE ever seeing it; a
captured, validly signed body (from a proxy log, a misconfigured mirror) replayed later would do
what the customer did a second time. LINE's signature (HMAC-SHA256 of the exact raw body under
the channel secret, base64) carries no timestamp, so a replay cannot be refused by its signature:
it must be harmless because the engine deduplicates on `webhookEventId`.

Bound: a body without a valid signature is refused with 401 before anything is parsed — no
request reaches the LINE API, no conversation is created. A byte-identical replay of a signed
body is answered from the engine's record: no step runs again (no second code sent) and no second
reply or push reaches LINE — for as long as the engine keeps the event's record (7 days,
`EVENT_RECORDS_KEPT`); a body older than that, less a day (by the timestamp LINE put in it,
which the signature covers), is ignored by the channel, so a replay after the record is
forgotten is not worked on again either (the last two tests).

Already covered elsewhere and not repeated here: a missing header, a signature made with another
secret, a signature that is not base64 and a one-byte change of a signed body
(`tests/bot/line/test_webhook.py::test_a_missing_or_wrong_signature_is_401_and_changes_nothing`);
a redelivery (`isRedelivery: true`) answered by push from the record with a retry key that LINE
takes once (`...::test_a_redelivery_is_answered_by_push_from_the_record`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from datetime import timedelta

import pytest

from certcore.clock import FrozenClock
from certcore.storage import EVENT_RECORDS_KEPT
from tests.bot.line.conftest import Line, sign
from tests.fakes.line_api import SECRET, TOKEN

USER = "U0a77ac4000000000000000000000beef"
OTHER_USER = "U0a77ac4000000000000000000000f00d"


def _body(line: Line, user: str, text: str) -> bytes:
    event = line.text_event(user, text)
    return json.dumps({"destination": "Ubot", "events": [event]}).encode()


Forgery = Callable[[Line, bytes], str]

FORGERIES: dict[str, Forgery] = {
    # A real signature LINE made, of another body (the attacker's own chat with the bot).
    "signature of another body": lambda line, raw: sign(_body(line, OTHER_USER, "選單")),
    # Right length and alphabet, random bytes: the guess an attacker without the secret makes.
    "random 32 bytes": lambda line, raw: base64.b64encode(os.urandom(32)).decode(),
    "empty value": lambda line, raw: "",
    "whitespace": lambda line, raw: " ",
    # The right HMAC in another encoding (hex instead of base64): not accepted either.
    "right HMAC, hex": lambda line, raw: hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(),
    # Keyed with the other credential the attacker might have found (the access token).
    "keyed with the access token": lambda line, raw: sign(raw, TOKEN),
    # Of the body with a trailing newline added by some re-serialiser on the way.
    "of the body plus a newline": lambda line, raw: sign(raw + b"\n"),
    # SHA-1 instead of SHA-256 under the right secret.
    "HMAC-SHA1": lambda line, raw: base64.b64encode(
        hmac.new(SECRET.encode(), raw, hashlib.sha1).digest()
    ).decode(),
    # The right signature, truncated by one character.
    "truncated": lambda line, raw: sign(raw)[:-2],
}


@pytest.mark.parametrize("forgery", FORGERIES, ids=list(FORGERIES))
async def test_a_forged_signature_is_refused_and_nothing_is_processed(
    line: Line, forgery: str
) -> None:
    raw = _body(line, USER, "選單")
    signature = FORGERIES[forgery](line, raw)
    assert await line.post(raw, signature) == 401
    await line.channel.idle()
    assert line.fake.requests == []  # no reply, no push, no loading sign, no content fetched
    assert await line.channel.engine.locale_of(f"line:{USER}") is None  # no conversation
    # The control: the same body with LINE's own signature is taken.
    assert await line.post(raw, sign(raw)) == 200
    await line.channel.idle()
    assert [s.to for s in line.fake.sent] == [USER]


async def test_a_replayed_signed_webhook_acts_once_and_answers_once(line: Line) -> None:
    """The step that costs something (sending a one-time code) is replayed byte for byte."""
    await line.say(USER, "選單")
    await line.tap(USER, "憑證查詢")
    await line.say(USER, "A123456789")
    await line.say(USER, "761205")
    await line.tap(USER, 1)  # SMS
    outbox = line.core.outbox
    assert outbox is not None
    codes_before = len(await outbox.since(0))
    tap = line.event(USER, "postback", postback={"data": line.quick_reply(USER, 1)})
    raw = json.dumps({"destination": "Ubot", "events": [tap]}).encode()
    signature = sign(raw)
    assert await line.post(raw, signature) == 200
    await line.channel.idle()
    assert len(await outbox.since(0)) == codes_before + 1  # the code was sent
    sent_before = list(line.fake.sent)
    requests_before = len(line.fake.requests)

    for _ in range(3):  # captured and replayed, byte-identical, signature valid
        assert await line.post(raw, signature) == 200
        await line.channel.idle()

    assert len(await outbox.since(0)) == codes_before + 1, "a replay sent another code"
    assert line.fake.sent == sent_before, "a replay reached the customer again"
    replayed = line.fake.requests[requests_before:]
    accepted = [r for r in replayed if r.status < 300 and r.path.startswith("/v2/bot/message/")]
    assert accepted == [], [(r.path, r.status) for r in replayed]


async def test_a_replay_after_the_event_records_are_forgotten_is_not_answered(
    line: Line, clock: FrozenClock
) -> None:
    raw = _body(line, USER, "選單")
    assert await line.post(raw, sign(raw)) == 200
    await line.channel.idle()
    answered = len(line.fake.sent)
    clock.advance(days=8)
    await line.core.conversations.forget_old_events()  # as `serve`'s upkeep does
    assert await line.post(raw, sign(raw)) == 200
    await line.channel.idle()
    assert len(line.fake.sent) == answered, "the replayed body was answered again"


async def test_an_event_older_than_the_records_kept_is_ignored(
    line: Line, clock: FrozenClock
) -> None:
    """The age rule on its own: a fresh signed event is worked on; the same kind of event,
    signed, but sent (by its timestamp) longer ago than the records are kept, is not."""
    stale = line.text_event(USER, "選單")
    stale["timestamp"] -= int((EVENT_RECORDS_KEPT - timedelta(hours=12)).total_seconds() * 1000)
    raw = json.dumps({"destination": "Ubot", "events": [stale]}).encode()
    assert await line.post(raw, sign(raw)) == 200  # LINE must not redeliver it
    await line.channel.idle()
    assert line.fake.sent == []
    fresh = _body(line, USER, "選單")
    assert await line.post(fresh, sign(fresh)) == 200
    await line.channel.idle()
    assert len(line.fake.sent) == 1
