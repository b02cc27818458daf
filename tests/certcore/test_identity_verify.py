"""The identity check (DESIGN §3, §6): ID number + ROC birth date against the directory, the same
answer for an unknown ID as for a wrong date, and the locks that keep guessing hopeless without
letting anyone who knows an ID number lock its owner out:

- the guessing conversation, and its client, are locked: 15 minutes after 5 consecutive
  failures, the rest of the day after 10;
- each ID number has a ceiling across all conversations, 20 failures a day, that one client
  cannot reach and that a linked chat of the owner does not obey;
- the owner is told by SMS or e-mail, once a day, that their ID is being guessed;
- every failure is audited with the ID masked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from certcore.audit import Actor, verify_chain
from certcore.clock import FrozenClock, taipei
from certcore.config import Settings, load_settings
from certcore.core import open_database
from certcore.customers import (
    Attempt,
    IdentityOutcome,
    IdentityResult,
    IdentityVerifier,
    LockoutPolicy,
    Tally,
    chat_after_failure,
    chat_after_success,
    id_after_failure,
    notice_due,
)
from certcore.customers.verifier import id_scope
from certcore.errors import ConfigurationError
from certcore.i18n import translate
from certcore.notify import Medium, OutgoingMessage, SendError, SendFailure
from certcore.storage import Database
from certcore.storage.schema import audit_log, customers, identity_locks

BOT = Actor("bot", "line")

ALICE = "A123456789"  # individual, born 民國76年12月5日
ALICE_BORN = date(1987, 12, 5)
ALICE_MOBILE = "0936123054"
BOB = "B123456780"  # suspended
BOB_BORN = date(1990, 1, 2)
ACME = "04595252"  # corporate, registered 民國112年3月15日, e-mail only
ACME_REGISTERED = date(2023, 3, 15)
STRANGER = "F131104093"  # checksum-valid, not a customer
WRONG_DATE = date(1987, 12, 6)

MASKED = {ALICE: "A123XXX89", BOB: "B123XXX80", STRANGER: "F131XXX93", ACME: "0459XXX52"}

MISMATCH = IdentityResult(IdentityOutcome.MISMATCH)
VERIFIED = IdentityResult(IdentityOutcome.VERIFIED)

CHAT = Attempt("line:Uguessing")
SCOPE_KEY = b"identity-scope-key-for-tests"
"""One conversation that is its own client (a LINE user), the usual attempt below."""
PLAUSIBLE_BIRTH_DATES = 36_500
"""About a hundred years of days: what a birth date guessed blind is drawn from."""


def web(session: int, address: str = "203.0.113.7") -> Attempt:
    """A web chat session: a conversation of its own, behind one client address."""
    return Attempt(f"web:session-{session}", client=f"web:{address}")


@dataclass
class RecordingSender:
    sent: list[OutgoingMessage] = field(default_factory=list)
    fail: bool = False

    async def send(self, message: OutgoingMessage) -> str:
        if self.fail:
            raise SendError(SendFailure.GATEWAY_ERROR, "scripted")
        self.sent.append(message)
        return f"r{len(self.sent)}"


@pytest.fixture
def identity_settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(environ={}, data_dir=tmp_path / "var", database_url=database_url or None)


@pytest.fixture
async def db(identity_settings: Settings, clock: FrozenClock) -> AsyncIterator[Database]:
    opened = await open_database(identity_settings)
    directory = [
        (ALICE, "individual", "王小明", ALICE_BORN, "active", ALICE_MOBILE, None),
        (BOB, "individual", "李大同", BOB_BORN, "suspended", "0912000111", None),
        (ACME, "corporate", "示範科技股份有限公司", ACME_REGISTERED, "active", None, "a@acme.tw"),
    ]
    async with opened.write() as conn:
        for id_number, kind, name, born, status, mobile, email in directory:
            await conn.execute(
                insert(customers).values(
                    id_number=id_number,
                    kind=kind,
                    name=name,
                    birth_date=born,
                    mobile=mobile,
                    email=email,
                    accounts=json.dumps(["1020-0324338"]),
                    status=status,
                    created_at=clock(),
                    updated_at=clock(),
                )
            )
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
async def verifier(
    db: Database, identity_settings: Settings, clock: FrozenClock, sender: RecordingSender
) -> AsyncIterator[IdentityVerifier]:
    verifier = IdentityVerifier(
        db=db,
        settings=identity_settings,
        clock=clock,
        scope_key=SCOPE_KEY,
        senders={Medium.SMS: sender, Medium.EMAIL: sender},
    )
    yield verifier
    await verifier.flush_notices()


async def audit_rows(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        result = await conn.execute(select(audit_log).order_by(audit_log.c.seq))
        return [dict(row._mapping) for row in result]


def locked(until: datetime) -> IdentityResult:
    return IdentityResult(IdentityOutcome.LOCKED, until)


# -- the pure rules --------------------------------------------------------------------------

NOW = taipei(2026, 11, 24, 10, 0, 0)
POLICY = LockoutPolicy(
    max_failures=5,
    lock_for=timedelta(minutes=15),
    chat_failures_per_day=10,
    id_failures_per_day=20,
)


def test_lockout_policy_defaults_are_the_design_numbers() -> None:
    assert LockoutPolicy.from_settings(Settings()) == POLICY


def test_one_client_cannot_reach_the_ceiling_and_guessing_stays_hopeless() -> None:
    """The numbers the defaults promise, and any configuration must keep."""
    policy = LockoutPolicy.from_settings(Settings())
    # One client fails at most `chat_failures_per_day` times a day: short of the ID's ceiling,
    # so one attacker cannot lock the owner out.
    assert policy.chat_failures_per_day < policy.id_failures_per_day
    # Every conversation together tries at most `id_failures_per_day` dates of one ID a day
    # (a day being the ceiling's window, from its first failure): 20 of ~36,500 plausible
    # birth dates, a chance of 0.055 % a day — and each such day its owner is told.
    chance_per_day = policy.id_failures_per_day / PLAUSIBLE_BIRTH_DATES
    assert chance_per_day == pytest.approx(0.000548, abs=1e-6)
    assert chance_per_day < 0.001
    # A configuration that would let one client lock the owner out does not load.
    with pytest.raises(ConfigurationError, match="identity_chat_failures_per_day"):
        load_settings(environ={}, identity_chat_failures_per_day=20)
    with pytest.raises(ConfigurationError, match="identity_chat_failures_per_day"):
        load_settings(environ={}, identity_max_failures=6, identity_chat_failures_per_day=5)


def _fail_chat(times: int, now: datetime = NOW, tally: Tally | None = None) -> Tally:
    tally = tally or Tally()
    for _ in range(times):
        tally = chat_after_failure(tally, now, POLICY)
    return tally


def test_a_conversation_is_locked_after_five_consecutive_failures() -> None:
    assert _fail_chat(4) == Tally(4, NOW, 4, None)
    assert _fail_chat(5) == Tally(0, NOW, 5, NOW + timedelta(minutes=15))  # and starts over
    assert _fail_chat(4, tally=chat_after_success(_fail_chat(4))) == Tally(4, NOW, 8, None)


def test_a_conversation_is_locked_for_the_day_after_ten_failures() -> None:
    later = NOW + timedelta(hours=3)
    tally = _fail_chat(4, later, chat_after_success(_fail_chat(4)))  # a success in between
    assert tally == Tally(4, NOW, 8, None)
    tally = _fail_chat(1, later, tally)  # the fifth in a row
    assert tally.locked_until == later + timedelta(minutes=15)
    tally = _fail_chat(1, later + timedelta(minutes=15), tally)  # the tenth of the day
    assert tally == Tally(0, NOW, 10, NOW + timedelta(days=1))
    # A new day starts a new count.
    next_day = NOW + timedelta(days=1)
    assert _fail_chat(1, next_day, tally) == Tally(1, next_day, 1, NOW + timedelta(days=1))


def test_an_id_is_locked_for_the_day_at_its_ceiling_and_its_owner_told_once() -> None:
    tally = Tally()
    for n in range(1, 20):
        tally = id_after_failure(tally, NOW + timedelta(minutes=n), POLICY)
        assert tally.locked_until is None
        assert notice_due(tally, POLICY) is (n >= 5)
    tally = id_after_failure(tally, NOW + timedelta(hours=5), POLICY)
    assert tally.locked_until == NOW + timedelta(minutes=1, days=1)  # a day from the first
    told = NOW + timedelta(minutes=5)
    assert not notice_due(dataclasses.replace(tally, notified_at=told), POLICY)
    next_day = id_after_failure(tally, NOW + timedelta(days=1, minutes=1), POLICY)
    assert next_day.window_failures == 1 and not notice_due(next_day, POLICY)


# -- verifying -----------------------------------------------------------------------------


@pytest.mark.parametrize(("id_number", "born"), [(ALICE, ALICE_BORN), (ACME, ACME_REGISTERED)])
async def test_right_id_and_date_is_verified(
    verifier: IdentityVerifier, db: Database, id_number: str, born: date
) -> None:
    result = await verifier.verify(id_number, born, actor=BOT, attempt=CHAT)
    assert result == VERIFIED
    assert result.verified
    assert result.locked_until is None
    assert await audit_rows(db) == []  # failures are audited, not every success


@pytest.mark.parametrize(
    ("case", "id_number", "born"),
    [
        ("wrong date", ALICE, WRONG_DATE),
        ("another customer's date", ALICE, BOB_BORN),
        ("unknown ID", STRANGER, ALICE_BORN),
        ("unknown ID, wrong date too", STRANGER, WRONG_DATE),
        ("suspended customer, right date", BOB, BOB_BORN),
        ("corporate, wrong date", ACME, date(2023, 3, 16)),
    ],
)
async def test_every_failure_gives_the_same_mismatch(
    verifier: IdentityVerifier, db: Database, case: str, id_number: str, born: date
) -> None:
    result = await verifier.verify(id_number, born, actor=BOT, attempt=CHAT)
    assert result == MISMATCH, case
    assert dataclasses.asdict(result) == {"outcome": IdentityOutcome.MISMATCH, "locked_until": None}
    assert not result.verified
    [record] = await audit_rows(db)
    assert record["action"] == "identity.failed"
    assert record["subject"] == MASKED[id_number]
    assert json.loads(record["details"]) == {"locked_until": None}


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL the database is sent meanwhile (the statements' text, not their values)."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_unknown_id_and_wrong_date_are_indistinguishable(
    verifier: IdentityVerifier, db: Database, sender: RecordingSender
) -> None:
    """In words, in the records, and in the work done: the same statements, in the same
    order, for a customer's ID as for any other, up to the fifth failure that tells a
    customer, and the lock."""
    customer, stranger = Attempt("line:Ucustomer"), Attempt("line:Ustranger")
    await verifier.verify(ACME, WRONG_DATE, actor=BOT, attempt=CHAT)  # the audit chain begun
    for n in range(1, 6):
        with statements(db) as for_customer:
            wrong_date = await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=customer)
        told, sender.sent = list(sender.sent), []
        await verifier.flush_notices()  # (sent meanwhile, outside what is compared)
        with statements(db) as for_stranger:
            unknown = await verifier.verify(STRANGER, ALICE_BORN, actor=BOT, attempt=stranger)
        assert for_customer == for_stranger, f"failure {n}"
        assert wrong_date == unknown
        assert dataclasses.asdict(wrong_date) == dataclasses.asdict(unknown)
    assert wrong_date == unknown == locked(NOW + timedelta(minutes=15))
    assert told == []  # the customer's notice was not sent on the answer's path
    records = [r for r in (await audit_rows(db))[1:] if r["action"] != "identity.notified"]
    # The audit records differ only in the (masked) subject, their place in the chain and time.
    for first, second in zip(records[::2], records[1::2], strict=True):
        for key in ("actor", "channel", "action", "details"):
            assert first[key] == second[key], key
    async with db.read() as conn:
        rows = {row.scope: row for row in await conn.execute(select(identity_locks))}
    alice, stranger_id = rows[id_scope(SCOPE_KEY, ALICE)], rows[id_scope(SCOPE_KEY, STRANGER)]
    for column in ("failures", "window_failures", "locked_until", "notified_at"):
        assert getattr(alice, column) == getattr(stranger_id, column), column
    assert [m.destination for m in sender.sent] == [ALICE_MOBILE]  # but afterwards


async def test_five_failures_lock_the_guessing_conversation_not_the_id(
    verifier: IdentityVerifier, clock: FrozenClock
) -> None:
    """The defect: five wrong dates from any chat kept the ID's real owner out."""
    until = clock() + timedelta(minutes=15)
    script = [
        (WRONG_DATE, MISMATCH),
        (WRONG_DATE, MISMATCH),
        (WRONG_DATE, MISMATCH),
        (WRONG_DATE, MISMATCH),
        (WRONG_DATE, locked(until)),  # the fifth locks
        (ALICE_BORN, locked(until)),  # right, but locked
        (WRONG_DATE, locked(until)),  # doesn't extend
    ]
    for n, (born, expected) in enumerate(script, start=1):
        assert await verifier.verify(ALICE, born, actor=BOT, attempt=CHAT) == expected, n
    owner = Attempt("line:Uowner")
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=owner) == VERIFIED

    clock.advance(minutes=14, seconds=59)
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=CHAT) == locked(until)
    clock.advance(seconds=1)  # exactly 15 minutes after the lock
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=CHAT) == VERIFIED


