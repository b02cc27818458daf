"""The audit trail: append-only records, each carrying the hash of the one before.

A record is written in the same transaction as the action it records, so there is never an
issuance without its record or a record of an issuance that did not happen. Changing a record
breaks its own hash; removing one breaks the link of the next; cutting records off the end no
longer matches the head row. `verify` walks the chain and names the first record that fails.

Every action recorded is also told to whoever watches (`watch_actions`): the service's metrics
count issuances, renewals, revocations, codes sent and hand-offs from the one place that sees
them all. The watchers hear of a record when it is appended, inside its transaction: one whose
transaction then fails is counted all the same (rare: the action failed after its record).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.clock import Clock
from certcore.errors import AuditChainBroken
from certcore.storage import Database, lock_single_row
from certcore.storage.schema import audit_head, audit_log

GENESIS = "0" * 64

ActionWatcher = Callable[[str], None]
_watchers: list[ActionWatcher] = []


def watch_actions(watcher: ActionWatcher) -> Callable[[], None]:
    """Tell `watcher` the action of every record appended in this process from now on (it must
    be quick and never raise); returns the way to stop."""
    _watchers.append(watcher)
    return lambda: _watchers.remove(watcher)


@dataclass(frozen=True)
class Actor:
    """Who asked for an operation and through which channel, as the audit trail records it."""

    name: str
    channel: str


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: str
    actor: str
    channel: str
    action: str
    subject: str
    details: str
    prev_hash: str
    hash: str

    def expected_hash(self) -> str:
        return record_hash(
            self.prev_hash,
            self.seq,
            self.at,
            self.actor,
            self.channel,
            self.action,
            self.subject,
            self.details,
        )


def record_hash(prev_hash: str, seq: int, *fields: str) -> str:
    payload = json.dumps([prev_hash, seq, *fields], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class AuditTrail:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def append(
        self,
        conn: AsyncConnection,
        actor: Actor,
        *,
        action: str,
        subject: str,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Add one record inside the caller's transaction; `subject` must already be masked."""
        # The head row is locked (and created empty for the first record), so appends from
        # several transactions at once, on any backend, each get the next number and link.
        head = await lock_single_row(
            conn, audit_head, key={"id": 1}, empty={"seq": 0, "hash": GENESIS}
        )
        seq, prev_hash = int(head.seq) + 1, str(head.hash)
        at = self.clock().astimezone(UTC).isoformat(timespec="microseconds")
        details_json = json.dumps(dict(details or {}), ensure_ascii=False, sort_keys=True)
        digest = record_hash(
            prev_hash, seq, at, actor.name, actor.channel, action, subject, details_json
        )
        await conn.execute(
            insert(audit_log).values(
                seq=seq,
                at=at,
                actor=actor.name,
                channel=actor.channel,
                action=action,
                subject=subject,
                details=details_json,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        await conn.execute(
            update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest)
        )
        for watcher in _watchers:
            watcher(action)
        return seq


class AuditLog:
    """The audit trail as a service, for records that stand alone (an unlink, an operator's
    look at unmasked data) rather than inside the transaction of the action they record."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.trail = AuditTrail(clock)

    async def record(
        self,
        actor: Actor,
        *,
        action: str,
        subject: str,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one record in a transaction of its own; `subject` must already be masked."""
        async with self.db.write() as conn:
            return await self.trail.append(
                conn, actor, action=action, subject=subject, details=details
            )

    async def verify(self) -> int:
        """The number of records, or `AuditChainBroken` at the first bad one."""
        async with self.db.read() as conn:
            return await verify_chain(conn)


async def verify_chain(conn: AsyncConnection) -> int:
    """Return the number of records, or raise `AuditChainBroken` at the first bad one."""
    expected_seq, prev_hash = 1, GENESIS
    result = await conn.stream(select(audit_log).order_by(audit_log.c.seq))
    async for row in result:
        record = AuditRecord(**row._mapping)
        if record.seq != expected_seq:
            raise AuditChainBroken(
                f"record {expected_seq} is missing (the chain jumps to record {record.seq})",
                seq=expected_seq,
            )
        if record.prev_hash != prev_hash:
            raise AuditChainBroken(
                f"record {record.seq} does not link to record {record.seq - 1}", seq=record.seq
            )
        if record.hash != record.expected_hash():
            raise AuditChainBroken(
                f"record {record.seq} was altered (its hash does not match its contents)",
                seq=record.seq,
            )
        expected_seq, prev_hash = record.seq + 1, record.hash
    count = expected_seq - 1
    head = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if (head_seq, head_hash) != (count, prev_hash):
        if head_seq > count:
            raise AuditChainBroken(
                f"record {count + 1} is missing (the chain ends at {count}, "
                f"its head says {head_seq})",
                seq=count + 1,
            )
        raise AuditChainBroken(f"record {count} does not match the chain head", seq=count)
    return count
