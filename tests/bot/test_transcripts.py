"""Every transcript in tests/bot/transcripts, in Traditional Chinese and in English."""

from __future__ import annotations

from pathlib import Path

import pytest

from certcore.config import Settings
from tests.bot.transcripts import Transcript, all_transcripts


@pytest.mark.parametrize("locale", ["zh_TW", "en"])
@pytest.mark.parametrize("path", all_transcripts(), ids=lambda p: p.stem)
async def test_transcript(
    path: Path, locale: str, settings: Settings, environ: dict[str, str]
) -> None:
    await Transcript(path).run(settings, environ, locale)
