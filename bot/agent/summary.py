"""What an agent reads about a hand-off, gathered from the core and masked: who the customer is
(ID number masked, name as the operator commands show it), the linked certificates' status, why
the chat was handed off, what the bot was saying then and the last things the customer did, the
unread count, and the transcript itself.

Plain values only; the markup is `bot.agent.views`. Everything a customer typed passes
`certcore.masking.mask_transcript_text` here again although the engine stored it masked (and
its hidden characters are spelled out, as the operator commands show them): a
one-time code, an export password or a full ID number must never reach an agent's screen, and a
second mask costs nothing. The bot's own replies pass it too (a reply quoting a typed text).
Links are shown by their label, never their address.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.channels.base import channel_of
from certcore.clock import taipei_text
from certcore.core import Core
from certcore.handoff import Handoff, Note
from certcore.masking import escape_hidden, mask_id, mask_transcript_text
from certcore.storage import TranscriptEntry
from dialogs import Choices, Delivery, Link, Table, Text, outbound_from_json

RECENT_SAID = 3
"""The customer's last inputs shown in the queue."""
SUMMARY_CHARS = 120
TRANSCRIPT_LIMIT = 50
QUEUE_LOOKBACK = 20
"""Events read per queue entry to find the bot's last words before the hand-off."""


@dataclass(frozen=True)
class CertificateLine:
    serial: str
    status: str
    """`valid`, `renewal_due`, `expired`, `revoked` (`certcore.pki.CertificateStatus`)."""
    not_after: str


@dataclass(frozen=True)
class Customer:
    id_masked: str
    name: str
    certificates: tuple[CertificateLine, ...]


@dataclass(frozen=True)
class QueueItem:
    handoff: Handoff
    channel: str
    customer: Customer | None
    """None while the chat is not linked to a customer."""
    bot_said: str
    """The bot's last words before the hand-off (masked, shortened): where the customer was.
    (The conversation's flow is no help: asking for a person ends it.)"""
    recent: tuple[str, ...]
    unread: int


@dataclass(frozen=True)
class Line:
    """One line of the transcript as an agent reads it."""

    at: str
    who: str
    """`customer`, `bot` or `agent`."""
    author: str | None
    text: str


async def queue_items(core: Core, handoffs: Sequence[Handoff]) -> list[QueueItem]:
    """The queue's entries, in the order given (`HandoffQueue.open_requests`)."""
    unread = await core.conversations.said_since({h.conversation_id: _seen(h) for h in handoffs})
    return [await _item(core, handoff, unread[handoff.conversation_id]) for handoff in handoffs]


async def queue_item(core: Core, handoff: Handoff) -> QueueItem:
    unread = await core.conversations.said_since({handoff.conversation_id: _seen(handoff)})
    return await _item(core, handoff, unread[handoff.conversation_id])


def _seen(handoff: Handoff) -> datetime:
    """After this, the customer's messages are unread: the agent's last read, else the claim,
    else the request."""
    return handoff.agent_seen_at or handoff.claimed_at or handoff.requested_at


async def _item(core: Core, handoff: Handoff, unread: int) -> QueueItem:
    record = await core.conversations.find(handoff.conversation_id)
    customer_id = record.get("customer_id") if record else None
    entries = await core.conversations.transcript(handoff.conversation_id, limit=QUEUE_LOOKBACK)
    recent = [_shown(e.said) for e in entries if e.said][-RECENT_SAID:]
    # The events up to the request, less the last (the one that asked: its replies are the
    # hand-off's own words): the bot's last words before it say where the customer was.
    before = [e for e in entries if e.at <= handoff.requested_at and not e.author][:-1]
    bot_said = ""
    for entry in reversed(before):
        texts = [text for text in _reply_texts(entry.replies) if text]
        if texts:
            bot_said = _shorten(texts[-1])
            break
    return QueueItem(
        handoff=handoff,
        channel=channel_of(handoff.conversation_id),
        customer=await customer_of(core, customer_id) if customer_id else None,
        bot_said=bot_said,
        recent=tuple(_shorten(text) for text in recent),
        unread=unread,
    )


async def customer_of(core: Core, customer_id: str) -> Customer:
    """The customer as an agent sees them: masked ID, name with hidden characters escaped (as
    `certdesk customers list` shows it), the issued certificates' status, newest first."""
    found = await core.customers.get(customer_id)
    now = core.clock()
    lines = []
    for record in await core.certificates.issued_of(customer_id):
        status = record.status(now, core.settings.renewal_window_days)
        if status is None:
            continue
        lines.append(
            CertificateLine(
                serial=record.serial[:8].upper(),
                status=status.value,
                not_after=taipei_text(record.not_after)[:10],
            )
        )
    return Customer(
        id_masked=mask_id(customer_id),
        name=escape_hidden(found.name) if found is not None else "",
        certificates=tuple(lines),
    )


async def transcript(core: Core, conversation_id: str) -> list[Line]:
    """The latest events as lines: what the customer did, then what was said back (by the bot,
    or by an agent, named)."""
    entries = await core.conversations.transcript(conversation_id, limit=TRANSCRIPT_LIMIT)
    return lines_of(entries)


def lines_of(entries: Sequence[TranscriptEntry]) -> list[Line]:
    lines: list[Line] = []
    for entry in entries:
        at = taipei_text(entry.at)[11:]
        if entry.said:
            lines.append(Line(at, "customer", None, _shown(entry.said)))
        who = "agent" if entry.author else "bot"
        for text in _reply_texts(entry.replies):
            if text:
                lines.append(Line(at, who, entry.author, text))
    return lines


def note_lines(notes: Sequence[Note]) -> list[Line]:
    return [
        Line(taipei_text(note.created_at)[5:16], "note", note.agent, _shown(note.text))
        for note in notes
    ]


def _reply_texts(replies: str) -> list[str]:
    """Each reply of an event record as one masked text; what cannot be read, nothing."""
    try:
        data: Any = json.loads(replies or "[]")
    except ValueError:
        return []
    texts = []
    for item in data if isinstance(data, list) else []:
        try:
            message = outbound_from_json(item)
        except (KeyError, TypeError, ValueError):
            continue
        if isinstance(message, Text):
            text = message.text
        elif isinstance(message, Choices):
            labels = " / ".join(option.label for option in message.options)
            text = f"{message.text}\n[{labels}]" if labels else message.text
        elif isinstance(message, Table):
            rows = "\n".join(" | ".join(row) for row in message.rows)
            text = f"{message.title}\n{rows}"
        elif isinstance(message, Link):
            text = f"{message.text} [{message.label}]"
        elif isinstance(message, Delivery):
            text = message.text
        else:  # ForgetInput: not a message
            continue
        texts.append(_shown(text))
    return texts


def _shown(text: str) -> str:
    """Text as an agent's screen may show it: masked, and every control, bidirectional or
    invisible character spelled out (`\\u202e`), so a customer cannot make a line read
    backwards or hide part of it."""
    masked = mask_transcript_text(text)
    return "\n".join(escape_hidden(line) for line in masked.split("\n"))  # lines stay lines


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SUMMARY_CHARS else flat[: SUMMARY_CHARS - 1] + "…"
