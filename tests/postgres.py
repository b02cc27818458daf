"""A throw-away PostgreSQL server for the test suite, started by the suite itself.

Why here and not a service the machine keeps: `make test` must pass on a fresh Debian machine
and in CI, where nothing runs beforehand, and a suite that brings its own server cannot be
pointed at a database that matters. The server is Debian's `postgresql` package (installed by
`make test`): `initdb` into a temporary directory as the `postgres` OS user (initdb refuses
root), `pg_ctl start` on 127.0.0.1 on a free port with a random password, durability switched
off (fsync, synchronous_commit, full_page_writes: a crash loses only test data), and stopped
with `pg_ctl stop -m immediate` when the session ends, also after a failure.

One template database is migrated once per session; each test that runs on PostgreSQL gets its
own database copied from it (`CREATE DATABASE … TEMPLATE`, a file copy, far faster than
migrating) and dropped after it. The next test's copy is made in the background while a test
runs, so a test waits for none.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from certcore.storage import Database
from certcore.storage.database import database_url

T = TypeVar("T")

TEMPLATE = "certdesk_template"
SUPERUSER = "postgres"
BIN_DIR_VARIABLE = "CERTDESK_TEST_PG_BINDIR"
MISSING = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's `postgresql` "
    "package (`make test` does), or point " + BIN_DIR_VARIABLE + " at their directory"
)
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    # Locks waited on for longer than this fail the test instead of hanging the suite.
    "lock_timeout": "60s",
    "log_min_messages": "warning",
}


class PostgresUnavailable(RuntimeError):
    """The server could not be found or started; the message says why."""


DEBIAN_ROOT = Path("/usr/lib/postgresql")


def find_bin_dir(environ: Mapping[str, str] | None = None, debian: Path = DEBIAN_ROOT) -> Path:
    """The directory of initdb and pg_ctl: the override variable, else Debian's newest
    /usr/lib/postgresql/<version>/bin, else the PATH (other systems put them there)."""
    environ = os.environ if environ is None else environ
    override = environ.get(BIN_DIR_VARIABLE)
    candidates: list[Path] = []
    if override:
        candidates.append(Path(override))
    versions = sorted(
        debian.glob("*/bin"),
        key=lambda p: [int(part) for part in re.findall(r"\d+", p.parent.name)] or [0],
        reverse=True,
    )
    candidates.extend(versions)
    on_path = shutil.which("pg_ctl", path=environ.get("PATH", ""))
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl")):
            return directory
    raise PostgresUnavailable(MISSING)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One cluster in a temporary directory; `start()`, then `create_database()` per test."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="certdesk-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.started = False
        self._names = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="postgres-admin", daemon=True
        )
        self._admin: AsyncEngine | None = None
        self._strategy = ""
        self._next: Future[str] | None = None

    # -- the server ---------------------------------------------------------------------------

    def _as_owner(self, argv: Sequence[str]) -> list[str]:
        """initdb and the server refuse to run as root: run them as the `postgres` user."""
        if os.geteuid() != 0:
            return list(argv)
        return ["runuser", "-u", SUPERUSER, "--", *argv]

    def _run(self, argv: Sequence[str], timeout: float = 120) -> None:
        done = subprocess.run(
            self._as_owner(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{Path(argv[0]).name} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            return "\nserver log:\n" + self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def start(self) -> None:
        # The session fixture stops the server; this catches a run ended some other way (an
        # interrupt between fixtures), so no postmaster outlives the Python process.
        atexit.register(self.stop)
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(SUPERUSER)
            except KeyError as exc:
                raise PostgresUnavailable(f"no `{SUPERUSER}` OS user: {MISSING}") from exc
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.root.chmod(0o700)
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        if os.geteuid() == 0:
            os.chown(password_file, owner.pw_uid, owner.pw_gid)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                SUPERUSER,
                "--pwfile",
                str(password_file),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ]
        )
        password_file.unlink()
        for _attempt in range(3):  # another process may take the free port first
            self.port = free_port()
            try:
                self._pg_ctl_start()
            except PostgresUnavailable:
                if "could not bind" not in self._log_tail():
                    raise
                continue
            self.started = True
            break
        else:
            raise PostgresUnavailable(f"pg_ctl could not find a free port{self._log_tail()}")
        self._thread.start()
        # CREATE and DROP DATABASE cannot run inside a transaction: autocommit, one connection.
        self._admin = create_async_engine(
            database_url(self.url("postgres")),
            isolation_level="AUTOCOMMIT",
            pool_size=1,
            max_overflow=0,
            pool_timeout=300,
        )
        self._call(self._admin_execute(f"CREATE DATABASE {TEMPLATE}"))
        self._migrate_template()
        # PostgreSQL 15's default copies a template block by block through the WAL; a plain file
        # copy (the older way, one checkpoint) is quicker for a small database without fsync.
        if int(self._call(self._admin_scalar("SHOW server_version_num"))) >= 150000:
            self._strategy = " STRATEGY FILE_COPY"
        self._next = self._submit(self._copy_template())

    def _pg_ctl_start(self) -> None:
        options = " ".join(f"-c {name}={value}" for name, value in SERVER_SETTINGS.items())
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "start",
                "--pgdata",
                str(self.data),
                "--log",
                str(self.log),
                "--wait",
                "--timeout",
                "60",
                "-o",
                f"-p {self.port} -k {self.root} {options}",
            ]
        )

    def pause(self) -> None:
        """Stop the server as an operator's restart or a crash would, keeping its data (an
        outage test: only on a server of the test's own, never the session's)."""
        self._run(
            [str(self.bin_dir / "pg_ctl"), "stop", "--pgdata", str(self.data), "--mode", "fast"]
        )

    def resume(self) -> None:
        """Start the paused server again on its port."""
        self._pg_ctl_start()

    def stop(self) -> None:
        """Stop the server and remove its files; safe to call whatever `start()` reached, and
        again."""
        atexit.unregister(self.stop)
        try:
            if self._next is not None:
                self._next.cancel()
                with contextlib.suppress(Exception):
                    self._next.result(timeout=60)
                self._next = None
            if self._admin is not None:
                self._call(self._admin.dispose())
                self._admin = None
            if self._thread.is_alive():
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)
            if self.started:
                self._run(
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "stop",
                        "--pgdata",
                        str(self.data),
                        "--mode",
                        "immediate",
                        "--wait",
                    ]
                )
                self.started = False
        finally:
            if not self._thread.is_alive() and not self._loop.is_closed():
                self._loop.close()
            shutil.rmtree(self.root, ignore_errors=True)

    # -- databases ----------------------------------------------------------------------------

    def url(self, database: str, *, scheme: str = "postgresql") -> str:
        """A plain libpq-style URL, as an operator would write it in CERTDESK_DATABASE_URL."""
        return f"{scheme}://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new database copied from the migrated template (made while the previous test ran);
        its name. The copy for the test after this one starts at once."""
        ready = self._next if self._next is not None else self._submit(self._copy_template())
        self._next = self._submit(self._copy_template())
        return ready.result(timeout=300)

    async def _copy_template(self) -> str:
        name = f"t_{os.getpid()}_{next(self._names)}"
        await self._admin_execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}{self._strategy}")
        return name

    def create_empty_database(self) -> str:
        """A new database without any table (for the migration tests)."""
        name = f"e_{os.getpid()}_{next(self._names)}"
        self._call(self._admin_execute(f"CREATE DATABASE {name} TEMPLATE template0"))
        return name

    def drop_database(self, name: str) -> None:
        """Drop a test's database, ending any connection a test left open."""
        self._call(self._admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def _migrate_template(self) -> None:
        async def migrate() -> None:
            db = Database(self.url(TEMPLATE))
            try:
                await db.migrate()
            finally:
                await db.close()

        self._call(migrate())

    async def _admin_execute(self, sql: str) -> None:
        assert self._admin is not None
        async with self._admin.connect() as conn:
            await conn.execute(text(sql))

    async def _admin_scalar(self, sql: str) -> str:
        assert self._admin is not None
        async with self._admin.connect() as conn:
            return str((await conn.execute(text(sql))).scalar_one())

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Run on the admin thread's loop: the tests' own loops come and go with each test."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._submit(coroutine).result(timeout=300)
