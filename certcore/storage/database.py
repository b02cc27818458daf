"""The database handle: one async engine, migrations, and the two kinds of transaction.

The URL is SQLite (the embedded default, aiosqlite) or PostgreSQL. Operators write PostgreSQL
URLs the way every other tool takes them (`postgresql://user:pass@host/db`, `postgres://…`);
SQLAlchemy would read those as psycopg2, which the project does not ship, so they are mapped
to asyncpg here, the one place that knows the drivers.

`write()` is for every transaction that reads in order to decide what to write (the quota, the
one-valid-certificate rule, the audit chain). On SQLite it starts with BEGIN IMMEDIATE, taking
the write lock up front: a deferred transaction that reads first and upgrades later can fail
with "database is locked" instead of waiting. On PostgreSQL the same code relies on row locks
(`SELECT … FOR UPDATE`), which SQLite's dialect simply leaves out.

A database that does not answer (stopped, restarting, unreachable, its disk full) surfaces as
one error, `DatabaseUnavailable`, whatever the driver said, and the handle remembers the outage
(`reachable`) until a `ping` gets an answer: the web application then refuses new work with 503
so the platforms redeliver later, and the engine waits for it before trying an event again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import CursorResult, event, select, text
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from certcore.errors import DatabaseUnavailable

log = logging.getLogger("certdesk.database")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_IMMEDIATE = "certdesk_immediate"

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA synchronous=NORMAL",
    # Deleted and overwritten content (the kept .pfx once its delivery window ends) is zeroed in
    # the file instead of lingering in free pages; SQLite builds differ in their default.
    "PRAGMA secure_delete=ON",
)
"""What every SQLite connection the project opens runs first: the engine's and the writer
thread's (`groupcommit`) alike."""

# aiosqlite logs every statement *with its parameters* (full ID numbers, mobile numbers,
# e-mail addresses) at DEBUG, so a process run at DEBUG would leak them into its logs. Quiet it
# the way SQLAlchemy quiets its own loggers (WARN unless configured); an operator who really
# wants the statements can still lower the level explicitly after import.
if logging.getLogger("aiosqlite").level == logging.NOTSET:
    logging.getLogger("aiosqlite").setLevel(logging.INFO)


POSTGRESQL_POOL = {
    # Each instance keeps a few connections open and may burst to twice as many; several
    # instances share one server, whose default max_connections is 100.
    "pool_size": 10,
    "max_overflow": 10,
    # A connection the server closed (a restart, a failover, an idle timeout in a pooler) is
    # found out before a request uses it, not in the middle of a customer's event.
    "pool_pre_ping": True,
    # Older than this, a pooled connection is replaced: proxies and firewalls drop idle
    # connections silently after tens of minutes.
    "pool_recycle": 1800,
    "pool_timeout": 30,
}


def database_url(url: str) -> str:
    """The SQLAlchemy URL with its async driver: `postgresql://` and `postgres://` (libpq's
    spellings, and psycopg's) become `postgresql+asyncpg://` (with libpq's `sslmode` as
    asyncpg's `ssl`), `sqlite://` becomes `sqlite+aiosqlite://`; ValueError for what is no URL,
    another backend or an async driver the project does not ship."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError("unsupported database URL: not a URL") from exc
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name() if "+" in parsed.drivername else ""
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "asyncpg", "psycopg2", "psycopg"):
            raise ValueError(f"unsupported PostgreSQL driver {driver!r}: CertDesk uses asyncpg")
        parsed = parsed.set(drivername="postgresql+asyncpg")
        if "sslmode" in parsed.query and "ssl" not in parsed.query:
            # libpq's name for it; asyncpg takes the same values as `ssl` and refuses `sslmode`.
            query = dict(parsed.query)
            query["ssl"] = query.pop("sslmode")
            parsed = parsed.set(query=query)
    elif backend == "sqlite":
        if driver not in ("", "pysqlite", "aiosqlite"):
            raise ValueError(f"unsupported SQLite driver {driver!r}: CertDesk uses aiosqlite")
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise ValueError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")
    return parsed.render_as_string(hide_password=False)


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        url = database_url(url)
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # Statement parameters hold ID numbers, mobiles and e-mail addresses: keep them out of
        # error messages and logs (SQLAlchemy would otherwise print them with every error).
        options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(POSTGRESQL_POOL)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            _install_sqlite_transaction_control(self.engine)
        self._writer = self.engine.execution_options(**{_IMMEDIATE: True})
        self.outage_since: float | None = None
        """When (monotonic seconds) the database last stopped answering; None while it does."""

    @property
    def reachable(self) -> bool:
        return self.outage_since is None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that holds the write lock from its first statement (SQLite)."""
        try:
            async with self._writer.begin() as conn:
                yield conn
        except Exception as error:
            if is_unavailable(error):
                raise self.note_outage(error) from error
            raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                yield conn
        except Exception as error:
            if is_unavailable(error):
                raise self.note_outage(error) from error
            raise

    def note_outage(self, error: BaseException) -> DatabaseUnavailable:
        """Note the outage; the one error callers see for it, naming the driver's reason (the
        disk is full, the connection was refused) but never a statement's parameters."""
        reason = describe_unavailable(error)
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            log.warning("the database does not answer: %s", reason)
        return DatabaseUnavailable(f"the database does not answer: {reason}")

    async def ping(self) -> None:
        """Raise (`DatabaseUnavailable`) unless the database answers a trivial query; an
        answer ends a noted outage."""
        async with self.read() as conn:
            await conn.execute(select(1))
        if self.outage_since is not None:
            log.warning(
                "the database answers again after %.1f s", time.monotonic() - self.outage_since
            )
            self.outage_since = None

    async def migrate(self) -> None:
        """Bring the schema to the newest revision; safe to run at every start."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade_to_head)

    async def close(self) -> None:
        await self.engine.dispose()


def describe_unavailable(error: BaseException) -> str:
    """`OperationalError: database or disk is full`: the driver's own words, without the
    statement SQLAlchemy would add."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    words = str(cause).splitlines()[0][:200] if str(cause) else ""
    return f"{type(cause).__name__}: {words}" if words else type(cause).__name__


def is_unavailable(error: BaseException) -> bool:
    """Whether the error says the database could not be reached or used at all (not that a
    statement broke a rule): a lost or refused connection, a timeout, a full disk, a locked
    file past its wait."""
    if isinstance(error, DatabaseUnavailable):
        return False  # noted already
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError | ConnectionError | TimeoutError)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for another backend or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def inserted_id(result: CursorResult[*tuple[Any, ...]]) -> int:
    """The integer primary key that a one-row INSERT just created."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the statement inserted no row")
    return int(key[0])


MIGRATION_LOCK = 0x43455254_4D494752  # "CERTMIGR": any constant the instances agree on
"""The PostgreSQL advisory lock that migrations run under."""


def _upgrade_to_head(connection: SyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        # Several instances started at once would each run the same CREATE TABLE and all but
        # one fail: the first migrates, the others wait here and then find the head reached.
        # The lock ends with the migration's transaction. (SQLite's file lock does this there.)
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _install_sqlite_transaction_control(engine: AsyncEngine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.

    This is SQLAlchemy's documented recipe for pysqlite/aiosqlite, with BEGIN IMMEDIATE for
    write transactions; WAL lets readers go on while a writer holds the lock.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: SyncConnection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
