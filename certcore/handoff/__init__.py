"""Hand-off to a human: the request queue, the service hours and the agents' accounts."""

from certcore.handoff.agents import AgentAccounts, AgentExists, LoginCheck
from certcore.handoff.hours import ServiceHours, parse_dates, parse_days
from certcore.handoff.queue import (
    NOTE_MAX,
    OPEN_STATES,
    CannedReplies,
    CannedReply,
    Handoff,
    HandoffOutcome,
    HandoffQueue,
    HandoffReason,
    HandoffState,
    HandoffTaken,
    Note,
)
from certcore.handoff.sessions import AgentSession, AgentSessions, LoginResult

__all__ = [
    "NOTE_MAX",
    "OPEN_STATES",
    "AgentAccounts",
    "AgentExists",
    "AgentSession",
    "AgentSessions",
    "CannedReplies",
    "CannedReply",
    "Handoff",
    "HandoffOutcome",
    "HandoffQueue",
    "HandoffReason",
    "HandoffState",
    "HandoffTaken",
    "LoginCheck",
    "LoginResult",
    "Note",
    "ServiceHours",
    "parse_dates",
    "parse_days",
]
