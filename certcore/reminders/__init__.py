"""Expiry reminders (issue 11): which certificates reach a milestone, when a reminder may go
out, the outbox that records each (certificate, milestone) exactly once, and the reminder as
an e-mail.

certcore decides, records and words the e-mail; it pushes nothing to a chat: that is the
sweep's (`bot.reminders`), which sends through the channels and the e-mail sender.
"""

from certcore.reminders.mail import reminder_email, reminder_message_key
from certcore.reminders.planner import (
    CLAIM_LEASE,
    CLAIMED,
    Outcome,
    Reminder,
    ReminderPlanner,
    ReminderState,
)
from certcore.reminders.rules import (
    QuietHours,
    milestone_moment,
    reached_milestone,
)

__all__ = [
    "CLAIMED",
    "CLAIM_LEASE",
    "Outcome",
    "QuietHours",
    "Reminder",
    "ReminderPlanner",
    "ReminderState",
    "milestone_moment",
    "reached_milestone",
    "reminder_email",
    "reminder_message_key",
]
