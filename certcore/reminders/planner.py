"""The reminder outbox: plan each (certificate, milestone) once, list what is due, record how
it went.

Planning decides and records in one transaction, and the row's key is the certificate and the
milestone: a second planner running at the same moment (another instance, a cron sweep beside
`serve`) inserts the same key, which the database ignores (INSERT … ON CONFLICT DO NOTHING on
SQLite and PostgreSQL alike), so nothing is ever planned twice, across restarts and crashes
included. Sending is the caller's business: it `claim`s the due reminders it will send (a
second sender running at the same moment gets others, or none) and reports each outcome with
`mark`. A claim is a lease: a claim never concluded (the sender crashed mid-send) is handed out
again after `CLAIM_LEASE`, with its reason still `CLAIMED`, so the next sender knows that an
attempt may have gone out and can avoid showing it twice where the platform cannot tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, and_, bindparam, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from certcore.clock import Clock
from certcore.config import Settings
from certcore.errors import InvalidInput
from certcore.pki import RecordState
from certcore.reminders.rules import QuietHours, reached_milestone
from certcore.storage.database import Database
from certcore.storage.schema import certificates, reminder_outbox

REASON_MAX = 64
KEYS_PER_QUERY = 500
"""Serials one query asks about: well under SQLite's limit of bound parameters."""
CLAIMED = "sending"
"""The reason of a pending reminder a sender has claimed and not yet concluded."""
CLAIM_LEASE = timedelta(minutes=10)
"""How long a claim holds: well beyond one sweep's sending, short enough that a crash delays a
reminder by minutes, not hours."""


_OLDEST_FIRST = (
    reminder_outbox.c.send_after,
    reminder_outbox.c.planned_at,
    reminder_outbox.c.serial,
    reminder_outbox.c.milestone_days,
)


class ReminderState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Outcome:
    """One attempt's outcome, to be recorded (`ReminderPlanner.record`)."""

    serial: str
    milestone_days: int
    state: ReminderState
    reason: str | None = None
    count: bool = True
    """False for an attempt that never began (a platform's rate limit): not one of the tries."""


@dataclass(frozen=True)
class Reminder:
    serial: str
    milestone_days: int
    customer_id: str
    planned_at: datetime
    send_after: datetime
    state: ReminderState
    reason: str | None
    attempts: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[*tuple[Any, ...]]) -> Reminder:
        values = dict(row._mapping)
        values["state"] = ReminderState(values["state"])
        return cls(**values)


