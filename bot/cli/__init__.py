"""The `certdesk` command: `serve` and the operator commands.

Every command takes `--data-dir` (default ./var, or CERTDESK_DATA_DIR) and runs under a 077
umask, so whatever it writes (the database, console.log, a .pfx, a CRL) is the operator's alone.
A failure the operator can fix is printed as one line on stderr with exit code 2, never as a
traceback; `audit verify` exits 1 when the chain is broken, so scripts can tell "tampered" from
"mistyped".

Each module registers its own commands next to their handlers (`serve` for `serve` and
`chat`, then `ca`, `cert`, `customers`, `agents`, `reminders`, `audit`, `notify`); `common`
holds what they share.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.cli import agents, audit, ca, cert, customers, line, notify, reminders, serve
from bot.cli.common import EXIT_BROKEN, EXIT_USAGE, Commands, Handler, Parser
from bot.cli.notify import NOTIFY_TEST_BODY, NOTIFY_TEST_SUBJECT
from certcore.config import load_settings
from certcore.errors import AuditChainBroken, CertdeskError
from certcore.keyfile import PRIVATE_UMASK

__all__ = ["NOTIFY_TEST_BODY", "NOTIFY_TEST_SUBJECT", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    handler: Handler = args.handler
    previous_umask = os.umask(PRIVATE_UMASK)  # every file a command creates is 0600 (or 0700)
    try:
        settings = load_settings(
            getattr(args, "config", None), data_dir=getattr(args, "data_dir", None)
        )
        return handler(args, settings)
    except AuditChainBroken as exc:
        print(f"certdesk: audit chain broken: {exc}", file=sys.stderr)
        return EXIT_BROKEN
    except CertdeskError as exc:
        print(f"certdesk: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # an unwritable --out, a --data-dir that is a file, a busy port
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"certdesk: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    finally:
        os.umask(previous_umask)


def build_parser() -> argparse.ArgumentParser:
    options = Parser(add_help=False)  # only lends its options to the commands
    options.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="data directory (default ./var, or CERTDESK_DATA_DIR)",
    )
    options.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="TOML configuration file (or CERTDESK_CONFIG)",
    )
    parser = Parser(
        prog="certdesk",
        parents=[options],
        description="CertDesk: the broker's certificate center in chat.",
    )
    commands = Commands(parser.add_subparsers(title="commands", metavar="COMMAND"), options)
    # in the order --help lists them
    for group in (serve, ca, cert, customers, agents, reminders, audit, notify, line):
        group.register(commands)
    return parser
