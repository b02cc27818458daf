"""Sending the planned expiry reminders through the chat channels and by e-mail (issue 11).

A sweep plans (certcore records each (certificate, milestone) once, with its send time after
the quiet hours), then claims what is due, a bounded batch (`reminder_batch`) at a time, and
sends each: a REMIND event to every conversation linked to the customer that may be reminded
(`following`, `reminders` on, not with an agent), through the app's `Channels`, so it reaches
the customer on that chat's own channel like any pushed message. The engine has the last word:
it answers a REMIND only where it is wanted, with no reply otherwise. The claim is the outbox's
lease (`ReminderPlanner.claim`): two sweepers at once (two instances, cron beside `serve`) never
take the same reminder.

The e-mail route (`reminder_email`): `fallback` sends the reminder to the customer's address in
the directory, through the configured e-mail sender, when no chat could show it (no linked
chat, none reachable, LINE's monthly push quota spent); `also` sends it every time as well;
`off` never. The outbox row records that the e-mail went (`sent`, reason `by e-mail …`).

What each platform's answer means here: a push refused as blocked (403) leaves the chat to its
channel, which records the conversation as not following (an UNFOLLOW through the engine), so
no later sweep pushes to it until the customer follows again (LINE follow, Telegram /start). A
rate limit (429, `retry_after`) stops this sweep sending on that platform: the reminders it
held stay pending for the next sweep, not counted as attempts. LINE's monthly quota is asked at
most once a sweep, before its first LINE push; when it is spent, or a push is refused for it,
LINE chats are left out and the e-mail route taken.

Exactly once, and where it cannot be: each REMIND event's id is derived from (serial, milestone,
conversation), so an event dispatched again (a crash between sending and marking) is answered
from the engine's record instead of being applied again. LINE drops the repeated push by its
`X-Line-Retry-Key` (derived from that id; a 409 counts as sent) and the web chat's log keeps one
copy per event id: both are exactly once. Telegram has no such key, so there the choice is at
most once: when a claim was never concluded (the reminder comes back with reason `CLAIMED`) and
the engine already recorded the event, the earlier attempt got as far as the push and whether
Telegram took it is unknown; it is not pushed again, and counted as shown. The price: a crash in
the milliseconds between the engine's record and Telegram's answer loses that chat's reminder
(the customer still has the next milestone, and any other chat). E-mail is the last resort, so
it is at least once: a crash after the SMTP server took it and before the row was marked sends
it again, with the same Message-ID (derived from serial and milestone), which mail systems
recognise as one message. A failure leaves the reminder pending for the next sweep, up to
`MAX_ATTEMPTS`, then it is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from bot.channels import Channels, Undelivered, channel_of
from bot.channels.line.adapter import LineChannel
from bot.channels.line.events import CHANNEL as LINE
from bot.channels.webchat import CHANNEL as WEB
from certcore.core import Core
from certcore.i18n import DEFAULT_LOCALE
from certcore.notify import Medium, SendError, SendFailure
from certcore.reminders import CLAIMED, Outcome, Reminder, ReminderState, reminder_email
from dialogs import EventKind, Inbound, reminder_choice

log = logging.getLogger("certdesk.reminders")

MAX_ATTEMPTS = 5
"""Failed sends of one reminder before it is skipped."""
RECORD_EVERY = 250
"""Outcomes recorded in one transaction: a crash loses at most this many marks, which the
claims' lease and the event ids make harmless (see above), instead of a transaction each."""
IDEMPOTENT_CHANNELS = frozenset({LINE, WEB})
"""Channels where the same event pushed twice is shown once (LINE's retry key, the web chat's
log by event id); elsewhere a reminder that may have gone out is not pushed again."""

NO_CHAT = "no linked chat"
NO_REACHABLE_CHAT = "no reachable chat"
NOT_SHOWN = "not shown in any chat"
QUOTA_SPENT = "LINE monthly quota spent"
FAILED = "sending failed"
RATE_LIMITED = "platform rate limit"
NOT_CURRENT = "certificate no longer current"
EMAIL_FAILED = "e-mail failed"
ALSO_BY_EMAIL = "also by e-mail"


def reminder_event_id(serial: str, milestone_days: int, conversation_id: str) -> str:
    """The REMIND event's id: the same for the same reminder in the same chat, always."""
    digest = hashlib.sha256(f"{serial}\n{milestone_days}\n{conversation_id}".encode()).hexdigest()
    return f"remind:{digest[:40]}"


def by_email(why: str) -> str:
    """The reason of a reminder that only the e-mail carried."""
    return f"by e-mail ({why})"


class Mailed(Enum):
    SENT = "sent"
    NOT_WANTED = "not wanted"
    """No address in the directory, no e-mail sender configured, or the setting is off."""
    NOT_CURRENT = "not current"
    REFUSED = "refused"
    """The server refused the address: trying again changes nothing."""
    FAILED = "failed"
    """Timed out or a server error: worth another try."""


