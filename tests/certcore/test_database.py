"""The database handle keeps personal data out of error messages, and its files out of other
users' reach."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, StatementError

from certcore.audit import Actor
from certcore.clock import FrozenClock, taipei
from certcore.config import Settings, load_settings
from certcore.core import Core
from certcore.errors import ConfigurationError
from certcore.storage import Database
from certcore.storage.database import database_url
from certcore.storage.schema import holder_locks, identity_locks


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


# -- the URL and the backends ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgresql://u:p@db.example:5433/certdesk",
            "postgresql+asyncpg://u:p@db.example:5433/certdesk",
        ),
        ("postgres://u:p@db.example/certdesk", "postgresql+asyncpg://u:p@db.example/certdesk"),
        ("postgresql+asyncpg://u@db/certdesk", "postgresql+asyncpg://u@db/certdesk"),
        (
            "postgresql+psycopg2://u@db/certdesk?sslmode=require",
            "postgresql+asyncpg://u@db/certdesk?ssl=require",
        ),
        (
            "sqlite:////var/lib/certdesk/certdesk.sqlite3",
            "sqlite+aiosqlite:////var/lib/certdesk/certdesk.sqlite3",
        ),
        ("sqlite+aiosqlite:///var/certdesk.sqlite3", "sqlite+aiosqlite:///var/certdesk.sqlite3"),
    ],
)
def test_plain_urls_are_given_the_async_driver(given: str, used: str) -> None:
    assert database_url(given) == used


@pytest.mark.parametrize(
    "url", ["mysql://u@db/certdesk", "postgresql+pg8000://u@db/certdesk", "sqlite+pysqlcipher:///x"]
)
def test_another_database_or_driver_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        database_url(url)


async def test_a_database_answers_through_a_plain_url(settings: Settings) -> None:
    """What an operator writes in CERTDESK_DATABASE_URL, `postgres://` too, opens the database
    with the project's driver; `is_sqlite` follows the backend."""
    settings.data_dir.mkdir(exist_ok=True)
    url = settings.database
    spellings = (
        [url, url.replace("postgresql://", "postgres://", 1)]
        if url.startswith("postgresql://")
        else [url]
    )
    for spelling in spellings:
        db = Database(spelling)
        try:
            await db.migrate()
            await db.ping()
            assert db.is_sqlite == spelling.startswith("sqlite")
            assert db.engine.dialect.driver == ("aiosqlite" if db.is_sqlite else "asyncpg")
        finally:
            await db.close()


async def test_times_come_back_as_the_same_instant_in_utc(core: Core) -> None:
    """UTCDateTime: an aware time in any zone is stored as UTC and read back aware, in UTC,
    to the microsecond; a naive time is refused before it reaches the database."""
    moment = taipei(2026, 11, 24, 0, 30, 15).replace(microsecond=123456)
    async with core.db.write() as conn:
        await conn.execute(
            insert(identity_locks).values(
                scope="id:A123456789", failures=0, window_failures=0, updated_at=moment
            )
        )
    async with core.db.read() as conn:
        stored = (await conn.execute(select(identity_locks.c.updated_at))).scalar_one()
        later = (
            await conn.execute(
                select(identity_locks.c.scope).where(identity_locks.c.updated_at > moment)
            )
        ).all()
    assert stored == moment and stored.tzinfo == UTC and stored.utcoffset() == timedelta(0)
    assert stored.isoformat() == "2026-11-23T16:30:15.123456+00:00"
    assert later == []
    with pytest.raises(StatementError, match="naive datetime"):
        async with core.db.write() as conn:
            await conn.execute(
                update(identity_locks).values(updated_at=datetime(2026, 11, 24, 10, 0))
            )


@pytest.mark.parametrize("url", ["mysql://certdesk:s3cret-pw@db/certdesk", "s3cret-pw"])
def test_a_wrong_database_url_stops_the_start_without_showing_it(url: str) -> None:
    with pytest.raises(ConfigurationError, match="database_url") as caught:
        load_settings(environ={"CERTDESK_DATABASE_URL": url})
    assert "s3cret" not in str(caught.value)
