"""What the mounted parts of the web application find on it."""

from __future__ import annotations

from aiohttp import web

from bot.channels import Channels
from certcore.core import Core
from dialogs import Engine

CORE = web.AppKey("core", Core)
ENGINE = web.AppKey("engine", Engine)
"""The one engine of this process: every channel's events go through it."""
CHANNELS = web.AppKey("channels", Channels)
"""The channels mounted on this app, for pushes to a conversation on its own channel."""
