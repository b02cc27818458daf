"""LINE's Messaging API, through line-bot-sdk v3, with LINE's failure modes handled once.

One SDK client (one aiohttp session and its connection pool) serves the whole process: the
webhook's hot path creates nothing per request. What the platform's errors mean here:

- 429 and 5xx (and a connection that fails) are retried with a bounded backoff, honouring
  `Retry-After` up to a cap; a push keeps its `X-Line-Retry-Key` across the retries, so a retry
  of a push LINE had in fact accepted is answered 409 and counted as sent: nothing doubles.
- A reply that fails (a reply token LINE rejects, or retries used up) tells the caller, which
  pushes instead; a reply is never retried after an ambiguous failure, since the push that
  follows carries the retry key that makes it safe.
- 403 on a push: the user blocked the account; the caller stops pushing to them.
- 429 "You have reached your monthly limit": the month's push quota is spent, which no retry
  changes: told at once (`Pushed.QUOTA`); `push_quota_left` asks before pushing.

No rendering here: `render` makes the messages, this module only carries them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Any, TypeVar

import aiohttp
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    RichMenuRequest,
    ShowLoadingAnimationRequest,
)

from bot import metrics
from bot.channels.line.render import LineMessage
from certcore.config import Settings

log = logging.getLogger("certdesk.line")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

ATTEMPTS = 4
"""Tries of one request that meets 429 or 5xx before it is given up."""
FIRST_DELAY = 0.2
MAX_DELAY = 5.0
"""Seconds; a longer `Retry-After` is waited this long (the next try may meet another 429)."""
REQUEST_TIMEOUT = 10.0
POOL_SIZE = 64
LOADING_SECONDS = 20
API_HOST = "https://api.line.me"
REPLY_PATH = "/v2/bot/message/reply"
PUSH_PATH = "/v2/bot/message/push"
RETRY_KEY_NAMESPACE = uuid.UUID("8c7b1f57-3c7e-4c0b-9f0e-6f1d2a7c5e41")


class Pushed(Enum):
    SENT = "sent"
    BLOCKED = "blocked"
    """403: the user blocked the account (or never followed it)."""
    LIMITED = "limited"
    """429 still after the retries: LINE's rate limit; nothing was sent."""
    QUOTA = "quota"
    """429, the monthly push quota spent."""
    FAILED = "failed"


def monthly_limit(error: BaseException) -> bool:
    """Whether LINE refused because this month's push quota is spent."""
    if not isinstance(error, ApiException) or error.status != 429:
        return False
    body = error.body
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return "monthly limit" in text.lower()


