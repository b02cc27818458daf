"""Telegram's send limits, kept on our side so the Bot API rarely has to say 429.

Telegram asks bots to stay near one message a second in one chat (short bursts are tolerated)
and about thirty a second overall, and answers anything faster with 429 and a `retry_after`.
`SendLimiter` is two token buckets deep: every send takes a token from its chat's bucket, then
one from the overall bucket, waiting until one is due. Tokens are reserved in arrival order (a
bucket may go below zero), so concurrent senders queue fairly instead of racing on a retry. A
429's `retry_after` holds the chat's bucket for that long. A chat may have limits of its own
(`limit_chat`): the support group, where Telegram allows about twenty messages a minute, so
every topic there draws on one shared budget.

Time is injected (`clock`, `sleep`), so the arithmetic is tested with a fake clock instead of
measured on the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

PER_CHAT_RATE = 1.0
"""Messages a second in one chat, over time."""
PER_CHAT_BURST = 3.0
"""Messages one chat may get at once (a reply is often a text and a question)."""
OVERALL_RATE = 30.0
OVERALL_BURST = 30.0
MAX_CHAT_BUCKETS = 10_000
"""Idle (full) chat buckets are dropped beyond this many, so memory stays bounded."""


@dataclass
class TokenBucket:
    rate: float
    capacity: float
    tokens: float
    updated: float
    held_until: float = 0.0

    def reserve(self, now: float) -> float:
        """Take one token; how long to wait until it is due (0 when at once)."""
        self._refill(now)
        self.tokens -= 1.0
        wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
        return max(wait, self.held_until - now)

    def hold(self, now: float, seconds: float) -> None:
        """Nothing is due before `now + seconds` (a 429's `retry_after`)."""
        self.held_until = max(self.held_until, now + seconds)

    def idle(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.capacity and self.held_until <= now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now


class SendLimiter:
    def __init__(
        self,
        *,
        per_chat_rate: float = PER_CHAT_RATE,
        per_chat_burst: float = PER_CHAT_BURST,
        overall_rate: float = OVERALL_RATE,
        overall_burst: float = OVERALL_BURST,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if min(per_chat_rate, per_chat_burst, overall_rate, overall_burst) <= 0:
            raise ValueError("rates and bursts must be positive")
        self.per_chat_rate = per_chat_rate
        self.per_chat_burst = per_chat_burst
        self.clock = clock
        self.sleep = sleep
        now = clock()
        self.overall = TokenBucket(overall_rate, overall_burst, overall_burst, now)
        self._chats: dict[int, TokenBucket] = {}
        self._own: dict[int, tuple[float, float]] = {}
        """Chats with limits of their own: (rate a second, burst)."""

    def limit_chat(self, chat_id: int, rate: float, burst: float) -> None:
        """This chat's own rate (messages a second) and burst instead of the per-chat ones
        (called again with the same values, nothing changes)."""
        if min(rate, burst) <= 0:
            raise ValueError("rates and bursts must be positive")
        if self._own.get(chat_id) == (rate, burst):
            return
        self._own[chat_id] = (rate, burst)
        self._chats.pop(chat_id, None)

    def _bucket(self, chat_id: int, now: float) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) >= MAX_CHAT_BUCKETS:
                self._chats = {k: b for k, b in self._chats.items() if not b.idle(now)}
            rate, burst = self._own.get(chat_id, (self.per_chat_rate, self.per_chat_burst))
            bucket = TokenBucket(rate, burst, burst, now)
            self._chats[chat_id] = bucket
        return bucket

    async def acquire(self, chat_id: int) -> float:
        """Wait until one more message to this chat is within both limits; returns the time
        waited (by the limiter's clock)."""
        waited = 0.0
        wait = self._bucket(chat_id, self.clock()).reserve(self.clock())
        if wait > 0:
            await self.sleep(wait)
            waited += wait
        wait = self.overall.reserve(self.clock())
        if wait > 0:
            await self.sleep(wait)
            waited += wait
        return waited

    def hold(self, chat_id: int, seconds: float) -> None:
        """Telegram said 429 with `retry_after` for this chat: nothing more to it until then."""
        now = self.clock()
        self._bucket(chat_id, now).hold(now, seconds)

    def chats(self) -> int:
        return len(self._chats)
