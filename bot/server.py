"""The web server: for now the PKI endpoints relying parties use, and the upkeep they depend on.

Channels (LINE, Telegram, web chat) will be added to the same aiohttp application.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy import select

from bot.core import Core
from certcore.pki.records import CertificateRecord, RecordState
from certcore.config import Settings
from certcore.pki.crl import refresh_crl_if_due
from certcore.customers.demo import load_demo_customers
from certcore.errors import ConfigurationError
from certcore.pki.keywork import KeyWork, process_pool
from certcore.notify.outbox import is_loopback_host
from certcore.storage.schema import certificates, crl_state
from dialogs.conversation import forget_old_events

log = logging.getLogger("certdesk.server")

CORE = web.AppKey("core", Core)
UPKEEP_INTERVAL_SECONDS = 60.0
REVOCATION_POLL_SECONDS = 1.0
OCSP_REQUEST_MAX_BYTES = 16 * 1024
PREWARM_BATCH = 64

PEM_TYPE = "application/x-pem-file"
CERT_TYPE = "application/pkix-cert"
CRL_TYPE = "application/pkix-crl"
OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"


def create_app(core: Core) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[CORE] = core
    app.add_routes(
        [
            web.get("/ca.pem", ca_pem),
            web.get("/ca.cer", ca_der),
            web.get("/crl", crl),
            web.post("/ocsp", ocsp_post),
            web.get("/ocsp/{request:.+}", ocsp_get),
            web.get("/healthz", healthz),
        ]
    )
    app.cleanup_ctx.append(_upkeep)
    return app


async def ca_pem(request: web.Request) -> web.Response:
    return web.Response(body=request.app[CORE].ca.pem, content_type=PEM_TYPE)


async def ca_der(request: web.Request) -> web.Response:
    return web.Response(body=request.app[CORE].ca.der, content_type=CERT_TYPE)


async def crl(request: web.Request) -> web.Response:
    core = request.app[CORE]
    der = await refresh_crl_if_due(core.db, core.ca, core.settings, core.clock())
    return web.Response(body=der, content_type=CRL_TYPE)


async def ocsp_post(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > OCSP_REQUEST_MAX_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=OCSP_REQUEST_MAX_BYTES, actual_size=request.content_length
        )
    body = await request.content.read(OCSP_REQUEST_MAX_BYTES + 1)
    if len(body) > OCSP_REQUEST_MAX_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=OCSP_REQUEST_MAX_BYTES, actual_size=len(body))
    return await _ocsp_answer(request.app[CORE], body)


async def ocsp_get(request: web.Request) -> web.Response:
    """RFC 5019 GET: the DER request, base64 then URL-encoded, as the last path segment."""
    encoded = request.match_info["request"]
    try:
        body = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        body = b""
    return await _ocsp_answer(request.app[CORE], body)


async def _ocsp_answer(core: Core, body: bytes) -> web.Response:
    der = await core.ocsp.respond(body)
    return web.Response(body=der, content_type=OCSP_RESPONSE_TYPE)


async def healthz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    async with core.db.read() as conn:
        await conn.execute(select(1))
    return web.json_response({"status": "ok", "ca": core.ca.certificate.subject.rfc4514_string()})


async def _upkeep(app: web.Application) -> AsyncIterator[None]:
    """Recover stale pending records, keep the CRL fresh and pre-sign OCSP responses."""
    core = app[CORE]
    await _upkeep_once(core)
    tasks = [
        asyncio.create_task(_prewarm_ocsp(core)),
        asyncio.create_task(_upkeep_forever(core)),
        asyncio.create_task(_watch_revocations(core)),
    ]
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _upkeep_once(core: Core) -> None:
    abandoned = await core.service.recover_pending()
    if abandoned:
        log.warning("marked %d stale pending certificate records abandoned", len(abandoned))
    await refresh_crl_if_due(core.db, core.ca, core.settings, core.clock())
    await core.ocsp.refresh_expiring()
    erased = await core.deliveries.erase_expired()
    if erased:
        log.info("closed %d expired certificate deliveries and erased their files", erased)
    await forget_old_events(core.db, core.clock())


async def _upkeep_forever(core: Core) -> None:
    while True:
        await asyncio.sleep(UPKEEP_INTERVAL_SECONDS)
        try:
            await _upkeep_once(core)
        except Exception:  # keep serving; the next round tries again
            log.exception("upkeep failed")


async def _watch_revocations(core: Core) -> None:
    """Notice revocations made by other processes, so no stale "good" outlives a second."""
    while True:
        try:
            async with core.db.read() as conn:
                number = (
                    await conn.execute(select(crl_state.c.crl_number).where(crl_state.c.id == 1))
                ).scalar()
            if core.ocsp.observe_crl_number(number):
                log.info("CRL %s published elsewhere: OCSP responses will be re-signed", number)
        except Exception:
            log.exception("cannot read the CRL number")
        await asyncio.sleep(REVOCATION_POLL_SECONDS)


async def _prewarm_ocsp(core: Core) -> None:
    """Sign responses for every unexpired certificate, a batch at a time between requests."""
    generation = core.ocsp.generation
    async with core.db.read() as conn:
        rows = await conn.execute(
            select(certificates).where(
                certificates.c.state == RecordState.ISSUED.value,
                certificates.c.not_after > core.clock(),
            )
        )
        records = [CertificateRecord.from_row(row) for row in rows]
    for start in range(0, len(records), PREWARM_BATCH):
        if core.ocsp.generation != generation:
            return  # a revocation since the read: these records may be stale, sign lazily
        await core.ocsp.prewarm(records[start : start + PREWARM_BATCH])
        await asyncio.sleep(0)


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
    runner = web.AppRunner(create_app(core), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("CertDesk listening on http://%s:%d/ (data in %s)", host, port, settings.data_dir)
        await _until_stopped()
        log.info("CertDesk stopping")
    finally:
        await runner.cleanup()
        await core.close()
        workers.shutdown(cancel_futures=True)
