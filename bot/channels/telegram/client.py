"""The Bot API client: python-telegram-bot's `Bot`, pointed at Telegram or at a fake.

PTB is used as a typed client only (`Bot`'s methods, `Update.de_json`); its `Application`,
handlers and persistence are not, since conversation state lives in CertDesk's database and
must be shared with every other channel and instance.

The bot token is part of every Bot API URL, and httpx logs every request's URL (PTB logs the
base URL too, and puts the token into an `InvalidToken` message): a filter on those loggers
writes `<token>` instead, so the token (and the webhook's secret, a parameter of setWebhook)
never reaches a log (DESIGN §9). PTB's debug log shows
every call's parameters and result, a download link's one-time token and a delivered .pfx's
file name (the customer's ID number) among them: the same filter writes `/d/<token>` for the
link and masks ID numbers (`A120XXX53`); the updates getUpdates returns (what customers typed)
are not logged at all.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

from telegram import Bot
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot import metrics
from certcore.config import Settings
from certcore.masking import mask_id

# PTB's own RetryAfter reads its deprecated int-valued `retry_after` while it is being built;
# CertDesk reads the value as a timedelta-or-seconds (`adapter.retry_after_seconds`).
warnings.filterwarnings(
    "ignore", message=r".*attribute `retry_after`", category=PTBDeprecationWarning
)

TELEGRAM_API = "https://api.telegram.org"
SEND_POOL = 64
"""Connections for sends: well above the ~30 messages a second Telegram allows overall, so a
burst of concurrent sends does not wait on PTB's pool (its default pool timeout is 1 s)."""
CLIENT_LOGGERS = (
    "httpx",
    "httpcore",
    "telegram",
    "telegram.Bot",
    "telegram.request.BaseRequest",
    "telegram.request.HTTPXRequest",
)

_DELIVERY_LINK = re.compile(r"/d/[A-Za-z0-9_-]{16,}")
"""A one-time download link's token, in a URL button PTB logs with the call's parameters."""
_FULL_ID = re.compile(r"(?<![A-Za-z0-9])[A-Z][1289A-D][0-9]{8}(?![A-Za-z0-9])")
"""A national ID or resident number, as it appears in a .pfx file name."""


class RedactSecrets(logging.Filter):
    """Replaces the given secrets in a record's message by `<token>`, and masks ID numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and args[:1] == ("getUpdates",)
            and "finished with return value" in str(record.msg)
        ):
            # What customers wrote (a birth date, an export password) stays out of the log.
            record.msg, record.args = "Call to Bot API endpoint `getUpdates` finished", None
            return True
        try:
            text = record.getMessage()
        except Exception:  # a broken log call: leave it to the logging module
            return True
        redacted = redact(text, self.secrets)
        if redacted != text:
            record.msg, record.args = redacted, None
        return True


def redact(text: str, secrets: set[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<token>")
    text = _DELIVERY_LINK.sub("/d/<token>", text)
    return _FULL_ID.sub(lambda found: mask_id(found.group(0)), text)


_REDACT = RedactSecrets()


def hide_from_logs(secret: str) -> None:
    """From now on, no record of the HTTP client's or PTB's loggers shows `secret`."""
    _REDACT.secrets.add(secret)
    for name in CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


class CountedRequest(HTTPXRequest):
    """PTB's HTTP transport, with every error answer (and every failure to get one) counted in
    the service's metrics: the one place every Bot API call passes."""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            code, payload = await super().do_request(*args, **kwargs)
        except Exception as error:
            metrics.platform_error("telegram", type(error).__name__)
            raise
        if code >= 400:
            metrics.platform_error("telegram", code)
        return code, payload


def api_base(settings: Settings) -> str:
    return (settings.telegram_api_base or TELEGRAM_API).rstrip("/")


def make_bot(settings: Settings) -> Bot:
    """The Bot for these settings: one connection pool for sends, one connection for
    getUpdates (whose long-poll wait PTB adds to its read timeout per call)."""
    token = settings.telegram_bot_token
    hide_from_logs(token)
    if settings.telegram_webhook_secret:  # PTB logs setWebhook's parameters, the secret too
        hide_from_logs(settings.telegram_webhook_secret)
    base = api_base(settings)
    timeout = float(settings.send_timeout_seconds)
    return Bot(
        token,
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        request=CountedRequest(
            connection_pool_size=SEND_POOL,
            read_timeout=timeout,
            write_timeout=timeout,
            connect_timeout=timeout,
            pool_timeout=timeout,
            media_write_timeout=max(timeout, 20.0),
        ),
        get_updates_request=CountedRequest(
            connection_pool_size=1,
            read_timeout=timeout,
            connect_timeout=timeout,
            pool_timeout=timeout,
        ),
    )
