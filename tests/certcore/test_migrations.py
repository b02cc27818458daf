"""Migrations and schema cannot drift apart.

`certcore/storage/schema.py` is what the code queries; the Alembic revisions are what creates
a real database. Autogenerate's comparison of a freshly migrated database with the metadata must
find nothing: no missing or extra table, column, index, foreign key, type or nullability.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine

from certcore.storage import MIGRATIONS_DIR, Database
from certcore.storage.schema import metadata
from tests.postgres import PostgresServer

T = TypeVar("T")

pytestmark = pytest.mark.backends("sqlite", "postgresql")


def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "certdesk.sqlite3"


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database without any table: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{sqlite_file(tmp_path)}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_empty_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


async def migrate(url: str, times: int = 1) -> None:
    db = Database(url)
    try:
        for _ in range(times):
            await db.migrate()
    finally:
        await db.close()


async def on(url: str, work: Callable[[Connection], T]) -> T:
    """Run synchronous work (Alembic, the inspector) in one committed transaction of `url`,
    through the project's own async driver: there is no synchronous PostgreSQL driver here."""
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await db.close()


def sync_engine(path: Path) -> Engine:
    return create_engine(f"sqlite:///{path}")


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def differences(conn: Connection) -> list[object]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    found: list[object] = compare_metadata(context, metadata)
    return found


def table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def column_names(conn: Connection) -> dict[str, set[str]]:
    inspector = inspect(conn)
    return {
        name: {c["name"] for c in inspector.get_columns(name)}
        for name in inspector.get_table_names()
    }


async def test_migrated_database_matches_the_schema_exactly(empty_url: str) -> None:
    await migrate(empty_url)
    assert await on(empty_url, differences) == []
    assert await on(empty_url, table_names) == set(metadata.tables) | {"alembic_version"}
    columns = await on(empty_url, column_names)
    for name, table in metadata.tables.items():
        assert columns[name] == {c.name for c in table.columns}, name


async def test_comparison_would_notice_drift(empty_url: str) -> None:
    """The check above is not vacuous: a column the migrations lack shows up as a diff."""
    await migrate(empty_url)

    def drop_and_compare(conn: Connection) -> list[object]:
        conn.execute(text("ALTER TABLE certificates DROP COLUMN revoked_reason"))
        return differences(conn)

    diffs = await on(empty_url, drop_and_compare)
    assert [(d[0], d[3].name) for d in diffs if isinstance(d, tuple)] == [
        ("add_column", "revoked_reason")
    ]


async def test_migrating_twice_is_harmless(empty_url: str) -> None:
    await migrate(empty_url)
    await on(
        empty_url,
        lambda conn: conn.execute(
            text("INSERT INTO holder_locks (customer_id, version) VALUES ('A123456789', 3)")
        ),
    )
    await migrate(empty_url, times=2)

    def state(conn: Connection) -> tuple[list[object], list[object]]:
        return (
            list(conn.execute(text("SELECT version_num FROM alembic_version")).all()),
            list(conn.execute(text("SELECT customer_id, version FROM holder_locks")).all()),
        )

    assert await on(empty_url, state) == ([(head_revision(),)], [("A123456789", 3)])
    assert await on(empty_url, differences) == []


async def test_downgrade_to_base_and_back(empty_url: str) -> None:
    """Every revision's downgrade undoes its upgrade, so the chain can be walked both ways."""
    for _ in range(2):
        await on(empty_url, lambda conn: command.upgrade(alembic_config(conn), "head"))
        await on(empty_url, lambda conn: command.downgrade(alembic_config(conn), "base"))
        assert await on(empty_url, table_names) <= {"alembic_version"}
    await on(empty_url, lambda conn: command.upgrade(alembic_config(conn), "head"))
    assert await on(empty_url, differences) == []


@pytest.mark.backends("postgresql")
async def test_instances_starting_at_once_migrate_once(empty_url: str) -> None:
    """Several `serve` processes on one new PostgreSQL database: one migrates, the others wait
    for it and find the schema at its head (without the lock, all but one would fail on the
    tables the first created)."""
    await asyncio.gather(*(migrate(empty_url) for _ in range(4)))
    assert await on(empty_url, differences) == []
    versions = await on(
        empty_url,
        lambda conn: list(conn.execute(text("SELECT version_num FROM alembic_version")).all()),
    )
    assert versions == [(head_revision(),)]


@pytest.mark.backends("sqlite")  # the data is SQLite's text timestamps
def test_an_id_lock_carries_over_to_the_identity_locks(tmp_path: Path) -> None:
    """0008: a lock kept per ID number becomes the ID's day, with its failures and its lock;
    and back."""
    engine = sync_engine(sqlite_file(tmp_path))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0007")
            conn.execute(
                text(
                    "INSERT INTO identity_lockouts (id_number, failures, locked_until, updated_at)"
                    " VALUES ('A123456789', 0, '2026-11-24 02:15:00', '2026-11-24 02:00:00'),"
                    " ('F131104093', 3, NULL, '2026-11-24 01:00:00')"
                )
            )
            command.upgrade(config, "0008")
            rows = conn.execute(
                text(
                    "SELECT scope, failures, window_started_at, window_failures, locked_until,"
                    " notified_at FROM identity_locks ORDER BY scope"
                )
            ).all()
            assert rows == [
                ("id:A123456789", 0, "2026-11-24 02:00:00", 0, "2026-11-24 02:15:00", None),
                ("id:F131104093", 0, "2026-11-24 01:00:00", 3, None, None),
            ]
            command.downgrade(config, "0007")
            back = conn.execute(
                text("SELECT id_number, locked_until FROM identity_lockouts ORDER BY id_number")
            ).all()
            assert back == [("A123456789", "2026-11-24 02:15:00"), ("F131104093", None)]
    finally:
        engine.dispose()
