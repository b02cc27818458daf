"""Settings: built-in defaults, then an optional TOML file, then `CERTDESK_*` variables.

Every number in the business rules of DESIGN §3 lives here, so the broker can change it without
a code change. Settings are validated once, at load time, so a bad value stops the process with
one clear line instead of failing half-way through a customer's flow.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from cryptography import x509

from certcore.errors import ConfigurationError
from certcore.handoff.hours import ServiceHours, parse_dates, parse_days
from certcore.storage.database import database_url

ENV_PREFIX = "CERTDESK_"
CUSTOMER_KEY_TYPES = ("rsa2048", "rsa3072", "p256")
MIN_PKCS12_KDF_ROUNDS = 600_000
MAX_OTP_LIFETIME_MINUTES = 10
MAX_PORT = 65_535
SMS_PROVIDERS = ("", "mitake", "every8d")
TELEGRAM_DELIVERIES = ("link", "document")
REMINDER_EMAIL_MODES = ("fallback", "also", "off")
DAY_MINUTES = 24 * 60
REMINDER_DAYS_BOUNDS = (1, 90)
"""Each expiry-reminder milestone, in days before notAfter: a reminder more than a quarter ahead
is noise, and one on the last day (0) would come too late to renew."""

BOUNDS: tuple[tuple[str, int, int], ...] = (
    # Every number a rule depends on, lowest and highest allowed. A value outside would switch a
    # rule of DESIGN §3–§4 off, or overflow a timedelta at start. Where the design fixes a
    # number, the bound is that number: a setting may make a rule stricter, never looser.
    ("port", 1, MAX_PORT),
    # An orchestrator kills what does not stop in time (Kubernetes: 30 s by default).
    ("shutdown_seconds", 1, 300),
    ("smtp_port", 1, MAX_PORT),
    # §3 validity "1 year"; 27 months (825 days) is the most relying parties accept.
    ("validity_months", 1, 27),
    # §3 renewal window "notAfter − 30 days"; a quarter at most.
    ("renewal_window_days", 1, 90),
    # Issue 11: a silent agent hands the customer back to the bot; a day at most.
    ("handoff_timeout_minutes", 5, DAY_MINUTES),
    # §3 "Online revocation quota: 2 per calendar year"; 0 sends every revocation to a branch.
    ("revocations_per_year", 0, 2),
    # A stale pending record blocks its customer until recovery: a day at most.
    ("pending_recovery_minutes", 1, DAY_MINUTES),
    # §4 "nextUpdate ≤ 48 h".
    ("crl_validity_hours", 1, 48),
    # §4 the CRL is regenerated "at least daily".
    ("crl_refresh_hours", 1, 24),
    # A week at most: relying parties cache a response up to its nextUpdate.
    ("ocsp_validity_hours", 2, 168),
    ("ocsp_refresh_margin_hours", 1, 167),
    # §4 "PBKDF2-HMAC-SHA256 with ≥600,000 rounds"; ten times that at most, since the customer's
    # own (often older) PC pays the rounds again on every import.
    ("pkcs12_kdf_rounds", MIN_PKCS12_KDF_ROUNDS, 10 * MIN_PKCS12_KDF_ROUNDS),
    # §3 "5 consecutive failures lock the check for 15 minutes"; a lock of more than a day
    # would be a way to keep the owner out.
    ("identity_max_failures", 1, 5),
    ("identity_lock_minutes", 15, DAY_MINUTES),
    # Issue 10 item 4: a chat (and its client) is locked for the day after this many failures;
    # across all chats an ID takes at most `identity_id_failures_per_day`, low enough that
    # guessing a birth date stays hopeless (20 of ~36,500 dates a day) and high enough that one
    # client alone cannot reach it.
    ("identity_chat_failures_per_day", 5, 20),
    ("identity_id_failures_per_day", 10, 50),
    # §3 OTP "Lifetime 5 minutes (never over 10)".
    ("otp_lifetime_minutes", 1, MAX_OTP_LIFETIME_MINUTES),
    # §3 "resend allowed after 60 s"; never longer than a code lives (checked below).
    ("otp_resend_seconds", 60, MAX_OTP_LIFETIME_MINUTES * 60),
    # §3 "5 wrong entries void the code".
    ("otp_max_attempts", 1, 5),
    # §3 "at most 5 sends per customer per hour and 10 per day".
    ("otp_sends_per_hour", 1, 5),
    ("otp_sends_per_day", 1, 10),
    # §4 "the rest of the delivery window (15 minutes, at most 3 downloads)".
    ("delivery_window_minutes", 1, 15),
    ("delivery_max_downloads", 1, 3),
    # A question left unanswered for a day is stale.
    ("flow_idle_minutes", 1, DAY_MINUTES),
    # A verified code can be spent for 30 minutes (`certcore.otp` VERIFICATION_SHELF_LIFE): a
    # sensitive flow lasting longer would only fail at its end.
    ("sensitive_flow_minutes", 1, 30),
    # A sender that has not answered in a minute will not; the chat is waiting meanwhile.
    ("send_timeout_seconds", 1, 60),
    # Telegram lets a bot post about 20 messages a minute in one group; 3 of them are a burst.
    ("telegram_support_per_minute", 4, 20),
    # Issue 11: a reminder sweep every 30 s to an hour; a batch small enough that one sweep
    # stays within the platforms' send limits, large enough to drain a backlog in a day.
    ("reminder_sweep_seconds", 30, 3600),
    ("reminder_batch", 1, 5000),
)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_SUPPORT_CHAT = re.compile(r"-100[0-9]{1,13}")
"""A supergroup's chat id as the Bot API gives it: -100 followed by the group's number."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""
    """Empty means the embedded SQLite database in the data directory."""
    public_url: str = "http://127.0.0.1:8080"
    """Base of the CRL, OCSP and CA-certificate URLs written into every certificate."""
    host: str = "127.0.0.1"
    port: int = 8080
    log_format: str = "json"
    """`serve`'s log lines: "json" (one object a line, for a log pipeline) or "text"."""
    shutdown_seconds: int = 20
    """On SIGTERM, how long `serve` may take to finish the events in hand before it exits."""
    trusted_proxies: str = ""
    """Addresses or networks (comma-separated) of the reverse proxies in front of `serve`,
    whose `X-Forwarded-For` names the client; empty means clients connect directly. Behind a
    proxy left out here, every web client would share the proxy's address, and with it the
    limits kept per client (new chat sessions, identity checks)."""

    broker_name: str = "CertDesk Demo Securities Co., Ltd."
    ra_name: str = "CertDesk Registration Authority"
    ca_common_name: str = "CertDesk Development Client CA"
    issuer_tag: str = "CERTDESK"
    policy_oid: str = "1.3.6.1.5.5.7.13.1"
    """RFC 7229 test policy, right for the development CA; production sets the broker's own OID
    (every arc below 2**32: pkilint and many relying parties reject larger arcs)."""
    customer_key: str = "rsa2048"

    validity_months: int = 12
    renewal_window_days: int = 30
    revocations_per_year: int = 2
    pending_recovery_minutes: int = 10

    crl_validity_hours: int = 36
    crl_refresh_hours: int = 24
    ocsp_validity_hours: int = 24
    ocsp_refresh_margin_hours: int = 8
    pkcs12_kdf_rounds: int = MIN_PKCS12_KDF_ROUNDS

    identity_max_failures: int = 5
    """Consecutive failed identity checks that lock a conversation's (and its client's) check
    for `identity_lock_minutes`."""
    identity_lock_minutes: int = 15
    identity_chat_failures_per_day: int = 10
    """Failed checks in a day after which a conversation's (or a client's) check is locked for
    the rest of that day, successes in between or not."""
    identity_id_failures_per_day: int = 20
    """Failed checks of one ID number in a day, from all conversations together, after which
    the ID is locked for the rest of that day except in chats already linked to it. Above
    `identity_chat_failures_per_day`, so one client alone cannot lock the owner out."""

    otp_lifetime_minutes: int = 5
    otp_resend_seconds: int = 60
    otp_max_attempts: int = 5
    otp_sends_per_hour: int = 5
    otp_sends_per_day: int = 10
    otp_key: str = field(default="", repr=False)
    """Key of the hash that OTP codes are stored under; shared by every instance. Empty means a
    key generated into the data directory (mode 0600), which suits a single instance."""

    delivery_window_minutes: int = 15
    """How long a certificate delivery's one-time link stays usable (DESIGN §4)."""
    delivery_max_downloads: int = 3
    faq_file: str = ""
    """The broker's FAQ catalogue (TOML); empty means the shipped `dialogs/faq.toml`."""
    intents_file: str = ""
    """The broker's intent catalogue (TOML): what free text can mean, with example phrasings;
    empty means the shipped `dialogs/intents.toml`."""
    flow_idle_minutes: int = 10
    sensitive_flow_minutes: int = 30

    send_timeout_seconds: int = 10

    reminder_days: str = "30,7"
    """Expiry-reminder milestones, days before notAfter, comma-separated (each 1–90)."""
    reminder_quiet_start: str = "21:00"
    """Quiet hours on the Taipei wall clock ("HH:MM"): a reminder found from `start` waits
    until `end`; the window may cross midnight, and equal ends mean no quiet hours."""
    reminder_quiet_end: str = "09:00"
    reminder_sweep_seconds: int = 300
    """How often `serve` plans and sends the reminders that are due."""
    reminder_batch: int = 200
    """Reminders planned, and reminders sent, per sweep at most: a backlog drains steadily."""
    reminder_email: str = "fallback"
    """E-mail to the directory's address: `fallback` (when no chat could show the reminder),
    `also` (always, besides the chats) or `off`."""

    service_days: str = "mon,tue,wed,thu,fri"
    """The support desk's days (mon … sun, comma-separated); its hours are the same each day."""
    service_start: str = "08:30"
    """Opening and closing time of the support desk, Taipei wall clock ("HH:MM")."""
    service_end: str = "17:00"
    handoff_timeout_minutes: int = 30
    """An agent's conversation with no agent reply for this long returns to the bot."""
    closed_dates: str = ""
    """Days the desk is closed (public holidays, typhoon days): YYYY-MM-DD, comma-separated,
    or a TOML list of dates."""

    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = True
    smtp_from: str = ""
    sms_provider: str = ""
    """Empty (no SMS), "mitake" (三竹) or "every8d" (互動資通)."""
    sms_url: str = ""
    sms_username: str = ""
    sms_password: str = field(default="", repr=False)

    line_channel_secret: str = field(default="", repr=False)
    """LINE switches on when the secret and the access token are both set."""
    line_channel_access_token: str = field(default="", repr=False)
    line_api_base: str = ""
    """Empty means LINE's own hosts (api.line.me, and api-data.line.me for content); a base URL
    here serves both (the test suite's fake LINE API)."""
    line_account_link: bool = False
    """Link a LINE chat through LINE's Account Link and CertDesk's linking page, so the ID
    number is typed on the broker's site instead of into LINE's chat history."""

    telegram_bot_token: str = field(default="", repr=False)
    """Telegram switches on when the bot token is set."""
    telegram_webhook_secret: str = field(default="", repr=False)
    """`X-Telegram-Bot-Api-Secret-Token`; needed when `public_url` is https (webhook mode)."""
    telegram_api_base: str = ""
    """Empty means https://api.telegram.org."""
    telegram_delivery: str = "link"
    """`link` (the download page, as on LINE) or `document` (the encrypted .pfx sent in chat,
    `protect_content`, with the export password typed in chat and deleted once read)."""
    telegram_support_chat_id: str = ""
    """The support group: a forum supergroup (`-100…`) where every hand-off gets a topic and
    agents answer in it (the bot an admin with can_manage_topics). Empty: no support group."""
    telegram_support_per_minute: int = 20
    """Messages the bot posts in the support group in any minute, all topics together."""

    extra: Mapping[str, Any] = field(default_factory=dict)
    """Unknown keys from the TOML file, kept for the packages that own them."""

    @property
    def outbox_mode(self) -> bool:
        """No real sender configured: codes go to the development outbox (dev mode)."""
        return not self.smtp_host and not self.sms_provider

    @property
    def line_enabled(self) -> bool:
        return bool(self.line_channel_secret and self.line_channel_access_token)

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def telegram_support_chat(self) -> int | None:
        """The support group's chat id; None when there is none (or Telegram is off)."""
        if not (self.telegram_enabled and _SUPPORT_CHAT.fullmatch(self.telegram_support_chat_id)):
            return None
        return int(self.telegram_support_chat_id)

    @property
    def telegram_webhook_mode(self) -> bool:
        """Telegram delivers webhooks only to https: otherwise the bot long-polls (a laptop)."""
        return self.public_url.startswith("https://")

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'certdesk.sqlite3').resolve()}"

    @property
    def proxy_networks(self) -> tuple[IPNetwork, ...]:
        """`trusted_proxies`, parsed; ValueError for what is not an address or a network."""
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in self.trusted_proxies.split(",")
            if part.strip()
        )

    @property
    def reminder_milestones(self) -> tuple[int, ...]:
        """`reminder_days`, parsed: distinct, furthest first; ValueError for a bad list."""
        days = {int(part) for part in self.reminder_days.split(",") if part.strip()}
        lowest, highest = REMINDER_DAYS_BOUNDS
        if not days or not all(lowest <= day <= highest for day in days):
            raise ValueError(self.reminder_days)
        return tuple(sorted(days, reverse=True))

    @property
    def reminder_quiet_hours(self) -> tuple[time, time]:
        """`reminder_quiet_start` and `_end`, parsed; ValueError for what is not HH:MM."""
        return _clock_time(self.reminder_quiet_start), _clock_time(self.reminder_quiet_end)

    @property
    def service_hours(self) -> ServiceHours:
        """The desk's hours, parsed; ValueError for a bad day, time or date."""
        return ServiceHours(
            days=parse_days(self.service_days),
            start=_clock_time(self.service_start),
            end=_clock_time(self.service_end),
            closed=parse_dates(self.closed_dates),
        )

    @property
    def crl_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/crl"

    @property
    def ocsp_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/ocsp"

    @property
    def ca_issuers_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/ca.cer"

    def validate(self) -> Settings:
        problems = []
        for name, lowest, highest in BOUNDS:
            if not lowest <= getattr(self, name) <= highest:
                problems.append(f"{name} must be between {lowest} and {highest}")
        if self.customer_key not in CUSTOMER_KEY_TYPES:
            problems.append(f"customer_key must be one of {', '.join(CUSTOMER_KEY_TYPES)}")
        if self.crl_refresh_hours >= self.crl_validity_hours:
            problems.append("crl_refresh_hours must be below crl_validity_hours")
        if self.ocsp_refresh_margin_hours >= self.ocsp_validity_hours:
            problems.append("ocsp_refresh_margin_hours must be below ocsp_validity_hours")
        if self.otp_resend_seconds > 60 * self.otp_lifetime_minutes:
            problems.append("otp_resend_seconds must not exceed otp_lifetime_minutes")
        if not (
            self.identity_max_failures
            <= self.identity_chat_failures_per_day
            < self.identity_id_failures_per_day
        ):
            problems.append(
                "identity_chat_failures_per_day must be at least identity_max_failures and "
                "below identity_id_failures_per_day"
            )
        if self.database_url:
            try:
                database_url(self.database_url)
            except ValueError as exc:
                problems.append(f"database_url: {exc} (postgresql://… or sqlite:///…)")
        try:
            self.proxy_networks  # noqa: B018 - parsed here so a typo stops the start
        except ValueError:
            problems.append("trusted_proxies must be IP addresses or networks, comma-separated")
        if self.otp_sends_per_day < self.otp_sends_per_hour:
            problems.append("otp_sends_per_day must not be below otp_sends_per_hour")
        if self.log_format not in ("json", "text"):
            problems.append('log_format must be "json" or "text"')
        try:
            self.reminder_milestones  # noqa: B018 - parsed here so a typo stops the start
        except ValueError:
            lowest, highest = REMINDER_DAYS_BOUNDS
            problems.append(
                f"reminder_days must be whole numbers between {lowest} and {highest}, "
                "comma-separated"
            )
        for name in ("reminder_quiet_start", "reminder_quiet_end"):
            try:
                _clock_time(getattr(self, name))
            except ValueError:
                problems.append(f"{name} must be a time of day as HH:MM (00:00-23:59)")
        if self.reminder_email not in REMINDER_EMAIL_MODES:
            problems.append(f"reminder_email must be one of {', '.join(REMINDER_EMAIL_MODES)}")
        problems += _service_hours_problems(self)
        problems += _url_problems("public_url", self.public_url)
        if not self.issuer_tag or not self.issuer_tag.isascii() or not self.issuer_tag.isalnum():
            problems.append("issuer_tag must be ASCII letters and digits")
        if self.sms_provider not in SMS_PROVIDERS:
            problems.append(f"sms_provider must be empty or one of {', '.join(SMS_PROVIDERS[1:])}")
        if self.sms_provider and not (self.sms_url and self.sms_username and self.sms_password):
            problems.append("sms_provider needs sms_url, sms_username and sms_password")
        if self.smtp_host and not self.smtp_from:
            problems.append("smtp_host needs smtp_from (the sender address)")
        if bool(self.line_channel_secret) != bool(self.line_channel_access_token):
            problems.append("line_channel_secret and line_channel_access_token go together")
        for name in ("line_api_base", "telegram_api_base"):
            if getattr(self, name):
                problems += _url_problems(name, getattr(self, name))
        if self.telegram_delivery not in TELEGRAM_DELIVERIES:
            problems.append(f"telegram_delivery must be one of {', '.join(TELEGRAM_DELIVERIES)}")
        secret = self.telegram_webhook_secret
        if secret and not (
            len(secret) <= 256 and all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)
        ):
            problems.append("telegram_webhook_secret must be 1-256 of A-Z, a-z, 0-9, _ and -")
        support = self.telegram_support_chat_id
        if support and not _SUPPORT_CHAT.fullmatch(support):
            problems.append("telegram_support_chat_id must be a supergroup's id (-100 and digits)")
        if support and not self.telegram_enabled:
            problems.append("telegram_support_chat_id needs telegram_bot_token")
        if self.telegram_enabled and self.telegram_webhook_mode and not secret:
            problems.append("telegram_webhook_secret is needed for Telegram's webhook (https)")
        problems += _policy_oid_problems(self.policy_oid)
        if problems:
            raise ConfigurationError("invalid configuration: " + "; ".join(problems))
        return self


