"""The identity check of the manual's step 一.3: ID number and ROC birth (or registration) date.

The answer never says which of the two was wrong, and an unknown ID takes the same path (the
same queries, the same lock bookkeeping, the same audit record) as a wrong date, so neither the
reply nor its timing tells an outsider whether an ID is a customer.

Who guesses is locked, not whose ID is guessed: a lock per ID number let anyone who knows the
number keep its owner out for good (five wrong dates every fifteen minutes, from any chat, also
out of an urgent revocation), while opening as many web chats as they liked. So:

- five consecutive failures lock the conversation's check, and its client's (a web chat's
  address, behind which new sessions cost nothing), for fifteen minutes; ten failures in a day
  lock them for the rest of that day, successes in between or not;
- each ID number has a ceiling of its own across all conversations, twenty failures a day:
  above the ten one client can reach, so one attacker cannot lock the owner out, and low enough
  that a birth date guessed across many chats stays hopeless (20 of some 36,500 plausible dates
  a day). A conversation already linked to the ID (its owner proved a code there) is not held
  back by it;
- when an ID collects five failures in a day, its owner is told by SMS or e-mail, once a day at
  most: a second after the answer, off its path, so that answering a customer's ID takes the
  time answering any other does;
- a lock closes the identity check only: the menu, 客服 and the rest stay open.

The ID number's tally is kept under a keyed hash of the number (`id_scope`, keyed like the
one-time codes), not the number itself: the table of locks names nobody to whoever copies the
database, and an ID number's hash cannot be reversed by trying the five billion numbers without
the key.

Every number is configuration (`identity_*`); the rules are pure functions over the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from certcore.audit import Actor, AuditTrail
from certcore.clock import TAIPEI, Clock
from certcore.config import Settings
from certcore.i18n import DEFAULT_LOCALE, translate
from certcore.masking import mask_id
from certcore.notify import Medium, OutgoingMessage, Sender, mask_destination
from certcore.storage import Database, lock_customer
from certcore.storage.schema import customers, identity_locks

log = logging.getLogger("certdesk.identity")

ACTIVE = "active"
DAY = timedelta(days=1)
FORGET_AFTER = 2 * DAY
"""A record untouched this long holds no lock and no count that still matters: it is erased."""
NOTICE_DELAY_SECONDS = 1.0


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
    """Consecutive failures that lock a conversation's (a client's) check for `lock_for`."""
    lock_for: timedelta
    chat_failures_per_day: int
    """Failures in a day that lock a conversation's (a client's) check for the rest of it."""
    id_failures_per_day: int
    """Failures of one ID number in a day, from every conversation, that lock it for the rest
    of the day; above `chat_failures_per_day`, so one client alone never reaches it."""

    @classmethod
    def from_settings(cls, settings: Settings) -> LockoutPolicy:
        return cls(
            max_failures=settings.identity_max_failures,
            lock_for=timedelta(minutes=settings.identity_lock_minutes),
            chat_failures_per_day=settings.identity_chat_failures_per_day,
            id_failures_per_day=settings.identity_id_failures_per_day,
        )


@dataclass(frozen=True)
class Attempt:
    """Where a check comes from."""

    conversation: str
    """The conversation (or the linking page's session) the date was typed in."""
    client: str = ""
    """Who is behind it, as far as the channel can tell (`web:<address>`); empty where the
    conversation is all a channel knows (a LINE or Telegram user is one)."""
    linked: bool = False
    """The conversation is already linked to the ID being checked: the ID's own ceiling does
    not hold it back (its conversation's lock still does)."""

    @property
    def scopes(self) -> tuple[str, ...]:
        """What this attempt is counted under besides the ID: the conversation and the client."""
        chat = f"chat:{self.conversation}"
        client = f"client:{self.client}" if self.client else chat
        return tuple(sorted({chat, client}))


@dataclass(frozen=True)
class Tally:
    """What is counted for one scope: a conversation, a client or an ID number."""

    failures: int = 0
    """Consecutive failures since the last success or lock (a conversation's, a client's)."""
    window_started_at: datetime | None = None
    window_failures: int = 0
    """Failures in the day that began at `window_started_at`."""
    locked_until: datetime | None = None
    notified_at: datetime | None = None
    """An ID's: when its owner was last told that it is being guessed."""

    def locked(self, now: datetime) -> datetime | None:
        """Until when the scope is locked, or None when it is not."""
        if self.locked_until is not None and now < self.locked_until:
            return self.locked_until
        return None


def _in_window(tally: Tally, now: datetime) -> Tally:
    """The tally with a new day begun when its day is over (or none has begun)."""
    started = tally.window_started_at
    if started is None or now >= started + DAY:
        return replace(tally, window_started_at=now, window_failures=0)
    return tally


def _day_end(tally: Tally) -> datetime:
    assert tally.window_started_at is not None
    return tally.window_started_at + DAY


def chat_after_failure(tally: Tally, now: datetime, policy: LockoutPolicy) -> Tally:
    """A conversation's or a client's tally after a failed check: the day's limit locks it
    for the rest of the day, otherwise the fifth consecutive failure for `lock_for`; a lock
    starts the consecutive count over."""
    tally = _in_window(tally, now)
    failures, window_failures = tally.failures + 1, tally.window_failures + 1
    locked_until = tally.locked_until
    if window_failures >= policy.chat_failures_per_day:
        failures, locked_until = 0, max(_day_end(tally), now + policy.lock_for)
    elif failures >= policy.max_failures:
        failures, locked_until = 0, now + policy.lock_for
    return replace(
        tally, failures=failures, window_failures=window_failures, locked_until=locked_until
    )


def chat_after_success(tally: Tally) -> Tally:
    """A success ends a run of failures; the day's count stands."""
    return replace(tally, failures=0)


def id_after_failure(tally: Tally, now: datetime, policy: LockoutPolicy) -> Tally:
    """An ID's tally after a failed check from any conversation: its day's ceiling locks it
    for the rest of the day."""
    tally = _in_window(tally, now)
    window_failures = tally.window_failures + 1
    locked_until = tally.locked_until
    if window_failures >= policy.id_failures_per_day:
        locked_until = _day_end(tally)
    return replace(tally, window_failures=window_failures, locked_until=locked_until)


def notice_due(tally: Tally, policy: LockoutPolicy) -> bool:
    """An ID's owner is to be told it is being guessed: its day's failures reached
    `max_failures`, and the owner was not told yet this day."""
    told = tally.notified_at
    started = tally.window_started_at
    return tally.window_failures >= policy.max_failures and (
        told is None or started is None or told < started
    )


def identity_notice(*, medium: Medium, destination: str, at: datetime) -> OutgoingMessage:
    """The SMS or e-mail telling a customer that checks of their ID failed, in the broker's
    language (the one guessing chose the chat's, not the customer)."""
    locale = DEFAULT_LOCALE
    params = {
        "broker": translate(locale, "brand.name"),
        "time": at.astimezone(TAIPEI).strftime("%H:%M"),
    }
    if medium is Medium.SMS:
        body = translate(locale, "identity.notice.sms", **params)
        return OutgoingMessage(medium, destination, subject="", body=body)
    return OutgoingMessage(
        medium,
        destination,
        subject=translate(locale, "identity.notice.email.subject", **params),
        body=translate(locale, "identity.notice.email.body", **params),
    )


ID_SCOPE_LABEL = b"certdesk/identity-lock/v1"


def id_scope(key: bytes, id_number: str) -> str:
    """The lock scope of an ID number: `id:` and 32 hex digits of its HMAC-SHA256."""
    message = ID_SCOPE_LABEL + b"\x1f" + id_number.encode("utf-8")
    return "id:" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class _Contact:
    id_number: str
    mobile: str | None
    email: str | None


class IdentityVerifier:
    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        clock: Clock,
        scope_key: bytes,
        senders: Mapping[Medium, Sender] | None = None,
        notice_delay: float = NOTICE_DELAY_SECONDS,
    ) -> None:
        if not scope_key:
            raise ValueError("the identity locks need a key for the ID numbers' scopes")
        self.db = db
        self.scope_key = scope_key
        self.policy = LockoutPolicy.from_settings(settings)
        self.clock = clock
        self.audit = AuditTrail(clock)
        self.senders = dict(senders or {})
        """Where notices to a customer whose ID is being guessed go (the code senders)."""
        self.notice_delay = notice_delay
        self._notices: set[asyncio.Task[None]] = set()
        self._hurry = asyncio.Event()

    async def verify(
        self, id_number: str, birth_date: date, *, actor: Actor, attempt: Attempt
    ) -> IdentityResult:
        """Check a checksum-valid ID against the directory; every failure is audited."""
        scope_of_id = id_scope(self.scope_key, id_number)
        notify: _Contact | None = None
        async with self.db.write() as conn:
            now = self.clock()
            await lock_customer(conn, id_number)  # one check per ID at a time, on any backend
            tallies = await _tallies(conn, (*attempt.scopes, scope_of_id), now)
            held = _held(tallies, attempt, scope_of_id, now)
            if held is not None:
                await self._audit(conn, actor, id_number, "identity.locked", held)
                return IdentityResult(IdentityOutcome.LOCKED, held)
            known = (
                await conn.execute(
                    select(
                        customers.c.birth_date,
                        customers.c.status,
                        customers.c.mobile,
                        customers.c.email,
                    ).where(customers.c.id_number == id_number)
                )
            ).first()
            matches = (
                known is not None and known.status == ACTIVE and known.birth_date == birth_date
            )
            if matches:
                updated = {scope: chat_after_success(tallies[scope]) for scope in attempt.scopes}
            else:
                updated = {
                    scope: chat_after_failure(tallies[scope], now, self.policy)
                    for scope in attempt.scopes
                }
                guessed = id_after_failure(tallies[scope_of_id], now, self.policy)
                if notice_due(guessed, self.policy):  # known or not: the same write
                    guessed = replace(guessed, notified_at=now)
                    if known is not None and known.status == ACTIVE:
                        notify = _Contact(id_number, known.mobile, known.email)
                updated[scope_of_id] = guessed
            await _save(conn, updated, now)
            await conn.execute(
                delete(identity_locks).where(identity_locks.c.updated_at < now - FORGET_AFTER)
            )
            if matches:
                return IdentityResult(IdentityOutcome.VERIFIED)
            locked_until = _held({**tallies, **updated}, attempt, scope_of_id, now)
            await self._audit(conn, actor, id_number, "identity.failed", locked_until)
        if notify is not None:
            self._notify_later(notify, now)
        if locked_until is not None:
            return IdentityResult(IdentityOutcome.LOCKED, locked_until)
        return IdentityResult(IdentityOutcome.MISMATCH)

    async def flush_notices(self) -> None:
        """Send the notices scheduled so far without waiting out their delay, and return once
        each is sent or has failed (a send is bounded by its sender's timeout): before the
        senders close, and in tests."""
        self._hurry.set()
        try:
            while self._notices:
                await asyncio.gather(*self._notices, return_exceptions=True)
        finally:
            self._hurry.clear()

    def _notify_later(self, contact: _Contact, at: datetime) -> None:
        task = asyncio.get_running_loop().create_task(self._notify(contact, at))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def _notify(self, contact: _Contact, at: datetime) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), self.notice_delay)
        if contact.mobile and Medium.SMS in self.senders:
            medium, destination = Medium.SMS, contact.mobile
        elif contact.email and Medium.EMAIL in self.senders:
            medium, destination = Medium.EMAIL, contact.email
        else:
            log.info("no way to tell %s that its checks fail", mask_id(contact.id_number))
            return
        masked = mask_destination(medium, destination)
        try:
            await self.senders[medium].send(
                identity_notice(medium=medium, destination=destination, at=at)
            )
            async with self.db.write() as conn:
                await self.audit.append(
                    conn,
                    Actor("system", "identity"),
                    action="identity.notified",
                    subject=mask_id(contact.id_number),
                    details={"via": medium.value, "destination": masked},
                )
        except Exception as exc:  # a notice that fails must not end in an unread task error
            log.warning(
                "the notice of failed identity checks to %s was not sent: %s",
                masked,
                getattr(exc, "reason", type(exc).__name__),
            )

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


