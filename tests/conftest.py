"""Shared fixtures: a frozen Taipei clock, a seeded random source, a throw-away data directory
and a development CA generated once per test session (RSA-3072 key generation is the slow part).

The database behind `settings` (and so behind `core`) is the `backend` fixture's: SQLite in the
data directory unless a test is parametrised over backends. The suites listed in
`BOTH_BACKENDS` (and any test marked `@pytest.mark.backends(...)`) run once per backend, with
`[sqlite]` and `[postgresql]` in their ids; a PostgreSQL run gets a fresh database copied from
a migrated template on the session's own throw-away server (`tests/postgres.py`). A test that
builds its own `Settings` takes the `database_url` fixture to follow the backend.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from certcore.clock import FrozenClock, taipei
from certcore.config import Settings, load_settings
from certcore.core import Core
from certcore.pki import CAFiles
from tests.postgres import PostgresServer, PostgresUnavailable, find_bin_dir

TEST_PASSPHRASE = b"test-ca-passphrase"

BACKENDS = ("sqlite", "postgresql")
BOTH_BACKENDS = (
    # The storage, engine, flow, reminder, hand-off and channel suites (issue 12): every test in
    # these files and folders that uses a database runs on SQLite and on PostgreSQL.
    "tests/certcore/test_database.py",
    "tests/certcore/test_service.py",
    "tests/certcore/test_deliveries.py",
    "tests/certcore/test_reminders.py",
    "tests/certcore/test_handoff.py",
    "tests/certcore/test_handoff_relay.py",
    "tests/certcore/test_agent_sessions.py",
    "tests/certcore/test_otp_service.py",
    "tests/certcore/test_customers.py",
    "tests/certcore/test_identity_verify.py",
    "tests/certcore/test_postgresql.py",
    "tests/dialogs/",
    "tests/bot/line/",
    "tests/bot/telegram/",
    "tests/bot/web/test_chat_api.py",
    "tests/bot/web/test_chat_handoff.py",
    "tests/bot/web/test_agent_console.py",
    "tests/bot/test_reminder_sweep.py",
    "tests/bot/test_reminder_delivery.py",
    "tests/bot/test_reminder_backlog.py",
)
"""Paths relative to the project; a folder covers the test modules added to it later. Left out
on purpose: suites whose database work is the same queries as one listed here and whose own
subject is not the database (the download page's HTTP, the request limits, the CLI), the
property-based engine tests (hundreds of cores each), SQLite's own mechanics (group commit, file
modes) and the audit tamper tests, which edit the SQLite file directly."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*names): run the test on these database backends (sqlite, postgresql)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise `backend` (and so `settings` and `core`) for the suites above."""
    if "backend" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "backend" in (names.split(",") if isinstance(names, str) else names):
            return  # the test chooses its backends itself (see test_transcripts)
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None:
        chosen: tuple[str, ...] = tuple(marker.args)
    else:
        relative = metafunc.definition.path.relative_to(metafunc.config.rootpath).as_posix()
        if not relative.startswith(BOTH_BACKENDS):
            return
        chosen = BACKENDS
    unknown = set(chosen) - set(BACKENDS)
    assert not unknown, f"unknown backend {unknown} in {metafunc.definition.nodeid}"
    metafunc.parametrize("backend", chosen, indirect=True, ids=chosen)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server with a migrated template database; a test that needs
    it fails (never skips) when the server binaries are missing."""
    problem = ""
    try:
        server = PostgresServer(find_bin_dir())
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
    except PostgresUnavailable as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """`sqlite` or `postgresql`: the parametrised value, SQLite when not parametrised."""
    value: str = getattr(request, "param", "sqlite")
    return value


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The test's own database as a CERTDESK_DATABASE_URL value: empty for SQLite (the file in
    the data directory), a fresh copy of the migrated template on PostgreSQL."""
    if backend == "sqlite":
        yield ""
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def clock() -> FrozenClock:
    """10:00 on 24 November 2026, Taipei time, unless a test moves it."""
    return FrozenClock(taipei(2026, 11, 24, 10, 0, 0))


@pytest.fixture
def rng() -> random.Random:
    return random.Random(20261124)


@pytest.fixture(scope="session")
def _ca_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding a CA, copied for every test that needs one."""
    data_dir = tmp_path_factory.mktemp("ca-template")
    CAFiles(data_dir).initialise(
        settings=Settings(data_dir=data_dir),
        now=taipei(2026, 1, 1),
        rng=random.Random(1),
        passphrase=TEST_PASSPHRASE,
    )
    return data_dir


@pytest.fixture
def data_dir(tmp_path: Path, _ca_template: Path) -> Path:
    """A fresh data directory with the session's CA in it and no database yet."""
    target = tmp_path / "var"
    shutil.copytree(_ca_template, target)
    return target


@pytest.fixture
def environ() -> dict[str, str]:
    return {"CERTDESK_CA_PASSPHRASE": TEST_PASSPHRASE.decode()}


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return load_settings(environ={}, data_dir=data_dir, database_url=database_url or None)


@pytest.fixture
async def core(
    settings: Settings, clock: FrozenClock, rng: random.Random, environ: dict[str, str]
) -> AsyncIterator[Core]:
    """The certcore parts wired as a process wires them, over the test's backend."""
    opened = await Core.open(settings, clock=clock, rng=rng, environ=environ)
    try:
        yield opened
    finally:
        await opened.close()


_FULL_ID = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z][12894A-D]\d{8})(?![A-Za-z0-9])")


class _RecordKeeper(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken log call is the logging module's business
            return
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]}"
        self.messages.append(text)


@pytest.fixture(autouse=True)
def no_full_id_in_any_log_line() -> Iterator[None]:
    """Every test, whatever it exercises: no log line names a full ID number (DESIGN §3)."""
    keeper = _RecordKeeper()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(keeper)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(keeper)
        root.setLevel(previous)
    leaked = [m for m in keeper.messages if _FULL_ID.search(m)]
    assert not leaked, f"full ID number in a log line: {leaked[0][:200]!r}"
