"""The `certdesk` command: `serve` and the operator commands.

Every command takes `--data-dir` (default ./var, or CERTDESK_DATA_DIR). A failure the operator
can fix is printed as one line on stderr with exit code 2, never as a traceback; `audit verify`
exits 1 when the chain is broken, so scripts can tell "tampered" from "mistyped".
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import io
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes

from bot.customer_view import customer_fields, detail_lines, summary_text, table_line
from certcore.audit import AuditTrail, verify_chain
from certcore.clock import TAIPEI, system_clock, system_random, taipei_text
from certcore.config import Settings, load_settings
from certcore.core import Core, ca_passphrase, open_database
from certcore.customers.demo import upsert_demo_customers
from certcore.customers.directory import get_customer, list_customers
from certcore.customers.importer import (
    SUPPORTED_ENCODINGS,
    CustomerFileRejected,
    import_customer_file,
)
from certcore.errors import AuditChainBroken, CertdeskError, InvalidInput
from certcore.identity.idnumbers import classify_id, normalise_id
from certcore.masking import mask_id
from certcore.pki.cafiles import CAFiles
from certcore.pki.crl import refresh_crl_if_due
from certcore.pki.issuance import Actor, IssuedCertificate
from certcore.pki.pkcs12 import Pkcs12Format
from certcore.pki.records import CertificateRecord, all_certificates, certificates_of
from certcore.pki.rules import RevocationReason

EXIT_USAGE = 2
EXIT_BROKEN = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        settings = load_settings(
            getattr(args, "config", None), data_dir=getattr(args, "data_dir", None)
        )
        return args.handler(args, settings) or 0
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


class _Parser(argparse.ArgumentParser):
    """Usage errors too are one line on stderr with exit code 2 (the usage is in --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"certdesk: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="data directory (default ./var, or CERTDESK_DATA_DIR)",
    )
    common.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="TOML configuration file (or CERTDESK_CONFIG)",
    )
    parser = _Parser(
        prog="certdesk",
        parents=[common],
        description="CertDesk: the broker's certificate center in chat.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(
        group: Any, name: str, handler: Callable[..., int | None], help_text: str
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    serve = command(commands, "serve", cmd_serve, "run the service")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    chat = command(
        commands, "chat", cmd_chat, "talk to the assistant in this terminal (the console channel)"
    )
    chat.add_argument(
        "--lang", choices=["zh-TW", "en"], default=None, help="language (default: as last time)"
    )

    ca = commands.add_parser("ca", help="the issuing CA").add_subparsers(
        title="ca commands", metavar="COMMAND"
    )
    command(ca, "init", cmd_ca_init, "generate the development CA (RSA-3072, self-signed)")
    ca_import = command(ca, "import", cmd_ca_import, "use the broker's own issuing CA")
    ca_import.add_argument("--cert", type=Path, required=True, help="CA certificate (PEM)")
    ca_import.add_argument(
        "--key",
        type=Path,
        required=True,
        help="encrypted private key (PEM); passphrase from CERTDESK_CA_PASSPHRASE or a prompt",
    )
    ca_show = command(ca, "show", cmd_ca_show, "describe the CA certificate")
    ca_show.add_argument("--pem", action="store_true", help="print the certificate as PEM")
    ca_crl = command(ca, "crl", cmd_ca_crl, "write the current CRL (DER)")
    ca_crl.add_argument("--out", type=Path, required=True)

    cert = commands.add_parser("cert", help="customer certificates").add_subparsers(
        title="cert commands", metavar="COMMAND"
    )
    issue = command(cert, "issue", cmd_cert_issue, "issue a certificate as an operator")
    issue.add_argument("--id", dest="customer_id", required=True, help="ID number or UBN")
    issue.add_argument("--password", required=True, help="export password, 4–12 letters/digits")
    issue.add_argument("--out", type=Path, required=True, help=".pfx file or directory")
    issue.add_argument("--compatible", action="store_true", help="3DES/SHA-1 for old systems")
    renew = command(cert, "renew", cmd_cert_renew, "renew a certificate inside its window")
    renew.add_argument("serial")
    renew.add_argument("--password", required=True)
    renew.add_argument("--out", type=Path, required=True)
    renew.add_argument("--compatible", action="store_true")
    revoke = command(cert, "revoke", cmd_cert_revoke, "revoke a certificate")
    revoke.add_argument("serial")
    revoke.add_argument(
        "--reason", required=True, choices=[reason.value for reason in RevocationReason]
    )
    listing = command(cert, "list", cmd_cert_list, "list certificates")
    listing.add_argument("--id", dest="customer_id", default=None)
    listing.add_argument("--json", action="store_true")

    customers = commands.add_parser("customers", help="the customer directory").add_subparsers(
        title="customers commands", metavar="COMMAND"
    )
    customers_import = command(
        customers, "import", cmd_customers_import, "import the back office's customer file (CSV)"
    )
    customers_import.add_argument("file", type=Path)
    customers_import.add_argument(
        "--encoding",
        choices=SUPPORTED_ENCODINGS,
        default="utf-8",
        help="utf-8 (a BOM is fine; the default) or cp950 for Big5 exports",
    )
    unmasked_help = "show full IDs, mobiles, e-mails and accounts (audited)"
    customers_list = command(customers, "list", cmd_customers_list, "list the customers")
    customers_list.add_argument("--json", action="store_true")
    customers_list.add_argument("--unmasked", action="store_true", help=unmasked_help)
    customers_show = command(customers, "show", cmd_customers_show, "show one customer")
    customers_show.add_argument("id_number", metavar="ID", help="ID number or UBN")
    customers_show.add_argument("--json", action="store_true")
    customers_show.add_argument("--unmasked", action="store_true", help=unmasked_help)
    command(customers, "demo", cmd_customers_demo, "add or restore the fictional demo customers")

    audit = commands.add_parser("audit", help="the audit trail").add_subparsers(
        title="audit commands", metavar="COMMAND"
    )
    command(audit, "verify", cmd_audit_verify, "verify the hash chain of the audit trail")

    notify = commands.add_parser("notify", help="delivery of one-time codes").add_subparsers(
        title="notify commands", metavar="COMMAND"
    )
    notify_test = command(
        notify, "test", cmd_notify_test, "send a test message through the configured sender"
    )
    target = notify_test.add_mutually_exclusive_group(required=True)
    target.add_argument("--mobile", help="Taiwanese mobile number (SMS)")
    target.add_argument("--email", help="e-mail address (SMTP)")
    return parser


def operator() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(name=f"operator:{user}", channel="cli")


def run(coroutine_function: Callable[[], Awaitable[int | None]]) -> int:
    return asyncio.run(coroutine_function()) or 0


def with_core(settings: Settings, body: Callable[[Core], Awaitable[int | None]]) -> int:
    async def go() -> int | None:
        core = await Core.open(settings)
        try:
            return await body(core)
        finally:
            await core.close()

    return run(go)


# -- serve -------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.serve import serve

    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    return run(lambda: serve(settings, host=host, port=port))


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels.console import chat

    # The terminal is the chat: engine diagnostics go to a file, not between the messages.
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    logging.basicConfig(
        filename=settings.data_dir / "console.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for stream in (sys.stdin, sys.stdout):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    return chat(settings, lang=args.lang, stdin=sys.stdin, stdout=sys.stdout)


# -- ca ----------------------------------------------------------------------------------


def cmd_ca_init(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        db = await open_database(settings)
        try:
            ca = CAFiles(settings.data_dir).initialise(
                settings=settings,
                now=system_clock(),
                rng=system_random(),
                passphrase=ca_passphrase(),
            )
            await _audit_ca_action(db, "ca.initialised", ca.certificate)
        finally:
            await db.close()
        print(f"CA created in {settings.data_dir}: {ca.certificate.subject.rfc4514_string()}")
        if ca_passphrase() is None:
            print(f"its key passphrase is in {CAFiles(settings.data_dir).passphrase_path} (0600)")

    return run(go)


def cmd_ca_import(args: argparse.Namespace, settings: Settings) -> int:
    passphrase = ca_passphrase()
    if passphrase is None:
        if not sys.stdin.isatty():
            raise InvalidInput("set CERTDESK_CA_PASSPHRASE to the key's passphrase")
        passphrase = getpass.getpass("CA key passphrase: ").encode("utf-8")
    cert_pem, key_pem = _read(args.cert), _read(args.key)

    async def go() -> None:
        db = await open_database(settings)
        try:
            ca = CAFiles(settings.data_dir).import_(
                cert_pem=cert_pem, key_pem=key_pem, passphrase=passphrase
            )
            await _audit_ca_action(db, "ca.imported", ca.certificate)
        finally:
            await db.close()
        print(f"CA imported into {settings.data_dir}: {ca.certificate.subject.rfc4514_string()}")

    return run(go)


def cmd_ca_show(args: argparse.Namespace, settings: Settings) -> int:
    from cryptography.hazmat.primitives import serialization

    certificate = CAFiles(settings.data_dir).load_certificate()
    if args.pem:
        sys.stdout.write(certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"))
        return 0
    key = certificate.public_key()
    print(f"subject:     {certificate.subject.rfc4514_string()}")
    print(f"serial:      {certificate.serial_number:X}")
    print(f"valid from:  {certificate.not_valid_before_utc.astimezone(TAIPEI).isoformat()}")
    print(f"valid until: {certificate.not_valid_after_utc.astimezone(TAIPEI).isoformat()}")
    print(f"key:         {type(key).__name__.removeprefix('_')} {getattr(key, 'key_size', '')}")
    print(f"SHA-256:     {certificate.fingerprint(hashes.SHA256()).hex(':').upper()}")
    return 0


def cmd_ca_crl(args: argparse.Namespace, settings: Settings) -> int:
    async def body(core: Core) -> None:
        der = await refresh_crl_if_due(core.db, core.ca, settings, core.clock())
        args.out.write_bytes(der)
        print(f"CRL written to {args.out} ({len(der)} bytes)")

    return with_core(settings, body)


async def _audit_ca_action(db: Any, action: str, certificate: Any) -> None:
    actor = operator()
    async with db.write() as conn:
        await AuditTrail(system_clock).append(
            conn,
            actor,
            action=action,
            subject=certificate.subject.rfc4514_string()[:64],
            details={"serial": f"{certificate.serial_number:X}"},
        )


# -- cert --------------------------------------------------------------------------------


def _format(compatible: bool) -> Pkcs12Format:
    return Pkcs12Format.COMPATIBLE if compatible else Pkcs12Format.STANDARD


def cmd_cert_issue(args: argparse.Namespace, settings: Settings) -> int:
    customer_id = normalise_id(args.customer_id)
    if classify_id(customer_id) is None:
        raise InvalidInput(
            f"--id {mask_id(customer_id)}: not a valid national ID, resident number or "
            "Unified Business Number (checksum or format)"
        )

    async def body(core: Core) -> None:
        issued = await core.certificates.issue(
            customer_id, args.password, actor=operator(), fmt=_format(args.compatible)
        )
        _write_pfx(issued, args.out)

    return with_core(settings, body)


def cmd_cert_renew(args: argparse.Namespace, settings: Settings) -> int:
    async def body(core: Core) -> None:
        issued = await core.certificates.renew(
            args.serial, args.password, actor=operator(), fmt=_format(args.compatible)
        )
        _write_pfx(issued, args.out)

    return with_core(settings, body)


def cmd_cert_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def body(core: Core) -> None:
        record = await core.certificates.revoke(
            args.serial, RevocationReason(args.reason), actor=operator(), online=False
        )
        print(f"revoked {record.serial} ({args.reason})")

    return with_core(settings, body)


def cmd_cert_list(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        db = await open_database(settings)
        try:
            async with db.read() as conn:
                if args.customer_id:
                    records = await certificates_of(conn, normalise_id(args.customer_id))
                else:
                    records = await all_certificates(conn)
        finally:
            await db.close()
        now = system_clock()
        rows = [_listing(record, settings, now) for record in records]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for row in rows:
            print(
                f"{row['serial']:<40}  {row['customer_id']:<10}  "
                f"{row['not_after']}  {row['status']}"
                + (f" ({row['revoked_reason']})" if row["revoked_reason"] else "")
            )

    return run(go)


def _listing(record: CertificateRecord, settings: Settings, now: Any) -> dict[str, Any]:
    status = record.status(now, settings.renewal_window_days)
    return {
        "serial": record.serial,
        "customer_id": record.customer_id,
        "not_before": record.not_before.astimezone(TAIPEI).isoformat(),
        "not_after": record.not_after.astimezone(TAIPEI).isoformat(),
        "status": status.value if status else record.state.value,
        "revoked_reason": record.revoked_reason.value if record.revoked_reason else None,
    }


def _write_pfx(issued: IssuedCertificate, out: Path) -> None:
    target = out / issued.filename if out.is_dir() else out
    try:
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


# -- customers ---------------------------------------------------------------------------


def cmd_customers_import(args: argparse.Namespace, settings: Settings) -> int:
    data = _read(args.file)
    actor = operator()

    async def go() -> int:
        db = await open_database(settings)
        try:
            summary = await import_customer_file(
                db,
                data,
                encoding=args.encoding,
                clock=system_clock,
                actor=actor,
            )
        except CustomerFileRejected as exc:
            for problem in exc.problems:  # values in them are masked
                print(problem, file=sys.stderr)
            print(f"certdesk: error: {args.file}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            await db.close()
        print(f"imported {args.file}: {summary_text(summary)}")
        return 0

    return run(go)


def cmd_customers_list(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        db = await open_database(settings)
        try:
            async with db.read() as conn:
                entries = await list_customers(conn)
            if args.unmasked:
                await _audit_unmasked(db, "customers", {"command": "list", "count": len(entries)})
        finally:
            await db.close()
        rows = [customer_fields(entry, unmasked=args.unmasked) for entry in entries]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        if not rows:
            print("the customer directory is empty", file=sys.stderr)
        for row in rows:
            print(table_line(row))

    return run(go)


def cmd_customers_show(args: argparse.Namespace, settings: Settings) -> int:
    id_number = normalise_id(args.id_number)
    if classify_id(id_number) is None:
        raise InvalidInput(
            f"{mask_id(id_number)}: not a valid national ID, resident number or "
            "Unified Business Number (checksum or format)"
        )

    async def go() -> None:
        db = await open_database(settings)
        try:
            async with db.read() as conn:
                entry = await get_customer(conn, id_number)
            if entry is None:
                raise InvalidInput(f"{mask_id(id_number)}: no such customer in the directory")
            if args.unmasked:
                await _audit_unmasked(db, mask_id(id_number), {"command": "show"})
        finally:
            await db.close()
        fields = customer_fields(entry, unmasked=args.unmasked)
        if args.json:
            print(json.dumps(fields, ensure_ascii=False, indent=2))
        else:
            print("\n".join(detail_lines(fields)))

    return run(go)


def cmd_customers_demo(args: argparse.Namespace, settings: Settings) -> int:
    actor = operator()

    async def go() -> None:
        db = await open_database(settings)
        try:
            summary = await upsert_demo_customers(db, system_clock(), actor=actor)
        finally:
            await db.close()
        print(f"demo customers: {summary_text(summary)}")

    return run(go)


async def _audit_unmasked(db: Any, subject: str, details: dict[str, Any]) -> None:
    """Recorded before anything is shown: no unmasked output without its audit record."""
    actor = operator()
    async with db.write() as conn:
        await AuditTrail(system_clock).append(
            conn,
            actor,
            action="customers.unmasked",
            subject=subject,
            details=details,
        )


# -- audit -------------------------------------------------------------------------------


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        db = await open_database(settings)
        try:
            async with db.read() as conn:
                count = await verify_chain(conn)
        finally:
            await db.close()
        print(f"audit chain intact: {count} records")

    return run(go)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


# -- notify ------------------------------------------------------------------------------

NOTIFY_TEST_SUBJECT = "CertDesk test message / CertDesk 測試訊息"
NOTIFY_TEST_BODY = (
    "CertDesk test message: the delivery of one-time codes works. No action is needed.\n"
    "CertDesk 測試訊息：一次性驗證碼的發送功能正常，無需任何動作。"
)
"""Operator test text for `certdesk notify test`, not customer text: customer messages live in
the locale catalogues. It carries no code, so it is safe in any outbox or gateway log."""


def cmd_notify_test(args: argparse.Namespace, settings: Settings) -> int:
    from certcore.masking import MASKED, mask_email, mask_mobile
    from certcore.notify import build_senders, close_senders
    from certcore.notify.base import Medium, OutgoingMessage, SendError, SendFailure

    if args.mobile is not None:
        medium, destination, masked = Medium.SMS, args.mobile.strip(), mask_mobile(args.mobile)
        if masked == MASKED:
            raise InvalidInput("--mobile: not a Taiwanese mobile number (09XXXXXXXX)")
    else:
        medium, destination, masked = Medium.EMAIL, args.email.strip(), mask_email(args.email)
        if masked == MASKED:
            raise InvalidInput("--email: not an e-mail address")
    message = OutgoingMessage(medium, destination, NOTIFY_TEST_SUBJECT, NOTIFY_TEST_BODY)

    async def go() -> None:
        db = await open_database(settings)
        senders = build_senders(settings, db, system_clock)
        receipt, failure = "", None
        try:
            sender = senders.get(medium)
            if sender is None:
                failure = SendError(
                    SendFailure.UNAVAILABLE,
                    "no SMS gateway is configured (CERTDESK_SMS_PROVIDER)"
                    if medium is Medium.SMS
                    else "no SMTP server is configured (CERTDESK_SMTP_HOST)",
                )
            else:
                try:
                    receipt = await sender.send(message)
                except SendError as exc:
                    failure = exc
            actor = operator()
            async with db.write() as conn:
                await AuditTrail(system_clock).append(
                    conn,
                    actor,
                    action="notify.test",
                    subject=masked,
                    details={
                        "via": medium.value,
                        "result": failure.reason.value if failure else "sent",
                        "receipt": receipt,
                    },
                )
        finally:
            await close_senders(senders)
            await db.close()
        if failure is not None:
            raise failure
        if settings.outbox_mode:
            print(f"stored in the development outbox as {receipt} (no SMTP or SMS configured)")
        else:
            print(f"sent to {masked} via {medium.value}: receipt {receipt}")

    return run(go)
