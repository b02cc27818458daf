"""`certdesk serve`: the service as a process — the core opened, the worker processes for
issuance, the web application (`bot.web`) listening, and a clean stop on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from bot.web import create_app
from bot.web.limits import REQUEST_HEAD_SECONDS
from certcore.config import Settings
from certcore.core import Core
from certcore.customers import load_demo_customers
from certcore.errors import ConfigurationError
from certcore.notify import is_loopback_host
from certcore.pki import KeyWork, process_pool

log = logging.getLogger("certdesk.server")


async def _until_stopped() -> None:
    """Wait for SIGTERM or SIGINT, so a stop still closes the database and the workers."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    try:
        await stopped.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def started_lines(host: str, port: int, *, dev: bool) -> list[str]:
    """Where a person opens the web chat (and, in dev mode, reads the codes)."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    lines = [f"Web chat: {base}/"]
    if dev:
        lines.append(f"Development outbox: {base}/dev/outbox")
    return lines


def app_runner(app: web.Application) -> web.AppRunner:
    """The app as `serve` runs it: no access log, and a connection closed when a complete
    request head has not arrived `REQUEST_HEAD_SECONDS` after it opened or after its previous
    response (aiohttp's keep-alive timer, which runs from the connection's opening)."""
    return web.AppRunner(app, access_log=None, keepalive_timeout=REQUEST_HEAD_SECONDS)


async def serve(settings: Settings, *, host: str, port: int) -> None:
    if settings.outbox_mode and not is_loopback_host(host):
        raise ConfigurationError(
            "development outbox mode: one-time codes are shown on a development page, so serve "
            f"listens only on loopback; configure SMTP or SMS to listen on {host}"
        )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    workers = process_pool()  # issuance's key generation and PKCS#12 export, off the event loop
    try:
        core = await Core.open(settings, create_ca=True, keywork=KeyWork(workers))
    except BaseException:
        workers.shutdown(cancel_futures=True)
        raise
    if settings.outbox_mode:  # dev mode: the embedded default comes with demo customers
        loaded = await load_demo_customers(core.db, core.clock())
        log.info("demo customers loaded: %d (only into an empty directory)", loaded)
    runner = app_runner(create_app(core))
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("CertDesk listening on http://%s:%d/ (data in %s)", host, port, settings.data_dir)
        for line in started_lines(host, runner.addresses[0][1], dev=settings.outbox_mode):
            print(line, flush=True)  # for the person who ran `make run`, after the log lines
        await _until_stopped()
        log.info("CertDesk stopping")
    finally:
        await runner.cleanup()
        await core.close()
        workers.shutdown(cancel_futures=True)
