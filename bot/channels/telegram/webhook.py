"""`POST /telegram/webhook`: Telegram's updates pushed to us (when `public_url` is https).

Telegram sends the secret given to `setWebhook` in `X-Telegram-Bot-Api-Secret-Token`; it is
compared in constant time, and anything without it gets 403 and changes nothing (an endpoint
with no secret configured refuses everything). A good update is read with PTB's
`Update.de_json`, put in its chat's lane and answered 200 at once: the work happens after the
response, so a slow step never makes Telegram time out and redeliver. A duplicate (same
`update_id`) is answered 200 and dropped. An update PTB cannot read is answered 200 as well
(Telegram would otherwise send it again and again) and logged; while the app shuts down the
answer is 503, so Telegram delivers the update again later, to this or another instance.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web
from telegram import Bot, Update

from bot.channels.telegram.adapter import ALLOWED_UPDATES, TelegramChannel
from bot.channels.telegram.lanes import LanesClosed
from bot.web.limits import CLIENT_MAX_SIZE, read_body

log = logging.getLogger("certdesk.telegram")

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_CONNECTIONS = 40
"""How many webhook requests Telegram may have open with us at once (its default)."""

CHANNEL_KEY = web.AppKey("telegram", TelegramChannel)


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time; an empty expected secret matches nothing."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


async def receive(request: web.Request) -> web.Response:
    channel = request.app[CHANNEL_KEY]
    secret = channel.core.settings.telegram_webhook_secret
    if not secret_matches(request.headers.get(SECRET_HEADER), secret):
        return _error(403, "forbidden")
    try:
        data: Any = json.loads(await read_body(request, CLIENT_MAX_SIZE))
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested deeper than json reads
        return _error(400, "the body is not JSON")
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        return _error(400, "not a Telegram update")
    try:
        update = Update.de_json(data, channel.bot)
    except Exception as error:  # PTB could not read it: Telegram must not resend it forever
        log.warning("Telegram update %s unreadable: %s", data["update_id"], type(error).__name__)
        return web.json_response({"ok": True})
    try:
        channel.accept(update)
    except LanesClosed:
        return _error(503, "shutting down")
    return web.json_response({"ok": True})


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def register(bot: Bot, url: str, secret: str) -> None:
    """setWebhook with the secret; pending updates are kept (Telegram delivers them now)."""
    await bot.set_webhook(
        url,
        secret_token=secret,
        allowed_updates=list(ALLOWED_UPDATES),
        max_connections=MAX_CONNECTIONS,
    )
