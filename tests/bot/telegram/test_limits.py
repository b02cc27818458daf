"""The send limits' arithmetic on an injected clock: bursts, the per-chat and overall rates,
a 429's hold, fair queueing of concurrent senders. No wall-clock time is measured."""

from __future__ import annotations

import asyncio

import pytest

from bot.channels.telegram.lanes import Lanes, LanesClosed
from bot.channels.telegram.limits import SendLimiter


class FakeTime:
    """A clock that only moves when someone sleeps on it (or, with `advance=False`, never:
    senders that start together and wait side by side)."""

    def __init__(self, advance: bool = True) -> None:
        self.now = 1000.0
        self.advance = advance
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.advance:
            self.now += seconds


def limiter(time: FakeTime, **values: float) -> SendLimiter:
    return SendLimiter(clock=time.clock, sleep=time.sleep, **values)


async def test_one_chat_gets_a_burst_then_one_message_a_second() -> None:
    time = FakeTime()
    limits = limiter(time, per_chat_rate=1, per_chat_burst=3)
    waits = [await limits.acquire(1) for _ in range(6)]
    assert waits == [0, 0, 0, pytest.approx(1), pytest.approx(1), pytest.approx(1)]
    time.now += 10  # idle: the burst is back, never more than its size
    assert [await limits.acquire(1) for _ in range(4)] == [0, 0, 0, pytest.approx(1)]


async def test_chats_do_not_wait_for_each_other_but_share_the_overall_limit() -> None:
    time = FakeTime()
    limits = limiter(time, per_chat_rate=1, per_chat_burst=1, overall_rate=30, overall_burst=30)
    assert [await limits.acquire(chat) for chat in range(30)] == [0] * 30
    assert await limits.acquire(31) == pytest.approx(1 / 30)
    assert await limits.acquire(32) == pytest.approx(1 / 30)


async def test_a_429_holds_the_chat_for_retry_after() -> None:
    time = FakeTime()
    limits = limiter(time, per_chat_rate=1, per_chat_burst=3)
    await limits.acquire(7)
    limits.hold(7, 5)
    assert await limits.acquire(7) == pytest.approx(5)
    assert await limits.acquire(8) == 0  # another chat is not held


async def test_concurrent_senders_queue_in_arrival_order() -> None:
    time = FakeTime(advance=False)
    limits = limiter(time, per_chat_rate=2, per_chat_burst=1)
    waits = await asyncio.gather(*(limits.acquire(1) for _ in range(4)))
    # Reservations, not a race: each waits one more interval than the one before.
    assert list(waits) == [0, pytest.approx(0.5), pytest.approx(1.0), pytest.approx(1.5)]


async def test_idle_chat_buckets_are_dropped_beyond_the_bound(monkeypatch) -> None:
    import bot.channels.telegram.limits as module

    monkeypatch.setattr(module, "MAX_CHAT_BUCKETS", 10)
    time = FakeTime()
    limits = limiter(time)
    for chat in range(10):
        await limits.acquire(chat)
    time.now += 60
    await limits.acquire(99)
    assert limits.chats() == 1


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SendLimiter(per_chat_rate=0)


async def test_lanes_keep_one_chats_order_and_close_cleanly() -> None:
    lanes = Lanes()
    done: list[str] = []
    release = asyncio.Event()

    async def job(name: str, wait: bool = False) -> str:
        if wait:
            await release.wait()
        done.append(name)
        return name

    lanes.submit(1, lambda: job("a1", wait=True))
    lanes.submit(1, lambda: job("a2"))
    other = asyncio.create_task(lanes.run(2, lambda: job("b1")))
    assert await other == "b1"  # chat 2 does not wait for chat 1
    assert done == ["b1"]
    release.set()
    assert await lanes.run(1, lambda: job("a3")) == "a3"
    assert done == ["b1", "a1", "a2", "a3"]
    assert lanes.busy() == 0

    stuck = asyncio.Event()
    lanes.submit(3, stuck.wait)  # never finishes by itself
    await asyncio.sleep(0)
    await lanes.close(grace=0.01)
    assert lanes.busy() == 0
    with pytest.raises(LanesClosed):
        lanes.submit(4, lambda: job("late"))


async def test_a_chat_with_limits_of_its_own_gets_them_in_any_minute() -> None:
    time = FakeTime()
    limits = limiter(time, per_chat_rate=1, per_chat_burst=3)
    limits.limit_chat(-100, 17 / 60, 3)  # the support group: 20 in any minute
    granted = []
    for _ in range(45):
        await limits.acquire(-100)
        granted.append(time.now)
    assert max(sum(start <= at < start + 60 for at in granted) for start in granted) <= 20
    assert granted[-1] - granted[0] == pytest.approx((45 - 3) * 60 / 17)  # no slower either
    limits.limit_chat(-100, 17 / 60, 3)  # the same limits again: the bucket is kept
    assert await limits.acquire(-100) == pytest.approx(60 / 17)
    assert await limits.acquire(7) == 0  # other chats keep the per-chat limits
    with pytest.raises(ValueError):
        limits.limit_chat(-100, 0, 3)
