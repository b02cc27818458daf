"""`certdesk customers …`: the customer directory — import the back office's file, load the
demo set, list and show entries (masked unless `--unmasked`, which is audited)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.common import (
    EXIT_USAGE,
    Commands,
    Store,
    audit_unmasked,
    checked_id,
    opened,
    operator,
    read_file,
    run,
)
from bot.cli.customer_view import (
    customer_fields,
    detail_lines,
    json_text,
    summary_text,
    table_line,
)
from certcore.clock import system_clock
from certcore.config import Settings
from certcore.customers import (
    SUPPORTED_ENCODINGS,
    CustomerFileRejected,
    import_customer_file,
    upsert_demo_customers,
)
from certcore.errors import InvalidInput
from certcore.masking import mask_id

UNMASKED_HELP = "show full IDs, mobiles, e-mails and accounts (audited)"


def register(commands: Commands) -> None:
    customers = commands.group("customers", "the customer directory")
    importing = customers.add("import", cmd_import, "import the back office's customer file (CSV)")
    importing.add_argument("file", type=Path)
    importing.add_argument(
        "--encoding",
        choices=SUPPORTED_ENCODINGS,
        default="utf-8",
        help="utf-8 (a BOM is fine; the default) or cp950 for Big5 exports",
    )
    listing = customers.add("list", cmd_list, "list the customers")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--unmasked", action="store_true", help=UNMASKED_HELP)
    show = customers.add("show", cmd_show, "show one customer")
    show.add_argument("id_number", metavar="ID", help="ID number or UBN")
    show.add_argument("--json", action="store_true")
    show.add_argument("--unmasked", action="store_true", help=UNMASKED_HELP)
    customers.add("demo", cmd_demo, "add or restore the fictional demo customers")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    data = read_file(args.file)
    actor = operator()

    async def go() -> int:
        async with opened(Store, settings) as store:
            try:
                summary = await import_customer_file(
                    store.db, data, encoding=args.encoding, clock=system_clock, actor=actor
                )
            except CustomerFileRejected as exc:
                for problem in exc.problems:  # values in them are masked
                    print(problem, file=sys.stderr)
                print(f"certdesk: error: {args.file}: {exc}", file=sys.stderr)
                return EXIT_USAGE
        print(f"imported {args.file}: {summary_text(summary)}")
        return 0

    return run(go())


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        async with opened(Store, settings) as store:
            entries = await store.customers.all()
            if args.unmasked:
                await audit_unmasked(
                    store.audit,
                    "customers",
                    subject="customers",
                    details={"command": "list", "count": len(entries)},
                )
        rows = [customer_fields(entry, unmasked=args.unmasked) for entry in entries]
        if args.json:
            print(json_text(rows))
            return
        if not rows:
            print("the customer directory is empty", file=sys.stderr)
        for row in rows:
            print(table_line(row))

    return run(go())


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    id_number = checked_id(args.id_number)

    async def go() -> None:
        async with opened(Store, settings) as store:
            entry = await store.customers.get(id_number)
            if entry is None:
                raise InvalidInput(f"{mask_id(id_number)}: no such customer in the directory")
            if args.unmasked:
                await audit_unmasked(
                    store.audit,
                    "customers",
                    subject=mask_id(id_number),
                    details={"command": "show"},
                )
        fields = customer_fields(entry, unmasked=args.unmasked)
        if args.json:
            print(json_text(fields))
        else:
            print("\n".join(detail_lines(fields)))

    return run(go())


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    actor = operator()

    async def go() -> None:
        async with opened(Store, settings) as store:
            summary = await upsert_demo_customers(store.db, system_clock(), actor=actor)
        print(f"demo customers: {summary_text(summary)}")

    return run(go())
