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
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bench.issuance import Table, machine_rows
from certcore.clock import TAIPEI
from certcore.pki import RecordState
from certcore.storage import Database
from certcore.storage.schema import certificates, conversations

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
    from dialogs.conversation import Conversation  # the bench's only use of the dialogs layer

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


async def count_rows(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(certificates))).scalar())
