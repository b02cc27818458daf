"""Expiry reminders (issue 11): which certificates reach a milestone, when a reminder may go
out, and the outbox that records each (certificate, milestone) exactly once.

certcore decides and records; it sends nothing. Out of scope here, for the slices to come:
pushing reminders through the chat channels, the e-mail fallback, the 立即更新憑證 choice,
`certdesk reminders sweep`, serve's periodic sweep and the customer's on/off setting.
"""

from certcore.reminders.planner import Reminder, ReminderPlanner, ReminderState
from certcore.reminders.rules import (
    QuietHours,
    milestone_moment,
    reached_milestone,
)

__all__ = [
    "QuietHours",
    "Reminder",
    "ReminderPlanner",
    "ReminderState",
    "milestone_moment",
    "reached_milestone",
]