async def test_a_locked_conversation_is_locked_for_every_id(verifier: IdentityVerifier) -> None:
    for _ in range(5):
        await verifier.verify(STRANGER, ALICE_BORN, actor=BOT, attempt=CHAT)
    for id_number, born in ((ALICE, ALICE_BORN), (ACME, ACME_REGISTERED)):
        result = await verifier.verify(id_number, born, actor=BOT, attempt=CHAT)
        assert result.outcome is IdentityOutcome.LOCKED
        assert await verifier.verify(id_number, born, actor=BOT, attempt=web(1)) == VERIFIED


async def test_the_client_is_locked_whichever_of_its_sessions_guesses(
    verifier: IdentityVerifier, clock: FrozenClock
) -> None:
    """New web chat sessions cost nothing: five failures from one address, one per session,
    lock the address in every session, old or new; another address is not held back."""
    for session in range(5):
        result = await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=web(session))
    assert result == locked(clock() + timedelta(minutes=15))
    fresh = await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=web(99))
    assert fresh == locked(clock() + timedelta(minutes=15))
    other = web(100, address="198.51.100.20")
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=other) == VERIFIED


async def test_after_the_lock_the_count_starts_again(
    verifier: IdentityVerifier, clock: FrozenClock
) -> None:
    for _ in range(5):
        await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=CHAT)
    clock.advance(minutes=15)
    results = [await verifier.verify(STRANGER, WRONG_DATE, actor=BOT, attempt=CHAT)]
    results += [await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=CHAT) for _ in "1234"]
    assert results[:4] == [MISMATCH] * 4
    # The tenth failure of the day: locked until the day that began at the first is over.
    assert results[4] == locked(NOW + timedelta(days=1))


