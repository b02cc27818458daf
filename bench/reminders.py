"""Expiry-reminder benchmark: the planner's selection among 1,000,000 certificates against its
floor, and the reminders a second the sweep sends through the fake LINE and Telegram servers.

One run prints the machine, then

1. selection: 1,000,000 certificates seeded in a temporary SQLite database (not_after spread
   evenly over two years, a twentieth revoked, a fiftieth renewed: the old one revoked as
   superseded, a newer one beside it), then the time of `ReminderPlanner`'s selection of the
   certificates due at a milestone (the query `plan` runs: issued, unrevoked, within the
   milestone, no reminder yet, no newer valid certificate of the customer), against the floor:
   the plain indexed query `SELECT serial FROM certificates WHERE state='issued' AND not_after
   BETWEEN ? AND ?` over the same range, measured in the same run (target: ≤ 1 s);
2. sending: reminders a second that `bot.reminders.sweep` pushes through the real channel
   adapters to the fake LINE API (`tests.fakes.line_api`, LINE allows 2,000 push requests a
   second) and the fake Bot API (`tests.fakes.telegram_api`, with the channel's own send
   limiter: about 30 messages a second to different chats), each against its floor: raw POSTs of
   the same pushes to the same fake server from one aiohttp session, in the same run;

then the same tables in Markdown, for the README.

    .venv/bin/python -m bench.reminders [--quick] [--certificates N] [--reminders N]

Everything happens in a temporary directory removed at the end; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import insert, select

from bench.issuance import CpuWitness, Table, machine_rows
from bot.channels import Channels
from bot.channels.line import LineChannel
from bot.channels.line.api import LineApi
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram.client import make_bot
from bot.reminders import sweep
from certcore.clock import TAIPEI, FrozenClock
from certcore.config import load_settings
from certcore.core import Core
from certcore.pki import RecordState
from certcore.reminders import ReminderPlanner
from certcore.storage import Database
from certcore.storage.schema import certificates, conversations
from dialogs import engine_for
from dialogs.conversation import Conversation
from tests.fakes.line_api import SECRET as LINE_SECRET
from tests.fakes.line_api import TOKEN as LINE_TOKEN
from tests.fakes.line_api import FakeLineApi
from tests.fakes.telegram_api import TOKEN as TG_TOKEN
from tests.fakes.telegram_api import FakeTelegramApi

CHUNK = 50_000
"""Rows a statement inserts: one executemany, all of them in one transaction."""
NOW = datetime(2027, 3, 1, 10, 0, tzinfo=TAIPEI)
"""The benchmark's "now": a Monday morning, outside the quiet hours."""
DER = b"\x30\x00"
"""Stands in for a certificate's DER: the planner and the sweep never read it."""
FINGERPRINT = "0" * 64


def customer_id(n: int) -> str:
    """A made-up customer id (`Z` and nine digits: never the shape of a real ID number)."""
    return f"Z{n:09d}"


def serial(n: int) -> str:
    return f"{n:040X}"


def _certificate(n: int, customer: str, not_after: datetime, revoked: bool) -> dict[str, Any]:
    not_before = not_after - timedelta(days=365)
    return {
        "serial": serial(n),
        "customer_id": customer,
        "state": RecordState.ISSUED.value,
        "not_before": not_before,
        "not_after": not_after,
        "public_key_sha256": FINGERPRINT,
        "der": DER,
        "renewal_of": None,
        "created_at": not_before,
        "issued_at": not_before,
        "revoked_at": not_before + timedelta(days=30) if revoked else None,
        "revoked_reason": "superseded" if revoked else None,
    }


