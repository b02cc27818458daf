"""What the mounted parts of the web application find on it."""

from __future__ import annotations

from aiohttp import web

from certcore.core import Core

CORE = web.AppKey("core", Core)
