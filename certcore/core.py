"""The opened core: every certcore service a process needs, built from its settings.

The CLI, the server, the console and every test open the core here, so a command and the
service always see the same database, the same CA and the same rules. Nothing here knows of
chat: the conversation engine is built on top of an opened core by `dialogs`.

Opening is also where the process proves its settings against the certificate profile (a bad
policy OID stops the start, not a customer's issuance) and ends the deliveries past their
window, whichever process it is.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from certcore.audit import AuditLog
from certcore.clock import Clock, system_clock, system_random
from certcore.config import Settings
from certcore.customers import CustomerDirectory, IdentityVerifier
from certcore.handoff import AgentAccounts, HandoffQueue
from certcore.keyfile import keep_private, load_or_create_secret, open_to_others
from certcore.notify import (
    DevOutbox,
    Medium,
    Sender,
    build_senders,
    close_senders,
    outbox_lifetime,
    purge_outbox,
)
from certcore.otp import OtpService
from certcore.pki import (
    CAFiles,
    CertificateAuthority,
    CertificateService,
    DeliveryService,
    KeyWork,
    OcspResponder,
)
from certcore.reminders import ReminderPlanner
from certcore.storage import Database, sqlite_file
from certcore.storage.conversations import ConversationRecords

PASSPHRASE_VARIABLE = "CERTDESK_CA_PASSPHRASE"

log = logging.getLogger("certdesk.core")


def ca_passphrase(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The CA key's passphrase from the operator's environment, if one is set."""
    value = (os.environ if environ is None else environ).get(PASSPHRASE_VARIABLE)
    return value.encode("utf-8") if value else None


async def open_database(settings: Settings) -> Database:
    """The database of the data directory (created, mode 0700, when missing), migrated; its
    files (and SQLite's -wal and -shm beside it) are the owner's alone, 0600, whatever the
    directory's mode, and a directory open to others is pointed out in the log."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = open_to_others(settings.data_dir)
    if mode is not None:
        log.warning(
            "the data directory %s is open to group or others (mode %03o); its files are kept "
            "0600, but run chmod 700 on it",
            settings.data_dir,
            mode,
        )
    database_file = sqlite_file(settings.database)
    if database_file is not None:
        keep_private(database_file)  # SQLite gives its -wal and -shm files the same mode
        for suffix in ("-wal", "-shm", "-journal"):
            keep_private(database_file.with_name(database_file.name + suffix), create=False)
    db = Database(settings.database)
    await db.migrate()
    return db


@dataclass
class Core:
    settings: Settings
    db: Database
    ca: CertificateAuthority
    certificates: CertificateService
    ocsp: OcspResponder
    customers: CustomerDirectory
    identity: IdentityVerifier
    otp: OtpService
    deliveries: DeliveryService
    audit: AuditLog
    conversations: ConversationRecords
    reminders: ReminderPlanner
    handoffs: HandoffQueue
    agents: AgentAccounts
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
            # Expired codes left in the development outbox, in dev mode or from an earlier one.
            await purge_outbox(db, clock() - outbox_lifetime(settings))
            if create_ca and not files.exists():
                ca = files.initialise(
                    settings=settings, now=clock(), rng=rng, passphrase=passphrase
                )
            else:
                ca = files.load(passphrase)
            # A setting the certificate cannot carry stops here, not at a customer's issuance.
            ca.check_profile(settings, clock())
            certificates = CertificateService(
                db=db, ca=ca, settings=settings, clock=clock, rng=rng, keywork=keywork
            )
            deliveries = DeliveryService(
                db=db, certificates=certificates, settings=settings, clock=clock
            )
            # Whatever process opens the core (`certdesk chat`, an operator command, `serve`)
            # ends the deliveries past their window: a kept .pfx never waits for `serve`.
            await deliveries.erase_expired()
        except BaseException:
            await db.close()
            raise
        ocsp = OcspResponder(
            ca,
            certificates.get_by_number,
            clock,
            validity=timedelta(hours=settings.ocsp_validity_hours),
            refresh_margin=timedelta(hours=settings.ocsp_refresh_margin_hours),
        )
        certificates.ocsp = ocsp
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
            certificates=certificates,
            ocsp=ocsp,
            customers=CustomerDirectory(db),
            identity=IdentityVerifier(
                db=db, settings=settings, clock=clock, scope_key=otp_key, senders=senders
            ),
            otp=OtpService(
                db=db, settings=settings, clock=clock, rng=rng, senders=senders, key=otp_key
            ),
            deliveries=deliveries,
            audit=AuditLog(db, clock),
            conversations=ConversationRecords(db, clock),
            reminders=ReminderPlanner(db, settings, clock),
            handoffs=HandoffQueue(db, clock),
            agents=AgentAccounts(db, clock),
            senders=senders,
            clock=clock,
        )

    @property
    def outbox(self) -> DevOutbox | None:
        """The development outbox, when codes go there instead of to SMS and e-mail."""
        sender = self.senders.get(Medium.SMS)
        return sender if isinstance(sender, DevOutbox) else None

    async def close(self) -> None:
        await self.identity.flush_notices()
        await close_senders(self.senders)
        self.conversations.close()
        await self.db.close()
