"""The LINE channel (`POST /line/webhook`), switched on when its credentials are configured.

`render` turns the engine's messages into LINE's forms, `api` carries them (line-bot-sdk v3,
one client for the process), `events` decides what each webhook event means, `adapter` is the
channel (replies, pushes, the loading sign), `webhook` the endpoint, `account_link` LINE's
Account Link with CertDesk's own linking page, `richmenu` the menu image and its taps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from linebot.v3 import WebhookParser

from bot.channels.line import richmenu
from bot.channels.line.adapter import LineChannel
from bot.channels.line.api import LineApi
from bot.channels.line.webhook import LINE, PARSER, webhook
from bot.web.keys import CHANNELS, CORE, ENGINE

WEBHOOK_PATH = "/line/webhook"


def mount(app: web.Application, *, api: LineApi | None = None) -> LineChannel:
    """Add the webhook (and, when configured, the Account Link page), register the channel and
    finish its background work at the app's cleanup."""
    core = app[CORE]
    settings = core.settings
    api = api or LineApi(settings)
    account_link = None
    if settings.line_account_link:
        from bot.channels.line import account_link as linking

        account_link = linking.mount(app, api)
    channel = LineChannel(app[ENGINE], api, account_link=account_link)
    app[LINE] = channel
    app[PARSER] = channel.parser = WebhookParser(settings.line_channel_secret)
    app[CHANNELS].add(channel)
    app.router.add_post(WEBHOOK_PATH, webhook)

    async def running(app: web.Application) -> AsyncIterator[None]:
        yield
        await channel.drain()
        await api.close()

    app.cleanup_ctx.append(running)
    return channel


__all__ = ["LINE", "WEBHOOK_PATH", "LineApi", "LineChannel", "mount", "richmenu"]
