"""What the flows may use: certcore's services by name, handed in by the process that runs the
engine. Flows never see the database: each question they ask goes to the service that owns
the answer (the directory, the certificates, the audit trail)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from certcore.audit import AuditLog
from certcore.config import Settings
from certcore.core import Core
from certcore.customers import CustomerDirectory, IdentityVerifier
from certcore.otp import OtpService
from certcore.pki import CertificateService, DeliveryService
from dialogs.conversation import ConversationStorage
from dialogs.faq import Faq
from dialogs.handoff import QueueDesk
from dialogs.understanding import Matcher, load_matcher

if TYPE_CHECKING:
    from dialogs.turn import Turn


class HandoffDesk(Protocol):
    """Where 客服 (agent) leads: the support desk's queue (`dialogs.handoff.QueueDesk`)."""

    async def request(self, turn: Turn, why: str = "asked") -> None:
        """Hand the conversation to a person; `why` is a `certcore.handoff.HandoffReason`."""
        ...

    async def holds(self, turn: Turn) -> bool:
        """Whether the conversation's request is still open (the engine stays silent)."""
        ...

    async def cancel(self, turn: Turn) -> bool:
        """Cancel a waiting request and return to the bot; False when none is waiting."""
        ...

    async def customer_left(self, turn: Turn) -> None:
        """The customer blocked or left the chat: end any open request."""
        ...

    async def agent_says(self, turn: Turn, agent: str, text: str) -> bool:
        """The agent's words (empty: the agent took the chat); False when not theirs."""
        ...

    async def hand_back(self, turn: Turn, outcome: str, agent: str) -> bool:
        """End the hand-off and return to the bot; False when it had ended already."""
        ...

    async def rate(self, turn: Turn, handoff_id: int, rating: int) -> None:
        """Keep the customer's 1–5 for a resolved hand-off."""
        ...


class Linker(Protocol):
    """A channel's own way of linking a chat (LINE Account Link: the customer types their ID
    number on the broker's page, not into the chat's history). The link flow asks it first."""

    async def offer(self, turn: Turn) -> bool:
        """Offer it for this conversation (say how, e.g. a button to the page) and return True;
        False for a conversation it does not serve (the flow then asks in chat). The channel
        completes the link later with an `EventKind.LINKED` event."""
        ...


@dataclass
class Services:
    settings: Settings
    customers: CustomerDirectory
    identity: IdentityVerifier
    otp: OtpService
    certificates: CertificateService
    deliveries: DeliveryService
    audit: AuditLog
    faq: Faq
    matcher: Matcher
    """What free text means (the intent catalogue, with the FAQ's entries)."""
    handoff: HandoffDesk
    conversations: ConversationStorage
    linker: Linker | None = None

    @classmethod
    def of(
        cls,
        core: Core,
        *,
        handoff: HandoffDesk | None = None,
        conversations: ConversationStorage | None = None,
        linker: Linker | None = None,
    ) -> Services:
        """The services of an opened core; `conversations` replaces the core's own storage
        (a test that plays a second process)."""
        settings = core.settings
        faq_file = Path(settings.faq_file) if settings.faq_file else None
        return cls(
            settings=settings,
            customers=core.customers,
            identity=core.identity,
            otp=core.otp,
            certificates=core.certificates,
            deliveries=core.deliveries,
            audit=core.audit,
            faq=Faq.load(faq_file),
            matcher=load_matcher(
                Path(settings.intents_file) if settings.intents_file else None, faq_file
            ),
            handoff=handoff or QueueDesk(core.handoffs, settings.service_hours),
            conversations=conversations or core.conversations,
            linker=linker,
        )
