"""`certdesk serve` (the service) and `certdesk chat` (the console channel)."""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import sys

from bot.cli.common import Commands, run
from certcore.config import Settings
from certcore.keyfile import keep_private


def register(commands: Commands) -> None:
    serve = commands.add("serve", cmd_serve, "run the service")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    chat = commands.add(
        "chat", cmd_chat, "talk to the assistant in this terminal (the console channel)"
    )
    chat.add_argument(
        "--lang", choices=["zh-TW", "en"], default=None, help="language (default: as last time)"
    )


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.serve import serve

    # --host and --port are settings like any other, refused by the same bounds (port 1-65535).
    settings = dataclasses.replace(
        settings,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
    ).validate()
    return run(serve(settings, host=settings.host, port=settings.port))


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels.console import chat

    # The terminal is the chat: engine diagnostics go to a file, not between the messages.
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_file = settings.data_dir / "console.log"
    keep_private(log_file)  # it names masked customers and conversations: 0600 in any directory
    logging.basicConfig(
        filename=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for stream in (sys.stdin, sys.stdout):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    return chat(settings, lang=args.lang, stdin=sys.stdin, stdout=sys.stdout)
