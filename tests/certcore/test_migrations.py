"""Migrations and schema cannot drift apart.

`certcore/storage/schema.py` is what the code queries; the Alembic revisions are what creates
a real database. Autogenerate's comparison of a freshly migrated database with the metadata must
find nothing: no missing or extra table, column, index, foreign key, type or nullability.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from certcore.storage import MIGRATIONS_DIR, Database
from certcore.storage.schema import metadata


def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "certdesk.sqlite3"


async def migrate(path: Path, times: int = 1) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        for _ in range(times):
            await db.migrate()
    finally:
        await db.close()


def sync_engine(path: Path) -> Engine:
    return create_engine(f"sqlite:///{path}")


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        found: list[object] = compare_metadata(context, metadata)
        return found


async def test_migrated_database_matches_the_schema_exactly(tmp_path: Path) -> None:
    await migrate(sqlite_file(tmp_path))
    engine = sync_engine(sqlite_file(tmp_path))
    try:
        assert differences(engine) == []
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) == set(metadata.tables) | {"alembic_version"}
        for name, table in metadata.tables.items():
            columns = {c["name"] for c in inspector.get_columns(name)}
            assert columns == {c.name for c in table.columns}, name
    finally:
        engine.dispose()


async def test_comparison_would_notice_drift(tmp_path: Path) -> None:
    """The check above is not vacuous: a column the migrations lack shows up as a diff."""
    await migrate(sqlite_file(tmp_path))
    engine = sync_engine(sqlite_file(tmp_path))
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE certificates DROP COLUMN revoked_reason"))
        diffs = differences(engine)
        assert [(d[0], d[3].name) for d in diffs if isinstance(d, tuple)] == [
            ("add_column", "revoked_reason")
        ]
    finally:
        engine.dispose()


async def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    path = sqlite_file(tmp_path)
    await migrate(path)
    engine = sync_engine(path)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO holder_locks (customer_id, version) VALUES ('A123456789', 3)")
            )
        await migrate(path, times=2)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (head_revision(),)
            ]
            assert conn.execute(text("SELECT customer_id, version FROM holder_locks")).all() == [
                ("A123456789", 3)
            ]
        assert differences(engine) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    """Every revision's downgrade undoes its upgrade, so the chain can be walked both ways."""
    engine = sync_engine(sqlite_file(tmp_path))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        for _ in range(2):
            with engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
            with engine.begin() as conn:
                config.attributes["connection"] = conn
                command.downgrade(config, "base")
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        assert differences(engine) == []
    finally:
        engine.dispose()


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
