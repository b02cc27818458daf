"""The benchmarks keep running: a smoke run of the ones that need nothing outside the project
(the webhook benchmark needs wrk, which `make bench` installs; the load benchmark starts the
suite's own PostgreSQL, as `make test` does). Nothing here times anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_understanding_benchmark_prints_its_tables() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.understanding", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Routing accuracy on held-back utterances" in done.stdout
    assert "Time per message" in done.stdout
    assert "| Matcher.read |" in done.stdout


def test_the_reminders_benchmark_prints_its_tables() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.reminders",
            "--quick",
            "--certificates",
            "5000",
            "--line-reminders",
            "20",
            "--telegram-reminders",
            "5",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Selecting the due certificates among 5,000" in done.stdout
    assert "| floor: plain indexed range" in done.stdout
    assert "| LINE push (fake LINE API) | 20 |" in done.stdout
    assert "| Telegram sendMessage" in done.stdout


def test_the_load_benchmark_serves_every_customer_one_certificate() -> None:
    """Three customers on SQLite and on two instances over one PostgreSQL (about 30 s)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", "--quick", "--topologies", "sqlite,pg2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "| 1 instance, SQLite | 3 |" in done.stdout
    assert "| 2 instances, one PostgreSQL | 3 |" in done.stdout
    assert "| download: POST → .pfx | 3 |" in done.stdout