class ReminderPlanner:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.milestones = settings.reminder_milestones
        self.quiet = QuietHours(*settings.reminder_quiet_hours)

    async def plan(self, now: datetime, limit: int) -> list[Reminder]:
        """Record a pending reminder for at most `limit` certificates that have reached a
        milestone at `now` and have none for it yet; the rows this call created."""
        async with self.db.write() as conn:
            return await self._plan(conn, now, limit)

    async def preview(self, now: datetime, limit: int) -> tuple[list[Reminder], list[Reminder]]:
        """What `plan` would record at `now` and what `due` would then list, with nothing
        recorded: planned inside a savepoint that is rolled back (a day to come, shown)."""
        async with self.db.write() as conn:
            savepoint = await conn.begin_nested()
            try:
                planned = await self._plan(conn, now, limit)
                due = await self._due(conn, now, limit)
            finally:
                await savepoint.rollback()
        return planned, due

    async def _plan(self, conn: AsyncConnection, now: datetime, limit: int) -> list[Reminder]:
        planned: list[Reminder] = []
        for days in self.milestones:
            if len(planned) >= limit:
                break
            reaching = [
                Reminder(
                    serial=serial,
                    milestone_days=days,
                    customer_id=customer_id,
                    planned_at=now,
                    send_after=self.quiet.next_send(now),
                    state=ReminderState.PENDING,
                    reason=None,
                    attempts=0,
                    updated_at=now,
                )
                for serial, customer_id, not_after in await self._reaching(
                    conn, now, days, limit - len(planned)
                )
                # The SQL chose by the same bounds; the rule has the last word.
                if reached_milestone(
                    not_after=not_after, revoked=False, now=now, milestones=self.milestones
                )
                == days
            ]
            planned += await self._insert_new(conn, reaching)
        return planned

    async def _reaching(
        self, conn: AsyncConnection, now: datetime, days: int, limit: int
    ) -> list[tuple[str, str, datetime]]:
        """Issued, unrevoked, unexpired certificates whose latest milestone at `now` is `days`,
        without a reminder for it, and whose customer holds no newer valid certificate."""
        whole = now.replace(microsecond=0)
        nearer = [d for d in self.milestones if d < days]
        newer = certificates.alias("newer")
        query = (
            select(certificates.c.serial, certificates.c.customer_id, certificates.c.not_after)
            .where(
                certificates.c.state == RecordState.ISSUED.value,
                certificates.c.revoked_at.is_(None),
                certificates.c.not_after >= whole,
                certificates.c.not_after <= whole + timedelta(days=days),
                ~exists().where(
                    reminder_outbox.c.serial == certificates.c.serial,
                    reminder_outbox.c.milestone_days == days,
                ),
                ~exists().where(
                    newer.c.customer_id == certificates.c.customer_id,
                    # `|| ''` keeps the database on the customer's index: on the expiry index
                    # (state, not_after) this probe would read every later certificate, and the
                    # selection among a million would take minutes instead of milliseconds.
                    newer.c.state.concat("") == RecordState.ISSUED.value,
                    newer.c.revoked_at.is_(None),
                    newer.c.not_after > certificates.c.not_after,
                ),
            )
            .order_by(certificates.c.not_after, certificates.c.serial)
            .limit(limit)
        )
        if nearer:  # past a nearer milestone, the nearer one is the latest
            query = query.where(certificates.c.not_after > whole + timedelta(days=max(nearer)))
        rows = await conn.execute(query)
        return [(row.serial, row.customer_id, row.not_after) for row in rows]

    async def _insert_new(
        self, conn: AsyncConnection, reminders: Sequence[Reminder]
    ) -> list[Reminder]:
        """Insert the rows whose (serial, milestone) does not exist yet, in one executemany;
        the reminders this call inserted (RETURNING tells, on either database)."""
        if not reminders:
            return []
        statement: Insert
        if self.db.is_sqlite:
            statement = sqlite.insert(reminder_outbox).on_conflict_do_nothing()
        else:
            statement = postgresql.insert(reminder_outbox).on_conflict_do_nothing()
        rows = await conn.execute(
            statement.returning(reminder_outbox.c.serial, reminder_outbox.c.milestone_days),
            [{**reminder.__dict__, "state": reminder.state.value} for reminder in reminders],
        )
        inserted = {(row.serial, row.milestone_days) for row in rows}
        return [r for r in reminders if (r.serial, r.milestone_days) in inserted]

    async def due(self, now: datetime, limit: int) -> list[Reminder]:
        """Pending reminders whose send time has come, oldest first, at most `limit`."""
        async with self.db.read() as conn:
            return await self._due(conn, now, limit)

    async def _due(self, conn: AsyncConnection, now: datetime, limit: int) -> list[Reminder]:
        rows = await conn.execute(
            select(reminder_outbox)
            .where(
                reminder_outbox.c.state == ReminderState.PENDING.value,
                reminder_outbox.c.send_after <= now,
            )
            .order_by(*_OLDEST_FIRST)
            .limit(limit)
        )
        return [Reminder.from_row(row) for row in rows]

    async def claim(
        self, now: datetime, limit: int, *, lease: timedelta = CLAIM_LEASE
    ) -> list[Reminder]:
        """Take at most `limit` due reminders to send, oldest first: pending, their send time
        come, and not claimed by another sender within `lease`. Each comes back as it was
        before this claim: a reason of `CLAIMED` means an earlier claim was never concluded."""
        due = and_(
            reminder_outbox.c.state == ReminderState.PENDING.value,
            reminder_outbox.c.send_after <= now,
        )
        free = or_(
            reminder_outbox.c.reason.is_(None),
            reminder_outbox.c.reason != CLAIMED,
            reminder_outbox.c.updated_at <= now - lease,
        )
        async with self.db.write() as conn:
            rows = await conn.execute(
                select(reminder_outbox).where(due, free).order_by(*_OLDEST_FIRST).limit(limit)
            )
            claimed = [Reminder.from_row(row) for row in rows]
            if claimed:
                await conn.execute(
                    update(reminder_outbox)
                    .where(
                        reminder_outbox.c.serial == bindparam("b_serial"),
                        reminder_outbox.c.milestone_days == bindparam("b_days"),
                    )
                    .values(reason=CLAIMED, updated_at=now),
                    [{"b_serial": r.serial, "b_days": r.milestone_days} for r in claimed],
                )
        return claimed

    async def mark(
        self,
        serial: str,
        milestone: int,
        state: ReminderState,
        reason: str | None = None,
        *,
        count: bool = True,
    ) -> None:
        """Record one attempt's outcome: `sent`, `skipped` (with its reason) or, after a
        failure to be retried, `pending` again; `count=False` for an attempt that never began
        (a platform's rate limit), which does not count towards the sender's tries. Only a
        pending reminder can be marked."""
        outcome = Outcome(serial, milestone, state, reason, count)
        if await self.record([outcome]):
            raise InvalidInput(f"no pending reminder for {serial} at {milestone} days")

    async def record(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """Record several attempts' outcomes (as `mark`) in one transaction; those that found
        no pending reminder (another sender concluded it meanwhile) come back, not recorded."""
        for outcome in outcomes:
            if outcome.state is ReminderState.SKIPPED and not outcome.reason:
                raise InvalidInput("a skipped reminder needs its reason")
            if outcome.reason is not None and len(outcome.reason) > REASON_MAX:
                raise InvalidInput(f"a reminder's reason is at most {REASON_MAX} characters")
        missed: list[Outcome] = []
        if not outcomes:
            return missed
        keys = {(o.serial, o.milestone_days) for o in outcomes}
        serials = sorted({serial for serial, _ in keys})
        async with self.db.write() as conn:
            pending: set[tuple[str, int]] = set()
            for start in range(0, len(serials), KEYS_PER_QUERY):
                # By serial alone, on the primary key: with the state in the query the database
                # would walk the (state, send_after) index through every pending reminder.
                rows = await conn.execute(
                    select(
                        reminder_outbox.c.serial,
                        reminder_outbox.c.milestone_days,
                        reminder_outbox.c.state,
                    )
                    .where(reminder_outbox.c.serial.in_(serials[start : start + KEYS_PER_QUERY]))
                    .with_for_update()
                )
                pending.update(
                    (row.serial, row.milestone_days)
                    for row in rows
                    if row.state == ReminderState.PENDING.value
                    and (row.serial, row.milestone_days) in keys
                )
            now = self.clock()
            applied = [o for o in outcomes if (o.serial, o.milestone_days) in pending]
            missed = [o for o in outcomes if (o.serial, o.milestone_days) not in pending]
            if applied:
                await conn.execute(
                    update(reminder_outbox)
                    .where(
                        reminder_outbox.c.serial == bindparam("b_serial"),
                        reminder_outbox.c.milestone_days == bindparam("b_days"),
                        reminder_outbox.c.state == ReminderState.PENDING.value,
                    )
                    .values(
                        state=bindparam("b_state"),
                        reason=bindparam("b_reason"),
                        attempts=reminder_outbox.c.attempts + bindparam("b_add"),
                        updated_at=now,
                    ),
                    [
                        {
                            "b_serial": o.serial,
                            "b_days": o.milestone_days,
                            "b_state": o.state.value,
                            "b_reason": o.reason,
                            "b_add": 1 if o.count else 0,
                        }
                        for o in applied
                    ],
                )
        return missed
        async with self.db.write() as conn:
            now = self.clock()
            for outcome in outcomes:
                result = await conn.execute(
                    update(reminder_outbox)
                    .where(
                        and_(
                            reminder_outbox.c.serial == outcome.serial,
                            reminder_outbox.c.milestone_days == outcome.milestone_days,
                            reminder_outbox.c.state == ReminderState.PENDING.value,
                        )
                    )
                    .values(
                        state=outcome.state.value,
                        reason=outcome.reason,
                        attempts=reminder_outbox.c.attempts + (1 if outcome.count else 0),
                        updated_at=now,
                    )
                )
                if result.rowcount != 1:
                    missed.append(outcome)
        return missed

    async def listing(self) -> list[Reminder]:
        """Every reminder, sent, pending or skipped, oldest plan first (for the operator)."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(reminder_outbox).order_by(
                    reminder_outbox.c.planned_at,
                    reminder_outbox.c.serial,
                    reminder_outbox.c.milestone_days,
                )
            )
            return [Reminder.from_row(row) for row in rows]
