"""Sending and checking one-time codes: the rules of `certcore.otp.rules`, the database, senders.

Every decision that depends on what was sent before (resend delay, hourly and daily caps,
superseding the previous code, counting wrong entries) is made inside a write transaction that
holds the customer's lock, so two instances cannot both send the sixth code of the hour.
Sending itself happens outside any transaction, bounded by the sender's own timeout; a failed
send voids its code and is audited.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.audit import Actor, AuditTrail
from certcore.clock import Clock
from certcore.config import Settings
from certcore.errors import (
    OtpError,
    OtpExpired,
    OtpMalformed,
    OtpNoActiveCode,
    OtpResendTooEarly,
    OtpSendFailed,
    OtpSendLimit,
    OtpStalePrefix,
    OtpVoided,
    OtpWrongCode,
)
from certcore.i18n import translate
from certcore.masking import mask_id
from certcore.notify import (
    Medium,
    OutgoingMessage,
    Sender,
    SendError,
    SendFailure,
    mask_destination,
)
from certcore.otp.rules import (
    Binding,
    OtpPolicy,
    SendRefusal,
    code_digest,
    digests_match,
    new_code,
    new_prefix,
    parse_entry,
    send_refusal,
)
from certcore.storage import Database, lock_customer
from certcore.storage.database import inserted_id
from certcore.storage.schema import otp_codes

ACTIVE, USED, SUPERSEDED, VOIDED, EXPIRED = "active", "used", "superseded", "voided", "expired"
SPENT = "spent"
VERIFICATION_SHELF_LIFE = timedelta(minutes=30)
"""How long a verified code can still authorise its operation: the absolute flow limit."""


@dataclass(frozen=True)
class OtpSent:
    prefix: str
    medium: Medium
    destination: str
    """Masked, as the customer may be shown it."""
    expires_at: datetime
    resend_at: datetime


def otp_message(
    *,
    locale: str,
    medium: Medium,
    destination: str,
    binding: Binding,
    prefix: str,
    code: str,
    lifetime_minutes: int,
) -> OutgoingMessage:
    """The SMS or e-mail text: prefix, purpose, lifetime and the warning that staff never ask."""
    params = {
        "broker": translate(locale, "brand.name"),
        "purpose": translate(locale, f"otp.purpose.{binding.operation.value}"),
        "prefix": prefix,
        "code": code,
        "minutes": lifetime_minutes,
    }
    if medium is Medium.SMS:
        return OutgoingMessage(
            medium, destination, subject="", body=translate(locale, "otp.message.sms", **params)
        )
    return OutgoingMessage(
        medium,
        destination,
        subject=translate(locale, "otp.message.email.subject", **params),
        body=translate(locale, "otp.message.email.body", **params),
    )


class OtpService:
    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        clock: Clock,
        rng: random.Random,
        senders: Mapping[Medium, Sender],
        key: bytes,
    ) -> None:
        self.db = db
        self.settings = settings
        self.policy = OtpPolicy.from_settings(settings)
        self.clock = clock
        self.rng = rng
        self.senders = senders
        self.key = key
        self.audit = AuditTrail(clock)

    async def send(
        self,
        binding: Binding,
        *,
        medium: Medium,
        destination: str,
        locale: str,
        actor: Actor,
    ) -> OtpSent:
        """Send a new code, superseding the binding's previous one."""
        masked = mask_destination(medium, destination)
        sender = self.senders.get(medium)
        if sender is None:
            await self._audit_failure(binding, medium, masked, SendFailure.UNAVAILABLE, actor)
            raise OtpSendFailed(
                f"no sender configured for {medium.value}", reason=SendFailure.UNAVAILABLE
            )
        prefix, code = new_prefix(self.rng), new_code(self.rng)
        async with self.db.write() as conn:
            now = self.clock()
            await lock_customer(conn, binding.customer_id)
            last_sent = await self._last_sent(conn, binding)
            refusal = await self._refusal(conn, binding, now, last_sent)
            if refusal is None:
                code_id = inserted_id(
                    await conn.execute(
                        insert(otp_codes).values(
                            customer_id=binding.customer_id,
                            conversation_id=binding.conversation_id,
                            operation=binding.operation.value,
                            medium=medium.value,
                            destination=masked,
                            prefix=prefix,
                            code_hash=code_digest(self.key, binding, prefix, code),
                            state=ACTIVE,
                            attempts=0,
                            created_at=now,
                            expires_at=now + self.policy.lifetime,
                        )
                    )
                )
        if refusal is SendRefusal.RESEND_TOO_EARLY:
            assert last_sent is not None
            wait = last_sent + self.policy.resend_after - now
            raise OtpResendTooEarly(
                "a new code can be sent after the resend delay",
                wait_seconds=max(1, int(wait.total_seconds() + 0.999)),
            )
        if refusal is not None:
            await self._audit_refusal(binding, refusal, actor)
            raise OtpSendLimit(f"one-time code send limit reached ({refusal.value})", limit=refusal)
        message = otp_message(
            locale=locale,
            medium=medium,
            destination=destination,
            binding=binding,
            prefix=prefix,
            code=code,
            lifetime_minutes=self.settings.otp_lifetime_minutes,
        )
        try:
            receipt = await sender.send(message)
        except SendError as exc:
            async with self.db.write() as conn:
                await self._close(conn, code_id, VOIDED, self.clock())
            await self._audit_failure(binding, medium, masked, exc.reason, actor, str(exc))
            raise OtpSendFailed(str(exc), reason=exc.reason) from None
        async with self.db.write() as conn:
            # Only a delivered code replaces the previous one: a failed resend leaves the code
            # the customer already holds working.
            await self._close_active(conn, binding, SUPERSEDED, self.clock(), keep=code_id)
            await self.audit.append(
                conn,
                actor,
                action="otp.sent",
                subject=mask_id(binding.customer_id),
                details={
                    "operation": binding.operation.value,
                    "via": medium.value,
                    "destination": masked,
                    "prefix": prefix,
                    "receipt": receipt[:64],
                },
            )
        return OtpSent(
            prefix=prefix,
            medium=medium,
            destination=masked,
            expires_at=now + self.policy.lifetime,
            resend_at=now + self.policy.resend_after,
        )

    async def verify(self, binding: Binding, entry_text: str, *, actor: Actor) -> int:
        """Accept the binding's active code once, or raise the reason it is not accepted.

        Returns the code's id: the receipt that the operation it authorises must spend
        (`spend_verification`), so one verification can never authorise two operations.
        """
        entry = parse_entry(entry_text)
        if entry is None:
            raise OtpMalformed("a code is six digits, optionally after its four-letter prefix")
        failure: OtpError | None = None
        async with self.db.write() as conn:
            now = self.clock()
            await lock_customer(conn, binding.customer_id)
            row = (
                await conn.execute(
                    select(otp_codes)
                    .where(*_binding_filter(binding), otp_codes.c.state == ACTIVE)
                    .order_by(otp_codes.c.id.desc())
                    .limit(1)
                )
            ).first()
            if row is None:
                failure = OtpNoActiveCode("no active code for this step: request a new one")
            elif now > row.expires_at:
                await self._close(conn, row.id, EXPIRED, now)
                failure = OtpExpired("the code has expired: request a new one")
            elif entry.prefix is not None and entry.prefix != row.prefix:
                failure = OtpStalePrefix(
                    "the code belongs to an earlier message", expected_prefix=row.prefix
                )
            elif not digests_match(
                row.code_hash, code_digest(self.key, binding, row.prefix, entry.digits)
            ):
                attempts = row.attempts + 1
                if attempts >= self.policy.max_attempts:
                    await self._close(conn, row.id, VOIDED, now, attempts=attempts)
                    failure = OtpVoided("too many wrong entries: the code is void")
                else:
                    await conn.execute(
                        update(otp_codes).where(otp_codes.c.id == row.id).values(attempts=attempts)
                    )
                    failure = OtpWrongCode(
                        "wrong code", attempts_left=self.policy.max_attempts - attempts
                    )
            else:
                await self._close(conn, row.id, USED, now)
            await self.audit.append(
                conn,
                actor,
                action="otp.verified" if failure is None else "otp.rejected",
                subject=mask_id(binding.customer_id),
                details={
                    "operation": binding.operation.value,
                    "prefix": row.prefix if row is not None else None,
                    "reason": None if failure is None else failure.code,
                },
            )
        if failure is not None:
            raise failure
        assert row is not None
        return int(row.id)

    async def spend(self, binding: Binding, receipt: int, *, actor: Actor, action: str) -> None:
        """Spend a verified code on an operation certcore does not own (linking a chat)."""
        async with self.db.write() as conn:
            await spend_verification(conn, binding, receipt, self.clock())
            await self.audit.append(
                conn,
                actor,
                action=action,
                subject=mask_id(binding.customer_id),
                details={"operation": binding.operation.value},
            )

    async def cancel(self, binding: Binding) -> None:
        """Void the binding's active code, as when the customer cancels the flow."""
        async with self.db.write() as conn:
            await self._close_active(conn, binding, VOIDED, self.clock())

    # -- helpers ---------------------------------------------------------------------------

    async def _refusal(
        self, conn: AsyncConnection, binding: Binding, now: datetime, last_sent: datetime | None
    ) -> SendRefusal | None:
        async def sent_since(moment: datetime) -> int:
            return (
                await conn.execute(
                    select(func.count()).where(
                        otp_codes.c.customer_id == binding.customer_id,
                        otp_codes.c.created_at > moment,
                    )
                )
            ).scalar_one()

        return send_refusal(
            now,
            last_sent_in_binding=last_sent,
            sent_last_hour=await sent_since(now - timedelta(hours=1)),
            sent_last_day=await sent_since(now - timedelta(days=1)),
            policy=self.policy,
        )

    async def _last_sent(self, conn: AsyncConnection, binding: Binding) -> datetime | None:
        """When the binding's outstanding code was sent: the resend delay protects that code.

        A code that is no longer active (voided because its delivery failed or after too many
        wrong entries, used, expired) does not hold the next one back: after a failed send the
        customer is told to try the other destination, which must not mean "wait a minute".
        The hourly and daily caps still count every code.
        """
        last_sent: datetime | None = (
            await conn.execute(
                select(func.max(otp_codes.c.created_at)).where(
                    *_binding_filter(binding), otp_codes.c.state == ACTIVE
                )
            )
        ).scalar()
        return last_sent

    async def _close_active(
        self,
        conn: AsyncConnection,
        binding: Binding,
        state: str,
        now: datetime,
        *,
        keep: int | None = None,
    ) -> None:
        await conn.execute(
            update(otp_codes)
            .where(
                *_binding_filter(binding),
                otp_codes.c.state == ACTIVE,
                otp_codes.c.id != (keep if keep is not None else -1),
            )
            .values(state=state, closed_at=now)
        )

    async def _close(
        self, conn: AsyncConnection, code_id: int, state: str, now: datetime, **values: object
    ) -> None:
        await conn.execute(
            update(otp_codes)
            .where(otp_codes.c.id == code_id)
            .values(state=state, closed_at=now, **values)
        )

    async def _audit_failure(
        self,
        binding: Binding,
        medium: Medium,
        masked: str,
        reason: SendFailure,
        actor: Actor,
        detail: str = "",
    ) -> None:
        async with self.db.write() as conn:
            await self.audit.append(
                conn,
                actor,
                action="otp.send_failed",
                subject=mask_id(binding.customer_id),
                details={
                    "operation": binding.operation.value,
                    "via": medium.value,
                    "destination": masked,
                    "reason": reason.value,
                    "detail": detail[:200],
                },
            )

    async def _audit_refusal(self, binding: Binding, refusal: SendRefusal, actor: Actor) -> None:
        async with self.db.write() as conn:
            await self.audit.append(
                conn,
                actor,
                action="otp.send_refused",
                subject=mask_id(binding.customer_id),
                details={"operation": binding.operation.value, "reason": refusal.value},
            )


