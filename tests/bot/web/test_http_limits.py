"""The whole app as `certdesk serve` runs it (`bot.serve.app_runner`), on loopback, spoken to
over raw sockets: what a client sends a piece at a time, slowly or not at all.

An OCSP request split across TCP segments, or chunked, is read whole, and refused with 413 once
it passes the limit however it arrives. Connections that send nothing, half a request line,
their headers a byte at a time, or their body a byte at a time, and idle keep-alive ones, are
closed by the server. The deadlines are shortened here (the same code reads them) so the test
waits seconds, not minutes. No response names the server's software.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

import bot.serve
import bot.web.chat
import bot.web.limits
from bot.web import create_app
from bot.web.pki import OCSP_REQUEST_MAX_BYTES
from certcore.audit import Actor
from certcore.core import Core
from certcore.identity import personal_id_check_digit
from tests.ocsprequests import request_for_serial

HEAD_SECONDS = 2.0
BODY_SECONDS = 2.0
CLOSED_WITHIN = 25.0
"""Generous: the deadline, aiohttp's 10 s lingering after a refused body, a loaded machine."""
PAUSE = 0.2
"""Between two pieces of a request, so each arrives in its own segment."""


@dataclass
class Served:
    port: int
    good_request: bytes


@pytest.fixture
async def served(core: Core, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    monkeypatch.setattr(bot.serve, "REQUEST_HEAD_SECONDS", HEAD_SECONDS)
    monkeypatch.setattr(bot.web.limits, "REQUEST_BODY_SECONDS", BODY_SECONDS)
    prefix = "A22345678"
    issued = await core.certificates.issue(
        prefix + personal_id_check_digit(prefix), "Limits2026", actor=Actor("operator:t", "cli")
    )
    good_request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(issued.record.certificate, core.ca.certificate, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    runner = bot.serve.app_runner(create_app(core))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield Served(port=runner.addresses[0][1], good_request=good_request)
    finally:
        await runner.cleanup()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLOSED_WITHIN)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), CLOSED_WITHIN)
    return Reply(int(status_line.split()[1]), headers, body)


