"""Certificate records: the table's rows as values, and the queries every caller shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from cryptography import x509
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.pki.rules import (
    CertificateStatus,
    RevocationReason,
    Window,
    certificate_status,
    occupies_holder_slot,
    renewal_window,
)
from certcore.storage.schema import certificates


class RecordState(StrEnum):
    PENDING = "pending"
    """Recorded before signing; a crash leaves it here for recovery to find."""
    ISSUED = "issued"
    ABANDONED = "abandoned"
    """Never signed, or signed but never released: recovery's verdict on a stale pending row."""


@dataclass(frozen=True)
class CertificateRecord:
    serial: str
    customer_id: str
    state: RecordState
    not_before: datetime
    not_after: datetime
    public_key_sha256: str
    der: bytes | None
    renewal_of: str | None
    created_at: datetime
    issued_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: RevocationReason | None

    @classmethod
    def from_row(cls, row: Row[*tuple[Any, ...]]) -> CertificateRecord:
        values = dict(row._mapping)
        values["state"] = RecordState(values["state"])
        reason = values["revoked_reason"]
        values["revoked_reason"] = RevocationReason(reason) if reason else None
        return cls(**values)

    @property
    def serial_number(self) -> int:
        return int(self.serial, 16)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @cached_property
    def certificate(self) -> x509.Certificate:
        if self.der is None:
            raise ValueError(f"certificate {self.serial} was never signed")
        return x509.load_der_x509_certificate(self.der)

    def status(self, now: datetime, renewal_days: int) -> CertificateStatus | None:
        """The customer-facing status; None for a record that never became a certificate."""
        if self.state is not RecordState.ISSUED:
            return None
        return certificate_status(
            not_after=self.not_after, revoked=self.revoked, now=now, renewal_days=renewal_days
        )

    def renewal_window(self, renewal_days: int) -> Window:
        return renewal_window(self.not_after, renewal_days)

    def occupies_holder_slot(self, now: datetime) -> bool:
        if self.state is RecordState.ABANDONED:
            return False
        return occupies_holder_slot(not_after=self.not_after, revoked=self.revoked, now=now)


async def get_certificate(
    conn: AsyncConnection, serial: str, *, for_update: bool = False
) -> CertificateRecord | None:
    query = select(certificates).where(certificates.c.serial == serial.upper())
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return CertificateRecord.from_row(row) if row else None


async def certificates_of(conn: AsyncConnection, customer_id: str) -> list[CertificateRecord]:
    rows = await conn.execute(
        select(certificates)
        .where(certificates.c.customer_id == customer_id)
        # The serial breaks ties: PostgreSQL, unlike SQLite, returns equal keys in any order.
        .order_by(certificates.c.created_at, certificates.c.serial)
    )
    return [CertificateRecord.from_row(row) for row in rows]


async def all_certificates(conn: AsyncConnection) -> list[CertificateRecord]:
    rows = await conn.execute(
        select(certificates).order_by(certificates.c.created_at, certificates.c.serial)
    )
    return [CertificateRecord.from_row(row) for row in rows]


async def unexpired_certificates(conn: AsyncConnection, now: datetime) -> list[CertificateRecord]:
    rows = await conn.execute(
        select(certificates).where(
            certificates.c.state == RecordState.ISSUED.value, certificates.c.not_after > now
        )
    )
    return [CertificateRecord.from_row(row) for row in rows]
