"""How long a client may take to send its request, and how much of a body the server reads.

Every open connection holds memory and a file descriptor, so a client that opens connections
and then sends nothing, or a byte every few seconds, could hold hundreds of them for as long as
it likes. aiohttp starts its keep-alive timer when a connection opens and again after every
response, and closes the connection if no complete request head (request line and headers) has
arrived when it fires: `REQUEST_HEAD_SECONDS` given to that one setting bounds a silent
connection, a half request line, headers sent a byte at a time and an idle keep-alive alike.
aiohttp has no timer for the body, so every handler reads its body through `read_body` (or
aiohttp's own readers inside `body_deadline`), which bounds its time as well as its size. What
aiohttp cannot bound — connections per client, a minimum transfer rate, a client that never
reads its response — is left to the reverse proxy in front (README, "Behind a reverse proxy").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

REQUEST_HEAD_SECONDS = 20.0
"""From a connection's opening, or its previous response, to a complete request head."""
REQUEST_BODY_SECONDS = 30.0
"""To receive a whole body once the handler reads it: 64 KB at 2 KB/s, 1 MB at 35 KB/s."""
CLIENT_MAX_SIZE = 1024 * 1024
"""The largest body any route accepts (aiohttp's own readers answer 413 beyond it)."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes, 413 beyond it whether the client declared its
    length or sent it chunked; within `REQUEST_BODY_SECONDS` (408 beyond)."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    raw = bytearray()
    deadline: contextlib.AbstractAsyncContextManager[None] = (
        contextlib.nullcontext() if request.content.is_eof() else body_deadline()
    )  # a body that has all arrived needs no timer (12 µs, a sixth of an OCSP answer)
    async with deadline:
        while chunk := await request.content.read(limit + 1 - len(raw)):
            raw.extend(chunk)
            if len(raw) > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(raw))
    return bytes(raw)


@contextlib.asynccontextmanager
async def body_deadline() -> AsyncIterator[None]:
    """Read the body (aiohttp's `read()`, `post()`, `json()`) within `REQUEST_BODY_SECONDS`;
    beyond it, 408 and the connection closed."""
    try:
        async with asyncio.timeout(REQUEST_BODY_SECONDS):
            yield
    except TimeoutError:
        timeout = web.HTTPRequestTimeout()
        timeout.force_close()
        raise timeout from None
