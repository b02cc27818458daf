"""Certificate delivery (DESIGN §4): issuance when the export password is set, the kept .pfx for
a broken download (15 minutes, at most 3 downloads), then erased."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import select

from certcore.audit import Actor
from certcore.clock import FrozenClock
from certcore.config import Settings
from certcore.core import Core
from certcore.errors import InvalidExportPassword, OtpNoActiveCode
from certcore.notify import Medium
from certcore.otp import Binding, Operation
from certcore.pki import (
    DeliveryState,
    DeliveryUnavailable,
    RecordState,
    RevocationReason,
    token_hash,
)
from certcore.pki.records import certificates_of
from certcore.storage.groupcommit import GroupCommitter
from certcore.storage.schema import audit_log, deliveries, dev_outbox

CUSTOMER = "A123456789"
CUSTOMER_ACTOR = Actor("customer@console:test", "console")


async def verified(core: Core, operation: Operation = Operation.APPLY) -> tuple[Binding, int]:
    """A code sent through the development outbox and typed back: the receipt flows spend."""
    binding = Binding(CUSTOMER, "console:test", operation)
    await core.otp.send(
        binding,
        medium=Medium.SMS,
        destination="0936123054",
        locale="zh_TW",
        actor=CUSTOMER_ACTOR,
    )
    async with core.db.read() as conn:
        body = (
            await conn.execute(select(dev_outbox.c.body).order_by(dev_outbox.c.id.desc()))
        ).scalar()
    assert body is not None
    match = re.search(r"[A-Z]{4}-(\d{6})", body)
    assert match is not None
    code = match.group(1)
    return binding, await core.otp.verify(binding, code, actor=CUSTOMER_ACTOR)


async def opened(core: Core, operation: Operation = Operation.APPLY, renewal_of: str | None = None):
    binding, receipt = await verified(core, operation)
    return await core.deliveries.open(
        binding=binding,
        receipt=receipt,
        requester="console:test",
        actor=CUSTOMER_ACTOR,
        renewal_of=renewal_of,
    )


async def stored(core: Core, token: str):
    async with core.db.read() as conn:
        return (
            await conn.execute(
                select(deliveries).where(deliveries.c.token_hash == token_hash(token))
            )
        ).one()


async def test_nothing_is_issued_until_the_password_is_set(core: Core) -> None:
    ticket = await opened(core)
    assert ticket.url == f"http://127.0.0.1:8080/d/{ticket.token}"
    async with core.db.read() as conn:
        assert await certificates_of(conn, CUSTOMER) == []
    row = await stored(core, ticket.token)
    assert row.state == "open" and row.pkcs12 is None
    assert ticket.token not in str(row._mapping)  # only the token's hash is kept


async def test_the_password_issues_and_the_file_opens_with_it(core: Core) -> None:
    ticket = await opened(core)
    delivered = await core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR)
    key, certificate, _ = pkcs12.load_key_and_certificates(delivered.pkcs12, b"Abc123")
    assert key is not None and certificate is not None
    assert delivered.filename == "A123456789-CERTDESK(2027-11-24).pfx"
    assert delivered.record is not None and delivered.record.state is RecordState.ISSUED
    described = await core.deliveries.describe(ticket.token)
    assert described is not None and described.state is DeliveryState.ISSUED
    assert described.serial == delivered.serial


async def test_a_delivery_needs_a_fresh_verified_code_and_spends_it(core: Core) -> None:
    binding, receipt = await verified(core)
    await core.deliveries.open(
        binding=binding, receipt=receipt, requester="console:test", actor=CUSTOMER_ACTOR
    )
    with pytest.raises(OtpNoActiveCode):  # one code, one delivery
        await core.deliveries.open(
            binding=binding, receipt=receipt, requester="console:test", actor=CUSTOMER_ACTOR
        )
    renew_binding, renew_receipt = await verified(core, Operation.RENEW)
    with pytest.raises(OtpNoActiveCode):  # a renewal's code does not open an application
        await core.deliveries.open(
            binding=binding, receipt=renew_receipt, requester="console:test", actor=CUSTOMER_ACTOR
        )
    assert renew_binding.operation is Operation.RENEW


async def test_a_verification_older_than_thirty_minutes_opens_nothing(
    core: Core, clock: FrozenClock
) -> None:
    binding, receipt = await verified(core)
    clock.advance(minutes=30)
    with pytest.raises(OtpNoActiveCode):
        await core.deliveries.open(
            binding=binding, receipt=receipt, requester="console:test", actor=CUSTOMER_ACTOR
        )


async def test_a_password_outside_the_policy_issues_nothing(core: Core) -> None:
    ticket = await opened(core)
    with pytest.raises(InvalidExportPassword):
        await core.deliveries.fulfil(ticket.token, "abc", actor=CUSTOMER_ACTOR)
    assert (await stored(core, ticket.token)).state == "open"


async def test_a_broken_download_can_be_retried_twice_in_the_window(core: Core) -> None:
    ticket = await opened(core)
    first = await core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR)
    for _ in range(2):
        again = await core.deliveries.download_again(ticket.token, actor=CUSTOMER_ACTOR)
        assert again.pkcs12 == first.pkcs12 and again.filename == first.filename
    with pytest.raises(DeliveryUnavailable):  # three downloads in all
        await core.deliveries.download_again(ticket.token, actor=CUSTOMER_ACTOR)
    with pytest.raises(DeliveryUnavailable):  # and never a second issuance
        await core.deliveries.fulfil(ticket.token, "Xyz789", actor=CUSTOMER_ACTOR)


async def test_after_fifteen_minutes_the_link_is_dead_and_the_file_erased(
    core: Core, clock: FrozenClock
) -> None:
    unused = await opened(core)
    clock.advance(minutes=1)
    used = await opened(core)
    await core.deliveries.fulfil(used.token, "Abc123", actor=CUSTOMER_ACTOR)
    clock.advance(minutes=15, seconds=1)
    with pytest.raises(DeliveryUnavailable):
        await core.deliveries.download_again(used.token, actor=CUSTOMER_ACTOR)
    with pytest.raises(DeliveryUnavailable):
        await core.deliveries.fulfil(unused.token, "Abc123", actor=CUSTOMER_ACTOR)
    assert (await core.deliveries.describe(unused.token)).state is DeliveryState.EXPIRED  # type: ignore[union-attr]
    assert await core.deliveries.erase_expired() == 0  # the refused reads ended both already
    row = await stored(core, used.token)
    assert row.state == "expired" and row.pkcs12 is None


async def test_two_downloads_racing_for_one_link_issue_one_certificate(core: Core) -> None:
    ticket = await opened(core)
    results = await asyncio.gather(
        core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR),
        core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["DeliveredFile", "DeliveryUnavailable"]
    async with core.db.read() as conn:
        assert len(await certificates_of(conn, CUSTOMER)) == 1


async def test_a_failed_issuance_leaves_the_link_open(core: Core, monkeypatch) -> None:
    ticket = await opened(core)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("CA offline")

    monkeypatch.setattr(core.certificates, "issue", broken)
    with pytest.raises(RuntimeError):
        await core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR)
    monkeypatch.undo()
    assert (await stored(core, ticket.token)).state == "open"
    await core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR)


async def test_a_link_whose_issuance_failed_can_be_used_again(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed issuance abandons its own pending record: the retry is not refused with
    "already holds certificate …" until `serve`'s recovery runs."""
    ticket = await opened(core)

    async def broken_export(**kwargs: object) -> bytes:
        raise ValueError("the export failed")

    monkeypatch.setattr(core.certificates.keywork, "export_pkcs12", broken_export)
    with pytest.raises(ValueError):
        await core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR)
    monkeypatch.undo()
    delivered = await core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR)
    assert delivered.record is not None and delivered.record.state is RecordState.ISSUED


