"""Hand-off to a human: the request queue, the service hours and the agents' accounts."""

from certcore.handoff.agents import AgentAccounts, AgentExists
from certcore.handoff.hours import ServiceHours, parse_dates, parse_days
from certcore.handoff.queue import (
    OPEN_STATES,
    Handoff,
    HandoffQueue,
    HandoffReason,
    HandoffState,
)

__all__ = [
    "OPEN_STATES",
    "AgentAccounts",
    "AgentExists",
    "Handoff",
    "HandoffQueue",
    "HandoffReason",
    "HandoffState",
    "ServiceHours",
    "parse_dates",
    "parse_days",
]
