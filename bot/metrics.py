"""The service's metrics, in Prometheus's format at `GET /metrics` (prometheus-client).

Counters and histograms of this process, in the client's default registry (with its process
and Python collectors): Prometheus scrapes every instance and adds them up. They are fed from
the few places that see everything: the engine's watchers (every event, by channel, kind and
outcome, and the time each flow's step took), the audit trail's watchers (issuances, renewals,
revocations, one-time codes sent, refused and failed, hand-offs: every such action is audited,
so counting the audit records counts them all), the platform clients (errors by status, 429s,
LINE pushes) and the reminder sweep. No label holds anything about a customer: channels,
kinds, outcomes, flows, steps, actions and HTTP statuses are small fixed sets.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from bot.channels.base import channel_of
from certcore.audit import watch_actions
from dialogs import Engine
from dialogs.engine import Handled

EVENTS = Counter(
    "certdesk_events",
    "Events handled by the engine, by channel, kind and outcome.",
    ["channel", "kind", "outcome"],
)
STEP_SECONDS = Histogram(
    "certdesk_step_seconds",
    "Seconds an event took once its conversation's turn came, by the flow and step it met.",
    ["flow", "step"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ISSUANCES = Counter("certdesk_issuances", "Certificates issued (not renewals).")
RENEWALS = Counter("certdesk_renewals", "Certificates issued as renewals.")
REVOCATIONS = Counter("certdesk_revocations", "Certificates revoked.")
OTP_SENDS = Counter(
    "certdesk_otp_sends", "One-time codes: sent, refused (limits) or failed.", ["result"]
)
HANDOFFS = Counter(
    "certdesk_handoffs",
    "Hand-off events: requested, claimed, cancelled, returned, resolved, timed_out, rated.",
    ["event"],
)
REMINDERS = Counter("certdesk_reminders", "Expiry reminders by result.", ["result"])
PLATFORM_ERRORS = Counter(
    "certdesk_platform_errors",
    "Calls to a platform's API that failed, by platform and HTTP status (or error type).",
    ["platform", "status"],
)
PLATFORM_THROTTLED = Counter(
    "certdesk_platform_throttled", "429 answers from a platform's API.", ["platform"]
)
LINE_PUSHES = Counter("certdesk_line_pushes", "LINE push requests LINE accepted.")
LINE_QUOTA_USED = Gauge(
    "certdesk_line_push_quota_used", "LINE's monthly push quota used, as LINE last reported it."
)
LINE_QUOTA_LIMIT = Gauge(
    "certdesk_line_push_quota_limit", "LINE's monthly push quota, as LINE last reported it."
)

_BY_ACTION = {
    "certificate.issued": ISSUANCES,
    "certificate.renewed": RENEWALS,
    "certificate.revoked": REVOCATIONS,
}
_OTP = {"otp.sent": "sent", "otp.send_refused": "refused", "otp.send_failed": "failed"}


def count_action(action: str) -> None:
    """An audited action, counted where a metric follows it."""
    counter = _BY_ACTION.get(action)
    if counter is not None:
        counter.inc()
    elif action in _OTP:
        OTP_SENDS.labels(_OTP[action]).inc()
    elif action.startswith("handoff."):
        HANDOFFS.labels(action.removeprefix("handoff.")).inc()


def count_event(handled: Handled) -> None:
    event = handled.event
    EVENTS.labels(channel_of(event.conversation_id), event.kind.value, handled.outcome).inc()
    if handled.outcome in ("answered", "silent", "failed"):
        STEP_SECONDS.labels(handled.flow or "-", handled.step or "-").observe(handled.seconds)


def platform_error(platform: str, status: int | str) -> None:
    """A platform's API answered an error (or could not be reached: the error's type)."""
    PLATFORM_ERRORS.labels(platform, str(status)).inc()
    if str(status) == "429":
        PLATFORM_THROTTLED.labels(platform).inc()


_watching = False


def watch(engine: Engine) -> None:
    """Count this engine's events, and (once per process) the audited actions."""
    global _watching
    if count_event not in engine.watchers:
        engine.watchers.append(count_event)
    if not _watching:
        watch_actions(count_action)
        _watching = True


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
