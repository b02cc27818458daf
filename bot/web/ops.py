"""What operators and load balancers ask of a running instance.

`GET /healthz`: the process is alive and its event loop answers (nothing else is checked: a
database outage must not make an orchestrator kill every instance at once). `GET /readyz`: this
instance can do its work: the database answers and the CA key signs; 503 otherwise, and 503
from the moment the instance begins to stop, so the balancer sends it nothing new. `GET
/metrics`: Prometheus's text format (`bot.metrics`).

Stopping (`begin_stopping`, called by `serve` on SIGTERM), and while the database does not
answer: the platforms' webhooks and the web chat's posts are answered 503 with `Retry-After`, so
LINE and Telegram redeliver (to another instance, or later) and the browser tries again, while
the events already taken are worked off (the engine waits for the database to come back).
`refuse_new_work` is the app's innermost middleware, so the web chat's own error middleware
words the refusal for the page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot import metrics
from bot.web.keys import CORE

log = logging.getLogger("certdesk.ops")

STOPPING = web.AppKey("stopping", asyncio.Event)
"""Set when the instance begins to stop."""
RETRY_AFTER_SECONDS = 5
TAKES_WORK = ("/line/", "/telegram/", "/api/chat/")
"""Path prefixes of what brings new work (webhooks, the web chat's messages)."""


def mount(app: web.Application) -> None:
    app[STOPPING] = asyncio.Event()
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics_page),
        ]
    )


def begin_stopping(app: web.Application) -> None:
    app[STOPPING].set()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    problems: list[str] = []
    if app[STOPPING].is_set():
        problems.append("stopping")
    core = app[CORE]
    try:
        await asyncio.wait_for(core.db.ping(), timeout=2.0)
    except Exception as error:  # unreachable, timed out, refused
        log.warning("readiness: the database does not answer (%s)", type(error).__name__)
        problems.append("database")
    if not core.ca.key_works():
        problems.append("ca_key")
    if problems:
        return web.json_response({"status": "unavailable", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


async def metrics_page(request: web.Request) -> web.Response:
    body, content_type = metrics.exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


@web.middleware
async def refuse_new_work(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """503 for what brings new work while stopping or while the database does not answer."""
    app = request.app
    if (
        request.method == "POST"
        and request.path.startswith(TAKES_WORK)
        and (app[STOPPING].is_set() or not app[CORE].db.reachable)
    ):
        raise web.HTTPServiceUnavailable(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return await handler(request)
