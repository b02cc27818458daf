"""Shared fixtures: a frozen Taipei clock, a seeded random source, a throw-away data directory
and a development CA generated once per test session (RSA-3072 key generation is the slow part).
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

TEST_PASSPHRASE = b"test-ca-passphrase"


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
def settings(data_dir: Path) -> Settings:
    return load_settings(environ={}, data_dir=data_dir)


@pytest.fixture
async def core(
    settings: Settings, clock: FrozenClock, rng: random.Random, environ: dict[str, str]
) -> AsyncIterator[Core]:
    """The certcore parts wired as a process wires them, over SQLite in `data_dir`."""
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
