"""The identity check of the manual's step 一.3: ID number and ROC birth (or registration) date.

The answer never says which of the two was wrong, and an unknown ID takes the same path (the
same queries, the same lock bookkeeping, the same audit record) as a wrong date, so neither the
reply nor its timing tells an outsider whether an ID is a customer. Five consecutive failures
for one ID lock its check for fifteen minutes (both configurable).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.audit import Actor, AuditTrail
from certcore.clock import Clock
from certcore.config import Settings
from certcore.masking import mask_id
from certcore.storage import Database, lock_customer
from certcore.storage.schema import customers, identity_lockouts

ACTIVE = "active"


class IdentityOutcome(StrEnum):
    VERIFIED = "verified"
    MISMATCH = "mismatch"
    """The ID and the date do not belong together (or the ID is not a customer's)."""
    LOCKED = "locked"


@dataclass(frozen=True)
class IdentityResult:
    outcome: IdentityOutcome
    locked_until: datetime | None = None

    @property
    def verified(self) -> bool:
        return self.outcome is IdentityOutcome.VERIFIED


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int
    lock_for: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> LockoutPolicy:
        return cls(
            settings.identity_max_failures, timedelta(minutes=settings.identity_lock_minutes)
        )


def after_failure(
    failures: int, now: datetime, policy: LockoutPolicy
) -> tuple[int, datetime | None]:
    """The failure count and lock after one more failure: the fifth locks and resets the count."""
    failures += 1
    if failures >= policy.max_failures:
        return 0, now + policy.lock_for
    return failures, None


class IdentityVerifier:
    def __init__(self, *, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.policy = LockoutPolicy.from_settings(settings)
        self.clock = clock
        self.audit = AuditTrail(clock)

    async def verify(self, id_number: str, birth_date: date, *, actor: Actor) -> IdentityResult:
        """Check a checksum-valid ID against the directory; every failure is audited."""
        async with self.db.write() as conn:
            now = self.clock()
            await lock_customer(conn, id_number)  # one check per ID at a time, on any backend
            lock = (
                await conn.execute(
                    select(identity_lockouts)
                    .where(identity_lockouts.c.id_number == id_number)
                    .with_for_update()
                )
            ).first()
            if lock is not None and lock.locked_until is not None and now < lock.locked_until:
                await self._audit(conn, actor, id_number, "identity.locked", lock.locked_until)
                return IdentityResult(IdentityOutcome.LOCKED, lock.locked_until)
            known = (
                await conn.execute(
                    select(customers.c.birth_date, customers.c.status).where(
                        customers.c.id_number == id_number
                    )
                )
            ).first()
            matches = (
                known is not None and known.status == ACTIVE and known.birth_date == birth_date
            )
            if matches:
                failures, locked_until = 0, None
            else:
                failures, locked_until = after_failure(
                    lock.failures if lock else 0, now, self.policy
                )
            values = {"failures": failures, "locked_until": locked_until, "updated_at": now}
            if lock is None:
                await conn.execute(insert(identity_lockouts).values(id_number=id_number, **values))
            else:
                await conn.execute(
                    update(identity_lockouts)
                    .where(identity_lockouts.c.id_number == id_number)
                    .values(**values)
                )
            if matches:
                return IdentityResult(IdentityOutcome.VERIFIED)
            await self._audit(conn, actor, id_number, "identity.failed", locked_until)
        if locked_until is not None:
            return IdentityResult(IdentityOutcome.LOCKED, locked_until)
        return IdentityResult(IdentityOutcome.MISMATCH)

    async def _audit(
        self,
        conn: AsyncConnection,
        actor: Actor,
        id_number: str,
        action: str,
        locked_until: datetime | None,
    ) -> None:
        await self.audit.append(
            conn,
            actor,
            action=action,
            subject=mask_id(id_number),
            # Always UTC, like the record's own time: the same lock must read the same whether
            # it comes from the clock (the failure that locks) or from the database (later tries).
            details={
                "locked_until": locked_until.astimezone(UTC).isoformat() if locked_until else None
            },
        )
