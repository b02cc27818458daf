"""The audit trail: a hash chain written by the real operations, and what tampering looks like.

One history is recorded per module (issuances, an online revocation, a renewal) and copied for
every test, which then alters the database the way somebody with file access could and checks
that `verify_chain` (and `certdesk audit verify`) names the first bad record.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from certcore.audit import GENESIS, Actor, record_hash, verify_chain
from certcore.clock import FrozenClock, taipei
from certcore.config import load_settings
from certcore.core import Core
from certcore.errors import AuditChainBroken
from certcore.pki import RevocationReason
from certcore.storage import Database
from tests.conftest import TEST_PASSPHRASE

REPO = Path(__file__).resolve().parents[2]

ALICE = "A123456789"
BOB = "B123456780"
COMPANY = "04595252"  # a Unified Business Number
PASSWORD = "Secret42"

CUSTOMER = Actor("customer:line:U0001", "line")
OPERATOR = Actor("operator:test", "cli")

RECORDED = [
    # (seq, action, actor, channel, masked subject)
    (1, "certificate.requested", "customer:line:U0001", "line", "A123XXX89"),
    (2, "certificate.issued", "customer:line:U0001", "line", "A123XXX89"),
    (3, "certificate.requested", "operator:test", "cli", "B123XXX80"),
    (4, "certificate.issued", "operator:test", "cli", "B123XXX80"),
    (5, "certificate.revoked", "customer:line:U0001", "line", "A123XXX89"),
    (6, "certificate.requested", "operator:test", "cli", "B123XXX80"),
    (7, "certificate.renewed", "operator:test", "cli", "B123XXX80"),
    (8, "certificate.revoked", "operator:test", "cli", "B123XXX80"),
    (9, "certificate.requested", "operator:test", "cli", "0459XXX52"),
    (10, "certificate.issued", "operator:test", "cli", "0459XXX52"),
]
LAST = len(RECORDED)


async def _record_history(data_dir: Path, environ: dict[str, str]) -> None:
    clock = FrozenClock(taipei(2026, 11, 24, 10, 0, 0))
    settings = load_settings(environ={}, data_dir=data_dir)
    core = await Core.open(settings, clock=clock, rng=random.Random(7), environ=environ)
    try:
        service = core.certificates
        alice = await service.issue(ALICE, PASSWORD, actor=CUSTOMER)
        bob = await service.issue(BOB, PASSWORD, actor=OPERATOR)
        clock.advance(days=3)
        await service.revoke(
            alice.record.serial, RevocationReason.KEY_COMPROMISE, actor=CUSTOMER, online=True
        )
        clock.now = taipei(2027, 10, 25, 23, 59, 59)  # first second of BOB's renewal window
        await service.renew(bob.record.serial, PASSWORD, actor=OPERATOR)
        clock.advance(hours=1)
        await service.issue(COMPANY, PASSWORD, actor=OPERATOR)
    finally:
        await core.close()


@pytest.fixture(scope="module")
def _recorded_template(tmp_path_factory: pytest.TempPathFactory, _ca_template: Path) -> Path:
    target = tmp_path_factory.mktemp("audit-history") / "var"
    shutil.copytree(_ca_template, target)
    environ = {"CERTDESK_CA_PASSPHRASE": TEST_PASSPHRASE.decode()}
    asyncio.run(_record_history(target, environ))
    return target


@pytest.fixture
def recorded(tmp_path: Path, _recorded_template: Path) -> Path:
    """A data directory whose database holds the recorded history (a fresh copy per test)."""
    target = tmp_path / "var"
    shutil.copytree(_recorded_template, target)
    return target


def database_file(data_dir: Path) -> Path:
    return data_dir / "certdesk.sqlite3"


def rows(data_dir: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(database_file(data_dir)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()


async def verify(data_dir: Path) -> int:
    db = Database(load_settings(environ={}, data_dir=data_dir).database)
    try:
        async with db.read() as conn:
            return await verify_chain(conn)
    finally:
        await db.close()


def tamper(data_dir: Path, change: Callable[[sqlite3.Connection], object]) -> None:
    conn = sqlite3.connect(database_file(data_dir))
    try:
        change(conn)
        conn.commit()
    finally:
        conn.close()


def run_cli(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTDESK_")}
    env.update(environ)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- the chain as the operations write it ---------------------------------------------------


async def test_every_operation_is_recorded_in_order(recorded: Path) -> None:
    records = rows(recorded)
    assert [
        (r["seq"], r["action"], r["actor"], r["channel"], r["subject"]) for r in records
    ] == RECORDED
    assert await verify(recorded) == LAST


def test_records_are_linked_by_their_hashes(recorded: Path) -> None:
    previous = GENESIS
    for record in rows(recorded):
        assert record["prev_hash"] == previous
        fields = ("at", "actor", "channel", "action", "subject", "details")
        assert record["hash"] == record_hash(
            record["prev_hash"], record["seq"], *(record[f] for f in fields)
        )
        previous = record["hash"]


def test_records_carry_utc_times_and_json_details(recorded: Path) -> None:
    records = rows(recorded)
    times = [datetime.fromisoformat(r["at"]) for r in records]
    assert all(t.utcoffset() == timedelta(0) for t in times)
    assert times == sorted(times)
    assert times[0] == taipei(2026, 11, 24, 10, 0, 0)
    revocation = json.loads(records[4]["details"])
    assert revocation["reason"] == "keyCompromise"
    assert revocation["online"] is True
    superseded = json.loads(records[7]["details"])
    assert superseded["reason"] == "superseded"
    assert superseded["superseded_by"] == json.loads(records[6]["details"])["serial"]


def test_no_full_customer_id_or_password_in_any_record(recorded: Path) -> None:
    records = rows(recorded)
    assert {r["subject"] for r in records} == {"A123XXX89", "B123XXX80", "0459XXX52"}
    for record in records:
        text = json.dumps(dict(record), ensure_ascii=False)
        for secret in (ALICE, BOB, COMPANY, PASSWORD):
            assert secret not in text, f"record {record['seq']} contains {secret!r}"


# -- tampering ------------------------------------------------------------------------------


def _rehash(seq: int) -> Callable[[sqlite3.Connection], None]:
    """Alter record `seq` and recompute its own hash, as a careful forger would."""

    def change(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE audit_log SET actor = 'operator:nobody' WHERE seq = ?", (seq,))
        at, actor, channel, action, subject, details, prev_hash = conn.execute(
            "SELECT at, actor, channel, action, subject, details, prev_hash"
            " FROM audit_log WHERE seq = ?",
            (seq,),
        ).fetchone()
        digest = record_hash(prev_hash, seq, at, actor, channel, action, subject, details)
        conn.execute("UPDATE audit_log SET hash = ? WHERE seq = ?", (digest, seq))

    return change


def _sql(*statements: str) -> Callable[[sqlite3.Connection], None]:
    def change(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return change


TAMPERING = [
    pytest.param(
        _sql("UPDATE audit_log SET actor = 'operator:nobody' WHERE seq = 2"),
        2,
        "record 2 was altered",
        id="edit-a-field",
    ),
    pytest.param(
        _sql("UPDATE audit_log SET details = '{}' WHERE seq = 5"),
        5,
        "record 5 was altered",
        id="erase-revocation-details",
    ),
    pytest.param(
        _sql("UPDATE audit_log SET at = '2026-01-01T00:00:00.000000+00:00' WHERE seq = 1"),
        1,
        "record 1 was altered",
        id="backdate-the-first",
    ),
    pytest.param(_rehash(2), 3, "record 3 does not link to record 2", id="edit-and-rehash"),
    pytest.param(
        _sql("DELETE FROM audit_log WHERE seq = 5"), 5, "record 5 is missing", id="delete-middle"
    ),
    pytest.param(
        _sql("DELETE FROM audit_log WHERE seq = 1"), 1, "record 1 is missing", id="delete-first"
    ),
    pytest.param(
        _sql(f"DELETE FROM audit_log WHERE seq = {LAST}"),
        LAST,
        f"record {LAST} is missing (the chain ends at {LAST - 1}, its head says {LAST})",
        id="delete-last-seen-via-head",
    ),
    pytest.param(
        _sql("DELETE FROM audit_log WHERE seq >= 8"),
        8,
        f"record 8 is missing (the chain ends at 7, its head says {LAST})",
        id="cut-off-the-tail",
    ),
    pytest.param(
        _sql("UPDATE audit_head SET hash = '" + "f" * 64 + "'"),
        LAST,
        f"record {LAST} does not match the chain head",
        id="forge-the-head",
    ),
]


@pytest.mark.parametrize(("change", "seq", "message"), TAMPERING)
async def test_tampering_is_detected_at_the_first_bad_record(
    recorded: Path, change: Callable[[sqlite3.Connection], None], seq: int, message: str
) -> None:
    tamper(recorded, change)
    with pytest.raises(AuditChainBroken) as broken:
        await verify(recorded)
    assert message in str(broken.value)
    assert broken.value.seq == seq


async def test_empty_trail_verifies_as_zero_records(tmp_path: Path) -> None:
    db = Database(load_settings(environ={}, data_dir=tmp_path).database)
    try:
        await db.migrate()
        async with db.read() as conn:
            assert await verify_chain(conn) == 0
    finally:
        await db.close()


# -- certdesk audit verify ------------------------------------------------------------------


def test_cli_verify_reports_the_count_then_the_altered_record(
    recorded: Path, environ: dict[str, str]
) -> None:
    intact = run_cli("audit", "verify", "--data-dir", str(recorded), environ=environ)
    assert intact.returncode == 0, intact.stderr
    assert f"{LAST} records" in intact.stdout

    tamper(recorded, _sql("UPDATE audit_log SET actor = 'operator:nobody' WHERE seq = 2"))
    altered = run_cli("audit", "verify", "--data-dir", str(recorded), environ=environ)
    assert altered.returncode != 0
    assert "record 2" in altered.stderr
    assert "Traceback" not in altered.stderr
    assert len(altered.stderr.strip().splitlines()) == 1


def test_cli_verify_names_a_removed_record(recorded: Path, environ: dict[str, str]) -> None:
    tamper(recorded, _sql("DELETE FROM audit_log WHERE seq = 5"))
    removed = run_cli("audit", "verify", "--data-dir", str(recorded), environ=environ)
    assert removed.returncode != 0
    assert "record 5 is missing" in removed.stderr
    assert "Traceback" not in removed.stderr
