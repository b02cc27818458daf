"""The neutral language between channels and the engine.

A channel adapter turns what its platform delivers into one `Inbound` event and renders the
engine's `Outbound` messages in the platform's own form (quick replies, inline keyboards, a web
chat's JSON, numbered lines on a console). Nothing here knows any platform.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class EventKind(StrEnum):
    TEXT = "text"
    CHOICE = "choice"
    """A tap on one of the options the engine offered; `choice` holds its opaque key."""
    FILE = "file"
    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    DELIVERED = "delivered"
    """The channel handed the customer their certificate file; `choice` holds the delivery id."""
    MENU = "menu"
    """A tap on a menu the platform keeps on screen (LINE's rich menu): it leaves any running
    flow, as the main menu would, and takes the item: `choice` holds a menu item's key, or
    `text` the words the tap stands for."""
    LINKED = "linked"
    """The channel verified who the customer is on its own page (LINE Account Link), after the
    engine's `Linker` offered it; `choice` holds the customer's ID number."""
    REMIND = "remind"
    """An expiry reminder planned for this conversation's customer (not the customer's doing):
    `choice` holds `<certificate serial>:<milestone days>` (`reminder_choice`). The engine
    answers it only in a chat linked to that customer, following, with reminders on; else
    with no reply at all."""
    AGENT = "agent"
    """A support agent writes to the customer (the agent console, the support group): `choice`
    holds the agent's name and `text` the words; an empty `text` says the agent has taken the
    conversation. Shown only while the conversation's hand-off is active with that agent."""
    HANDBACK = "handback"
    """A hand-off ends and the bot has the conversation again: `choice` holds how
    (`returned`, `resolved`, `timed_out`, as `certcore.handoff.HandoffOutcome`) and `text` the
    agent's name (empty for a timeout)."""


def reminder_choice(serial: str, milestone_days: int) -> str:
    """A REMIND event's `choice`: which certificate, at which milestone."""
    return f"{serial}:{milestone_days}"


@dataclass(frozen=True)
class Inbound:
    conversation_id: str
    """Channel-qualified and stable, e.g. `line:U4af4…`, `telegram:123456`, `console:local`."""
    event_id: str
    """The platform's id for this event; a second event with the same id is a redelivery."""
    kind: EventKind
    text: str = ""
    choice: str = ""
    file: bytes | None = field(default=None, repr=False)
    filename: str = ""
    locale_hint: str | None = None
    client: str = ""
    """Who sent it, as far as the channel can tell beyond the conversation (`web:<address>`:
    a web chat's sessions are free to open), for limits that must hold across conversations;
    empty where the conversation is the client (a LINE or Telegram user)."""


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Option:
    key: str
    """Opaque and short (LINE postback data ≤ 300 characters, Telegram callback data ≤ 64 bytes)."""
    label: str


@dataclass(frozen=True)
class Choices:
    """A question with options; channels that cannot show buttons print them numbered."""

    text: str
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Link:
    text: str
    url: str
    label: str


@dataclass(frozen=True)
class Delivery:
    """A certificate ready to be handed over (DESIGN §4): LINE and the web chat show a one-time
    link to the download page, Telegram may send the encrypted file, the console asks for the
    export password and writes the file."""

    delivery_id: str
    text: str
    url: str


@dataclass(frozen=True)
class ForgetInput:
    """Not a message: the customer's input this event answers held a secret (an ID number, a
    birth date). A channel that can delete the customer's message from the platform's history
    (Telegram, in a private chat) does so; the others show nothing for it."""


Outbound = Text | Choices | Table | Link | Delivery | ForgetInput
_OUTBOUND_TYPES: dict[str, type[Outbound]] = {
    t.__name__: t for t in (Text, Choices, Table, Link, Delivery, ForgetInput)
}


class Progress(Protocol):
    """What a channel shows while a slow step runs, handed to `Engine.handle` with the event."""

    async def working(self) -> None:
        """A slow step begins (a code being sent, a revocation signed): show the platform's
        loading or typing sign. Called at most once per event, and never raises."""


def outbound_to_json(message: Outbound) -> dict[str, Any]:
    """A plain-JSON form, kept with each processed event so a redelivery gets the same reply.

    A delivery's link is a secret that lets its holder set the export password: it is left
    out, so a redelivered event shows the text without a working link.
    """
    # Field by field rather than `dataclasses.asdict`, which deep-copies every value and cost
    # a tenth of a LINE event's time on the event loop for a menu with its options.
    if isinstance(message, Text):
        return {"type": "Text", "text": message.text}
    if isinstance(message, Choices):
        options = [{"key": option.key, "label": option.label} for option in message.options]
        return {"type": "Choices", "text": message.text, "options": options}
    if isinstance(message, Table):
        return {
            "type": "Table",
            "title": message.title,
            "columns": list(message.columns),
            "rows": [list(row) for row in message.rows],
        }
    if isinstance(message, Link):
        return {"type": "Link", "text": message.text, "url": message.url, "label": message.label}
    if isinstance(message, Delivery):
        return {"type": "Delivery", "delivery_id": "", "text": message.text, "url": ""}
    return {"type": type(message).__name__, **dataclasses.asdict(message)}


def outbound_from_json(data: dict[str, Any]) -> Outbound:
    values = dict(data)
    kind = _OUTBOUND_TYPES[values.pop("type")]
    if kind is Choices:
        values["options"] = tuple(Option(**option) for option in values["options"])
    if kind is Table:
        values["columns"] = tuple(values["columns"])
        values["rows"] = tuple(tuple(row) for row in values["rows"])
    return kind(**values)