async def test_a_success_resets_the_consecutive_count(verifier: IdentityVerifier) -> None:
    for _ in range(4):
        assert await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=CHAT) == MISMATCH
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=CHAT) == VERIFIED
    for _ in range(4):
        assert await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=CHAT) == MISMATCH
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=CHAT) == VERIFIED
    # ... but not the day's: the tenth failure locks, consecutive or not.
    assert (await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=CHAT)).outcome is (
        IdentityOutcome.MISMATCH
    )
    result = await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=CHAT)
    assert result == locked(NOW + timedelta(days=1))


async def dates_checked(db: Database, id_number: str) -> int:
    """How many dates were checked against the ID and found wrong (each failure is audited)."""
    return sum(
        r["action"] == "identity.failed" and r["subject"] == MASKED[id_number]
        for r in await audit_rows(db)
    )


async def test_one_attacker_cannot_lock_the_owner_out_for_a_day(
    verifier: IdentityVerifier, db: Database, clock: FrozenClock
) -> None:
    """One client guessing Alice's date all day long, from a new session every five minutes,
    is held to 10 tries; Alice, from a chat of her own, is never turned away."""
    for session in range(12 * 24):
        await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=web(session))
        if session % 12 == 0:  # every hour
            owner = Attempt(f"line:Uowner{session}")
            assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=owner) == VERIFIED
        clock.advance(minutes=5)
    assert await dates_checked(db, ALICE) == POLICY.chat_failures_per_day