async def record_link(
    conn: AsyncConnection, audit: AuditTrail, actor: Actor, binding: Binding
) -> None:
    """Audit that the conversation the code was bound to is now the customer's, inside the
    transaction that spends the code (linking, or the operation a newcomer verified for)."""
    await audit.append(
        conn,
        actor,
        action="conversation.linked",
        subject=mask_id(binding.customer_id),
        details={"operation": binding.operation.value, "conversation": binding.conversation_id},
    )


async def spend_verification(
    conn: AsyncConnection, binding: Binding, receipt: int, now: datetime
) -> None:
    """Spend a verified code on the operation it was bound to, inside that operation's transaction.

    Raises OtpNoActiveCode unless `receipt` is a code of this binding that was verified less
    than `VERIFICATION_SHELF_LIFE` ago and not spent yet.
    """
    spent = await conn.execute(
        update(otp_codes)
        .where(
            otp_codes.c.id == receipt,
            *_binding_filter(binding),
            otp_codes.c.state == USED,
            otp_codes.c.closed_at > now - VERIFICATION_SHELF_LIFE,
        )
        .values(state=SPENT)
    )
    if spent.rowcount != 1:
        raise OtpNoActiveCode("this operation needs a freshly verified one-time code")


def _binding_filter(binding: Binding) -> tuple[ColumnElement[bool], ...]:
    return (
        otp_codes.c.customer_id == binding.customer_id,
        otp_codes.c.conversation_id == binding.conversation_id,
        otp_codes.c.operation == binding.operation.value,
    )
