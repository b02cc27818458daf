"""Long polling (`getUpdates`), for a server Telegram cannot reach: a laptop, a dev box.

Telegram delivers webhooks only to https, so without an https `public_url` the bot asks for
its updates instead: `deleteWebhook` once (getUpdates is refused while a webhook is set), then
`getUpdates` with the next offset and a long-poll timeout, each update handed to the channel
as the webhook would. An error (the network, a 5xx, a 409 from a second poller, a 429) is
logged and the poll tried again after a backoff that grows to a bound and resets on success,
so the loop outlives any outage. `stop` ends the loop and confirms the offset with one last
short call, so updates already taken are not delivered again to the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from telegram.error import RetryAfter, TelegramError

from bot.channels.telegram.adapter import ALLOWED_UPDATES, TelegramChannel, retry_after_seconds
from bot.channels.telegram.lanes import LanesClosed

log = logging.getLogger("certdesk.telegram")

POLL_TIMEOUT = 30
"""Seconds Telegram holds a getUpdates open when there is nothing to deliver."""
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
CONFIRM_TIMEOUT = 5.0


class Backoff:
    """Delays that double from `base` to `cap`; `reset` after a success."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        delay: float = min(self.cap, self.base * 2.0**self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class Poller:
    def __init__(
        self,
        channel: TelegramChannel,
        *,
        timeout: int = POLL_TIMEOUT,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.channel = channel
        self.timeout = timeout
        self.backoff = backoff or Backoff(BACKOFF_BASE, BACKOFF_CAP)
        self.sleep = sleep
        self.offset: int | None = None
        self.polls = 0
        """getUpdates answered so far (tests wait on it)."""

    async def run(self) -> None:
        """Poll until cancelled."""
        bot = self.channel.bot
        while True:
            try:
                updates = await bot.get_updates(
                    offset=self.offset,
                    timeout=self.timeout,
                    allowed_updates=list(ALLOWED_UPDATES),
                )
            except RetryAfter as error:
                await self.sleep(retry_after_seconds(error))
                continue
            except Exception as error:  # TelegramError, or an update PTB could not read
                delay = self.backoff.next()
                log.warning(
                    "Telegram getUpdates failed (%s); again in %.1f s",
                    self.channel.describe(error),
                    delay,
                )
                await self.sleep(delay)
                continue
            self.backoff.reset()
            self.polls += 1
            for update in updates:
                self.offset = max(self.offset or 0, update.update_id + 1)
                try:
                    self.channel.accept(update)
                except LanesClosed:
                    return

    async def confirm(self) -> None:
        """Tell Telegram the updates before `offset` were taken (one short call, errors
        ignored: at worst they come again, and the engine answers them from its record)."""
        if self.offset is None:
            return
        with contextlib.suppress(TelegramError, TimeoutError):
            await asyncio.wait_for(
                self.channel.bot.get_updates(offset=self.offset, limit=1, timeout=0),
                CONFIRM_TIMEOUT,
            )