def _held(
    tallies: Mapping[str, Tally], attempt: Attempt, id_scope: str, now: datetime
) -> datetime | None:
    """Until when this attempt's check is locked: by its conversation, its client, or (unless
    the conversation is the ID's owner's) the ID's ceiling; None when it is not."""
    scopes = [*attempt.scopes] if attempt.linked else [*attempt.scopes, id_scope]
    locks = [until for scope in scopes if (until := tallies[scope].locked(now)) is not None]
    return max(locks, default=None)


async def _tallies(conn: AsyncConnection, scopes: Iterable[str], now: datetime) -> dict[str, Tally]:
    """The tallies of `scopes`, each record created when missing and locked for the rest of
    the transaction, in one order (sorted) so that two checks never wait on each other."""
    wanted = sorted(set(scopes))
    column = identity_locks.c.scope
    found = set((await conn.execute(select(column).where(column.in_(wanted)))).scalars())
    for scope in wanted:
        if scope in found:
            continue
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(identity_locks).values(
                        scope=scope, failures=0, window_failures=0, updated_at=now
                    )
                )
        except IntegrityError:
            pass  # another check created it first; the select below waits for that one
    rows = await conn.execute(
        select(identity_locks).where(column.in_(wanted)).order_by(column).with_for_update()
    )
    return {
        row.scope: Tally(
            failures=row.failures,
            window_started_at=row.window_started_at,
            window_failures=row.window_failures,
            locked_until=row.locked_until,
            notified_at=row.notified_at,
        )
        for row in rows
    }


async def _save(conn: AsyncConnection, tallies: Mapping[str, Tally], now: datetime) -> None:
    for scope, tally in sorted(tallies.items()):
        await conn.execute(
            update(identity_locks)
            .where(identity_locks.c.scope == scope)
            .values(
                failures=tally.failures,
                window_started_at=tally.window_started_at,
                window_failures=tally.window_failures,
                locked_until=tally.locked_until,
                notified_at=tally.notified_at,
                updated_at=now,
            )
        )
