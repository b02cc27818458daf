"""Every transcript in tests/bot/transcripts, in Traditional Chinese and in English on SQLite,
and in Traditional Chinese on PostgreSQL: the language changes the words, not the queries, so a
second language on PostgreSQL would double its time and prove nothing more."""

from __future__ import annotations

from pathlib import Path

import pytest

from certcore.config import Settings
from tests.bot.transcripts import Transcript, all_transcripts


@pytest.mark.parametrize(
    ("locale", "backend"),
    [("zh_TW", "sqlite"), ("en", "sqlite"), ("zh_TW", "postgresql")],
    ids=["zh_TW-sqlite", "en-sqlite", "zh_TW-postgresql"],
    indirect=["backend"],
)
@pytest.mark.parametrize("path", all_transcripts(), ids=lambda p: p.stem)
async def test_transcript(
    path: Path, locale: str, backend: str, settings: Settings, environ: dict[str, str]
) -> None:
    assert settings.database_url.startswith("postgresql") == (backend == "postgresql")
    await Transcript(path).run(settings, environ, locale)
