"""The identity check (DESIGN §3, §6): ID number + ROC birth date against the directory, the same
answer for an unknown ID as for a wrong date, a 15-minute lock after 5 consecutive failures, and
an audit record of every failure with the ID masked."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from certcore.audit import Actor, verify_chain
from certcore.clock import FrozenClock, taipei
from certcore.config import Settings, load_settings
from certcore.core import open_database
from certcore.customers import (
    IdentityOutcome,
    IdentityResult,
    IdentityVerifier,
    LockoutPolicy,
    after_failure,
)
from certcore.storage import Database
from certcore.storage.schema import audit_log, customers, identity_lockouts

BOT = Actor("bot", "line")

ALICE = "A123456789"  # individual, born 民國76年12月5日
ALICE_BORN = date(1987, 12, 5)
BOB = "B123456780"  # suspended
BOB_BORN = date(1990, 1, 2)
ACME = "04595252"  # corporate, registered 民國112年3月15日
ACME_REGISTERED = date(2023, 3, 15)
STRANGER = "F131104093"  # checksum-valid, not a customer
WRONG_DATE = date(1987, 12, 6)

MASKED = {ALICE: "A123XXX89", BOB: "B123XXX80", STRANGER: "F131XXX93", ACME: "0459XXX52"}

MISMATCH = IdentityResult(IdentityOutcome.MISMATCH)
VERIFIED = IdentityResult(IdentityOutcome.VERIFIED)


@pytest.fixture
def identity_settings(tmp_path: Path) -> Settings:
    return load_settings(environ={}, data_dir=tmp_path / "var")


@pytest.fixture
async def db(identity_settings: Settings, clock: FrozenClock) -> AsyncIterator[Database]:
    opened = await open_database(identity_settings)
    directory = [
        (ALICE, "individual", "王小明", ALICE_BORN, "active"),
        (BOB, "individual", "李大同", BOB_BORN, "suspended"),
        (ACME, "corporate", "示範科技股份有限公司", ACME_REGISTERED, "active"),
    ]
    async with opened.write() as conn:
        for id_number, kind, name, born, status in directory:
            await conn.execute(
                insert(customers).values(
                    id_number=id_number,
                    kind=kind,
                    name=name,
                    birth_date=born,
                    mobile="0936123054",
                    email=None,
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
def verifier(db: Database, identity_settings: Settings, clock: FrozenClock) -> IdentityVerifier:
    return IdentityVerifier(db=db, settings=identity_settings, clock=clock)


async def audit_rows(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        result = await conn.execute(select(audit_log).order_by(audit_log.c.seq))
        return [dict(row._mapping) for row in result]


# -- the pure rule -------------------------------------------------------------------------

NOW = taipei(2026, 11, 24, 10, 0, 0)
POLICY = LockoutPolicy(max_failures=5, lock_for=timedelta(minutes=15))


def test_lockout_policy_defaults_are_the_design_numbers() -> None:
    assert LockoutPolicy.from_settings(Settings()) == POLICY


@pytest.mark.parametrize(
    ("failures_before", "policy", "expected"),
    [
        (0, POLICY, (1, None)),
        (1, POLICY, (2, None)),
        (3, POLICY, (4, None)),
        (4, POLICY, (0, NOW + timedelta(minutes=15))),  # the fifth locks and starts over
        (9, POLICY, (0, NOW + timedelta(minutes=15))),
        (0, LockoutPolicy(1, timedelta(minutes=1)), (0, NOW + timedelta(minutes=1))),
        (2, LockoutPolicy(3, timedelta(hours=1)), (0, NOW + timedelta(hours=1))),
        (1, LockoutPolicy(3, timedelta(hours=1)), (2, None)),
    ],
)
def test_after_failure(
    failures_before: int, policy: LockoutPolicy, expected: tuple[int, datetime | None]
) -> None:
    assert after_failure(failures_before, NOW, policy) == expected


# -- verifying -----------------------------------------------------------------------------


@pytest.mark.parametrize(("id_number", "born"), [(ALICE, ALICE_BORN), (ACME, ACME_REGISTERED)])
async def test_right_id_and_date_is_verified(
    verifier: IdentityVerifier, db: Database, id_number: str, born: date
) -> None:
    result = await verifier.verify(id_number, born, actor=BOT)
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
    result = await verifier.verify(id_number, born, actor=BOT)
    assert result == MISMATCH, case
    assert dataclasses.asdict(result) == {"outcome": IdentityOutcome.MISMATCH, "locked_until": None}
    assert not result.verified
    [record] = await audit_rows(db)
    assert record["action"] == "identity.failed"
    assert record["subject"] == MASKED[id_number]
    assert json.loads(record["details"]) == {"locked_until": None}


async def test_unknown_id_and_wrong_date_are_indistinguishable(
    verifier: IdentityVerifier, db: Database
) -> None:
    wrong_date = await verifier.verify(ALICE, WRONG_DATE, actor=BOT)
    unknown = await verifier.verify(STRANGER, ALICE_BORN, actor=BOT)
    assert wrong_date == unknown == MISMATCH
    assert type(wrong_date) is type(unknown)
    assert dataclasses.asdict(wrong_date) == dataclasses.asdict(unknown)
    first, second = await audit_rows(db)
    # The audit records differ only in the (masked) subject, their place in the chain and time.
    for key in ("actor", "channel", "action", "details"):
        assert first[key] == second[key], key
    # And the unknown ID is locked exactly like a customer's: five tries, then the same lock.
    for _ in range(4):
        await verifier.verify(ALICE, WRONG_DATE, actor=BOT)
        await verifier.verify(STRANGER, ALICE_BORN, actor=BOT)
    async with db.read() as conn:
        locks = {
            row.id_number: (row.failures, row.locked_until)
            for row in await conn.execute(select(identity_lockouts))
        }
    assert locks[ALICE] == locks[STRANGER] == (0, NOW + timedelta(minutes=15))


async def test_five_failures_lock_the_check_for_fifteen_minutes(
    verifier: IdentityVerifier, clock: FrozenClock
) -> None:
    locked_until = clock() + timedelta(minutes=15)
    script = [
        (WRONG_DATE, MISMATCH),
        (WRONG_DATE, MISMATCH),
        (WRONG_DATE, MISMATCH),
        (WRONG_DATE, MISMATCH),
        (WRONG_DATE, IdentityResult(IdentityOutcome.LOCKED, locked_until)),  # the fifth locks
        (ALICE_BORN, IdentityResult(IdentityOutcome.LOCKED, locked_until)),  # right, but locked
        (WRONG_DATE, IdentityResult(IdentityOutcome.LOCKED, locked_until)),  # doesn't extend
    ]
    for n, (born, expected) in enumerate(script, start=1):
        assert await verifier.verify(ALICE, born, actor=BOT) == expected, f"attempt {n}"

    clock.advance(minutes=14, seconds=59)
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT) == IdentityResult(
        IdentityOutcome.LOCKED, locked_until
    )
    clock.advance(seconds=1)  # exactly 15 minutes after the lock
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT) == VERIFIED


async def test_after_the_lock_the_count_starts_again(
    verifier: IdentityVerifier, clock: FrozenClock
) -> None:
    for _ in range(5):
        await verifier.verify(ALICE, WRONG_DATE, actor=BOT)
    clock.advance(minutes=15)
    results = [await verifier.verify(ALICE, WRONG_DATE, actor=BOT) for _ in range(5)]
    assert results[:4] == [MISMATCH] * 4
    assert results[4] == IdentityResult(IdentityOutcome.LOCKED, clock() + timedelta(minutes=15))


async def test_a_success_resets_the_failure_count(verifier: IdentityVerifier) -> None:
    for _ in range(4):
        assert await verifier.verify(ALICE, WRONG_DATE, actor=BOT) == MISMATCH
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT) == VERIFIED
    for _ in range(4):
        assert await verifier.verify(ALICE, WRONG_DATE, actor=BOT) == MISMATCH
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT) == VERIFIED
    # Only five consecutive failures lock.
    results = [await verifier.verify(ALICE, WRONG_DATE, actor=BOT) for _ in range(5)]
    assert results[-1].outcome is IdentityOutcome.LOCKED


async def test_the_lock_is_per_id(verifier: IdentityVerifier) -> None:
    for _ in range(5):
        await verifier.verify(STRANGER, ALICE_BORN, actor=BOT)
    assert (await verifier.verify(STRANGER, ALICE_BORN, actor=BOT)).outcome is (
        IdentityOutcome.LOCKED
    )
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT) == VERIFIED
    assert await verifier.verify(ACME, ACME_REGISTERED, actor=BOT) == VERIFIED


async def test_a_suspended_customer_cannot_verify_and_is_locked_like_anyone(
    verifier: IdentityVerifier,
) -> None:
    results = [await verifier.verify(BOB, BOB_BORN, actor=BOT) for _ in range(5)]
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
    verifier = IdentityVerifier(db=db, settings=settings, clock=clock)
    results = [await verifier.verify(ALICE, WRONG_DATE, actor=BOT) for _ in range(max_failures)]
    assert results[:-1] == [MISMATCH] * (max_failures - 1)
    assert results[-1] == IdentityResult(
        IdentityOutcome.LOCKED, clock() + timedelta(minutes=lock_minutes)
    )
    clock.advance(minutes=lock_minutes)
    assert await verifier.verify(ALICE, ALICE_BORN, actor=BOT) == VERIFIED


# -- the audit trail and the logs ----------------------------------------------------------


async def test_each_failure_is_audited_with_the_masked_id_only(
    verifier: IdentityVerifier, db: Database, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        await verifier.verify(ALICE, WRONG_DATE, actor=BOT)
    await verifier.verify(ALICE, ALICE_BORN, actor=BOT)  # during the lock
    await verifier.verify(STRANGER, ALICE_BORN, actor=BOT)
    await verifier.verify(BOB, BOB_BORN, actor=BOT)

    records = await audit_rows(db)
    assert [(r["action"], r["subject"]) for r in records] == [
        ("identity.failed", "A123XXX89"),
        ("identity.failed", "A123XXX89"),
        ("identity.failed", "A123XXX89"),
        ("identity.failed", "A123XXX89"),
        ("identity.failed", "A123XXX89"),
        ("identity.locked", "A123XXX89"),
        ("identity.failed", "F131XXX93"),
        ("identity.failed", "B123XXX80"),
    ]
    locked_until = (clock() + timedelta(minutes=15)).astimezone(UTC).isoformat()
    assert [json.loads(r["details"])["locked_until"] for r in records[3:6]] == [
        None,
        locked_until,
        locked_until,
    ]
    assert {(r["actor"], r["channel"]) for r in records} == {("bot", "line")}
    full_ids = (ALICE, STRANGER, BOB)
    for record in records:
        text = json.dumps(record, ensure_ascii=False)
        assert not any(full in text for full in full_ids)
        assert "1987" not in record["details"]  # nor the date that was typed
    async with db.read() as conn:
        assert await verify_chain(conn) == len(records)
    for logged in caplog.records:
        text = logged.getMessage()
        assert not any(full in text for full in full_ids), logged.name
