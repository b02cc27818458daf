"""Sending the planned expiry reminders through the chat channels (issue 11, second slice).

A sweep plans (certcore records each (certificate, milestone) once, with its send time after
the quiet hours) and then sends what is due, a bounded batch at a time: for each due reminder,
a REMIND event goes to every conversation linked to the customer that may be reminded
(`following`, `reminders` on, not with an agent), through the app's `Channels`, so it reaches
the customer on that chat's own channel like any pushed message. The engine has the last word:
it answers a REMIND only where it is wanted, with no reply otherwise.

Exactly once: each event's id is derived from (serial, milestone, conversation), so a second
attempt (a crash between sending and marking, a retry) is answered from the engine's record of
the first instead of being applied again, and LINE's `X-Line-Retry-Key` derives from that id, so
LINE drops a repeated push. The outbox row is then marked `sent` when some chat showed the
reminder, or `skipped` with the reason; a failure leaves it pending for the next sweep, up to
`MAX_ATTEMPTS`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

from bot.channels import Channels
from certcore.core import Core
from certcore.reminders import Reminder, ReminderState
from dialogs import EventKind, Inbound, reminder_choice

log = logging.getLogger("certdesk.reminders")

SWEEP_INTERVAL_SECONDS = 300.0
"""How often `serve` sweeps."""
BATCH = 200
"""Reminders planned, and reminders sent, per sweep at most: a backlog drains steadily."""
MAX_ATTEMPTS = 5
"""Failed sends of one reminder before it is skipped."""

NO_CHAT = "no linked chat"
NO_REACHABLE_CHAT = "no reachable chat"
NOT_SHOWN = "not shown in any chat"
FAILED = "sending failed"


def reminder_event_id(serial: str, milestone_days: int, conversation_id: str) -> str:
    """The REMIND event's id: the same for the same reminder in the same chat, always."""
    digest = hashlib.sha256(f"{serial}\n{milestone_days}\n{conversation_id}".encode()).hexdigest()
    return f"remind:{digest[:40]}"


@dataclass
class Sweep:
    """What one sweep did."""

    planned: list[Reminder] = field(default_factory=list)
    sent: list[tuple[Reminder, list[str]]] = field(default_factory=list)
    """Each reminder sent, with the conversations that showed it."""
    skipped: list[tuple[Reminder, str]] = field(default_factory=list)
    retried: list[Reminder] = field(default_factory=list)
    """Failed this time, pending for the next sweep."""


async def sweep(core: Core, channels: Channels, now: datetime, *, batch: int = BATCH) -> Sweep:
    """Plan, then send what is due at `now` (at most `batch` of each)."""
    done = Sweep(planned=await core.reminders.plan(now, batch))
    for reminder in await core.reminders.due(now, batch):
        await _send(core, channels, reminder, done)
    return done


async def _send(core: Core, channels: Channels, reminder: Reminder, done: Sweep) -> None:
    linked = await core.conversations.linked_to(reminder.customer_id)
    reachable = [
        chat["id"]
        for chat in linked
        if chat["following"] and chat["reminders"] and not chat["agent_mode"]
    ]
    shown: list[str] = []
    failed = False
    for conversation_id in reachable:
        event = Inbound(
            conversation_id=conversation_id,
            event_id=reminder_event_id(reminder.serial, reminder.milestone_days, conversation_id),
            kind=EventKind.REMIND,
            choice=reminder_choice(reminder.serial, reminder.milestone_days),
        )
        try:
            replies = await channels.dispatch(event)
        except Exception as error:  # one chat failing must not stop the others, nor the sweep
            log.warning(
                "reminder %s/%dd to %s failed (%s)",
                reminder.serial,
                reminder.milestone_days,
                conversation_id,
                type(error).__name__,
            )
            failed = True
            continue
        if replies:
            shown.append(conversation_id)
    mark = core.reminders.mark
    if shown:
        await mark(reminder.serial, reminder.milestone_days, ReminderState.SENT)
        done.sent.append((reminder, shown))
    elif failed and reminder.attempts + 1 < MAX_ATTEMPTS:
        await mark(reminder.serial, reminder.milestone_days, ReminderState.PENDING)
        done.retried.append(reminder)
    else:
        if failed:
            reason = FAILED
        elif not linked:
            reason = NO_CHAT
        elif not reachable:
            reason = NO_REACHABLE_CHAT
        else:
            reason = NOT_SHOWN
        await mark(reminder.serial, reminder.milestone_days, ReminderState.SKIPPED, reason)
        done.skipped.append((reminder, reason))
