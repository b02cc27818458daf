"""`POST /line/webhook`: LINE's signature checked on the exact raw body, then 200 at once.

Nothing is worked on before the answer: a missing or wrong `X-Line-Signature` is 401 and
changes nothing; a signed body is parsed (line-bot-sdk's `WebhookParser`, which also checks the
signature) and its events handed to the channel, which works on them in background tasks after
the response, so LINE's 2-second limit holds whatever the work.
"""

from __future__ import annotations

import logging

from aiohttp import web
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError

from bot.channels.line.adapter import LineChannel

log = logging.getLogger("certdesk.line")

LINE = web.AppKey("line", LineChannel)
PARSER = web.AppKey("line_parser", WebhookParser)
SIGNATURE = "X-Line-Signature"


async def webhook(request: web.Request) -> web.Response:
    signature = request.headers.get(SIGNATURE, "")
    if not signature:
        return _refused(401, "missing signature")
    raw = await request.read()
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _refused(401, "bad signature")
    try:
        events = request.app[PARSER].parse(body, signature)
    except InvalidSignatureError:
        return _refused(401, "bad signature")
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("LINE webhook: a signed body that is not a webhook payload")
        return web.json_response({"error": "malformed body"}, status=400)
    request.app[LINE].accept(events)
    return web.json_response({})


def _refused(status: int, why: str) -> web.Response:
    log.info("LINE webhook refused: %s", why)
    return web.json_response({"error": why}, status=status)