def retry_key(event_id: str, batch: int) -> str:
    """The push's `X-Line-Retry-Key`: the same for the same event's same batch, so a push sent
    twice (a retry, a second process answering the same redelivery) is accepted once."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{event_id}\n{batch}"))


def _retryable(error: BaseException) -> bool:
    if isinstance(error, ApiException):
        if monthly_limit(error):
            return False
        return error.status == 429 or (error.status or 0) >= 500
    return isinstance(error, aiohttp.ClientError | TimeoutError)


def _delay(error: BaseException, attempt: int) -> float:
    if isinstance(error, ApiException) and error.headers is not None:
        header = error.headers.get("Retry-After")
        if header is not None:
            try:
                return min(max(float(str(header)), 0.0), MAX_DELAY)
            except ValueError:
                pass
    return min(FIRST_DELAY * 2.0**attempt, MAX_DELAY)


def _environment_proxy() -> str | None:
    """An HTTPS proxy from the environment (`HTTPS_PROXY`), read once at start."""
    if os.environ.get("NO_PROXY") == "*":
        return None
    return urllib.request.getproxies().get("https") or None


def _status(error: BaseException) -> str:
    return str(error.status) if isinstance(error, ApiException) else type(error).__name__


class JsonBody(dict[str, Any]):
    """A request body that is LINE's JSON already (`render`'s messages): sent as it is."""


class _ApiClient(AsyncApiClient):
    """The SDK's client, but a `JsonBody` is not walked again value by value (the SDK's
    `sanitize_for_serialization` costs about 150 µs for a question with its quick replies)."""

    def sanitize_for_serialization(self, obj: Any) -> Any:
        if type(obj) is JsonBody:
            return obj
        return super().sanitize_for_serialization(obj)


class LineApi:
    """The one client of LINE's API (or of `line_api_base`) for this process."""

    def __init__(
        self, settings: Settings, *, sleep: Sleep = asyncio.sleep, attempts: int = ATTEMPTS
    ) -> None:
        configuration = Configuration(
            access_token=settings.line_channel_access_token,
            host=settings.line_api_base.rstrip("/") or None,
        )
        configuration.connection_pool_maxsize = POOL_SIZE
        configuration.proxy = _environment_proxy()
        self._configuration = configuration
        self._client: AsyncApiClient | None = None
        self._messaging: AsyncMessagingApi | None = None
        self._blob: AsyncMessagingApiBlob | None = None
        self._spare: list[aiohttp.ClientSession] = []
        self.sleep = sleep
        self.attempts = attempts

    def _open(self) -> AsyncApiClient:
        """The SDK client, made on first use (its aiohttp session wants a running loop).

        The SDK's own session reads the proxy settings from the environment (aiohttp's
        `trust_env`) in a worker thread on every request, a thread hop of about 100 µs here;
        the client gets a session that does not, the environment's proxy read once instead."""
        if self._client is None:
            client = _ApiClient(self._configuration)
            rest = client.rest_client
            self._spare.append(rest.pool_manager)
            rest.pool_manager = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=POOL_SIZE, ssl=ssl.create_default_context()),
                trust_env=False,
            )
            self._client = client
            self._messaging = AsyncMessagingApi(client)
            self._blob = AsyncMessagingApiBlob(client)
        return self._client

    @property
    def messaging(self) -> AsyncMessagingApi:
        self._open()
        assert self._messaging is not None
        return self._messaging

    @property
    def blob(self) -> AsyncMessagingApiBlob:
        self._open()
        assert self._blob is not None
        return self._blob

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = self._messaging = self._blob = None
        for session in self._spare:
            await session.close()
        self._spare.clear()

    async def _post_json(
        self, path: str, body: JsonBody, headers: dict[str, str] | None = None
    ) -> None:
        """POST a JSON body through the SDK's client (its host, Bearer token, session and
        `ApiException`s). The hot path's messages are LINE's JSON already (`render`): the
        SDK's pydantic models would cost about 1.5 ms to build and serialise per reply.
        Every failure is counted in the metrics here, every accepted push too."""
        try:
            await self._call_json(path, body, headers)
        except Exception as error:
            metrics.platform_error("line", _status(error))
            raise
        if path == PUSH_PATH:
            metrics.LINE_PUSHES.inc()

    async def _call_json(self, path: str, body: JsonBody, headers: dict[str, str] | None) -> None:
        await self._open().call_api(
            path,
            "POST",
            header_params={
                "Content-Type": "application/json",
                "Accept": "application/json",
                **(headers or {}),
            },
            body=body,
            response_types_map={},
            auth_settings=["Bearer"],
            _return_http_data_only=True,
            _request_timeout=REQUEST_TIMEOUT,
            _host=API_HOST,
        )

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(self.attempts):
            try:
                return await call()
            except Exception as error:
                if not _retryable(error) or attempt + 1 >= self.attempts:
                    raise
                delay = _delay(error, attempt)
                log.info(
                    "LINE %s: %s, try %d again in %.1fs", what, _status(error), attempt + 2, delay
                )
                await self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def reply(self, reply_token: str, messages: Sequence[LineMessage]) -> bool:
        """True when LINE took the reply; False (logged) when the caller must push instead."""
        body = JsonBody(replyToken=reply_token, messages=list(messages))
        try:
            await self._retrying_429("reply", lambda: self._post_json(REPLY_PATH, body))
        except Exception as error:  # a spent or unknown token (400), 5xx, a broken connection
            log.info("LINE reply not taken (%s): pushing instead", _status(error))
            return False
        return True

    async def _retrying_429(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Retries only what surely was not taken (429): a reply must not be sent twice."""
        for attempt in range(self.attempts):
            try:
                return await call()
            except ApiException as error:
                if error.status != 429 or attempt + 1 >= self.attempts:
                    raise
                await self.sleep(_delay(error, attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def push(self, to: str, messages: Sequence[LineMessage], key: str) -> Pushed:
        body = JsonBody(to=to, messages=list(messages))
        headers = {"X-Line-Retry-Key": key}
        try:
            await self._retrying("push", lambda: self._post_json(PUSH_PATH, body, headers))
        except ApiException as error:
            if error.status == 409:  # this retry key was accepted before: sent once, already
                return Pushed.SENT
            if error.status == 403:
                return Pushed.BLOCKED
            if error.status == 429:
                return Pushed.QUOTA if monthly_limit(error) else Pushed.LIMITED
            log.warning("LINE push failed (%s); the messages are not delivered", error.status)
            return Pushed.FAILED
        except (TimeoutError, aiohttp.ClientError) as error:
            log.warning("LINE push failed (%s); the messages are not delivered", _status(error))
            return Pushed.FAILED
        return Pushed.SENT

    async def push_quota_left(self) -> int | None:
        """Pushes left this month (the quota less what was used), or None without a limit."""
        quota = await self._retrying(
            "quota", lambda: self.messaging.get_message_quota(_request_timeout=REQUEST_TIMEOUT)
        )
        if str(getattr(quota.type, "value", quota.type)) != "limited" or quota.value is None:
            return None
        used = await self._retrying(
            "quota consumption",
            lambda: self.messaging.get_message_quota_consumption(_request_timeout=REQUEST_TIMEOUT),
        )
        metrics.LINE_QUOTA_LIMIT.set(int(quota.value))
        metrics.LINE_QUOTA_USED.set(int(used.total_usage))
        return max(0, int(quota.value) - int(used.total_usage))

    async def loading(self, user_id: str) -> None:
        """The loading animation in the user's chat, until the next message (or 20 s)."""
        request = ShowLoadingAnimationRequest(chatId=user_id, loadingSeconds=LOADING_SECONDS)
        await self.messaging.show_loading_animation(request, _request_timeout=REQUEST_TIMEOUT)

    async def content(self, message_id: str) -> bytes:
        data = await self._retrying(
            "content",
            lambda: self.blob.get_message_content(message_id, _request_timeout=REQUEST_TIMEOUT),
        )
        return bytes(data)

    async def link_token(self, user_id: str) -> str:
        response = await self._retrying(
            "link token",
            lambda: self.messaging.issue_link_token(user_id, _request_timeout=REQUEST_TIMEOUT),
        )
        return str(response.link_token)

    async def create_rich_menu(self, menu: dict[str, Any], image: bytes) -> str:
        """Create the menu, upload its PNG (a data-API call) and make it everyone's default."""
        created = await self.messaging.create_rich_menu(RichMenuRequest.from_dict(menu))
        menu_id = str(created.rich_menu_id)
        await self.blob.set_rich_menu_image(menu_id, image, _headers={"Content-Type": "image/png"})
        await self.messaging.set_default_rich_menu(menu_id)
        return menu_id