async def test_many_chats_guess_no_more_dates_a_day_than_the_ceiling(
    verifier: IdentityVerifier, db: Database, clock: FrozenClock
) -> None:
    """An attacker with a new client for every guess tries at most 20 of Alice's ~36,500
    plausible birth dates a day (a chance of 20/36,500 = 0.055 % a day); the ceiling then
    locks the ID for the rest of that day, except in a chat Alice linked before, where she can
    still revoke a certificate at once; the next day the count starts again."""
    start = clock()
    guesses = [date(1940, 1, 1) + timedelta(days=n) for n in range(100)]
    results = []
    for attacker, born in enumerate(guesses):
        client = web(attacker, f"10.0.{attacker}.1")
        results.append(await verifier.verify(ALICE, born, actor=BOT, attempt=client))
        clock.advance(minutes=10)
    ceiling = start + timedelta(days=1)
    assert results[:19] == [MISMATCH] * 19
    assert results[19:] == [locked(ceiling)] * 81  # the twentieth failure locks at once
    assert await dates_checked(db, ALICE) == POLICY.id_failures_per_day
    chance_per_day = await dates_checked(db, ALICE) / PLAUSIBLE_BIRTH_DATES
    assert chance_per_day < 0.001
    stranger_chat = Attempt("line:Ufresh")
    owner_unlinked = await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=stranger_chat)
    assert owner_unlinked == locked(ceiling)
    linked = Attempt("line:Ualice", linked=True)
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=linked) == VERIFIED
    assert await verifier.verify(ACME, ACME_REGISTERED, actor=BOT, attempt=CHAT) == VERIFIED
    clock.advance(days=1)
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=stranger_chat) == VERIFIED