async def test_a_renewal_delivery_supersedes_the_old_certificate(
    core: Core, clock: FrozenClock
) -> None:
    old = await core.certificates.issue(CUSTOMER, "abc123", actor=Actor("operator:t", "cli"))
    clock.advance(days=340)
    ticket = await opened(core, Operation.RENEW, renewal_of=old.record.serial)
    renewed = await core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR)
    async with core.db.read() as conn:
        records = {r.serial: r for r in await certificates_of(conn, CUSTOMER)}
    old_reason = records[old.record.serial].revoked_reason
    assert old_reason is not None
    assert old_reason.value == "superseded"
    assert not records[renewed.serial].revoked


async def test_unknown_tokens_are_unavailable(core: Core) -> None:
    assert await core.deliveries.describe("no-such-token") is None
    with pytest.raises(DeliveryUnavailable):
        await core.deliveries.fulfil("no-such-token", "Abc123", actor=CUSTOMER_ACTOR)


async def linked_records(core: Core) -> list[tuple[str, dict[str, str]]]:
    async with core.db.read() as conn:
        rows = await conn.execute(
            select(audit_log.c.action, audit_log.c.details).order_by(audit_log.c.seq)
        )
        return [(row.action, json.loads(row.details)) for row in rows]


async def test_a_newcomers_code_links_the_chat_in_the_deliverys_transaction(core: Core) -> None:
    binding, receipt = await verified(core)
    await core.deliveries.open(
        binding=binding,
        receipt=receipt,
        requester="console:test",
        actor=CUSTOMER_ACTOR,
        links_conversation=True,
    )
    actions = await linked_records(core)
    opened_at = [a for a, _ in actions].index("delivery.opened")
    action, details = actions[opened_at + 1]
    assert action == "conversation.linked"
    assert details == {"operation": "apply", "conversation": "console:test"}


