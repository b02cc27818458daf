"""The channel-neutral conversation engine and every certificate-center flow.

A channel turns what its platform delivers into an `Inbound` event, hands it to
`Engine.handle` and renders the `Outbound` replies; `engine_for(core)` builds the engine over
an opened certcore `Core`. Nothing here knows a platform or the database.
"""

from __future__ import annotations

from certcore.core import Core
from dialogs.conversation import (
    Conversation,
    ConversationStorage,
    ConversationStore,
    RecordedReplies,
)
from dialogs.engine import Engine, global_word
from dialogs.flows import all_flows
from dialogs.handoff import QueueDesk
from dialogs.messages import (
    Choices,
    Delivery,
    EventKind,
    ForgetInput,
    Inbound,
    Link,
    Option,
    Outbound,
    Progress,
    Table,
    Text,
    outbound_from_json,
    outbound_to_json,
    reminder_choice,
)
from dialogs.services import HandoffDesk, Linker, Services
from dialogs.text import small_number


def engine_for(
    core: Core,
    *,
    handoff: HandoffDesk | None = None,
    conversations: ConversationStorage | None = None,
    linker: Linker | None = None,
) -> Engine:
    """The engine with every flow over the services of `core`; `linker` is a channel's own way
    of linking a chat (LINE Account Link), offered before the ID number is asked in chat."""
    services = Services.of(core, handoff=handoff, conversations=conversations, linker=linker)
    return Engine(services, all_flows(), core.clock)


__all__ = [
    "Choices",
    "Conversation",
    "ConversationStorage",
    "ConversationStore",
    "Delivery",
    "Engine",
    "EventKind",
    "ForgetInput",
    "HandoffDesk",
    "Inbound",
    "Link",
    "Linker",
    "Option",
    "Outbound",
    "Progress",
    "QueueDesk",
    "RecordedReplies",
    "Services",
    "Table",
    "Text",
    "all_flows",
    "engine_for",
    "global_word",
    "outbound_from_json",
    "outbound_to_json",
    "reminder_choice",
    "small_number",
]
