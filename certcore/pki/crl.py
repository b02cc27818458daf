"""The certificate revocation list: one DER CRL, stored in the database for every instance.

It is regenerated inside the transaction that revokes a certificate, so the published CRL and
the certificate table never disagree, and at least daily by `refresh_crl_if_due` so relying
parties never hold an expired one. CRLNumber comes from the stored row and only grows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.config import Settings
from certcore.pki.authority import CertificateAuthority
from certcore.pki.cakey import signature_hash
from certcore.pki.rules import RevocationReason
from certcore.storage import Database, lock_single_row
from certcore.storage.schema import certificates, crl_state


def build_crl(
    ca: CertificateAuthority,
    revoked: list[tuple[int, datetime, RevocationReason | None]],
    *,
    number: int,
    this_update: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.name)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(ca.authority_key_identifier(), critical=False)
    )
    for serial, revoked_at, reason in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason.x509), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(ca.key, signature_hash(ca.key))


async def publish_crl(
    conn: AsyncConnection, ca: CertificateAuthority, settings: Settings, now: datetime
) -> bytes:
    """Sign a new CRL inside the caller's write transaction and store it; return its DER."""
    # Locked (created empty before the first CRL), so two publications at once, from two
    # revocations or two instances, number their CRLs one after the other on any backend.
    row = await lock_single_row(
        conn,
        crl_state,
        key={"id": 1},
        empty={"crl_number": 0, "this_update": now, "next_update": now, "der": b""},
    )
    number = row.crl_number + 1
    rows = await conn.execute(
        select(certificates.c.serial, certificates.c.revoked_at, certificates.c.revoked_reason)
        .where(certificates.c.revoked_at.is_not(None))
        .order_by(certificates.c.revoked_at, certificates.c.serial)
    )
    revoked = [
        (
            int(r.serial, 16),
            r.revoked_at,
            RevocationReason(r.revoked_reason) if r.revoked_reason else None,
        )
        for r in rows
    ]
    this_update = now.replace(microsecond=0)
    next_update = this_update + timedelta(hours=settings.crl_validity_hours)
    der = build_crl(
        ca, revoked, number=number, this_update=this_update, next_update=next_update
    ).public_bytes(serialization.Encoding.DER)
    values = {
        "crl_number": number,
        "this_update": this_update,
        "next_update": next_update,
        "der": der,
    }
    await conn.execute(update(crl_state).where(crl_state.c.id == 1).values(**values))
    return der


async def refresh_crl_if_due(
    db: Database, ca: CertificateAuthority, settings: Settings, now: datetime
) -> bytes:
    """The current CRL, re-signed first when it is missing or older than the refresh period."""
    async with db.read() as conn:
        row = (await conn.execute(select(crl_state).where(crl_state.c.id == 1))).first()
    if row and now < row.this_update + timedelta(hours=settings.crl_refresh_hours):
        der: bytes = row.der
        return der
    async with db.write() as conn:
        row = (await conn.execute(select(crl_state).where(crl_state.c.id == 1))).first()
        if row and now < row.this_update + timedelta(hours=settings.crl_refresh_hours):
            der = row.der
            return der
        return await publish_crl(conn, ca, settings, now)


async def published_crl_number(conn: AsyncConnection) -> int | None:
    """The CRLNumber of the stored CRL; None before the first is published."""
    number = (
        await conn.execute(select(crl_state.c.crl_number).where(crl_state.c.id == 1))
    ).scalar()
    return None if number is None else int(number)
