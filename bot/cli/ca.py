"""`certdesk ca …`: create or import the issuing CA, describe it, write its CRL."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from bot.cli.common import Commands, Store, audit_operator, opened, read_file, run
from certcore.clock import TAIPEI, system_clock, system_random
from certcore.config import Settings
from certcore.core import Core, ca_passphrase
from certcore.errors import InvalidInput
from certcore.pki import CAFiles


def register(commands: Commands) -> None:
    ca = commands.group("ca", "the issuing CA")
    ca.add("init", cmd_init, "generate the development CA (RSA-3072, self-signed)")
    importing = ca.add("import", cmd_import, "use the broker's own issuing CA")
    importing.add_argument("--cert", type=Path, required=True, help="CA certificate (PEM)")
    importing.add_argument(
        "--key",
        type=Path,
        required=True,
        help="encrypted private key (PEM); passphrase from CERTDESK_CA_PASSPHRASE or a prompt",
    )
    show = ca.add("show", cmd_show, "describe the CA certificate")
    show.add_argument("--pem", action="store_true", help="print the certificate as PEM")
    crl = ca.add("crl", cmd_crl, "write the current CRL (DER)")
    crl.add_argument("--out", type=Path, required=True)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        async with opened(Store, settings) as store:  # there is no CA yet
            ca = CAFiles(settings.data_dir).initialise(
                settings=settings,
                now=system_clock(),
                rng=system_random(),
                passphrase=ca_passphrase(),
            )
            await _audit_ca(store, "ca.initialised", ca.certificate)
        print(f"CA created in {settings.data_dir}: {ca.certificate.subject.rfc4514_string()}")
        if ca_passphrase() is None:
            print(f"its key passphrase is in {CAFiles(settings.data_dir).passphrase_path} (0600)")

    return run(go())


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    passphrase = ca_passphrase()
    if passphrase is None:
        if not sys.stdin.isatty():
            raise InvalidInput("set CERTDESK_CA_PASSPHRASE to the key's passphrase")
        passphrase = getpass.getpass("CA key passphrase: ").encode("utf-8")
    cert_pem, key_pem = read_file(args.cert), read_file(args.key)

    async def go() -> None:
        async with opened(Store, settings) as store:  # there is no CA yet
            ca = CAFiles(settings.data_dir).import_(
                cert_pem=cert_pem, key_pem=key_pem, passphrase=passphrase
            )
            await _audit_ca(store, "ca.imported", ca.certificate)
        print(f"CA imported into {settings.data_dir}: {ca.certificate.subject.rfc4514_string()}")

    return run(go())


async def _audit_ca(store: Store, action: str, certificate: x509.Certificate) -> None:
    await audit_operator(
        store.audit,
        action=action,
        subject=certificate.subject.rfc4514_string()[:64],
        details={"serial": f"{certificate.serial_number:X}"},
    )


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_crl(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> None:
        async with opened(Core, settings) as core:
            der = await core.certificates.crl()
            args.out.write_bytes(der)
            print(f"CRL written to {args.out} ({len(der)} bytes)")

    return run(go())