async def seed_certificates(db: Database, count: int, now: datetime, *, seed: int = 11) -> int:
    """`count` certificates, not_after spread evenly over two years around `now` (half a year
    back, a year and a half ahead): a twentieth revoked, a fiftieth renewed (the old one
    revoked, a newer one for the same customer). Returns the rows written."""
    rng = random.Random(seed)
    start = now - timedelta(days=182)
    span = int(timedelta(days=730).total_seconds())
    rows: list[dict[str, Any]] = []
    written = 0
    async with db.write() as conn:
        n = 0
        while n < count:
            customer = customer_id(n)
            not_after = start + timedelta(seconds=rng.randrange(span))
            roll = rng.random()
            if roll < 0.02 and n + 1 < count:  # renewed: superseded, and its successor
                rows.append(_certificate(n, customer, not_after, revoked=True))
                renewed = not_after + timedelta(days=365 - rng.randrange(30))
                rows.append(_certificate(n + 1, customer, renewed, revoked=False))
                n += 2
            else:
                rows.append(_certificate(n, customer, not_after, revoked=roll < 0.07))
                n += 1
            if len(rows) >= CHUNK:
                await conn.execute(insert(certificates), rows)
                written += len(rows)
                rows = []
        if rows:
            await conn.execute(insert(certificates), rows)
            written += len(rows)
    return written


async def seed_backlog(db: Database, count: int, now: datetime, *, channel: str) -> list[str]:
    """`count` customers, each with one certificate at its 30-day milestone at `now` (expiring
    within 8 to 29 days) and one chat on `channel` linked to them; the chats' ids."""
    chats: list[str] = []
    async with db.write() as conn:
        for first in range(0, count, CHUNK):
            numbers = range(first, min(first + CHUNK, count))
            await conn.execute(
                insert(certificates),
                [
                    _certificate(
                        n,
                        customer_id(n),
                        now + timedelta(days=8, seconds=(n * 7919) % (21 * 86_400)),
                        revoked=False,
                    )
                    for n in numbers
                ],
            )
            rows = []
            for n in numbers:
                chat = f"{channel}:{n + 1}"
                state = Conversation(
                    chat, locale="zh_TW", customer_id=customer_id(n), last_activity_at=now
                ).state_values()
                rows.append({"id": chat, **state, "version": 1, "created_at": now})
                chats.append(chat)
            await conn.execute(insert(conversations), rows)
    return chats


# -- 1. selection ----------------------------------------------------------------------------


def _median_seconds(samples: list[float]) -> float:
    return statistics.median(samples)


