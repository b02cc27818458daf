"""Attack on `POST /telegram/webhook`: a wrong or missing secret token, replayed updates.

Threat: the webhook URL is public. Without the secret given to `setWebhook` (sent by Telegram in
`X-Telegram-Bot-Api-Secret-Token`), anyone could post updates naming any chat id and drive that
customer's conversation. An update captured once (the body carries no signature, only the
header) and posted again must not do its work twice.

Bound: anything but the exact configured secret is refused with 403 before the body is read, and
leaves no trace (the update is not even marked as seen); with no secret configured the endpoint
refuses everything. A replayed `update_id` is dropped in the process that saw it, and in another
process (a restart, a second instance, where the in-memory set of recent ids is empty) the
engine answers it from its record: no step runs again (no second code sent), only the recorded
words are sent again (Telegram has no redelivery flag, so this is also how an update whose
answer a crash lost is answered).

Already covered elsewhere and not repeated here: a wrong secret, the secret plus one character
and a missing header, with the same update taken afterwards
(`tests/bot/telegram/test_webhook.py::test_a_bad_or_missing_secret_is_refused_and_changes_nothing`);
a duplicate update and a duplicate tap in one process
(`...::test_a_duplicate_update_is_sent_once`); malformed bodies
(`...::test_malformed_bodies_get_400`).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.channels.telegram.adapter import RecentIds
from tests.bot.telegram.conftest import CHAT, SECRET, Factory, Telegram
from tests.fakes.telegram_api import TOKEN

WRONG_SECRETS: dict[str, Callable[[], str]] = {
    "empty": lambda: "",
    "one character short": lambda: SECRET[:-1],
    "other case": lambda: SECRET.upper(),
    # (Spaces around the value are not a wrong secret: HTTP strips them from a header.)
    "inner space": lambda: SECRET[:5] + " " + SECRET[5:],
    "the bot token": lambda: TOKEN,
    "the secret twice": lambda: SECRET + SECRET,
    "right length, wrong bytes": lambda: "x" * len(SECRET),
}


async def _nothing_happened(tg: Telegram) -> None:
    await tg.idle()
    assert not tg.fake.to(CHAT)
    assert await tg.channel.engine.locale_of(f"telegram:{CHAT}") is None


@pytest.mark.parametrize("wrong", WRONG_SECRETS, ids=list(WRONG_SECRETS))
async def test_a_wrong_secret_is_refused(telegram_app: Factory, wrong: str) -> None:
    tg = await telegram_app()
    update = tg.fake.message(CHAT, "/start")
    assert await tg.post(update, secret=WRONG_SECRETS[wrong]()) == 403
    await _nothing_happened(tg)
    assert await tg.send(update) == 200  # the control: with the secret it is taken
    assert tg.fake.to(CHAT)


async def test_without_a_configured_secret_the_webhook_refuses_everything(
    telegram_app: Factory,
) -> None:
    """Polling mode (no https public URL) keeps the route only to refuse it: an empty secret
    header must not match an empty configured secret."""
    tg = await telegram_app(public_url="http://127.0.0.1:8080", telegram_webhook_secret="")
    update = tg.fake.message(CHAT, "/start")
    for secret in ("", None, SECRET):
        status = await tg.post(update, secret=secret)
        assert status in (403, 404), status
    await _nothing_happened(tg)


async def test_a_replayed_update_in_another_process_does_not_act_again(
    telegram_app: Factory,
) -> None:
    tg = await telegram_app()
    await tg.text(CHAT, "/start")
    await tg.tap(CHAT, "query")
    await tg.text(CHAT, "A123456789")
    await tg.text(CHAT, "761205")
    await tg.tap(CHAT, "sms")
    outbox = tg.core.outbox
    assert outbox is not None
    codes = len(await outbox.since(0))
    send = await tg.tap(CHAT, "send")
    assert len(await outbox.since(0)) == codes + 1
    messages = len(tg.fake.to(CHAT))

    answered = [s.text for s in tg.fake.to(CHAT)[-2:]]

    assert await tg.send(send) == 200  # the same process: dropped as a duplicate
    assert len(tg.fake.to(CHAT)) == messages
    tg.channel.seen = RecentIds()  # another instance, or this one restarted
    assert await tg.send(send) == 200
    assert len(await outbox.since(0)) == codes + 1, "a replayed update sent another code"
    # Telegram marks no redelivery (unlike LINE), and an update it had no 200 for comes again
    # with the same id: the record's answer is sent again, as it may never have gone out. It is
    # the recorded words only, no new code; and replaying needs the secret in the first place.
    again = [s.text for s in tg.fake.to(CHAT)[messages:]]
    assert again == answered
    assert await tg.send(send) == 200  # and that process drops it from then on
    assert len(tg.fake.to(CHAT)) == messages + len(again)
