"""The development outbox: with no SMTP server and no SMS gateway configured, messages are kept
in the database for the development pages and the console instead of being sent.

This is what lets `certdesk serve` run with no configuration at all, and it is also why serve
then listens on loopback only (`is_loopback_host`): the outbox pages show one-time codes to
whoever can reach them.

The messages hold codes in clear (and the customers' mobiles and addresses), so the outbox
keeps them no longer than a code lives: every store forgets the expired ones in the same
transaction, `serve`'s upkeep forgets them every minute, and opening the core forgets them,
so a `certdesk chat` session or a data directory left in dev mode keeps none either.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.clock import Clock
from certcore.notify.base import Medium, OutgoingMessage, mask_destination
from certcore.storage import Database
from certcore.storage.database import inserted_id
from certcore.storage.schema import dev_outbox

log = logging.getLogger("certdesk.notify.outbox")

RECEIPT_PREFIX = "outbox-"


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    created_at: datetime
    medium: Medium
    destination: str = field(repr=False)
    subject: str
    body: str = field(repr=False)
    """Holds the one-time code: shown on the development page, never logged."""

    @property
    def receipt(self) -> str:
        return f"{RECEIPT_PREFIX}{self.id}"

    @property
    def masked_destination(self) -> str:
        return mask_destination(self.medium, self.destination)


class DevOutbox:
    """A Sender for both media that stores instead of sending (development mode only)."""

    def __init__(self, db: Database, clock: Clock, *, lifetime: timedelta) -> None:
        self.db = db
        self.clock = clock
        self.lifetime = lifetime
        """How long a message is kept: the lifetime of the code it carries."""

    def __repr__(self) -> str:
        return "DevOutbox()"

    async def send(self, message: OutgoingMessage) -> str:
        async with self.db.write() as conn:
            await _forget_before(conn, self.clock() - self.lifetime)
            result = await conn.execute(
                insert(dev_outbox).values(
                    created_at=self.clock(),
                    medium=message.medium.value,
                    destination=message.destination,
                    subject=message.subject,
                    body=message.body,
                )
            )
        receipt = f"{RECEIPT_PREFIX}{inserted_id(result)}"
        log.info(
            "development outbox: %s for %s stored, not sent",
            receipt,
            mask_destination(message.medium, message.destination),
        )
        return receipt

    async def purge(self) -> int:
        """Forget the messages whose codes have expired; how many there were."""
        return await purge_outbox(self.db, self.clock() - self.lifetime)

    async def since(self, after_id: int) -> list[OutboxEntry]:
        """Messages stored after `after_id`, oldest first (the console follows the outbox)."""
        async with self.db.read() as conn:
            return await outbox_since(conn, after_id)

    async def last_id(self) -> int:
        """The id of the newest message; 0 while the outbox is empty."""
        async with self.db.read() as conn:
            return int((await conn.execute(select(func.max(dev_outbox.c.id)))).scalar() or 0)

    async def close(self) -> None:
        """Nothing to release: the database belongs to the caller."""


async def purge_outbox(db: Database, before: datetime) -> int:
    """Forget the messages stored before `before`, in a transaction of their own; how many."""
    async with db.write() as conn:
        return await _forget_before(conn, before)


async def _forget_before(conn: AsyncConnection, before: datetime) -> int:
    result = await conn.execute(delete(dev_outbox).where(dev_outbox.c.created_at < before))
    return int(result.rowcount or 0)


async def recent_outbox(conn: AsyncConnection, limit: int = 20) -> list[OutboxEntry]:
    """The newest `limit` messages, newest first (the development page)."""
    rows = await conn.execute(select(dev_outbox).order_by(dev_outbox.c.id.desc()).limit(limit))
    return [_entry(row) for row in rows]


async def outbox_since(conn: AsyncConnection, after_id: int) -> list[OutboxEntry]:
    """Messages stored after `after_id`, oldest first (the console follows the outbox)."""
    rows = await conn.execute(
        select(dev_outbox).where(dev_outbox.c.id > after_id).order_by(dev_outbox.c.id)
    )
    return [_entry(row) for row in rows]


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 (bracketed or not) and `localhost`; anything else, `0.0.0.0` and the
    empty string (all interfaces) included, is reachable from elsewhere."""
    name = host.strip().removeprefix("[").removesuffix("]")
    if name.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _entry(row: Row[Any]) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        created_at=row.created_at,
        medium=Medium(row.medium),
        destination=row.destination,
        subject=row.subject,
        body=row.body,
    )
