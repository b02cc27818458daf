"""Fixtures of the attack tests: the LINE and Telegram end-to-end set-ups of `tests/bot`, reused
as they are (an attack is only meaningful against the app the channel tests already trust)."""

from __future__ import annotations

from tests.bot.line.conftest import fake_line, line, line_core, line_environ, line_settings
from tests.bot.telegram.conftest import fake_tg, telegram_app

__all__ = [
    "fake_line",
    "fake_tg",
    "line",
    "line_core",
    "line_environ",
    "line_settings",
    "telegram_app",
]