def _url_problems(name: str, url: str) -> list[str]:
    """An http(s) URL with a host, in ASCII: it is written into every certificate (CRL, OCSP
    and CA-certificate addresses), and X.509 URIs carry no other characters."""
    if not url.isascii():
        return [f"{name} must be ASCII (an international host name in its xn-- form)"]
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not one)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() or not c.isprintable() for c in url)
    ):
        return [f"{name} must be an http:// or https:// URL"]
    return []


def _service_hours_problems(settings: Settings) -> list[str]:
    problems = []
    try:
        parse_days(settings.service_days)
    except ValueError:
        problems.append("service_days must be days among mon,tue,wed,thu,fri,sat,sun")
    times = []
    for name in ("service_start", "service_end"):
        try:
            times.append(_clock_time(getattr(settings, name)))
        except ValueError:
            problems.append(f"{name} must be a time of day as HH:MM (00:00-23:59)")
    if len(times) == 2 and not times[0] < times[1]:
        problems.append("service_start must be before service_end")
    try:
        parse_dates(settings.closed_dates)
    except ValueError:
        problems.append("closed_dates must be dates as YYYY-MM-DD, comma-separated")
    return problems


def _clock_time(text: str) -> time:
    """`21:00` as a time of day; ValueError for anything else (`9:00`, `24:00`, `21:00:30`)."""
    hours, colon, minutes = text.strip().partition(":")
    if not (colon and len(hours) == len(minutes) == 2 and (hours + minutes).isdigit()):
        raise ValueError(text)
    if not hours.isascii() or not minutes.isascii():
        raise ValueError(text)
    return time(int(hours), int(minutes))


