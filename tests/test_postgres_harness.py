"""The suite's own PostgreSQL server (tests/postgres.py): found wherever Debian puts it, and a
clear failure, never a skip, where it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from certcore.errors import DatabaseUnavailable
from certcore.storage import Database
from tests.postgres import BIN_DIR_VARIABLE, PostgresServer, PostgresUnavailable, find_bin_dir


def server_binaries(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)
    return directory


def test_the_newest_debian_version_is_taken(tmp_path: Path) -> None:
    for version in ("9.6", "15", "16"):
        server_binaries(tmp_path / version / "bin")
    (tmp_path / "17" / "bin").mkdir(parents=True)  # a client-only package: no server
    assert find_bin_dir(environ={}, debian=tmp_path) == tmp_path / "16" / "bin"


def test_the_variable_and_the_path_are_looked_at_too(tmp_path: Path) -> None:
    chosen = server_binaries(tmp_path / "opt" / "bin")
    environ = {BIN_DIR_VARIABLE: str(chosen)}
    assert find_bin_dir(environ=environ, debian=tmp_path / "none") == chosen
    assert find_bin_dir(environ={"PATH": str(chosen)}, debian=tmp_path / "none") == chosen


def test_missing_binaries_are_named_with_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailable, match=r"Debian's `postgresql` package"):
        find_bin_dir(environ={"PATH": str(tmp_path)}, debian=tmp_path)


def test_the_session_server_answers_on_loopback(postgres_server: PostgresServer) -> None:
    """The server the PostgreSQL tests use: a plain URL on 127.0.0.1, a password, its own
    temporary directory; each test's database is new and goes away after it."""
    url = postgres_server.url("x")
    assert url.startswith("postgresql://postgres:") and "@127.0.0.1:" in url
    assert postgres_server.root.is_dir() and postgres_server.started
    first, second = postgres_server.create_database(), postgres_server.create_database()
    assert first != second
    for name in (first, second):
        postgres_server.drop_database(name)


async def test_a_stopped_server_is_an_outage_until_it_answers_again() -> None:
    """On a server of its own: PostgreSQL stopped (a restart, a failover) is the database's
    outage (`DatabaseUnavailable`, `reachable` false) rather than any error, and the handle
    answers again once the server is back, with pooled connections replaced."""
    server = PostgresServer(find_bin_dir())
    try:
        server.start()
        db = Database(server.url(server.create_database()))
        try:
            await db.migrate()
            await db.ping()
            server.pause()
            with pytest.raises(DatabaseUnavailable):
                async with db.read() as conn:
                    await conn.execute(select(1))
            assert not db.reachable
            with pytest.raises(DatabaseUnavailable):
                await db.ping()
            server.resume()
            await db.ping()
            assert db.reachable
            async with db.write() as conn:
                assert (await conn.execute(select(1))).scalar_one() == 1
        finally:
            await db.close()
    finally:
        server.stop()
