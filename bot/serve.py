"""`certdesk serve`: the service as a process — the core opened, the worker processes for
issuance, the web application (`bot.web`) listening, and a clean stop on SIGTERM or SIGINT.

Stopping is graceful and bounded by `shutdown_seconds`: at once the instance answers new
webhooks and web chat posts 503 (the platforms redeliver elsewhere) and reports itself not
ready; the events already taken are worked off; then the listener closes, the channels finish
and the core closes. Whatever is still running when the time is up is cancelled, and the
platforms redeliver what they had no 200 for."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from bot import logs
from bot.web import CHANNELS, create_app, ops
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


def app_runner(app: web.Application, *, shutdown_seconds: float = 20.0) -> web.AppRunner:
    """The app as `serve` runs it: no access log, and a connection closed when a complete
    request head has not arrived `REQUEST_HEAD_SECONDS` after it opened or after its previous
    response (aiohttp's keep-alive timer, which runs from the connection's opening)."""
    return web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=REQUEST_HEAD_SECONDS,
        shutdown_timeout=shutdown_seconds / 2,
    )


async def serve(settings: Settings, *, host: str, port: int) -> None:
    if settings.outbox_mode and not is_loopback_host(host):
        raise ConfigurationError(
            "development outbox mode: one-time codes are shown on a development page, so serve "
            f"listens only on loopback; configure SMTP or SMS to listen on {host}"
        )
    logs.configure(settings.log_format)
    workers = process_pool()  # issuance's key generation and PKCS#12 export, off the event loop
    try:
        core = await Core.open(settings, create_ca=True, keywork=KeyWork(workers))
    except BaseException:
        workers.shutdown(cancel_futures=True)
        raise
    if settings.outbox_mode:  # dev mode: the embedded default comes with demo customers
        loaded = await load_demo_customers(core.db, core.clock())
        log.info("demo customers loaded: %d (only into an empty directory)", loaded)
    app = create_app(core)
    runner = app_runner(app, shutdown_seconds=settings.shutdown_seconds)
    await runner.setup()
    stopped = False
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("CertDesk listening on http://%s:%d/ (data in %s)", host, port, settings.data_dir)
        for line in started_lines(host, runner.addresses[0][1], dev=settings.outbox_mode):
            print(line, flush=True)  # for the person who ran `make run`, after the log lines
        await _until_stopped()
        log.info("CertDesk stopping: no new work taken, finishing the events in hand")
        stopped = await stop_gracefully(app, runner, core.settings.shutdown_seconds)
    finally:
        if not stopped:  # an error before the stop: close what runs
            await runner.cleanup()
        await core.close()
        workers.shutdown(cancel_futures=True)


async def stop_gracefully(app: web.Application, runner: web.AppRunner, seconds: float) -> bool:
    """Refuse new work, let the channels work off what they took (half the time at most),
    then close the listener and the parts (the rest of the time); cancel what is left.
    True: the runner is cleaned up, or given up on (never cleaned up twice)."""
    ops.begin_stopping(app)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        await asyncio.wait_for(app[CHANNELS].idle(), seconds / 2)
    except TimeoutError:
        log.warning("events still running after %.0f s: closing anyway", seconds / 2)
    try:
        await asyncio.wait_for(runner.cleanup(), max(deadline - loop.time(), 0.1))
    except TimeoutError:
        log.warning("stopping took longer than %d s: the rest is cancelled", seconds)
    return True