async def test_without_a_spendable_code_nothing_is_linked(core: Core) -> None:
    binding, receipt = await verified(core)
    await core.deliveries.open(
        binding=binding, receipt=receipt, requester="console:test", actor=CUSTOMER_ACTOR
    )
    with pytest.raises(OtpNoActiveCode):  # the code is spent: neither delivery nor link
        await core.deliveries.open(
            binding=binding,
            receipt=receipt,
            requester="console:test",
            actor=CUSTOMER_ACTOR,
            links_conversation=True,
        )
    assert "conversation.linked" not in [a for a, _ in await linked_records(core)]


async def test_a_newcomers_revocation_code_links_the_chat_with_the_revocation(core: Core) -> None:
    issued = await core.certificates.issue(CUSTOMER, "abc123", actor=Actor("operator:t", "cli"))
    binding, receipt = await verified(core, Operation.REVOKE)
    await core.certificates.revoke(
        issued.record.serial,
        RevocationReason.KEY_COMPROMISE,
        actor=CUSTOMER_ACTOR,
        online=True,
        verification=(binding, receipt),
        links_conversation=True,
    )
    actions = await linked_records(core)
    revoked_at = [a for a, _ in actions].index("certificate.revoked")
    assert actions[revoked_at + 1] == (
        "conversation.linked",
        {"operation": "revoke", "conversation": "console:test"},
    )


# -- the kept file ends with its window, whatever process runs --------------------------------


async def test_the_next_process_to_open_the_core_erases_an_expired_file(
    core: Core, clock: FrozenClock, settings: Settings, environ: dict[str, str]
) -> None:
    """No `serve` running: `certdesk chat` or an operator command opening the core erases the
    file a delivery kept past its window."""
    ticket = await opened(core)
    await core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR)
    clock.advance(minutes=15, seconds=1)
    other = await Core.open(settings, clock=clock, environ=environ)
    await other.close()
    row = await stored(core, ticket.token)
    assert row.state == "expired" and row.pkcs12 is None


async def test_every_delivery_transaction_erases_what_has_expired(
    core: Core, clock: FrozenClock
) -> None:
    kept = await opened(core)
    await core.deliveries.fulfil(kept.token, "Abc123", actor=CUSTOMER_ACTOR)
    clock.advance(minutes=15, seconds=1)
    with pytest.raises(DeliveryUnavailable):  # the read checks the window itself
        await core.deliveries.download_again(kept.token, actor=CUSTOMER_ACTOR)
    row = await stored(core, kept.token)
    assert row.state == "expired" and row.pkcs12 is None


