"""`certdesk cert …`: issue, renew, revoke and list customer certificates as an operator."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.cli.common import (
    Commands,
    Parser,
    Store,
    audit_unmasked,
    checked_id,
    opened,
    operator,
    run,
)
from certcore.clock import TAIPEI, system_clock, taipei_text
from certcore.config import Settings
from certcore.core import Core
from certcore.errors import InvalidInput
from certcore.identity import normalise_id
from certcore.keyfile import keep_private
from certcore.masking import mask_id
from certcore.pki import (
    CertificateRecord,
    IssuedCertificate,
    Pkcs12Format,
    RevocationReason,
    all_certificates,
    certificates_of,
)

# `cert list` reads the records through the database alone (`Store`), without opening the CA:
# the list works in a data directory that has no CA yet. Its ID numbers are masked unless
# `--unmasked`, which is audited first, as in `customers list`.
#
# The export password is typed at a prompt (twice) or read from stdin: a `--password` on the
# command line is in the process list, where every local user can read it while the command
# runs, so it stays only for scripts on a machine nobody else uses.

PASSWORD_PROMPT = "export password (4–12 letters/digits): "
PASSWORD_AGAIN = "export password again: "


def register(commands: Commands) -> None:
    cert = commands.group("cert", "customer certificates")
    issue = cert.add("issue", cmd_issue, "issue a certificate as an operator")
    issue.add_argument("--id", dest="customer_id", required=True, help="ID number or UBN")
    _password_arguments(issue)
    issue.add_argument("--out", type=Path, required=True, help=".pfx file or directory")
    issue.add_argument("--compatible", action="store_true", help="3DES/SHA-1 for old systems")
    renew = cert.add("renew", cmd_renew, "renew a certificate inside its window")
    renew.add_argument("serial")
    _password_arguments(renew)
    renew.add_argument("--out", type=Path, required=True, help=".pfx file or directory")
    renew.add_argument("--compatible", action="store_true", help="3DES/SHA-1 for old systems")
    revoke = cert.add("revoke", cmd_revoke, "revoke a certificate")
    revoke.add_argument("serial")
    revoke.add_argument(
        "--reason", required=True, choices=[reason.value for reason in RevocationReason]
    )
    listing = cert.add("list", cmd_list, "list certificates")
    listing.add_argument("--id", dest="customer_id", default=None)
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--unmasked", action="store_true", help="show full ID numbers (audited)")


def _password_arguments(parser: Parser) -> None:
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the export password from the first line of stdin",
    )
    given.add_argument(
        "--password",
        help="export password, 4–12 letters/digits; visible to other users in the process "
        "list, so prefer the prompt (the default) or --password-stdin",
    )


def export_password(args: argparse.Namespace) -> str:
    """The export password: `--password`, stdin's first line, or typed twice at a prompt."""
    if args.password is not None:
        return str(args.password)
    if args.password_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise InvalidInput("no export password: type it at a prompt or give --password-stdin")
    typed = getpass.getpass(PASSWORD_PROMPT)
    if getpass.getpass(PASSWORD_AGAIN) != typed:
        raise InvalidInput("the two export passwords differ; nothing was issued")
    return typed


def cmd_issue(args: argparse.Namespace, settings: Settings) -> int:
    customer_id = checked_id(args.customer_id, option="--id")
    password = export_password(args)
    return _deliver(
        args,
        settings,
        lambda core, fmt: core.certificates.issue(customer_id, password, actor=operator(), fmt=fmt),
    )


def cmd_renew(args: argparse.Namespace, settings: Settings) -> int:
    password = export_password(args)
    return _deliver(
        args,
        settings,
        lambda core, fmt: core.certificates.renew(args.serial, password, actor=operator(), fmt=fmt),
    )


def _deliver(
    args: argparse.Namespace,
    settings: Settings,
    make: Callable[[Core, Pkcs12Format], Awaitable[IssuedCertificate]],
) -> int:
    """Issue or renew (`make`) in the format asked for, and write the .pfx to `--out`."""
    fmt = Pkcs12Format.COMPATIBLE if args.compatible else Pkcs12Format.STANDARD

    async def go() -> None:
        async with opened(Core, settings) as core:
            _write_pfx(await make(core, fmt), args.out)

    return run(go())


def _write_pfx(issued: IssuedCertificate, out: Path) -> None:
    target = out / issued.filename if out.is_dir() else out
    try:
        keep_private(target)  # 0600 before the first byte, also over an existing file
        target.write_bytes(issued.pkcs12)
    except OSError as exc:
        raise InvalidInput(
            f"certificate {issued.record.serial} was issued but {target} could not be written "
            f"({exc.strerror}); revoke it and issue again"
        ) from None
    print(
        f"issued {issued.record.serial} for {mask_id(issued.record.customer_id)}, valid until "
        f"{taipei_text(issued.record.not_after)} (Asia/Taipei)"
    )
    print(f"written to {target}")


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        async with opened(Core, settings) as core:
            record = await core.certificates.revoke(
                args.serial, RevocationReason(args.reason), actor=operator(), online=False
            )
            print(f"revoked {record.serial} ({args.reason})")

    return run(go())


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        async with opened(Store, settings) as store:
            async with store.db.read() as conn:
                if args.customer_id:
                    records = await certificates_of(conn, normalise_id(args.customer_id))
                else:
                    records = await all_certificates(conn)
            if args.unmasked:
                await audit_unmasked(
                    store.audit,
                    "certificates",
                    subject=mask_id(args.customer_id) if args.customer_id else "certificates",
                    details={"command": "list", "count": len(records)},
                )
        now = system_clock()
        rows = [_listing(record, settings, now, unmasked=args.unmasked) for record in records]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for row in rows:
            print(
                f"{row['serial']:<40}  {row['customer_id']:<10}  "
                f"{row['not_after']}  {row['status']}"
                + (f" ({row['revoked_reason']})" if row["revoked_reason"] else "")
            )

    return run(go())


def _listing(
    record: CertificateRecord, settings: Settings, now: datetime, *, unmasked: bool
) -> dict[str, Any]:
    status = record.status(now, settings.renewal_window_days)
    return {
        "serial": record.serial,
        "customer_id": record.customer_id if unmasked else mask_id(record.customer_id),
        "not_before": record.not_before.astimezone(TAIPEI).isoformat(),
        "not_after": record.not_after.astimezone(TAIPEI).isoformat(),
        "status": status.value if status else record.state.value,
        "revoked_reason": record.revoked_reason.value if record.revoked_reason else None,
    }
