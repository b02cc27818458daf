"""`POST /line/webhook`: LINE's signature checked on the exact raw body, then 200 at once.

Nothing is worked on before the answer: a missing or wrong `X-Line-Signature` (line-bot-sdk's
`WebhookParser` checks it, in constant time) is 401 and changes nothing; a signed body is
queued for the channel as it is and parsed there (`WebhookParser.parse`, the events as the
SDK's models) after the response, so LINE's 2-second limit holds whatever the work and however
large the burst.
"""

from __future__ import annotations

import logging

from aiohttp import web
from linebot.v3 import WebhookParser

from bot.channels.line.adapter import LineChannel
from bot.web.limits import CLIENT_MAX_SIZE, read_body

log = logging.getLogger("certdesk.line")

LINE = web.AppKey("line", LineChannel)
PARSER = web.AppKey("line_parser", WebhookParser)
SIGNATURE = "X-Line-Signature"


async def webhook(request: web.Request) -> web.Response:
    signature = request.headers.get(SIGNATURE, "")
    if not signature:
        return _refused(401, "missing signature")
    raw = await read_body(request, CLIENT_MAX_SIZE)
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _refused(401, "bad signature")
    if not request.app[PARSER].signature_validator.validate(body, signature):
        return _refused(401, "bad signature")
    await request.app[LINE].accept_signed(body, signature)
    return web.json_response({})


def _refused(status: int, why: str) -> web.Response:
    log.info("LINE webhook refused: %s", why)
    return web.json_response({"error": why}, status=status)