def _connect_without_secure_delete(real: Callable[..., sqlite3.Connection]):
    """`sqlite3.connect` as on a SQLite build whose `secure_delete` default is off (this
    machine's Debian build has it on, which must not be what the erasure relies on)."""

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real(*args, **kwargs)
        conn.execute("PRAGMA secure_delete=OFF")
        return conn

    return connect


@pytest.mark.backends("sqlite")
async def test_every_sqlite_connection_zeroes_what_it_deletes(
    settings: Settings,
    clock: FrozenClock,
    environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite3, "connect", _connect_without_secure_delete(sqlite3.connect))
    core = await Core.open(settings, clock=clock, environ=environ)
    writer = GroupCommitter(settings.database)  # the conversations' writer thread
    try:
        async with core.db.read() as conn:
            assert (await conn.exec_driver_sql("PRAGMA secure_delete")).scalar() == 1
        async with core.db.write() as conn:
            assert (await conn.exec_driver_sql("PRAGMA secure_delete")).scalar() == 1
        pragma = await writer.read(lambda conn: conn.execute("PRAGMA secure_delete").fetchone())
        assert pragma[0] == 1

        # And so the erased file is gone from the database file, not only from its row.
        ticket = await opened(core)
        delivered = await core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR)
        clock.advance(minutes=15, seconds=1)
        assert await core.deliveries.erase_expired() == 1
    finally:
        writer.close()
        await core.close()  # the last connection checkpoints the WAL into the file
    database = settings.data_dir / "certdesk.sqlite3"
    assert not Path(f"{database}-wal").exists()
    content = database.read_bytes()
    pieces = [delivered.pkcs12[i : i + 32] for i in range(0, len(delivered.pkcs12) - 32, 256)]
    assert not [piece for piece in pieces if piece in content]


async def test_the_certificate_and_its_delivery_are_released_together(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure inside the release (the process dying there is the same) leaves neither done:
    no certificate issued whose only key copy is lost, and the link open for another try."""
    ticket = await opened(core)
    real_append = core.deliveries.audit.append

    async def dies_in_the_release(*args: Any, **kwargs: Any) -> int:
        if kwargs.get("action") == "delivery.downloaded":
            raise RuntimeError("the process died here")
        return await real_append(*args, **kwargs)

    monkeypatch.setattr(core.deliveries.audit, "append", dies_in_the_release)
    with pytest.raises(RuntimeError):
        await core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR)
    monkeypatch.undo()
    async with core.db.read() as conn:
        records = await certificates_of(conn, CUSTOMER)
    assert [r.state for r in records] == [RecordState.ABANDONED]
    assert records[0].der is None
    row = await stored(core, ticket.token)
    assert row.state == "open" and row.serial is None and row.pkcs12 is None
    delivered = await core.deliveries.fulfil(ticket.token, "Abc123", actor=CUSTOMER_ACTOR)
    assert delivered.record is not None and delivered.record.state is RecordState.ISSUED


async def test_a_delivery_left_issuing_by_a_dead_process_ends(
    core: Core, clock: FrozenClock
) -> None:
    ticket = await opened(core)
    async with core.db.write() as conn:  # as a process killed in the middle leaves it
        await conn.execute(
            deliveries.update()
            .where(deliveries.c.token_hash == token_hash(ticket.token))
            .values(state="issuing")
        )
    clock.advance(minutes=core.settings.delivery_window_minutes + 1)
    assert (await core.deliveries.describe(ticket.token)).state is DeliveryState.ISSUING  # type: ignore[union-attr]
    assert await core.deliveries.erase_expired() == 0  # another process may still be issuing
    clock.advance(minutes=core.settings.pending_recovery_minutes)
    assert (await core.deliveries.describe(ticket.token)).state is DeliveryState.EXPIRED  # type: ignore[union-attr]
    assert await core.deliveries.erase_expired() == 1
    assert (await stored(core, ticket.token)).state == "expired"