async def test_guesses_at_once_from_many_clients_stop_at_the_ceiling(
    verifier: IdentityVerifier, db: Database, clock: FrozenClock
) -> None:
    """Thirty clients guess Alice's birth date at the same moment (on PostgreSQL truly side by
    side): the ID's counter loses no failure, so exactly twenty dates are checked."""
    guesses = [date(1940, 1, 1) + timedelta(days=n) for n in range(30)]
    results = await asyncio.gather(
        *(
            verifier.verify(ALICE, born, actor=BOT, attempt=web(n, f"10.1.{n}.1"))
            for n, born in enumerate(guesses)
        )
    )
    ceiling = clock() + timedelta(days=1)
    assert results.count(MISMATCH) == 19
    assert results.count(locked(ceiling)) == 11
    assert await dates_checked(db, ALICE) == POLICY.id_failures_per_day


async def test_a_suspended_customer_cannot_verify_and_is_locked_like_anyone(
    verifier: IdentityVerifier,
) -> None:
    results = [await verifier.verify(BOB, BOB_BORN, actor=BOT, attempt=CHAT) for _ in range(5)]
    assert results[:4] == [MISMATCH] * 4
    assert results[4].outcome is IdentityOutcome.LOCKED


@pytest.mark.parametrize(
    ("lock_minutes", "max_failures"), [(15, 1), (30, 3)], ids=["1 failure, 15 min", "3, 30 min"]
)
async def test_lockout_follows_configuration(
    db: Database, clock: FrozenClock, tmp_path: Path, lock_minutes: int, max_failures: int
) -> None:
    settings = load_settings(
        environ={},
        data_dir=tmp_path / "var",
        identity_lock_minutes=lock_minutes,
        identity_max_failures=max_failures,
    )
    verifier = IdentityVerifier(db=db, settings=settings, clock=clock, scope_key=SCOPE_KEY)
    results = [
        await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=CHAT)
        for _ in range(max_failures)
    ]
    assert results[:-1] == [MISMATCH] * (max_failures - 1)
    assert results[-1] == locked(clock() + timedelta(minutes=lock_minutes))
    clock.advance(minutes=lock_minutes)
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=CHAT) == VERIFIED


async def test_old_records_are_forgotten(verifier: IdentityVerifier, clock: FrozenClock) -> None:
    for session in range(3):
        await verifier.verify(STRANGER, WRONG_DATE, actor=BOT, attempt=web(session))
    clock.advance(days=2, seconds=1)
    await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=CHAT)
    async with verifier.db.read() as conn:
        scopes = set((await conn.execute(select(identity_locks.c.scope))).scalars())
    assert scopes == {f"chat:{CHAT.conversation}", id_scope(SCOPE_KEY, ALICE)}
    assert not any(ALICE in scope for scope in scopes)  # a keyed hash names nobody


# -- telling the owner -----------------------------------------------------------------------


async def test_the_owner_is_told_once_a_day_that_their_id_is_being_guessed(
    verifier: IdentityVerifier, db: Database, clock: FrozenClock, sender: RecordingSender
) -> None:
    for attacker in range(4):
        await verifier.verify(
            ALICE, WRONG_DATE, actor=BOT, attempt=web(attacker, f"10.1.0.{attacker}")
        )
    await verifier.flush_notices()
    assert sender.sent == []
    clock.advance(minutes=3)
    await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=web(4, "10.1.0.4"))
    assert sender.sent == []  # not before the answer
    await verifier.flush_notices()
    [notice] = sender.sent
    assert notice.medium is Medium.SMS and notice.destination == ALICE_MOBILE
    assert notice.body == translate(
        "zh_TW", "identity.notice.sms", broker=translate("zh_TW", "brand.name"), time="10:03"
    )
    assert ALICE not in notice.body and "1987" not in notice.body
    for attacker in range(5, 12):  # the same day: no more messages, however many failures
        await verifier.verify(
            ALICE, WRONG_DATE, actor=BOT, attempt=web(attacker, f"10.1.0.{attacker}")
        )
    await verifier.flush_notices()
    assert len(sender.sent) == 1
    clock.advance(days=1)
    for attacker in range(20, 25):
        await verifier.verify(
            ALICE, WRONG_DATE, actor=BOT, attempt=web(attacker, f"10.1.0.{attacker}")
        )
    await verifier.flush_notices()
    assert len(sender.sent) == 2
    notified = [r for r in await audit_rows(db) if r["action"] == "identity.notified"]
    assert [(r["subject"], json.loads(r["details"])) for r in notified] == [
        (MASKED[ALICE], {"via": "sms", "destination": "0936XXX054"})
    ] * 2


