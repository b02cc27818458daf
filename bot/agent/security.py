"""Response headers of every page, file and JSON answer under `/agent`.

The console shows customers' conversations, so nothing of it may be cached (a shared PC's
browser cache, a proxy), framed (clickjacking a claim or a close), sniffed into another type,
or leak its URLs in a Referer. The CSP allows only this site's own script and style files: the
pages carry no inline script or style, and every value in them is escaped where it enters the
markup, so even an escaping mistake could not run script. The headers are the download page's
own (`bot.web.download.SECURITY_HEADERS`): the same reasons hold for both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.web.download import SECURITY_HEADERS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: the headers on every answer, errors and redirects included."""
    try:
        response = await handler(request)
    except web.HTTPException as error:
        error.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response
