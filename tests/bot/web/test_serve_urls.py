"""`make run` (`certdesk serve` with no configuration) ends by printing where to go: the web chat
and, in dev mode, the development outbox. A real process is started and its printed URLs are
opened as a person would open them."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bot.serve import started_lines
from tests.conftest import TEST_PASSPHRASE

STARTUP_SECONDS = 30.0
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_lines_name_the_chat_and_the_outbox() -> None:
    assert started_lines("127.0.0.1", 8080, dev=True) == [
        "Web chat: http://127.0.0.1:8080/",
        "Development outbox: http://127.0.0.1:8080/dev/outbox",
    ]
    assert started_lines("::1", 8081, dev=False) == ["Web chat: http://[::1]:8081/"]
    assert started_lines("0.0.0.0", 80, dev=False) == ["Web chat: http://127.0.0.1:80/"]


def test_serve_prints_its_urls_and_they_work(tmp_path: Path, _ca_template: Path) -> None:
    data_dir = tmp_path / "var"
    shutil.copytree(_ca_template, data_dir)
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CERTDESK_") and not key.lower().endswith("_proxy")
    }
    env["CERTDESK_CA_PASSPHRASE"] = TEST_PASSPHRASE.decode()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        lines = _read_until(process, "Development outbox: ")
        urls = dict(line.split(": ", 1) for line in lines if ": http" in line)
        assert urls["Web chat"] == f"http://127.0.0.1:{port}/"
        assert urls["Development outbox"] == f"http://127.0.0.1:{port}/dev/outbox"
        with _http.open(urls["Web chat"], timeout=10) as page:
            assert "憑證中心" in page.read().decode()
        with _http.open(urls["Development outbox"], timeout=10) as outbox:
            assert "DEVELOPMENT ONLY" in outbox.read().decode()
        with _http.open(urls["Development outbox"] + ".json", timeout=10) as listed:
            assert json.loads(listed.read()) == []
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _read_until(process: subprocess.Popen[bytes], marker: str) -> list[str]:
    """The process's stdout lines up to the one starting with `marker` (bounded in time)."""
    assert process.stdout is not None
    lines: list[str] = []
    buffer = b""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if not selector.select(timeout=0.2):
            if process.poll() is not None:
                pytest.fail(f"certdesk serve exited with {process.returncode}: {lines}")
            continue
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            pytest.fail(f"certdesk serve closed its output: {lines}")
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        lines.extend(line.decode() for line in complete)
        if any(line.startswith(marker) for line in lines):
            return lines
    pytest.fail(f"no {marker!r} line within {STARTUP_SECONDS} s: {lines}")
