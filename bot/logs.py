"""How `serve` logs: one JSON object a line, with a request id, and no identity in clear.

Operators feed the lines to their log pipeline, so each is one JSON object: time (UTC,
ISO 8601), level, logger, message, the request id when the line was written while serving a
request (or working off a webhook event: the channel sets it), and the exception's traceback
when there is one. Each line's text passes `mask_text_ids` on the way out, so an ID number that
a message or a traceback carried is masked there even if the code that logged it forgot.

The request id comes from the request's `X-Request-Id` when it is a short token (a reverse
proxy's), else a new one; the response carries it back, so a customer's complaint, the proxy's
log and this service's lines meet on one id.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from certcore.masking import mask_text_ids

REQUEST_ID = contextvars.ContextVar("request_id", default="")
"""The request (or platform event) the current task works for; empty outside any."""
REQUEST_ID_HEADER = "X-Request-Id"
_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_text_ids(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = mask_text_ids(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def configure(log_format: str) -> None:
    """The root logger at INFO, writing `json` lines or plain `text` ones to standard error;
    as `logging.basicConfig`, nothing changes where logging is set up already (a test run)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def request_id_of(request: web.Request) -> str:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    return offered if _ACCEPTED_ID.fullmatch(offered) else uuid.uuid4().hex


@web.middleware
async def with_request_id(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every line logged while serving the request carries its id; so does the response."""
    request_id = request_id_of(request)
    token = REQUEST_ID.set(request_id)
    try:
        response = await handler(request)
    except web.HTTPException as error:
        error.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        REQUEST_ID.reset(token)
    if not response.prepared:  # a stream (the web chat's events) sent its headers already
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