async def test_a_customer_with_only_an_e_mail_is_told_by_e_mail(
    verifier: IdentityVerifier, sender: RecordingSender
) -> None:
    for _ in range(5):
        await verifier.verify(ACME, WRONG_DATE, actor=BOT, attempt=CHAT)
    await verifier.flush_notices()
    [notice] = sender.sent
    assert notice.medium is Medium.EMAIL and notice.destination == "a@acme.tw"
    assert notice.subject and "{" not in notice.body


@pytest.mark.parametrize("id_number", [STRANGER, BOB], ids=["unknown", "suspended"])
async def test_nobody_is_told_for_an_id_that_is_no_active_customer(
    verifier: IdentityVerifier, sender: RecordingSender, id_number: str
) -> None:
    for _ in range(5):
        await verifier.verify(id_number, WRONG_DATE, actor=BOT, attempt=CHAT)
    await verifier.flush_notices()
    assert sender.sent == []


async def test_a_notice_that_cannot_be_sent_is_logged_and_nothing_else(
    verifier: IdentityVerifier, sender: RecordingSender, caplog: pytest.LogCaptureFixture
) -> None:
    sender.fail = True
    for _ in range(5):
        result = await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=CHAT)
    assert result.outcome is IdentityOutcome.LOCKED
    await verifier.flush_notices()
    [warning] = [r for r in caplog.records if r.name == "certdesk.identity"]
    assert warning.levelno == logging.WARNING
    assert ALICE_MOBILE not in warning.getMessage() and "0936XXX054" in warning.getMessage()


# -- the audit trail and the logs ----------------------------------------------------------


async def test_each_failure_is_audited_with_the_masked_id_only(
    verifier: IdentityVerifier, db: Database, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        await verifier.verify(ALICE, WRONG_DATE, actor=BOT, attempt=CHAT)
    await verifier.flush_notices()
    await verifier.verify(ALICE, ALICE_BORN, actor=BOT, attempt=CHAT)  # during the lock
    await verifier.verify(STRANGER, ALICE_BORN, actor=BOT, attempt=web(1))
    await verifier.verify(BOB, BOB_BORN, actor=BOT, attempt=web(2))
    await verifier.flush_notices()

    records = await audit_rows(db)
    assert [(r["action"], r["subject"]) for r in records] == [
        ("identity.failed", "A123XXX89"),
        ("identity.failed", "A123XXX89"),
        ("identity.failed", "A123XXX89"),
        ("identity.failed", "A123XXX89"),
        ("identity.failed", "A123XXX89"),
        ("identity.notified", "A123XXX89"),
        ("identity.locked", "A123XXX89"),
        ("identity.failed", "F131XXX93"),
        ("identity.failed", "B123XXX80"),
    ]
    locked_until = (clock() + timedelta(minutes=15)).astimezone(UTC).isoformat()
    assert [json.loads(records[n]["details"])["locked_until"] for n in (3, 4, 6)] == [
        None,
        locked_until,
        locked_until,
    ]
    assert {(r["actor"], r["channel"]) for r in records} == {
        ("bot", "line"),
        ("system", "identity"),
    }
    full_ids = (ALICE, STRANGER, BOB)
    for record in records:
        text = json.dumps(record, ensure_ascii=False)
        assert not any(full in text for full in full_ids)
        assert "1987" not in record["details"]  # nor the date that was typed
        assert ALICE_MOBILE not in text
    async with db.read() as conn:
        assert await verify_chain(conn) == len(records)
    for logged in caplog.records:
        text = logged.getMessage()
        assert not any(full in text for full in full_ids), logged.name
