"""Issuance, renewal and revocation: the rules, the CA, the database and the audit trail together.

Each operation keeps the holder's row lock only for short transactions around the database
work. Key generation, signing and PKCS#12 encryption (the slow parts) happen between them,
with the certificate recorded as `pending` before signing and `issued` after. An issuance that
fails in between abandons its own record at once, so the customer can apply again; only a
crash leaves one for `recover_pending` to find.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.audit import Actor, AuditTrail
from certcore.clock import Clock, taipei_text
from certcore.config import Settings
from certcore.errors import (
    AlreadyRevoked,
    InvalidCustomerId,
    NotRenewable,
    OtpNoActiveCode,
    RevocationQuotaExhausted,
    UnknownCertificate,
    ValidCertificateExists,
)
from certcore.identity import classify_id
from certcore.masking import mask_id
from certcore.otp import Binding, Operation, record_link, spend_verification
from certcore.pki.authority import (
    CertificateAuthority,
    CustomerKey,
    public_key_fingerprint,
    random_serial,
    serial_hex,
)
from certcore.pki.crl import publish_crl, published_crl_number, refresh_crl_if_due
from certcore.pki.keywork import KeyWork
from certcore.pki.ocsp import OcspResponder
from certcore.pki.pkcs12 import Pkcs12Format, check_export_password, pfx_filename
from certcore.pki.records import (
    CertificateRecord,
    RecordState,
    certificates_of,
    get_certificate,
    unexpired_certificates,
)
from certcore.pki.rules import RevocationReason, Window, quota_year, validity_period
from certcore.storage import Database, lock_customer
from certcore.storage.schema import certificates, revocation_quota


@dataclass(frozen=True)
class IssuedCertificate:
    record: CertificateRecord
    pkcs12: bytes
    filename: str


OnRelease = Callable[[AsyncConnection, IssuedCertificate], Awaitable[None]]
"""Work done in the transaction that releases a certificate (keeping its file for delivery)."""


class CertificateService:
    def __init__(
        self,
        *,
        db: Database,
        ca: CertificateAuthority,
        settings: Settings,
        clock: Clock,
        rng: random.Random,
        ocsp: OcspResponder | None = None,
        keywork: KeyWork | None = None,
    ) -> None:
        self.db = db
        self.keywork = keywork or KeyWork()
        self.ca = ca
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.ocsp = ocsp
        self.audit = AuditTrail(clock)

    async def issue(
        self,
        customer_id: str,
        password: str,
        *,
        actor: Actor,
        fmt: Pkcs12Format = Pkcs12Format.STANDARD,
        on_release: OnRelease | None = None,
    ) -> IssuedCertificate:
        """A key pair and a certificate for the customer, exported with `password`. The record
        is released (issued) in one transaction together with `on_release` (the delivery that
        keeps the file): a crash leaves both undone or both done, never a certificate issued
        whose only key copy died with the process."""
        if classify_id(customer_id) is None:
            raise InvalidCustomerId("not a valid ID number or Unified Business Number")
        check_export_password(password)
        key = await self.keywork.generate_key(self.settings.customer_key)
        async with self.db.write() as conn:
            now = self.clock()
            await lock_customer(conn, customer_id)
            await self._require_free_slot(conn, customer_id, now, renewing=None)
            record = await self._record_pending(conn, customer_id, key, now, actor, renewal_of=None)
        return await self._sign_and_release(record, key, password, fmt, actor, on_release)

    async def renew(
        self,
        serial: str,
        password: str,
        *,
        actor: Actor,
        fmt: Pkcs12Format = Pkcs12Format.STANDARD,
        on_release: OnRelease | None = None,
    ) -> IssuedCertificate:
        """A new key pair and certificate; the old one is revoked as superseded on release
        (with `on_release`, as `issue` says)."""
        check_export_password(password)
        async with self.db.read() as conn:
            old = await self._renewable(conn, serial, self.clock())
        key = await self.keywork.generate_key(self.settings.customer_key)
        async with self.db.write() as conn:
            now = self.clock()
            await lock_customer(conn, old.customer_id)
            old = await self._renewable(conn, serial, now)
            await self._require_free_slot(conn, old.customer_id, now, renewing=old.serial)
            record = await self._record_pending(
                conn, old.customer_id, key, now, actor, renewal_of=old.serial
            )
        return await self._sign_and_release(record, key, password, fmt, actor, on_release)

    async def revoke(
        self,
        serial: str,
        reason: RevocationReason | None,
        *,
        actor: Actor,
        online: bool,
        verification: tuple[Binding, int] | None = None,
        links_conversation: bool = False,
    ) -> CertificateRecord:
        """Revoke; an `online` (customer self-service) revocation spends a quota slot.

        `verification` is the customer's verified one-time code (binding and receipt); it is
        spent in the same transaction, so a code authorises exactly one revocation. With
        `links_conversation` the code also links the chat it was bound to (a newcomer's one
        identity check), recorded in the same transaction.
        """
        async with self.db.write() as conn:
            now = self.clock()
            record = await self._issued(conn, serial)
            await lock_customer(conn, record.customer_id)
            record = await self._issued(conn, serial)
            if record.revoked:
                raise AlreadyRevoked(f"certificate {record.serial} is already revoked")
            if verification is not None:
                binding, receipt = verification
                if binding.customer_id != record.customer_id or binding.operation is not (
                    Operation.REVOKE
                ):
                    raise OtpNoActiveCode("the one-time code was not issued for this revocation")
                await spend_verification(conn, binding, receipt, now)
            if online:
                await self._spend_quota(conn, record.customer_id, now)
            await self._mark_revoked(conn, record, reason, now)
            await self.audit.append(
                conn,
                actor,
                action="certificate.revoked",
                subject=mask_id(record.customer_id),
                details={
                    "serial": record.serial,
                    "reason": reason.value if reason else None,
                    "online": online,
                },
            )
            if links_conversation and verification is not None:
                await record_link(conn, self.audit, actor, verification[0])
            await publish_crl(conn, self.ca, self.settings, now)
            revoked = await get_certificate(conn, record.serial)
        assert revoked is not None
        await self._refresh_ocsp(revoked.serial)
        return revoked

    # -- reading -------------------------------------------------------------------------

    async def get(self, serial: str) -> CertificateRecord | None:
        """The record with this serial (hex, any case), in whatever state."""
        async with self.db.read() as conn:
            return await get_certificate(conn, serial)

    async def get_by_number(self, serial: int) -> CertificateRecord | None:
        """The record with this serial number, as OCSP asks for it."""
        return await self.get(serial_hex(serial))

    async def issued_of(self, customer_id: str) -> list[CertificateRecord]:
        """The customer's certificates that exist (were issued), newest first."""
        async with self.db.read() as conn:
            records = await certificates_of(conn, customer_id)
        return [record for record in reversed(records) if record.der is not None]

    async def current_of(self, customer_id: str, now: datetime) -> CertificateRecord | None:
        """The one certificate that counts as the customer's valid one at `now`, if any."""
        for record in await self.issued_of(customer_id):
            if record.occupies_holder_slot(now):
                return record
        return None

    async def unexpired(self) -> list[CertificateRecord]:
        """Issued certificates that have not expired, revoked ones included (OCSP pre-signing)."""
        async with self.db.read() as conn:
            return await unexpired_certificates(conn, self.clock())

    async def record_of(self, certificate: x509.Certificate) -> CertificateRecord | None:
        """Our issued record of exactly this certificate (same serial, same DER), if any."""
        record = await self.get(serial_hex(certificate.serial_number))
        der = certificate.public_bytes(serialization.Encoding.DER)
        if record is None or record.state is not RecordState.ISSUED or record.der != der:
            return None
        return record

    async def crl(self) -> bytes:
        """The current CRL (DER), re-signed first when it is due."""
        return await refresh_crl_if_due(self.db, self.ca, self.settings, self.clock())

    async def crl_number(self) -> int | None:
        """The number of the CRL last published by any process; None before the first."""
        async with self.db.read() as conn:
            return await published_crl_number(conn)

    async def revocations_left(self, customer_id: str) -> int:
        """How many online revocations the customer has left this year (Taipei calendar)."""
        async with self.db.read() as conn:
            used = (
                await conn.execute(
                    select(revocation_quota.c.used).where(
                        revocation_quota.c.customer_id == customer_id,
                        revocation_quota.c.year == quota_year(self.clock()),
                    )
                )
            ).scalar()
        return max(0, self.settings.revocations_per_year - (used or 0))

    async def recover_pending(self) -> list[str]:
        """Mark pending records older than the recovery delay abandoned; return their serials.

        A pending record is released only after it is marked issued, so a stale one was never
        handed to anybody: no file left the process, and relying parties will never see it.
        """
        cutoff = self.clock() - timedelta(minutes=self.settings.pending_recovery_minutes)
        async with self.db.write() as conn:
            rows = await conn.execute(
                select(certificates.c.serial, certificates.c.customer_id).where(
                    certificates.c.state == RecordState.PENDING.value,
                    certificates.c.created_at < cutoff,
                )
            )
            stale = list(rows)
            for serial, customer_id in stale:
                await self._mark_abandoned(conn, serial, customer_id, Actor("system", "recovery"))
        return [serial for serial, _ in stale]

    async def _abandon(self, pending: CertificateRecord, actor: Actor) -> None:
        async with self.db.write() as conn:
            await self._mark_abandoned(conn, pending.serial, pending.customer_id, actor)

    async def _mark_abandoned(
        self, conn: AsyncConnection, serial: str, customer_id: str, actor: Actor
    ) -> None:
        """Pending → abandoned, audited; nothing when the record is no longer pending."""
        abandoned = await conn.execute(
            update(certificates)
            .where(
                certificates.c.serial == serial,
                certificates.c.state == RecordState.PENDING.value,
            )
            .values(state=RecordState.ABANDONED.value)
        )
        if abandoned.rowcount:
            await self.audit.append(
                conn,
                actor,
                action="certificate.abandoned",
                subject=mask_id(customer_id),
                details={"serial": serial},
            )

    # -- the steps -------------------------------------------------------------------------

    async def _sign_and_release(
        self,
        pending: CertificateRecord,
        key: CustomerKey,
        password: str,
        fmt: Pkcs12Format,
        actor: Actor,
        on_release: OnRelease | None,
    ) -> IssuedCertificate:
        """Sign, export and release the pending record; a failure on the way abandons it (a
        record still pending was never handed to anybody), so it blocks no new application."""
        try:
            return await self._sign_and_release_pending(
                pending, key, password, fmt, actor, on_release
            )
        except BaseException:
            # If even this fails, the record stays pending for `recover_pending`.
            with contextlib.suppress(Exception):
                await self._abandon(pending, actor)
            raise

    async def _sign_and_release_pending(
        self,
        pending: CertificateRecord,
        key: CustomerKey,
        password: str,
        fmt: Pkcs12Format,
        actor: Actor,
        on_release: OnRelease | None,
    ) -> IssuedCertificate:
        certificate = self.ca.sign_customer_certificate(
            public_key=key.public_key(),
            customer_id=pending.customer_id,
            serial=pending.serial_number,
            validity=Window(pending.not_before, pending.not_after),
            settings=self.settings,
        )
        filename = pfx_filename(pending.customer_id, self.settings.issuer_tag, pending.not_after)
        pkcs12 = await self.keywork.export_pkcs12(
            key=key,
            certificate=certificate,
            ca_certificate=self.ca.certificate,
            password=password,
            label=filename.removesuffix(".pfx"),
            fmt=fmt,
            kdf_rounds=self.settings.pkcs12_kdf_rounds,
        )
        async with self.db.write() as conn:
            now = self.clock()
            await lock_customer(conn, pending.customer_id)
            released = await conn.execute(
                update(certificates)
                .where(
                    certificates.c.serial == pending.serial,
                    certificates.c.state == RecordState.PENDING.value,
                )
                .values(
                    state=RecordState.ISSUED.value,
                    der=certificate.public_bytes(serialization.Encoding.DER),
                    issued_at=now,
                )
            )
            if not released.rowcount:
                # Recovery abandoned the record meanwhile; the customer may hold a newer one.
                raise UnknownCertificate(
                    f"certificate {pending.serial} was abandoned by recovery before it was "
                    "released; apply again"
                )
            await self.audit.append(
                conn,
                actor,
                action="certificate.renewed" if pending.renewal_of else "certificate.issued",
                subject=mask_id(pending.customer_id),
                details={
                    "serial": pending.serial,
                    "not_after": pending.not_after.isoformat(),
                    "renewal_of": pending.renewal_of,
                    "pkcs12": fmt.value,
                },
            )
            superseded = None
            if pending.renewal_of:
                superseded = await get_certificate(conn, pending.renewal_of, for_update=True)
            if superseded is not None and not superseded.revoked:
                await self._mark_revoked(conn, superseded, RevocationReason.SUPERSEDED, now)
                await self.audit.append(
                    conn,
                    actor,
                    action="certificate.revoked",
                    subject=mask_id(superseded.customer_id),
                    details={
                        "serial": superseded.serial,
                        "reason": RevocationReason.SUPERSEDED.value,
                        "online": False,
                        "superseded_by": pending.serial,
                    },
                )
                await publish_crl(conn, self.ca, self.settings, now)
            issued = await get_certificate(conn, pending.serial)
            assert issued is not None
            if on_release is not None:
                await on_release(conn, IssuedCertificate(issued, pkcs12, filename))
        if superseded is not None:
            await self._refresh_ocsp(superseded.serial)
        await self._refresh_ocsp(issued.serial)
        return IssuedCertificate(record=issued, pkcs12=pkcs12, filename=filename)

    async def _record_pending(
        self,
        conn: AsyncConnection,
        customer_id: str,
        key: CustomerKey,
        now: datetime,
        actor: Actor,
        *,
        renewal_of: str | None,
    ) -> CertificateRecord:
        validity = validity_period(now, self.settings.validity_months)
        while True:
            serial = serial_hex(random_serial(self.rng))
            if await get_certificate(conn, serial) is None:
                break
        await conn.execute(
            insert(certificates).values(
                serial=serial,
                customer_id=customer_id,
                state=RecordState.PENDING.value,
                not_before=validity.start,
                not_after=validity.end,
                public_key_sha256=public_key_fingerprint(key.public_key()),
                renewal_of=renewal_of,
                created_at=now,
            )
        )
        await self.audit.append(
            conn,
            actor,
            action="certificate.requested",
            subject=mask_id(customer_id),
            details={"serial": serial, "renewal_of": renewal_of},
        )
        record = await get_certificate(conn, serial)
        assert record is not None
        return record

    async def _require_free_slot(
        self, conn: AsyncConnection, customer_id: str, now: datetime, *, renewing: str | None
    ) -> None:
        for record in await certificates_of(conn, customer_id):
            if record.serial != renewing and record.occupies_holder_slot(now):
                raise ValidCertificateExists(
                    f"customer {mask_id(customer_id)} already holds certificate {record.serial}",
                    serial=record.serial,
                )

    async def _issued(self, conn: AsyncConnection, serial: str) -> CertificateRecord:
        record = await get_certificate(conn, serial, for_update=True)
        if record is None or record.state is not RecordState.ISSUED:
            raise UnknownCertificate(f"no issued certificate with serial {serial.upper()}")
        return record

    async def _renewable(
        self, conn: AsyncConnection, serial: str, now: datetime
    ) -> CertificateRecord:
        record = await self._issued(conn, serial)
        if record.revoked:
            raise NotRenewable(f"certificate {record.serial} is revoked and cannot be renewed")
        window = record.renewal_window(self.settings.renewal_window_days)
        if now not in window:
            raise NotRenewable(
                f"certificate {record.serial} can be renewed only from "
                f"{taipei_text(window.start)} to {taipei_text(window.end)} (Asia/Taipei)",
                window=window,
            )
        return record

    async def _spend_quota(self, conn: AsyncConnection, customer_id: str, now: datetime) -> None:
        year, limit = quota_year(now), self.settings.revocations_per_year
        spent = await conn.execute(
            update(revocation_quota)
            .where(
                revocation_quota.c.customer_id == customer_id,
                revocation_quota.c.year == year,
                revocation_quota.c.used < limit,
            )
            .values(used=revocation_quota.c.used + 1)
        )
        if spent.rowcount:
            return
        exists = (
            await conn.execute(
                select(revocation_quota.c.used).where(
                    revocation_quota.c.customer_id == customer_id, revocation_quota.c.year == year
                )
            )
        ).first()
        if exists is not None or limit == 0:
            raise RevocationQuotaExhausted(
                f"the {limit} online revocations of {year} are used up", year=year, limit=limit
            )
        await conn.execute(
            insert(revocation_quota).values(customer_id=customer_id, year=year, used=1)
        )

    async def _mark_revoked(
        self,
        conn: AsyncConnection,
        record: CertificateRecord,
        reason: RevocationReason | None,
        now: datetime,
    ) -> None:
        await conn.execute(
            update(certificates)
            .where(certificates.c.serial == record.serial, certificates.c.revoked_at.is_(None))
            .values(
                revoked_at=now.replace(microsecond=0),
                revoked_reason=reason.value if reason else None,
            )
        )

    async def _refresh_ocsp(self, serial: str) -> None:
        if self.ocsp is not None:
            await self.ocsp.refresh(int(serial, 16))
