"""`certdesk line rich-menu`: draw the LINE rich menu, create it and make it everyone's default.

The image is the project's own rendering (`bot.channels.line.richmenu`); `--out FILE` also
writes it there to look at, and `--draw-only` stops at that, without touching LINE.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.channels.line import LineApi, richmenu
from bot.cli.common import Commands, run
from certcore.config import Settings
from certcore.errors import InvalidInput


def register(commands: Commands) -> None:
    line = commands.group("line", "the LINE official account")
    menu = line.add("rich-menu", cmd_rich_menu, "draw the rich menu and set it as the default")
    menu.add_argument("--out", type=Path, help="also write the PNG here")
    menu.add_argument(
        "--draw-only", action="store_true", help="only draw the PNG (with --out); no LINE call"
    )


def cmd_rich_menu(args: argparse.Namespace, settings: Settings) -> int:
    if args.draw_only and args.out is None:
        raise InvalidInput("--draw-only needs --out FILE")
    if not args.draw_only and not settings.line_enabled:
        raise InvalidInput(
            "LINE is not configured (CERTDESK_LINE_CHANNEL_SECRET, "
            "CERTDESK_LINE_CHANNEL_ACCESS_TOKEN)"
        )
    image = richmenu.png()
    if args.out is not None:
        args.out.write_bytes(image)
        print(f"rich menu image: {args.out} ({len(image)} bytes)")
    if args.draw_only:
        return 0

    async def go() -> None:
        api = LineApi(settings)
        try:
            menu_id = await api.create_rich_menu(richmenu.menu(), image)
        finally:
            await api.close()
        print(f"rich menu {menu_id} created and set as the default")

    return run(go())