async def _send(port: int, pieces: Sequence[bytes]) -> Reply:
    """One request, written in `pieces` with a pause between them; its reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for number, piece in enumerate(pieces):
            if number:
                await asyncio.sleep(PAUSE)
            writer.write(piece)
            await writer.drain()
        return await _read_reply(reader)
    finally:
        writer.close()


def _head(length: int | None, path: str = "/ocsp") -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/ocsp-request\r\n{framing}\r\n\r\n"
    ).encode("ascii")


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n"


def _halves(data: bytes) -> tuple[bytes, bytes]:
    return data[: len(data) // 2], data[len(data) // 2 :]


def _answer(reply: Reply) -> ocsp.OCSPResponse:
    assert reply.status == 200, reply
    assert reply.headers["content-type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(reply.body)


# -- 1. the OCSP body is read whole, up to its limit ------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_ocsp_request_arriving_in_pieces_is_read_whole(served: Served, framing: str) -> None:
    first, second = _halves(served.good_request)
    if framing == "content-length":
        pieces = [_head(len(served.good_request)) + first, second]
    else:
        pieces = [_head(None) + _chunk(first), _chunk(second), b"0\r\n\r\n"]
    answer = _answer(await _send(served.port, pieces))
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_ocsp_request_over_the_limit_is_413_however_it_arrives(
    served: Served, framing: str
) -> None:
    piece = b"\x30" * (OCSP_REQUEST_MAX_BYTES // 3 + 1)
    count = 3
    if framing == "content-length":
        pieces = [_head(len(piece) * count), *([piece] * count)]
    else:
        pieces = [_head(None), *([_chunk(piece)] * count), b"0\r\n\r\n"]
    reply = await _send(served.port, pieces)
    assert reply.status == 413


async def test_ocsp_request_exactly_at_the_limit_is_read(served: Served) -> None:
    """Padding after the DER request: read whole, then judged malformed, not refused."""
    body = served.good_request + b"\x00" * (OCSP_REQUEST_MAX_BYTES - len(served.good_request))
    pieces = [_head(None), *(_chunk(part) for part in _halves(body)), b"0\r\n\r\n"]
    answer = _answer(await _send(served.port, pieces))
    assert answer.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


# -- 7. slow and silent connections are closed ------------------------------------------------


async def _closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = bytearray()
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(4096):
            received.extend(chunk)
    return bytes(received)


async def _trickle(writer: asyncio.StreamWriter, first: bytes, then: bytes) -> None:
    """Write `first`, then, as a slowloris client does, `then` a byte at a time, slowly."""
    with contextlib.suppress(ConnectionError):
        writer.write(first)
        for byte in then:
            await asyncio.sleep(HEAD_SECONDS / 4)
            writer.write(bytes([byte]))
            await writer.drain()


async def test_silent_slow_and_idle_connections_are_closed(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.web.chat, "HEARTBEAT_SECONDS", HEAD_SECONDS / 2)
    slowly = b"a" * 1000
    cases = {  # what is written at once, then what follows a byte at a time
        "nothing": (b"", b""),
        "half a request line": (b"POST /ocs", b""),
        "headers a byte at a time": (b"POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ", slowly),
        "body a byte at a time": (_head(len(slowly)), slowly),
    }
    connections = {name: await asyncio.open_connection("127.0.0.1", served.port) for name in cases}
    tricklers = [
        asyncio.create_task(_trickle(connections[name][1], first, then))
        for name, (first, then) in cases.items()
    ]
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", served.port)
    idle_writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert (await _read_reply(idle_reader)).status == 200  # then it sends nothing more
    # A long response is no idle connection: the web chat's event stream stays open.
    created = await _send(served.port, [b"POST /api/chat/sessions HTTP/1.1\r\nHost: x\r\n\r\n"])
    session = json.loads(created.body)["session"]
    stream_reader, stream_writer = await asyncio.open_connection("127.0.0.1", served.port)
    stream_writer.write(f"GET /api/chat/sessions/{session}/events HTTP/1.1\r\n".encode())
    stream_writer.write(b"Host: x\r\n\r\n")
    try:
        async with asyncio.timeout(CLOSED_WITHIN):
            received = await asyncio.gather(
                *(_closed(reader) for reader, _ in connections.values()), _closed(idle_reader)
            )
        so_far = await stream_reader.read(1 << 20)  # the head and the heartbeats until now
        assert so_far.startswith(b"HTTP/1.1 200 ")
        assert b": alive" in await stream_reader.read(1 << 20)  # and still they come
    finally:
        for task in tricklers:
            task.cancel()
        for _, writer in [*connections.values(), (idle_reader, idle_writer)]:
            writer.close()
        stream_writer.close()
    replies = dict(zip([*cases, "idle keep-alive"], received, strict=True))
    # The head never completed: closed without a word. The body: 408, then closed.
    for name in ("nothing", "half a request line", "headers a byte at a time", "idle keep-alive"):
        assert replies[name] == b"", name
    assert replies["body a byte at a time"].startswith(b"HTTP/1.1 408 ")


# -- 8. a negative serial --------------------------------------------------------------------


async def test_ocsp_request_with_a_negative_serial_is_an_ocsp_error(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    body = request_for_serial(served.good_request, -1)
    answer = _answer(await _send(served.port, [_head(len(body)) + body]))
    assert answer.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- 16. no Server header ---------------------------------------------------------------------


async def test_no_response_names_the_server_software(served: Served) -> None:
    ocsp_body = served.good_request
    requests = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /ca.pem HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /crl HTTP/1.1\r\nHost: x\r\n\r\n",
        _head(len(ocsp_body)) + ocsp_body,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/chat/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"GET /no/such/page HTTP/1.1\r\nHost: x\r\n\r\n",
        b"DELETE /ocsp HTTP/1.1\r\nHost: x\r\n\r\n",
        _head(10 * OCSP_REQUEST_MAX_BYTES),
        b"GET /download/not-a-token HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    statuses = set()
    for request in requests:
        reply = await _send(served.port, [request])
        statuses.add(reply.status)
        assert "server" not in reply.headers, (request[:40], reply.headers)
    assert {200, 201, 404, 405, 413} <= statuses
