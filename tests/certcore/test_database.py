"""The database handle keeps personal data out of error messages, and its files out of other
users' reach."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from certcore.audit import Actor
from certcore.clock import FrozenClock
from certcore.config import Settings
from certcore.core import Core
from certcore.storage import Database
from certcore.storage.schema import holder_locks


async def test_a_database_error_does_not_carry_the_statements_values(settings: Settings) -> None:
    settings.data_dir.mkdir(exist_ok=True)
    db = Database(settings.database)
    await db.migrate()
    try:
        with pytest.raises(IntegrityError) as caught:
            async with db.write() as conn:
                for _ in range(2):
                    await conn.execute(
                        insert(holder_locks).values(customer_id="A123456789", version=1)
                    )
    finally:
        await db.close()
    assert "A123456789" not in str(caught.value)


@pytest.fixture
def everyday_umask() -> Iterator[None]:
    """The umask most shells run with: new files 0644 unless the project says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.backends("sqlite")  # PostgreSQL's files are the server's
@pytest.mark.usefixtures("everyday_umask")
async def test_the_database_files_are_the_owners_alone_in_a_directory_open_to_others(
    settings: Settings,
    clock: FrozenClock,
    environ: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.data_dir.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="certdesk.core"):
        core = await Core.open(settings, clock=clock, environ=environ)
    try:
        await core.audit.record(Actor("operator:test", "cli"), action="t", subject="", details={})
        for name in ("certdesk.sqlite3", "certdesk.sqlite3-wal", "certdesk.sqlite3-shm"):
            path = settings.data_dir / name
            assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600, name
    finally:
        await core.close()
    [warning] = [r.getMessage() for r in caplog.records if r.name == "certdesk.core"]
    assert str(settings.data_dir) in warning and "mode 755" in warning


@pytest.mark.backends("sqlite")
@pytest.mark.usefixtures("everyday_umask")
async def test_database_files_an_earlier_version_left_open_are_narrowed(
    settings: Settings, clock: FrozenClock, environ: dict[str, str]
) -> None:
    database = settings.data_dir / "certdesk.sqlite3"
    first = await Core.open(settings, clock=clock, environ=environ)
    await first.close()
    database.chmod(0o644)
    stale = settings.data_dir / "certdesk.sqlite3-shm"
    stale.write_bytes(b"")
    stale.chmod(0o664)
    core = await Core.open(settings, clock=clock, environ=environ)
    try:
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
        assert stat.S_IMODE(stale.stat().st_mode) == 0o600
    finally:
        await core.close()


async def test_a_private_data_directory_is_not_warned_about(
    settings: Settings,
    clock: FrozenClock,
    environ: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.data_dir.chmod(0o700)
    core = await Core.open(settings, clock=clock, environ=environ)
    await core.close()
    assert not [r for r in caplog.records if r.name == "certdesk.core"]