async def _timed(runs: int, job: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    """The median wall time of `runs` runs of `job` (after one warm-up), and its result."""
    found = await job()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        found = await job()
        samples.append(time.perf_counter() - started)
    return _median_seconds(samples), found


async def selection(folder: Path, count: int, batch: int, runs: int) -> Table:
    db = Database(f"sqlite+aiosqlite:///{folder / 'selection.sqlite3'}")
    try:
        await db.migrate()
        started = time.perf_counter()
        written = await seed_certificates(db, count, NOW)
        seeded = time.perf_counter() - started
        settings = load_settings(environ={}, data_dir=folder)
        planner = ReminderPlanner(db, settings, FrozenClock(NOW))
        furthest = max(settings.reminder_milestones)
        whole = NOW.replace(microsecond=0)

        async def floor() -> int:
            async with db.read() as conn:
                rows = await conn.execute(
                    select(certificates.c.serial).where(
                        certificates.c.state == RecordState.ISSUED.value,
                        certificates.c.not_after.between(whole, whole + timedelta(days=furthest)),
                    )
                )
                return len(rows.all())

        async def selected(limit: int) -> int:
            async with db.read() as conn:
                found = 0
                for days in settings.reminder_milestones:  # as `plan` goes: furthest first
                    if found < limit:
                        found += len(await planner._reaching(conn, NOW, days, limit - found))
                return found

        async def all_due() -> int:
            return await selected(count)

        async def one_batch() -> int:
            return await selected(batch)

        async def plan_batch() -> int:
            async with db.write() as conn:
                savepoint = await conn.begin_nested()
                try:
                    return len(await planner._plan(conn, NOW, batch))
                finally:
                    await savepoint.rollback()

        floor_s, floor_n = await _timed(runs, floor)
        all_s, all_n = await _timed(runs, all_due)
        batch_s, batch_n = await _timed(runs, one_batch)
        plan_s, plan_n = await _timed(runs, plan_batch)
    finally:
        await db.close()
    ms = lambda seconds: f"{seconds * 1000:.1f}"  # noqa: E731
    ratio = lambda seconds: f"{seconds / floor_s:.2f}×"  # noqa: E731
    return Table(
        f"Selecting the due certificates among {written:,} (SQLite, median of {runs} runs)",
        ["Query", "Rows", "Time (ms)", "× floor", "Target ≤ 1 s"],
        [
            [
                "floor: plain indexed range (state='issued', not_after BETWEEN now and now+"
                f"{furthest} d)",
                f"{floor_n:,}",
                ms(floor_s),
                "1.00×",
                verdict(floor_s <= 1.0),
            ],
            [
                "planner selection, every due certificate (all milestones)",
                f"{all_n:,}",
                ms(all_s),
                ratio(all_s),
                verdict(all_s <= 1.0),
            ],
            [
                f"planner selection, one sweep's batch ({batch})",
                f"{batch_n:,}",
                ms(batch_s),
                ratio(batch_s),
                verdict(batch_s <= 1.0),
            ],
            [
                f"plan(): selection and recording of one batch ({batch})",
                f"{plan_n:,}",
                ms(plan_s),
                ratio(plan_s),
                verdict(plan_s <= 1.0),
            ],
        ],
        notes=[
            f"seeded in {seeded:.1f} s (executemany, one transaction): not_after spread over two "
            "years, 1/20 revoked, 1/50 renewed (superseded + successor)",
            "the planner's selection adds, per row, the checks the floor leaves out: no reminder "
            "yet for the milestone, no newer valid certificate of the customer",
        ],
        numeric=True,
    )


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


# -- 2. sending ------------------------------------------------------------------------------


async def _open_core(folder: Path, fake_line: FakeLineApi, fake_tg: FakeTelegramApi) -> Core:
    settings = load_settings(
        environ={},
        data_dir=folder,
        line_channel_secret=LINE_SECRET,
        line_channel_access_token=LINE_TOKEN,
        line_api_base=fake_line.base_url,
        telegram_bot_token=TG_TOKEN,
        telegram_webhook_secret="bench-webhook-secret_0123456789",
        telegram_api_base=fake_tg.base_url,
        public_url="https://certdesk.example",
    )
    return await Core.open(settings, clock=FrozenClock(NOW), create_ca=True, environ={})


async def _raw_floor(url: str, bodies: list[dict[str, Any]], headers: dict[str, str]) -> float:
    """Seconds to POST the bodies one after another from one session (the sweep's own pace:
    one reminder at a time)."""
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        for body in bodies:
            async with session.post(url, json=body, headers=headers) as response:
                await response.read()
        return time.perf_counter() - started


async def sending(folder: Path, line_count: int, telegram_count: int) -> Table:
    fake_line, fake_tg = FakeLineApi(), FakeTelegramApi()
    await fake_line.start()
    await fake_tg.start()
    rows: list[list[str]] = []
    try:
        # LINE
        core = await _open_core(folder / "line", fake_line, fake_tg)
        try:
            engine = engine_for(core)
            hub = Channels(engine)
            line = LineChannel(engine, LineApi(core.settings))
            hub.add(line)
            await seed_backlog(core.db, line_count, NOW, channel="line")
            await core.reminders.plan(NOW, line_count)
            started = time.perf_counter()
            done = await sweep(core, hub, NOW, batch=line_count)
            line_s = time.perf_counter() - started
            line_sent = len(done.sent)
            await line.api.close()
        finally:
            await core.close()
        pushes = [r.body for r in fake_line.requests if r.path == "/v2/bot/message/push"]
        line_floor = await _raw_floor(
            f"{fake_line.base_url}/v2/bot/message/push",
            [{**body, "to": f"floor-{n}"} for n, body in enumerate(pushes)],
            {"Authorization": f"Bearer {LINE_TOKEN}"},
        )
        rows.append(
            [
                "LINE push (fake LINE API)",
                f"{line_sent:,}",
                f"{line_sent / line_s:,.0f}",
                f"{len(pushes) / line_floor:,.0f}",
                f"{line_sent / line_s / (len(pushes) / line_floor):.2f}",
                "2,000 requests/s",
            ]
        )

        # Telegram, with the channel's own limiter (about 30 messages a second overall)
        core = await _open_core(folder / "telegram", fake_line, fake_tg)
        try:
            engine = engine_for(core)
            hub = Channels(engine)
            telegram = TelegramChannel(core, engine, make_bot(core.settings))
            hub.add(telegram)
            chats = await seed_backlog(core.db, telegram_count, NOW, channel="telegram")
            for chat in chats:
                fake_tg.chat(int(chat.partition(":")[2]))
            await core.reminders.plan(NOW, telegram_count)
            started = time.perf_counter()
            done = await sweep(core, hub, NOW, batch=telegram_count)
            await telegram.idle()
            tg_s = time.perf_counter() - started
            tg_sent = len(done.sent)
            await telegram.close()
        finally:
            await core.close()
        sends = fake_tg.called("sendMessage")
        tg_floor = await _raw_floor(
            f"{fake_tg.base_url}/bot{TG_TOKEN}/sendMessage",
            [dict(call.params) for call in sends],
            {},
        )
        per_reminder = len(sends) / max(tg_sent, 1)
        rows.append(
            [
                f"Telegram sendMessage (fake Bot API; {per_reminder:.0f} messages a reminder)",
                f"{tg_sent:,}",
                f"{tg_sent / tg_s:,.1f}",
                f"{len(sends) / tg_floor / per_reminder:,.0f}",
                f"{tg_sent / tg_s / (len(sends) / tg_floor / per_reminder):.2f}",
                f"30 messages/s = {30 / per_reminder:.0f} reminders/s",
            ]
        )
    finally:
        await fake_tg.close()
        await fake_line.close()
    return Table(
        "Reminders sent per second by the sweep, against the raw POST rate to the same fake server",
        ["Route", "Reminders", "Sweep (reminders/s)", "Floor (reminders/s)", "÷ floor", "Limit"],
        rows,
        notes=[
            "sweep: plan done beforehand; claim, REMIND through the engine (recorded), render, "
            "push, outcome recorded; one reminder at a time",
            "floor: the same request bodies POSTed one after another from one aiohttp session, "
            "no database, no engine",
            "Telegram is paced by the channel's SendLimiter (30 messages/s overall, a burst of 30 "
            "at first); the floor is not",
        ],
    )


# -- the run -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--certificates", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--line-reminders", type=int, default=2_000)
    parser.add_argument("--telegram-reminders", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args(argv)
    if options.quick:
        options.certificates = min(options.certificates, 20_000)
        options.line_reminders = min(options.line_reminders, 50)
        options.telegram_reminders = min(options.telegram_reminders, 20)
        options.runs = min(options.runs, 2)
    return options


async def run(options: argparse.Namespace) -> list[Table]:
    with tempfile.TemporaryDirectory(prefix="certdesk-bench-reminders-") as name:
        folder = Path(name)
        tables = [await selection(folder, options.certificates, options.batch, options.runs)]
        tables.append(await sending(folder, options.line_reminders, options.telegram_reminders))
        return tables


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    print("Machine")
    for key, value in machine_rows():
        print(f"  {key}: {value}")
    before = ", ".join(f"{load:.2f}" for load in os.getloadavg())
    print(f"  Load average before the run: {before}")
    witness = CpuWitness()
    tables = asyncio.run(run(options))
    others = witness.others_share()
    if others is not None:
        print(f"  Other processes' share of the CPUs during the run: {others:.0%}")
    for table in tables:
        print()
        print(table.text())
    print("\nMarkdown:\n")
    for table in tables:
        print(table.markdown())
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
