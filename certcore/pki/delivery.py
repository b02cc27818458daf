"""Certificate delivery (DESIGN §4): issuance happens when the customer sets the export password.

「立即申請憑證」 opens a delivery that spends the customer's verified one-time code; the key pair
and the certificate are created only when the customer, holding the one-time link (or the
console), sets the export password. The password-encrypted .pfx is kept for the rest of the
delivery window so a broken download can be retried (at most `delivery_max_downloads` times),
then erased. Only a hash of the link's token is stored.

Its short passwords make a kept .pfx guessable offline, so its end does not wait for `serve`'s
upkeep: every read checks the window itself, every write of this service erases whatever has
expired in the same transaction, and opening the core erases too (`certdesk chat` and the
operator commands run without `serve`). SQLite zeroes what is erased (`secure_delete`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.audit import Actor, AuditTrail
from certcore.clock import Clock
from certcore.config import Settings
from certcore.errors import CertdeskError
from certcore.masking import mask_id
from certcore.otp import Binding, Operation, record_link, spend_verification
from certcore.pki.issuance import CertificateService, IssuedCertificate
from certcore.pki.pkcs12 import Pkcs12Format, check_export_password
from certcore.pki.records import CertificateRecord
from certcore.storage import Database
from certcore.storage.schema import deliveries


class DeliveryState(StrEnum):
    OPEN = "open"
    ISSUING = "issuing"
    ISSUED = "issued"
    EXPIRED = "expired"


class DeliveryUnavailable(CertdeskError):
    """The link is unknown, expired, used up, or its certificate is being made right now."""

    code = "delivery_unavailable"


@dataclass(frozen=True)
class DeliveryTicket:
    token: str
    """The secret in the one-time link; never stored."""
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Delivery:
    customer_id: str
    requester: str
    operation: Operation
    renewal_of: str | None
    state: DeliveryState
    expires_at: datetime
    downloads: int
    serial: str | None
    filename: str | None


@dataclass(frozen=True)
class DeliveredFile:
    filename: str
    pkcs12: bytes
    serial: str
    record: CertificateRecord | None
    """The certificate record, when this download is the one that issued it."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class DeliveryService:
    def __init__(
        self,
        *,
        db: Database,
        certificates: CertificateService,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.db = db
        self.certificates = certificates
        self.settings = settings
        self.clock = clock
        self.window = timedelta(minutes=settings.delivery_window_minutes)
        self.stuck = timedelta(minutes=settings.pending_recovery_minutes)
        """How long past its window a delivery may stay `issuing`: only a process that died
        while issuing leaves one there (its certificate record, if any, is abandoned by then)."""
        self.audit = AuditTrail(clock)

    async def open(
        self,
        *,
        binding: Binding,
        receipt: int,
        requester: str,
        actor: Actor,
        renewal_of: str | None = None,
        links_conversation: bool = False,
    ) -> DeliveryTicket:
        """Spend the verified code of an application or renewal on a new delivery; with
        `links_conversation` the code also links the chat it was bound to (a newcomer's one
        identity check), recorded in the same transaction."""
        if binding.operation not in (Operation.APPLY, Operation.RENEW):
            raise ValueError("deliveries are for applications and renewals")
        token = secrets.token_urlsafe(32)
        async with self.db.write() as conn:
            now = self.clock()
            await _erase_expired(conn, now, self.stuck)
            await spend_verification(conn, binding, receipt, now)
            await conn.execute(
                insert(deliveries).values(
                    token_hash=token_hash(token),
                    customer_id=binding.customer_id,
                    requester=requester,
                    operation=binding.operation.value,
                    renewal_of=renewal_of,
                    otp_code_id=receipt,
                    state=DeliveryState.OPEN.value,
                    created_at=now,
                    expires_at=now + self.window,
                    downloads=0,
                )
            )
            await self.audit.append(
                conn,
                actor,
                action="delivery.opened",
                subject=mask_id(binding.customer_id),
                details={"operation": binding.operation.value, "renewal_of": renewal_of},
            )
            if links_conversation:
                await record_link(conn, self.audit, actor, binding)
        url = f"{self.settings.public_url.rstrip('/')}/d/{token}"
        return DeliveryTicket(token=token, url=url, expires_at=now + self.window)

    async def describe(self, token: str) -> Delivery | None:
        """What the download page shows; None for an unknown token."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(deliveries).where(deliveries.c.token_hash == token_hash(token))
                )
            ).first()
        if row is None:
            return None
        state = DeliveryState(row.state)
        grace = self.stuck if state is DeliveryState.ISSUING else timedelta(0)
        if self.clock() > row.expires_at + grace:
            state = DeliveryState.EXPIRED
        return Delivery(
            customer_id=row.customer_id,
            requester=row.requester,
            operation=Operation(row.operation),
            renewal_of=row.renewal_of,
            state=state,
            expires_at=row.expires_at,
            downloads=row.downloads,
            serial=row.serial,
            filename=row.filename,
        )

    async def fulfil(
        self, token: str, password: str, *, actor: Actor, fmt: Pkcs12Format = Pkcs12Format.STANDARD
    ) -> DeliveredFile:
        """Issue (or renew) with the customer's export password; the first download."""
        check_export_password(password)
        key = token_hash(token)
        async with self.db.write() as conn:
            now = self.clock()
            await _erase_expired(conn, now, self.stuck)
            claimed = await conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.token_hash == key,
                    deliveries.c.state == DeliveryState.OPEN.value,
                    deliveries.c.expires_at >= now,
                )
                .values(state=DeliveryState.ISSUING.value)
            )
            row = (
                await conn.execute(select(deliveries).where(deliveries.c.token_hash == key))
            ).first()
        if claimed.rowcount != 1 or row is None:
            raise DeliveryUnavailable("this delivery link is not open for issuance")

        async def keep_file(conn: AsyncConnection, issued: IssuedCertificate) -> None:
            """In the certificate's own release: the delivery is done with it or not at all."""
            await _set(
                conn,
                key,
                state=DeliveryState.ISSUED.value,
                serial=issued.record.serial,
                filename=issued.filename,
                pkcs12=issued.pkcs12,
                downloads=1,
            )
            await self.audit.append(
                conn,
                actor,
                action="delivery.downloaded",
                subject=mask_id(row.customer_id),
                details={"serial": issued.record.serial, "download": 1},
            )

        try:
            if row.operation == Operation.RENEW.value:
                issued = await self.certificates.renew(
                    row.renewal_of, password, actor=actor, fmt=fmt, on_release=keep_file
                )
            else:
                issued = await self.certificates.issue(
                    row.customer_id, password, actor=actor, fmt=fmt, on_release=keep_file
                )
        except BaseException:
            async with self.db.write() as conn:  # not issued: the link may be tried again
                await conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.token_hash == key,
                        deliveries.c.state == DeliveryState.ISSUING.value,
                    )
                    .values(state=DeliveryState.OPEN.value)
                )
            raise
        return _delivered(issued)

    async def download_again(self, token: str, *, actor: Actor) -> DeliveredFile:
        """The same encrypted file once more, for a download that broke, within the window."""
        key = token_hash(token)
        async with self.db.write() as conn:
            now = self.clock()
            await _erase_expired(conn, now, self.stuck)
            again = await conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.token_hash == key,
                    deliveries.c.state == DeliveryState.ISSUED.value,
                    deliveries.c.expires_at >= now,
                    deliveries.c.downloads < self.settings.delivery_max_downloads,
                    deliveries.c.pkcs12.is_not(None),
                )
                .values(downloads=deliveries.c.downloads + 1)
            )
            row = (
                await conn.execute(select(deliveries).where(deliveries.c.token_hash == key))
            ).first()
            if again.rowcount == 1 and row is not None:
                await self.audit.append(
                    conn,
                    actor,
                    action="delivery.downloaded",
                    subject=mask_id(row.customer_id),
                    details={"serial": row.serial, "download": row.downloads},
                )
        # Raised after the commit, so what this transaction erased stays erased.
        if again.rowcount != 1 or row is None or row.pkcs12 is None:
            raise DeliveryUnavailable("this delivery link has expired or was used up")
        return DeliveredFile(
            filename=row.filename, pkcs12=row.pkcs12, serial=row.serial, record=None
        )

    async def erase_expired(self) -> int:
        """End every delivery past its window and erase the kept file; returns how many."""
        async with self.db.write() as conn:
            return await _erase_expired(conn, self.clock(), self.stuck)


async def _erase_expired(conn: AsyncConnection, now: datetime, stuck: timedelta) -> int:
    """End the deliveries past their window, and those left `issuing` by a process that died
    (`stuck` past the window), erasing any kept file."""
    erased = await conn.execute(
        update(deliveries)
        .where(
            or_(
                and_(
                    deliveries.c.state.in_([DeliveryState.OPEN.value, DeliveryState.ISSUED.value]),
                    deliveries.c.expires_at < now,
                ),
                and_(
                    deliveries.c.state == DeliveryState.ISSUING.value,
                    deliveries.c.expires_at < now - stuck,
                ),
            )
        )
        .values(state=DeliveryState.EXPIRED.value, pkcs12=None)
    )
    return erased.rowcount


async def _set(conn: AsyncConnection, key: str, **values: object) -> None:
    await conn.execute(update(deliveries).where(deliveries.c.token_hash == key).values(**values))


def _delivered(issued: IssuedCertificate) -> DeliveredFile:
    return DeliveredFile(
        filename=issued.filename,
        pkcs12=issued.pkcs12,
        serial=issued.record.serial,
        record=issued.record,
    )
