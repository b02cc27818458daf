"""Opening the certcore parts a process needs, from its settings.

The CLI and the server both start here, so a command and the service always see the same
database, the same CA and the same rules.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from certcore.pki.authority import CertificateAuthority, serial_hex
from certcore.pki.cafiles import CAFiles
from certcore.pki.records import CertificateRecord, get_certificate
from certcore.clock import Clock, system_clock, system_random
from certcore.config import Settings
from certcore.pki.delivery import DeliveryService
from certcore.customers.verifier import IdentityVerifier
from certcore.keyfile import load_or_create_secret
from certcore.pki.keywork import KeyWork
from certcore.notify import build_senders, close_senders
from certcore.notify.base import Medium, Sender
from certcore.pki.ocsp import OcspResponder
from certcore.otp.service import OtpService
from certcore.pki.issuance import CertificateService
from certcore.storage.database import Database
from dialogs.engine import Engine
from dialogs.faq import Faq
from dialogs.flows import all_flows
from dialogs.services import HandoffDesk, NoAgentDesk, Services

PASSPHRASE_VARIABLE = "CERTDESK_CA_PASSPHRASE"


def ca_passphrase(environ: Mapping[str, str] | None = None) -> bytes | None:
    value = (os.environ if environ is None else environ).get(PASSPHRASE_VARIABLE)
    return value.encode("utf-8") if value else None


async def open_database(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.database)
    await db.migrate()
    return db


@dataclass
class Core:
    settings: Settings
    db: Database
    ca: CertificateAuthority
    service: CertificateService
    ocsp: OcspResponder
    identity: IdentityVerifier
    otp: OtpService
    deliveries: DeliveryService
    senders: dict[Medium, Sender]
    clock: Clock = field(default=system_clock)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        create_ca: bool = False,
        environ: Mapping[str, str] | None = None,
        keywork: KeyWork | None = None,
    ) -> Core:
        """Open the database and the CA; `create_ca` makes a development CA when there is none."""
        files = CAFiles(settings.data_dir)
        passphrase = ca_passphrase(environ)
        rng = rng or system_random()
        db = await open_database(settings)
        try:
            if create_ca and not files.exists():
                ca = files.initialise(
                    settings=settings, now=clock(), rng=rng, passphrase=passphrase
                )
            else:
                ca = files.load(passphrase)
        except BaseException:
            await db.close()
            raise

        async def lookup(serial: int) -> CertificateRecord | None:
            async with db.read() as conn:
                return await get_certificate(conn, serial_hex(serial))

        ocsp = OcspResponder(
            ca,
            lookup,
            clock,
            validity=timedelta(hours=settings.ocsp_validity_hours),
            refresh_margin=timedelta(hours=settings.ocsp_refresh_margin_hours),
        )
        service = CertificateService(
            db=db, ca=ca, settings=settings, clock=clock, rng=rng, ocsp=ocsp, keywork=keywork
        )
        senders = build_senders(settings, db, clock)
        otp_key = (
            settings.otp_key.encode("utf-8")
            if settings.otp_key
            else load_or_create_secret(settings.data_dir / "otp-key")
        )
        return cls(
            settings=settings,
            db=db,
            ca=ca,
            service=service,
            ocsp=ocsp,
            identity=IdentityVerifier(db=db, settings=settings, clock=clock),
            otp=OtpService(
                db=db, settings=settings, clock=clock, rng=rng, senders=senders, key=otp_key
            ),
            deliveries=DeliveryService(db=db, certificates=service, settings=settings, clock=clock),
            senders=senders,
            clock=clock,
        )

    def conversation_engine(self, *, owner: str, handoff: HandoffDesk | None = None) -> Engine:
        """The dialog engine over these services; `owner` names this process in leases."""
        services = Services(
            settings=self.settings,
            db=self.db,
            identity=self.identity,
            otp=self.otp,
            certificates=self.service,
            deliveries=self.deliveries,
            faq=Faq.load(Path(self.settings.faq_file) if self.settings.faq_file else None),
            handoff=handoff or NoAgentDesk(),
        )
        return Engine(services, all_flows(), self.clock, owner=owner)

    async def close(self) -> None:
        await close_senders(self.senders)
        await self.db.close()
