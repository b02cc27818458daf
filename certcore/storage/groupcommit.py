"""One thread that owns a SQLite connection and commits every waiting write together.

Why a thread of our own: SQLite has one writer at a time, and each hop between the event loop
and a worker thread costs about 120 µs on the machines we run on. An async SQLAlchemy
transaction over aiosqlite makes about twelve such hops, so a chat webhook that saves one event
per transaction is capped near 400 events/s, and the writers queue on SQLite's busy timeout.
Here a job is one hop there and one back: the thread takes every job waiting when it looks,
runs them in order inside one `BEGIN IMMEDIATE … COMMIT` (each write in its own savepoint, so a
failing job leaves the others alone), and hands the results back to each event loop in one call
per batch (group commit). A write's result is delivered only after its batch committed.

The statements are SQLAlchemy Core compiled once for SQLite (`compiled`), and values pass
through the columns' own type processors (`Codec`), so the SQL and the stored forms are the
ones every other module writes. Only what is hot (a conversation's event) goes through here;
everything else keeps `Database.write()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql import ClauseElement

from certcore.storage.database import SQLITE_PRAGMAS, sqlite_file

log = logging.getLogger("certdesk.storage")

T = TypeVar("T")
MAX_BATCH = 512
"""Jobs per transaction at most, so one batch never holds the write lock for long."""

DIALECT = sqlite_dialect.dialect(paramstyle="named")


@dataclass(frozen=True)
class Compiled:
    """A SQLAlchemy Core statement as SQLite SQL with `:name` parameters, and the values it
    binds itself (a `LIMIT 1`)."""

    sql: str
    defaults: Mapping[str, Any]

    def run(self, conn: sqlite3.Connection, params: Mapping[str, Any]) -> sqlite3.Cursor:
        return conn.execute(self.sql, {**self.defaults, **params} if self.defaults else params)


def compiled(statement: ClauseElement, **keys: Any) -> Compiled:
    done = statement.compile(dialect=DIALECT, **keys)
    defaults = {name: value for name, value in done.params.items() if value is not None}
    return Compiled(str(done), defaults)


class Codec:
    """A table's values to and from what sqlite3 stores, by the columns' own SQLAlchemy types
    (aware UTC datetimes, booleans), so rows written here read the same everywhere else."""

    def __init__(self, table: Table) -> None:
        self.bind: dict[str, Callable[[Any], Any]] = {}
        self.result: dict[str, Callable[[Any], Any]] = {}
        for column in table.columns:
            impl = column.type.dialect_impl(DIALECT)
            bind = impl.bind_processor(DIALECT)
            result = impl.result_processor(DIALECT, None)
            if bind is not None:
                self.bind[column.name] = bind
            if result is not None:
                self.result[column.name] = result

    def encode(self, values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        bind = self.bind
        return {
            prefix + name: (bind[name](value) if name in bind and value is not None else value)
            for name, value in values.items()
        }

    def decode(self, row: sqlite3.Row) -> dict[str, Any]:
        result = self.result
        return {
            name: (result[name](row[name]) if name in result else row[name])
            for name in row.keys()  # noqa: SIM118 (a Row iterates values)
        }


@dataclass
class _Job(Generic[T]):
    work: Callable[[sqlite3.Connection], T]
    write: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class GroupCommitter:
    """The writer thread of one SQLite database file; started on first use, stopped by `close`."""

    def __init__(self, url: str) -> None:
        database = sqlite_file(url)
        if database is None:
            raise ValueError("group commit needs a SQLite database file")
        self.path = str(database)
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on the thread's connection (it sees every committed write)."""
        return await self._submit(work, write=False)

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in the next batch's transaction; returns once that batch has committed.
        An exception raised by `work` undoes only its own statements."""
        return await self._submit(work, write=True)

    async def _submit(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        if self._closed:
            raise RuntimeError("the SQLite writer is closed")
        self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(work, write, loop, future))
        return await future

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name="certdesk-sqlite-writer", daemon=True
                )
                thread.start()
                self._thread = thread

    def close(self) -> None:
        """Finish the jobs already queued, then stop the thread."""
        self._closed = True
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    # -- the thread ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for pragma in SQLITE_PRAGMAS:
            conn.execute(pragma)
        return conn

    def _run(self) -> None:
        conn = self._connect()
        try:
            stopping = False
            while not stopping:
                first = self._jobs.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < MAX_BATCH:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stopping = True
                        break
                    batch.append(job)
                self._deliver(batch, self._execute(conn, batch))
        finally:
            conn.close()

    def _execute(
        self, conn: sqlite3.Connection, batch: list[_Job[Any]]
    ) -> list[tuple[Any, BaseException | None]]:
        outcomes: list[tuple[Any, BaseException | None]] = []
        writes = any(job.write for job in batch)
        try:
            if writes:
                conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            return [(None, error) for _ in batch]
        for job in batch:
            try:
                if job.write:
                    conn.execute("SAVEPOINT job")
                    try:
                        result = job.work(conn)
                    except BaseException:
                        conn.execute("ROLLBACK TO job")
                        conn.execute("RELEASE job")
                        raise
                    conn.execute("RELEASE job")
                else:
                    result = job.work(conn)
                outcomes.append((result, None))
            except Exception as error:
                outcomes.append((None, error))
        if writes:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as error:
                log.error("a group commit of %d jobs failed: %s", len(batch), error)
                _rollback(conn)
                outcomes = [
                    (None, error) if job.write else outcome
                    for job, outcome in zip(batch, outcomes, strict=True)
                ]
        return outcomes

    @staticmethod
    def _deliver(
        batch: Iterable[_Job[Any]], outcomes: Iterable[tuple[Any, BaseException | None]]
    ) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for job, (result, error) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, result, error))
        for loop, settled in by_loop.items():
            # A closed loop has nobody waiting for these any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")
