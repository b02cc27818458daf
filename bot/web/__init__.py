"""The web application: one aiohttp app composed of parts, each a module with one job.

Today: the PKI endpoints (`pki`) and the health check, with the scheduled jobs (`bot.jobs`)
running for as long as the app does. The channels' webhooks, the web chat, the download page
and the agent console mount here beside them, each as a module of its own.
"""

from __future__ import annotations

from aiohttp import web

from bot import jobs
from bot.web import pki
from bot.web.keys import CORE
from certcore.core import Core

CLIENT_MAX_SIZE = 1024 * 1024


def create_app(core: Core) -> web.Application:
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    app[CORE] = core
    app.add_routes([*pki.routes(), web.get("/healthz", healthz)])
    app.cleanup_ctx.append(jobs.running)
    return app


async def healthz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    await core.db.ping()
    return web.json_response({"status": "ok", "ca": core.ca.certificate.subject.rfc4514_string()})


__all__ = ["CORE", "create_app"]
