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

No rendering here: `render` makes the messages, this module only carries them.
"""

from __future__ import annotations

import asyncio
import logging
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
    Message,
    PushMessageRequest,
    ReplyMessageRequest,
    RichMenuRequest,
    ShowLoadingAnimationRequest,
)

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
RETRY_KEY_NAMESPACE = uuid.UUID("8c7b1f57-3c7e-4c0b-9f0e-6f1d2a7c5e41")


class Pushed(Enum):
    SENT = "sent"
    BLOCKED = "blocked"
    """403: the user blocked the account (or never followed it)."""
    FAILED = "failed"


def retry_key(event_id: str, batch: int) -> str:
    """The push's `X-Line-Retry-Key`: the same for the same event's same batch, so a push sent
    twice (a retry, a second process answering the same redelivery) is accepted once."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{event_id}\n{batch}"))


def _retryable(error: BaseException) -> bool:
    if isinstance(error, ApiException):
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


def _status(error: BaseException) -> str:
    return str(error.status) if isinstance(error, ApiException) else type(error).__name__


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
        self._configuration = configuration
        self._client: AsyncApiClient | None = None
        self._messaging: AsyncMessagingApi | None = None
        self._blob: AsyncMessagingApiBlob | None = None
        self.sleep = sleep
        self.attempts = attempts

    def _open(self) -> tuple[AsyncMessagingApi, AsyncMessagingApiBlob]:
        """The SDK client, made on first use (its aiohttp session wants a running loop)."""
        if self._messaging is None or self._blob is None:
            self._client = AsyncApiClient(self._configuration)
            self._messaging = AsyncMessagingApi(self._client)
            self._blob = AsyncMessagingApiBlob(self._client)
        return self._messaging, self._blob

    @property
    def messaging(self) -> AsyncMessagingApi:
        return self._open()[0]

    @property
    def blob(self) -> AsyncMessagingApiBlob:
        return self._open()[1]

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = self._messaging = self._blob = None

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

    async def reply(self, reply_token: str, messages: Sequence[Message]) -> bool:
        """True when LINE took the reply; False (logged) when the caller must push instead."""
        request = ReplyMessageRequest(replyToken=reply_token, messages=list(messages))
        try:
            await self._retrying_429(
                "reply",
                lambda: self.messaging.reply_message(request, _request_timeout=REQUEST_TIMEOUT),
            )
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

    async def push(self, to: str, messages: Sequence[Message], key: str) -> Pushed:
        request = PushMessageRequest(to=to, messages=list(messages))
        try:
            await self._retrying(
                "push",
                lambda: self.messaging.push_message(
                    request, x_line_retry_key=key, _request_timeout=REQUEST_TIMEOUT
                ),
            )
        except ApiException as error:
            if error.status == 409:  # this retry key was accepted before: sent once, already
                return Pushed.SENT
            if error.status == 403:
                return Pushed.BLOCKED
            log.warning("LINE push failed (%s); the messages are not delivered", error.status)
            return Pushed.FAILED
        except (TimeoutError, aiohttp.ClientError) as error:
            log.warning("LINE push failed (%s); the messages are not delivered", _status(error))
            return Pushed.FAILED
        return Pushed.SENT

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
