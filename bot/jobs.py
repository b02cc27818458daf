"""The scheduled jobs of a running service: the upkeep the PKI endpoints and the chats rely on.

Every minute: recover stale pending certificate records, keep the CRL fresh, re-sign OCSP
responses that near their nextUpdate, close expired certificate deliveries (erasing their
files), forget event records older than a week, web chat logs older than a month and the
development outbox's messages once their codes have expired. Every second: notice
revocations made by other processes through the CRL number, so no stale "good" outlives a
second. Every half second while the database does not answer: ask it again, which ends the
outage (new work is refused with 503 meanwhile, `bot.web.ops`). Every `reminder_sweep_seconds`:
plan the expiry reminders and send those due through the chat channels and by e-mail
(`bot.reminders`, `reminder_batch` per round). Every minute: hand back to the bot the
conversations whose agent has not replied for `handoff_timeout_minutes`, telling the customer.
With a Telegram support group, every 2 seconds: new hand-offs get their topics and the
customers' messages are copied to them (`bot.channels.telegram.support`). At start, OCSP
responses for every unexpired certificate are pre-signed a batch at a time. A failing round is
logged and the next one tries again: the service keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from aiohttp import web

from bot import metrics, reminders
from bot.channels import Channels
from bot.channels.telegram import SUPPORT, SupportGroup
from bot.web.keys import CHANNELS, CORE
from certcore.core import Core
from certcore.errors import DatabaseUnavailable
from certcore.handoff import HandoffOutcome
from certcore.storage import ChatLog
from dialogs import EventKind, Inbound

log = logging.getLogger("certdesk.jobs")

UPKEEP_INTERVAL_SECONDS = 60.0
REVOCATION_POLL_SECONDS = 1.0
PREWARM_BATCH = 64
RELAY_INTERVAL_SECONDS = 2.0
DATABASE_POLL_SECONDS = 0.5
"""While the database does not answer, how often it is asked again (new work waits for it)."""


async def running(app: web.Application) -> AsyncIterator[None]:
    """The jobs, for as long as the application runs (an aiohttp cleanup context)."""
    core = app[CORE]
    await upkeep(core)
    tasks = [
        asyncio.create_task(prewarm_ocsp(core)),
        asyncio.create_task(_every(UPKEEP_INTERVAL_SECONDS, upkeep, core)),
        asyncio.create_task(_every(REVOCATION_POLL_SECONDS, watch_revocations, core, at_once=True)),
        asyncio.create_task(_every(DATABASE_POLL_SECONDS, watch_database, core)),
        asyncio.create_task(
            _every(
                float(core.settings.reminder_sweep_seconds),
                reminder_sweeper(app[CHANNELS]),
                core,
            )
        ),
        asyncio.create_task(_every(UPKEEP_INTERVAL_SECONDS, handoff_timer(app[CHANNELS]), core)),
    ]
    if SUPPORT in app:
        tasks.append(
            asyncio.create_task(
                _every(RELAY_INTERVAL_SECONDS, support_relay(app[SUPPORT]), core, at_once=True)
            )
        )
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def upkeep(core: Core) -> None:
    abandoned = await core.certificates.recover_pending()
    if abandoned:
        log.warning("marked %d stale pending certificate records abandoned", len(abandoned))
    await core.certificates.crl()
    await core.ocsp.refresh_expiring()
    erased = await core.deliveries.erase_expired()
    if erased:
        log.info("closed %d expired certificate deliveries and erased their files", erased)
    await core.conversations.forget_old_events()
    await ChatLog(core.db, core.clock).forget_old()
    if core.outbox is not None:
        await core.outbox.purge()


def reminder_sweeper(channels: Channels) -> Callable[[Core], Awaitable[None]]:
    """The periodic reminder sweep, sending through this app's channels."""

    async def sweep_reminders(core: Core) -> None:
        done = await reminders.sweep(core, channels, core.clock())
        for result, count in (
            ("sent", len(done.sent)),
            ("emailed", len(done.emailed)),
            ("skipped", len(done.skipped)),
            ("retried", len(done.retried)),
            ("deferred", len(done.deferred)),
        ):
            if count:
                metrics.REMINDERS.labels(result).inc(count)
        if done.planned or done.sent or done.skipped or done.retried or done.deferred:
            log.info(
                "reminders: %d planned, %d sent (%d by e-mail), %d skipped, %d to retry, "
                "%d held back by a platform's limit",
                len(done.planned),
                len(done.sent),
                len(done.emailed),
                len(done.skipped),
                len(done.retried),
                len(done.deferred),
            )

    return sweep_reminders


def support_relay(support: SupportGroup) -> Callable[[Core], Awaitable[None]]:
    """The Telegram support group's relay round (`SupportGroup.relay`)."""

    async def relay_to_support_group(core: Core) -> None:
        await support.relay()

    return relay_to_support_group


def handoff_timer(channels: Channels) -> Callable[[Core], Awaitable[None]]:
    """The periodic return of hand-offs left without an agent's reply, through these channels."""

    async def time_out_handoffs(core: Core) -> None:
        await time_out_handoffs_once(core, channels)

    return time_out_handoffs


async def time_out_handoffs_once(core: Core, channels: Channels) -> int:
    """Hand back every active hand-off whose agent has been silent too long: a HANDBACK event
    (its id fixed per hand-off, so two instances doing it at once say it once) ends it in the
    queue and tells the customer. How many were handed back."""
    idle = timedelta(minutes=core.settings.handoff_timeout_minutes)
    returned = 0
    for handoff in await core.handoffs.overdue(core.clock(), idle):
        event = Inbound(
            conversation_id=handoff.conversation_id,
            event_id=f"handback:{handoff.id}:{HandoffOutcome.TIMED_OUT.value}",
            kind=EventKind.HANDBACK,
            choice=HandoffOutcome.TIMED_OUT.value,
        )
        try:
            if await channels.dispatch(event):
                returned += 1
        except Exception:  # one chat failing must not keep the others with a silent agent
            log.exception("handing back %s failed", handoff.conversation_id)
    if returned:
        log.info("handed %d silent hand-offs back to the bot", returned)
    return returned


async def watch_database(core: Core) -> None:
    """During an outage, ask the database until it answers (which ends the outage)."""
    if not core.db.reachable:
        with contextlib.suppress(DatabaseUnavailable):
            await core.db.ping()


async def watch_revocations(core: Core) -> None:
    number = await core.certificates.crl_number()
    if core.ocsp.observe_crl_number(number):
        log.info("CRL %s published elsewhere: OCSP responses will be re-signed", number)


async def prewarm_ocsp(core: Core) -> None:
    """Sign responses for every unexpired certificate, a batch at a time between requests."""
    generation = core.ocsp.generation
    records = await core.certificates.unexpired()
    for start in range(0, len(records), PREWARM_BATCH):
        if core.ocsp.generation != generation:
            return  # a revocation since the read: these records may be stale, sign lazily
        await core.ocsp.prewarm(records[start : start + PREWARM_BATCH])
        await asyncio.sleep(0)


async def _every(
    seconds: float, job: Callable[[Core], Awaitable[None]], core: Core, *, at_once: bool = False
) -> None:
    """Run `job` every `seconds` (first at once, or after the first interval)."""
    if not at_once:
        await asyncio.sleep(seconds)
    while True:
        try:
            await job(core)
        except DatabaseUnavailable:  # said once when noticed; the next round tries again
            log.debug("%s waits for the database", job.__name__)
        except Exception:  # keep serving; the next round tries again
            log.exception("%s failed", job.__name__)
        await asyncio.sleep(seconds)
