"""The web application: one aiohttp app composed of parts, each a module with one job.

The PKI endpoints (`pki`) and the operators' (`ops`: alive, ready, metrics, the refusal of new
work while stopping); every request under an id its log lines carry (`bot.logs`); the
customers' channels (the web chat, LINE and Telegram webhooks) and the download page, each
mounted by its own module, which adds its routes, registers its channel adapter in `CHANNELS`
and runs its background work in the app's cleanup context; the development pages only in dev
mode; the scheduled jobs (`bot.jobs`) for as long as the app runs. Every part reaches the core
and the one engine through the app's keys. No response carries aiohttp's `Server` header: it
names the exact Python and aiohttp versions, a prober's shortcut to the known flaws of both.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from bot import agent, jobs, logs, metrics
from bot.channels import Channels, line, telegram
from bot.web import chat, dev, download, ops, pki
from bot.web.keys import CHANNELS, CORE, ENGINE
from bot.web.limits import CLIENT_MAX_SIZE
from certcore.core import Core
from dialogs import Engine, engine_for


def create_app(core: Core, *, engine: Engine | None = None) -> web.Application:
    """The whole service over an opened core; `engine` replaces the one built from it (tests)."""
    app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[logs.with_request_id])
    app[CORE] = core
    app[ENGINE] = engine = engine or engine_for(core)
    metrics.watch(engine)
    app[CHANNELS] = Channels(engine)
    app.add_routes(pki.routes())
    ops.mount(app)
    # The parts, each mounted by its own module, go here.
    download.mount(app)
    chat.mount(app)  # after download: its /static/download/ files keep their own headers
    agent.mount(app)  # the support agents' console, under /agent
    if core.settings.outbox_mode:
        dev.mount(app)
    if core.settings.line_enabled:
        line.mount(app)
    if core.settings.telegram_enabled:
        telegram.mount(app)
    app.middlewares.append(ops.refuse_new_work)  # innermost: see `ops`
    app.cleanup_ctx.append(jobs.running)
    app.on_response_prepare.append(_without_server_header)
    return app


async def _without_server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.popall(hdrs.SERVER, None)


__all__ = ["CHANNELS", "CORE", "ENGINE", "create_app"]
