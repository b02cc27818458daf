"""The Telegram channel (DESIGN §7): a bot customers talk to privately.

`mount(app)` adds `POST /telegram/webhook`, registers the channel in the app's `CHANNELS` (so a
push for a `telegram:` conversation goes out here) and runs its background work in the app's
cleanup context: at start-up, in the background and retried until Telegram answers, `getMe`,
the bot's commands in both languages (`setMyCommands`), then either the webhook registered
with its secret (`public_url` is https) or long polling (anything else: a laptop works); at
shutdown the poller stops, the chats' lanes finish or are cancelled and the HTTP client closes.

The modules: `adapter` (updates in, replies out, every Bot API call), `render` (neutral
messages as Telegram messages), `limits` (send limits), `lanes` (one chat's work in order),
`export` (the .pfx delivered in the chat), `webhook`, `polling` and `client` (the PTB `Bot`);
`support`, with `telegram_support_chat_id` set, the support group where agents answer hand-offs
of every channel in forum topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from telegram import BotCommand, BotCommandScopeDefault

from bot.channels.telegram.adapter import COMMANDS, TelegramChannel, chat_id_of
from bot.channels.telegram.client import make_bot
from bot.channels.telegram.limits import SendLimiter
from bot.channels.telegram.polling import Backoff, Poller
from bot.channels.telegram.render import Outgoing, render
from bot.channels.telegram.support import SUPPORT, SupportGroup
from bot.channels.telegram.support import mount as mount_support
from bot.channels.telegram.webhook import CHANNEL_KEY, WEBHOOK_PATH, receive, register
from bot.web.keys import CHANNELS, CORE, ENGINE
from certcore.i18n import translate

log = logging.getLogger("certdesk.telegram")

TELEGRAM = CHANNEL_KEY
"""The app's Telegram channel (tests reach its limiter, backoff and poller through it)."""
POLLER = web.AppKey("telegram_poller", Poller)
COMMAND_LANGUAGES = (("zh_TW", None), ("en", "en"), ("zh_TW", "zh"))
"""(catalogue locale, Telegram `language_code`): the default list is Chinese, as the broker's
customers mostly are, with English and Chinese lists for those languages' Telegram apps."""
STARTUP_BACKOFF_CAP = 60.0
"""The longest pause between two tries of a start-up step (Telegram unreachable for a while)."""


def mount(app: web.Application) -> TelegramChannel:
    """The channel on this app (call only when `settings.telegram_enabled`)."""
    core = app[CORE]
    channel = TelegramChannel(core, app[ENGINE], make_bot(core.settings))
    app[TELEGRAM] = channel
    app[POLLER] = Poller(channel)
    app[CHANNELS].add(channel)
    if core.settings.telegram_support_chat is not None:
        mount_support(app, channel, app[CHANNELS])
    app.add_routes([web.post(WEBHOOK_PATH, receive)])
    app.cleanup_ctx.append(running)
    return channel


async def running(app: web.Application) -> AsyncIterator[None]:
    channel = app[TELEGRAM]
    task = asyncio.create_task(start(app), name="telegram-start")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await app[POLLER].confirm()
        await channel.close()
        with contextlib.suppress(Exception):
            await channel.bot.shutdown()


async def start(app: web.Application) -> None:
    """Everything the bot does once at start-up, then (without a webhook) the polling loop."""
    channel = app[TELEGRAM]
    settings = channel.core.settings
    bot = channel.bot
    await persist(channel, "getMe", bot.initialize)
    await persist(channel, "setMyCommands", lambda: set_commands(channel))
    if settings.telegram_webhook_mode:
        url = settings.public_url.rstrip("/") + WEBHOOK_PATH
        secret = settings.telegram_webhook_secret
        await persist(channel, "setWebhook", lambda: register(bot, url, secret))
        log.info("Telegram: webhook registered")
        return
    await persist(channel, "deleteWebhook", bot.delete_webhook)
    log.info("Telegram: long polling (public_url is not https)")
    await app[POLLER].run()


async def persist(channel: TelegramChannel, what: str, step: Callable[[], Awaitable[Any]]) -> None:
    """Run a start-up step until it succeeds, with a growing pause between tries."""
    backoff = Backoff(channel.backoff_base, STARTUP_BACKOFF_CAP)
    while True:
        try:
            await step()
            return
        except Exception as error:
            delay = backoff.next()
            log.warning(
                "Telegram %s failed (%s); again in %.1f s", what, channel.describe(error), delay
            )
            await channel.sleep(delay)


async def set_commands(channel: TelegramChannel) -> None:
    for locale, language in COMMAND_LANGUAGES:
        commands = [
            BotCommand(name, translate(locale, f"telegram.command.{name}")) for name in COMMANDS
        ]
        await channel.bot.set_my_commands(
            commands, scope=BotCommandScopeDefault(), language_code=language
        )


__all__ = [
    "POLLER",
    "SUPPORT",
    "TELEGRAM",
    "WEBHOOK_PATH",
    "Outgoing",
    "Poller",
    "SendLimiter",
    "SupportGroup",
    "TelegramChannel",
    "chat_id_of",
    "mount",
    "render",
]
