"""What every sender shares: the message, the ways a send can fail, and the sender interface.

A failure carries a reason the customer can act on (try the other destination, try later) and
an operator detail that never contains credentials, codes or full destinations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from certcore.errors import CertdeskError
from certcore.masking import mask_email, mask_mobile


class Medium(StrEnum):
    SMS = "sms"
    EMAIL = "email"


def mask_destination(medium: Medium, destination: str) -> str:
    """A mobile number or an e-mail address, masked as a person may be shown it."""
    return mask_mobile(destination) if medium is Medium.SMS else mask_email(destination)


@dataclass(frozen=True)
class OutgoingMessage:
    medium: Medium
    destination: str = field(repr=False)
    """Full mobile number (09XXXXXXXX) or e-mail address; never logged."""
    subject: str
    body: str = field(repr=False)
    """May hold a one-time code; never logged."""
    message_key: str | None = None
    """When set, the message's id is derived from it (an e-mail's Message-ID is
    `<key@sender's domain>`), so the same message sent again is recognisable as a duplicate."""


class SendFailure(StrEnum):
    TIMEOUT = "timeout"
    """The gateway did not answer in time: try again later."""
    REJECTED_DESTINATION = "rejected_destination"
    """The gateway refused this number or address: try the other destination."""
    GATEWAY_ERROR = "gateway_error"
    """The gateway answered with an error (account, quota, format): try later or the other."""
    UNAVAILABLE = "unavailable"
    """No sender is configured for this medium: use the other destination."""


class SendError(CertdeskError):
    code = "delivery_failed"

    reason: SendFailure
    """What the customer can act on (try the other destination, try later)."""
    detail: str
    """For the operator: what the gateway said, without credentials, codes or destinations."""

    def __init__(self, reason: SendFailure, detail: str) -> None:
        super().__init__(f"delivery failed ({reason.value}): {detail}")
        self.reason = reason
        self.detail = detail


class Sender(Protocol):
    """Sends one message, returning the gateway's receipt (message id), or raises SendError.

    Implementations bound their own wait: a timeout is a failure, never a hang.
    """

    async def send(self, message: OutgoingMessage) -> str: ...
