"""The disk under the SQLite database fills up (issue 12, faults): a clear error, no corruption.

The data directory lives on a small tmpfs of its own (the test runs as root, as `make test`
does on the CI machine), filled to the last byte by a file beside the database. Every write the
service then tries fails with SQLite's "database or disk is full": the web chat is told, in its
language, to try again in a moment (503, not a 500 and a traceback), the log says in one line
what is wrong, and nothing already stored is lost or damaged. Once the filler is removed the
chat goes on where it was, and SQLite's own integrity check finds the file sound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.web import ENGINE, create_app
from certcore.clock import FrozenClock
from certcore.config import load_settings
from certcore.core import Core

DISK_BYTES = 48 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"a small tmpfs is needed (make test runs as root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
async def client(
    small_disk: Path,
    _ca_template: Path,
    clock: FrozenClock,
    environ: dict[str, str],
) -> AsyncIterator[TestClient[Any, Any]]:
    data_dir = small_disk / "var"
    shutil.copytree(_ca_template, data_dir)
    settings = load_settings(environ={}, data_dir=data_dir)
    core = await Core.open(settings, clock=clock, rng=random.Random(3), environ=environ)
    try:
        app = create_app(core)
        app[ENGINE].outage_wait = 1.0  # the page's answer comes after a short wait, not a minute
        async with TestClient(TestServer(app)) as test_client:
            yield test_client
    finally:
        with contextlib.suppress(Exception):
            await core.close()


def fill(disk: Path) -> Path:
    """A file that takes every free byte of the disk."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * size)
    return filler


async def say(client: TestClient[Any, Any], session: str, text: str) -> Any:
    return await client.post(
        f"/api/chat/sessions/{session}/messages",
        json={"text": text},
        headers={"Accept-Language": "zh-TW"},
    )


async def test_a_full_disk_is_a_clear_error_and_nothing_is_damaged(
    client: TestClient[Any, Any], small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    created = await client.post("/api/chat/sessions")
    assert created.status == 201
    session = (await created.json())["session"]
    assert (await say(client, session, "選單")).status == 200
    history_before = await (await client.get(f"/api/chat/sessions/{session}/messages")).json()

    filler = fill(small_disk)
    answers = []
    for text in ("憑證查詢", "常見問題", "選單", "操作說明"):
        response = await say(client, session, text)
        answers.append((response.status, await response.json()))
    statuses = [status for status, _ in answers]
    assert 503 in statuses and 500 not in statuses, answers
    refused = next(body for status, body in answers if status == 503)
    assert refused["error"] == "unavailable" and "稍候" in refused["message"]
    assert "database or disk is full" in caplog.text  # what is wrong, in one line
    assert "Traceback" not in caplog.text

    filler.unlink()
    for _ in range(20):  # the browser tries again; the service notices the disk has room
        response = await say(client, session, "選單")
        if response.status == 200:
            break
        await asyncio.sleep(0.5)
    assert response.status == 200, await response.text()
    history_after = await (await client.get(f"/api/chat/sessions/{session}/messages")).json()
    assert (
        history_after["messages"][: len(history_before["messages"])] == (history_before["messages"])
    )
    with sqlite3.connect(small_disk / "var" / "certdesk.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