def _policy_oid_problems(oid: str) -> list[str]:
    """The certificate-policy OID, as every certificate will carry it."""
    arcs = oid.split(".")
    if len(arcs) < 2 or not all(arc.isascii() and arc.isdigit() for arc in arcs):
        return ["policy_oid must be a dotted OID such as 1.3.6.1.5.5.7.13.1"]
    # Bigger arcs are refused by pkilint and many relying parties.
    if any(len(arc) > 10 or int(arc) >= 2**32 for arc in arcs):
        return ["policy_oid arcs must be below 2**32"]
    try:
        x509.ObjectIdentifier(oid)
    except ValueError:
        return ["policy_oid is not a valid OID (first arc 0-2; under 0 and 1, second below 40)"]
    return []


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Defaults, then the TOML file, then the environment, then explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    config_file = config_file or _path_or_none(environ.get(ENV_PREFIX + "CONFIG"))
    fields = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}
    if config_file is not None:
        try:
            document = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: also an integer of 5,000 digits
            reason = " ".join(str(exc).split())
            raise ConfigurationError(
                f"cannot read configuration file {config_file}: {reason}"
            ) from exc
        for key, value in document.items():
            if key in fields:
                values[key] = _coerce(key, value, fields[key].type)
            else:
                extra[key] = value
    for name, spec in fields.items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = _coerce(name, raw, spec.type)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values, extra=extra).validate()


def _path_or_none(value: str | None) -> Path | None:
    return Path(value) if value else None


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind == "int":
            if isinstance(value, bool | float):  # int(12.5) would silently drop the .5
                raise ValueError
            return int(value)
        if kind == "Path":
            return Path(value)
        if isinstance(value, list):  # a TOML list (closed_dates): its items, comma-separated
            return ",".join(str(item) for item in value)
        return str(value)
    except (TypeError, ValueError):
        shown = repr(value)
        if len(shown) > 40:  # a number of 5,000 digits is named, not printed
            shown = shown[:30] + f"… ({len(shown)} characters)"
        raise ConfigurationError(f"invalid configuration: {name} = {shown}") from None
