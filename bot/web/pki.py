"""The PKI endpoints relying parties use: the CA certificate, the CRL and the OCSP responder.

The broker's order system checks every customer certificate here, so these answer from what is
already signed (the stored CRL, pre-signed OCSP responses) and never wait on a chat.
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from bot.web.keys import CORE
from bot.web.limits import read_body
from certcore.core import Core

OCSP_REQUEST_MAX_BYTES = 16 * 1024

PEM_TYPE = "application/x-pem-file"
CERT_TYPE = "application/pkix-cert"
CRL_TYPE = "application/pkix-crl"
OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"


def routes() -> list[web.RouteDef]:
    return [
        web.get("/ca.pem", ca_pem),
        web.get("/ca.cer", ca_der),
        web.get("/crl", crl),
        web.post("/ocsp", ocsp_post),
        web.get("/ocsp/{request:.+}", ocsp_get),
    ]


async def ca_pem(request: web.Request) -> web.Response:
    return web.Response(body=request.app[CORE].ca.pem, content_type=PEM_TYPE)


async def ca_der(request: web.Request) -> web.Response:
    return web.Response(body=request.app[CORE].ca.der, content_type=CERT_TYPE)


async def crl(request: web.Request) -> web.Response:
    der = await request.app[CORE].certificates.crl()
    return web.Response(body=der, content_type=CRL_TYPE)


async def ocsp_post(request: web.Request) -> web.Response:
    body = await read_body(request, OCSP_REQUEST_MAX_BYTES)
    return await _ocsp_answer(request.app[CORE], body)


async def ocsp_get(request: web.Request) -> web.Response:
    """RFC 5019 GET: the DER request, base64 then URL-encoded, as the last path segment."""
    encoded = request.match_info["request"]
    try:
        body = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        body = b""
    return await _ocsp_answer(request.app[CORE], body)


async def _ocsp_answer(core: Core, body: bytes) -> web.Response:
    der = await core.ocsp.respond(body)
    return web.Response(body=der, content_type=OCSP_RESPONSE_TYPE)