@dataclass
class Sweep:
    """What one sweep did."""

    planned: list[Reminder] = field(default_factory=list)
    sent: list[tuple[Reminder, list[str]]] = field(default_factory=list)
    """Each reminder sent, with the conversations that showed it (none when only by e-mail)."""
    emailed: list[Reminder] = field(default_factory=list)
    skipped: list[tuple[Reminder, str]] = field(default_factory=list)
    retried: list[Reminder] = field(default_factory=list)
    """Failed this time, pending for the next sweep."""
    deferred: list[Reminder] = field(default_factory=list)
    """Held back by a platform's rate limit, pending for the next sweep (not an attempt)."""
    stopped: dict[str, Undelivered] = field(default_factory=dict)
    """Platforms this sweep stopped sending on, and why (rate limit, LINE's quota)."""


async def sweep(
    core: Core, channels: Channels, now: datetime, *, batch: int | None = None
) -> Sweep:
    """Plan, then send what is due at `now` (at most `batch` of each, `reminder_batch` by
    default)."""
    size = batch or core.settings.reminder_batch
    done = Sweep(planned=await core.reminders.plan(now, size))
    claimed = await core.reminders.claim(now, size)
    chats = await core.conversations.linked_to_each({r.customer_id for r in claimed})
    sender = _Sender(core, channels, now, done)
    try:
        for reminder in claimed:
            await sender.send(reminder, chats.get(reminder.customer_id, []))
            if len(sender.outcomes) >= RECORD_EVERY:
                await sender.record()
    finally:  # what was sent is recorded, even when the sweep stops half-way
        await sender.record()
    return done


@dataclass
class _Chats:
    """How the chats of one reminder went."""

    linked: bool = False
    reachable: bool = False
    shown: list[str] = field(default_factory=list)
    failed: bool = False
    deferred: bool = False
    quota: bool = False
    pushed: int = 0
    blocked: int = 0
    """Of the chats pushed to, those that turned out to have blocked the bot or account."""

    def reason(self) -> str:
        if self.failed:
            return FAILED
        if self.quota:
            return QUOTA_SPENT
        if not self.linked:
            return NO_CHAT
        if not self.reachable or (self.pushed and self.blocked == self.pushed):
            return NO_REACHABLE_CHAT
        return NOT_SHOWN


