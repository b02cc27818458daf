"""What the flows may use: the certcore services, handed in by the process that runs the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from certcore.config import Settings
from certcore.pki.delivery import DeliveryService
from certcore.customers.verifier import IdentityVerifier
from certcore.otp.service import OtpService
from certcore.pki.issuance import CertificateService
from certcore.storage.database import Database

if TYPE_CHECKING:
    from dialogs.faq import Faq
    from dialogs.turn import Turn


class HandoffDesk(Protocol):
    """Where 客服 (agent) leads; the hand-off issue puts a human support desk behind it."""

    async def request(self, turn: Turn) -> None: ...


class NoAgentDesk:
    """Until agents can take over a chat: tell the customer how to reach support."""

    async def request(self, turn: Turn) -> None:
        turn.say("agent.unavailable")
        await turn.reprompt()


@dataclass
class Services:
    settings: Settings
    db: Database
    identity: IdentityVerifier
    otp: OtpService
    certificates: CertificateService
    deliveries: DeliveryService
    faq: Faq
    handoff: HandoffDesk