class _Sender:
    """One sweep's sending: the platforms it stopped on and LINE's quota, asked once."""

    def __init__(self, core: Core, channels: Channels, now: datetime, done: Sweep) -> None:
        self.core = core
        self.channels = channels
        self.now = now
        self.done = done
        self.line_left: int | None = None
        self.line_asked = False
        self.outcomes: list[Outcome] = []

    def mark(
        self,
        reminder: Reminder,
        state: ReminderState,
        reason: str | None = None,
        *,
        count: bool = True,
    ) -> None:
        self.outcomes.append(
            Outcome(reminder.serial, reminder.milestone_days, state, reason, count)
        )

    async def record(self) -> None:
        outcomes, self.outcomes = self.outcomes, []
        for missed in await self.core.reminders.record(outcomes):
            log.warning(
                "reminder %s/%dd was concluded by another sender meanwhile",
                missed.serial,
                missed.milestone_days,
            )

    async def send(self, reminder: Reminder, linked: list[dict[str, Any]]) -> None:
        chats = await self._chats(reminder, linked)
        mark = self.mark
        if not chats.shown and chats.deferred:
            mark(reminder, ReminderState.PENDING, RATE_LIMITED, count=False)
            self.done.deferred.append(reminder)
            return
        if not chats.shown and chats.failed and reminder.attempts + 1 < MAX_ATTEMPTS:
            mark(reminder, ReminderState.PENDING, FAILED)
            self.done.retried.append(reminder)
            return
        mode = self.core.settings.reminder_email
        wanted = mode == "also" or (mode == "fallback" and not chats.shown)
        mailed = await self._email(reminder, linked) if wanted else Mailed.NOT_WANTED
        if mailed is Mailed.SENT:
            self.done.emailed.append(reminder)
        if chats.shown:
            reason = {Mailed.SENT: ALSO_BY_EMAIL, Mailed.FAILED: EMAIL_FAILED}.get(mailed)
            mark(reminder, ReminderState.SENT, reason)
            self.done.sent.append((reminder, chats.shown))
        elif mailed is Mailed.SENT:
            mark(reminder, ReminderState.SENT, by_email(chats.reason()))
            self.done.sent.append((reminder, []))
        elif mailed is Mailed.FAILED and reminder.attempts + 1 < MAX_ATTEMPTS:
            mark(reminder, ReminderState.PENDING, EMAIL_FAILED)
            self.done.retried.append(reminder)
        else:
            reason = NOT_CURRENT if mailed is Mailed.NOT_CURRENT else chats.reason()
            if mailed in (Mailed.FAILED, Mailed.REFUSED):
                reason = f"{reason}; {EMAIL_FAILED}"
            mark(reminder, ReminderState.SKIPPED, reason)
            self.done.skipped.append((reminder, reason))

    async def _chats(self, reminder: Reminder, linked: list[dict[str, Any]]) -> _Chats:
        chats = _Chats(linked=bool(linked))
        resumed = reminder.reason == CLAIMED
        for chat in linked:
            if not chat["following"] or not chat["reminders"] or chat["agent_mode"]:
                continue
            conversation_id: str = chat["id"]
            platform = channel_of(conversation_id)
            stopped = self.done.stopped.get(platform)
            if stopped is Undelivered.QUOTA:
                chats.quota = True
                continue
            if stopped is not None:
                chats.reachable = chats.deferred = True
                continue
            event_id = reminder_event_id(reminder.serial, reminder.milestone_days, conversation_id)
            if (
                resumed
                and platform not in IDEMPOTENT_CHANNELS
                and (shown := await self._recorded(conversation_id, event_id)) is not None
            ):
                log.info(
                    "reminder %s/%dd: an earlier attempt reached %s's engine; not pushed again",
                    reminder.serial,
                    reminder.milestone_days,
                    platform,
                )
                chats.reachable = True
                if shown:
                    chats.shown.append(conversation_id)
                continue
            if platform == LINE and not await self._line_quota_left():
                chats.quota = True
                continue
            chats.reachable = True
            await self._push(reminder, conversation_id, event_id, chats)
        return chats

    async def _push(
        self, reminder: Reminder, conversation_id: str, event_id: str, chats: _Chats
    ) -> None:
        event = Inbound(
            conversation_id=conversation_id,
            event_id=event_id,
            kind=EventKind.REMIND,
            choice=reminder_choice(reminder.serial, reminder.milestone_days),
        )
        platform = channel_of(conversation_id)
        chats.pushed += 1
        try:
            with self._watching(conversation_id) as noted:
                replies = await self.channels.dispatch(event)
        except Exception as error:  # one chat failing must not stop the others, nor the sweep
            log.warning(
                "reminder %s/%dd to %s failed (%s)",
                reminder.serial,
                reminder.milestone_days,
                conversation_id,
                type(error).__name__,
            )
            chats.failed = True
            return
        if Undelivered.LIMITED in noted or Undelivered.QUOTA in noted:
            why = Undelivered.QUOTA if Undelivered.QUOTA in noted else Undelivered.LIMITED
            log.warning("reminders: %s answered %s; no more sent there this sweep", platform, why)
            self.done.stopped[platform] = why
            if why is Undelivered.QUOTA:
                chats.quota = True
            else:
                chats.deferred = True
        elif Undelivered.FAILED in noted:
            chats.failed = True
        elif Undelivered.BLOCKED in noted:  # the channel records it as not following
            chats.blocked += 1
        elif replies:
            chats.shown.append(conversation_id)
            if platform == LINE and self.line_left is not None:
                self.line_left -= 1

    @contextlib.contextmanager
    def _watching(self, conversation_id: str) -> Iterator[list[Undelivered]]:
        adapter = self.channels.of(conversation_id)
        if adapter is None:  # a channel this process does not run: the event is recorded only
            yield []
            return
        with adapter.watch(conversation_id) as noted:
            yield noted

    async def _recorded(self, conversation_id: str, event_id: str) -> bool | None:
        """Whether the engine's record of the event shows replies; None when there is none."""
        async with self.core.conversations.turn(conversation_id, event_id) as stored:
            recorded = stored.recorded
        return None if recorded is None else bool(json.loads(recorded))

    async def _line_quota_left(self) -> bool:
        """Whether LINE may take another push this month: asked once a sweep, then counted."""
        if not self.line_asked:
            self.line_asked = True
            adapter = self.channels.named(LINE)
            if isinstance(adapter, LineChannel):
                try:
                    self.line_left = await adapter.api.push_quota_left()
                except Exception as error:  # unknown: push, and let a refusal tell
                    log.warning("LINE quota not read (%s)", type(error).__name__)
            if self.line_left is not None:
                log.info("reminders: LINE has %d pushes left this month", self.line_left)
        if self.line_left is not None and self.line_left <= 0:
            self.done.stopped[LINE] = Undelivered.QUOTA
            return False
        return True

    async def _email(self, reminder: Reminder, linked: list[dict[str, Any]]) -> Mailed:
        sender = self.core.senders.get(Medium.EMAIL)
        customer = await self.core.customers.get(reminder.customer_id)
        if sender is None or customer is None or not customer.email:
            return Mailed.NOT_WANTED
        record = await self.core.certificates.get(reminder.serial)
        if record is None or record.revoked or record.not_after < self.now:
            return Mailed.NOT_CURRENT
        message = reminder_email(
            destination=customer.email,
            record=record,
            milestone_days=reminder.milestone_days,
            locale=next((chat["locale"] for chat in linked), DEFAULT_LOCALE),
            settings=self.core.settings,
        )
        try:
            await sender.send(message)
        except SendError as error:
            log.warning(
                "reminder %s/%dd by e-mail failed (%s)",
                reminder.serial,
                reminder.milestone_days,
                error.reason.value,
            )
            if error.reason is SendFailure.REJECTED_DESTINATION:
                return Mailed.REFUSED
            return Mailed.FAILED
        return Mailed.SENT
