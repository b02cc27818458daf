"""SMS adapters against a local HTTP server that answers like Mitake (三竹) and Every8d (互動資通):
success, their error forms (Big5, HTTP 200 errors), HTTP errors, a hang, and what they were sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from certcore.config import Settings
from certcore.notify import (
    Every8dSender,
    HttpSmsSender,
    Medium,
    MitakeSender,
    OutgoingMessage,
    SendError,
    SendFailure,
    sms_sender,
)
from certcore.notify.sms import decode_answer

SMS_USER = "broker-sms"
SMS_PASSWORD = "Gw-pa55!word"
MOBILE = "0936123054"
MASKED_MOBILE = "0936XXX054"
BODY = "【CertDesk】驗證碼 HFCR-123456，5 分鐘內有效。\n本公司人員不會向您索取驗證碼。"
MITAKE_OK = "[1]\r\nmsgid=1490732632\r\nstatuscode=1\r\nAccountPoint=4980\r\n"
EVERY8D_OK = "107.00,1,1,0,98b8bb75-17cc-4518-b526-9d15601fb31b"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]


@dataclass
class FakeGateway:
    url: str
    requests: list[Received] = field(default_factory=list)
    answer: Handler | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)


def text(body: str, *, encoding: str = "utf-8", content_type: str | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        ctype = content_type or f"text/plain; charset={encoding}"
        return web.Response(body=body.encode(encoding), headers={"Content-Type": ctype})

    return handler


def status(code: int) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text="Internal Server Error")

    return handler


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    fake = FakeGateway(url="")

    async def endpoint(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        fake.requests.append(
            Received(
                request.method,
                request.path,
                dict(request.query),
                {key: str(value) for key, value in form.items()},
            )
        )
        assert fake.answer is not None
        return await fake.answer(request)

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", endpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.url = f"http://{host}:{port}"
    yield fake
    fake.release.set()
    await runner.cleanup()


def hang(fake: FakeGateway) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await fake.release.wait()
        return web.Response(text="too late")

    return handler


def settings_for(provider: str, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "sms_provider": provider,
        "sms_url": url,
        "sms_username": SMS_USER,
        "sms_password": SMS_PASSWORD,
        "send_timeout_seconds": 5,
    }
    values.update(overrides)
    return Settings(**values).validate()


@pytest.fixture
async def senders() -> AsyncIterator[list[HttpSmsSender]]:
    opened: list[HttpSmsSender] = []
    yield opened
    for sender in opened:
        await sender.close()


@pytest.fixture
def make(senders: list[HttpSmsSender]) -> Callable[..., HttpSmsSender]:
    def build(provider: str, url: str, **overrides: Any) -> HttpSmsSender:
        sender = sms_sender(settings_for(provider, url, **overrides))
        senders.append(sender)
        return sender

    return build


def otp_sms(destination: str = MOBILE) -> OutgoingMessage:
    return OutgoingMessage(Medium.SMS, destination, "CertDesk OTP", BODY)


def assert_clean(*texts: str) -> None:
    """No password, full mobile number or message body (or the code in it) anywhere."""
    for text_ in texts:
        for secret in (SMS_PASSWORD, MOBILE, "936123054", BODY, "123456", "驗證碼 HFCR"):
            assert secret not in text_, f"{secret!r} leaked into {text_!r}"


async def fail(sender: HttpSmsSender, caplog: pytest.LogCaptureFixture) -> SendError:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SendError) as failure:
        await sender.send(otp_sms())
    assert_clean(str(failure.value), repr(failure.value), repr(sender), caplog.text)
    assert MASKED_MOBILE in str(failure.value)
    return failure.value


# -- Mitake ------------------------------------------------------------------------------


async def test_mitake_success_and_the_request_it_was_sent(
    gateway: FakeGateway, make: Callable[..., HttpSmsSender], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway.answer = text(MITAKE_OK, encoding="big5")
    sender = make("mitake", f"{gateway.url}/api/mtk/SmSend")

    receipt = await sender.send(otp_sms("+886 936-123-054"))

    assert receipt == "1490732632"
    [request] = gateway.requests
    assert request.method == "POST"
    assert request.path == "/api/mtk/SmSend"
    assert request.query == {"CharsetURL": "UTF8"}  # credentials never in the URL
    assert request.form == {
        "username": SMS_USER,
        "password": SMS_PASSWORD,
        "dstaddr": MOBILE,
        "smbody": BODY.replace("\n", "\x06"),  # Mitake's line break
    }
    assert_clean(caplog.text)
    assert MASKED_MOBILE in caplog.text


MITAKE_LOGIN_ERROR = "[1]\r\nstatuscode=e\r\nError=帳號、密碼錯誤\r\n"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain; charset=big5", "text/plain", "text/plain; charset=utf-8"],
    ids=["big5-declared", "no-charset", "wrongly-declared-utf8"],
)
async def test_mitake_big5_error_is_an_error(
    gateway: FakeGateway,
    make: Callable[..., HttpSmsSender],
    caplog: pytest.LogCaptureFixture,
    content_type: str,
) -> None:
    gateway.answer = text(MITAKE_LOGIN_ERROR, encoding="cp950", content_type=content_type)
    error = await fail(make("mitake", f"{gateway.url}/api/mtk/SmSend"), caplog)
    assert error.reason is SendFailure.GATEWAY_ERROR
    assert "mitake" in str(error)
    assert "gateway code e" in str(error)
    assert "帳號、密碼錯誤" in str(error)


async def test_mitake_error_line_wins_over_an_accepting_status(
    gateway: FakeGateway, make: Callable[..., HttpSmsSender], caplog: pytest.LogCaptureFixture
) -> None:
    gateway.answer = text("statuscode=1\r\nError=帳號已被停用\r\n", encoding="cp950")
    error = await fail(make("mitake", gateway.url), caplog)
    assert error.reason is SendFailure.GATEWAY_ERROR
    assert "帳號已被停用" in str(error)


async def test_mitake_invalid_number_is_a_rejected_destination_and_its_echo_is_masked(
    gateway: FakeGateway, make: Callable[..., HttpSmsSender], caplog: pytest.LogCaptureFixture
) -> None:
    gateway.answer = text(f"[{MOBILE}]\r\nstatuscode=v\r\nError={MOBILE} 無效的手機號碼\r\n")
    error = await fail(make("mitake", gateway.url), caplog)
    assert error.reason is SendFailure.REJECTED_DESTINATION
    assert "gateway code v" in str(error)


@pytest.mark.parametrize("answer", ["", "OK", "<html>Service Unavailable</html>", "msgid=1\r\n"])
async def test_mitake_unexpected_answers_are_errors(
    gateway: FakeGateway,
    make: Callable[..., HttpSmsSender],
    caplog: pytest.LogCaptureFixture,
    answer: str,
) -> None:
    gateway.answer = text(answer)
    error = await fail(make("mitake", gateway.url), caplog)
    assert error.reason is SendFailure.GATEWAY_ERROR


# -- Every8d -----------------------------------------------------------------------------


async def test_every8d_success_and_the_request_it_was_sent(
    gateway: FakeGateway, make: Callable[..., HttpSmsSender], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway.answer = text(EVERY8D_OK)
    sender = make("every8d", f"{gateway.url}/API21/HTTP/sendSMS.ashx")

    receipt = await sender.send(otp_sms())

    assert receipt == "98b8bb75-17cc-4518-b526-9d15601fb31b"
    [request] = gateway.requests
    assert (request.method, request.path, request.query) == ("POST", "/API21/HTTP/sendSMS.ashx", {})
    assert request.form == {
        "UID": SMS_USER,
        "PWD": SMS_PASSWORD,
        "SB": "CertDesk OTP",
        "MSG": BODY,
        "DEST": MOBILE,
        "ST": "",
    }
    assert_clean(caplog.text)


async def test_every8d_error_with_http_200_is_an_error(
    gateway: FakeGateway, make: Callable[..., HttpSmsSender], caplog: pytest.LogCaptureFixture
) -> None:
    gateway.answer = text("-300, 帳號密碼錯誤")
    error = await fail(make("every8d", gateway.url), caplog)
    assert error.reason is SendFailure.GATEWAY_ERROR
    assert "every8d" in str(error)
    assert "gateway code -300" in str(error)
    assert "帳號密碼錯誤" in str(error)


@pytest.mark.parametrize(
    "answer",
    ["-5.00,0,0,1,", "0.00,0,0,1,98b8bb75-17cc-4518-b526-9d15601fb31b", "107.00,1,1,0,", "hello"],
    ids=["negative-credit", "nothing-sent", "no-batch-id", "garbage"],
)
async def test_every8d_answers_that_are_not_a_send(
    gateway: FakeGateway,
    make: Callable[..., HttpSmsSender],
    caplog: pytest.LogCaptureFixture,
    answer: str,
) -> None:
    gateway.answer = text(answer)
    error = await fail(make("every8d", gateway.url), caplog)
    assert error.reason is SendFailure.GATEWAY_ERROR


# -- both --------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["mitake", "every8d"])
async def test_http_500_is_a_gateway_error(
    gateway: FakeGateway,
    make: Callable[..., HttpSmsSender],
    caplog: pytest.LogCaptureFixture,
    provider: str,
) -> None:
    gateway.answer = status(500)
    error = await fail(make(provider, gateway.url), caplog)
    assert error.reason is SendFailure.GATEWAY_ERROR
    assert "HTTP 500" in str(error)


@pytest.mark.parametrize("provider", ["mitake", "every8d"])
async def test_a_hanging_gateway_times_out_within_the_bound(
    gateway: FakeGateway,
    make: Callable[..., HttpSmsSender],
    caplog: pytest.LogCaptureFixture,
    provider: str,
) -> None:
    gateway.answer = hang(gateway)
    sender = make(provider, gateway.url, send_timeout_seconds=1)
    started = time.monotonic()
    error = await fail(sender, caplog)
    assert error.reason is SendFailure.TIMEOUT
    assert 0.9 <= time.monotonic() - started < 2.5


@pytest.mark.parametrize("provider", ["mitake", "every8d"])
async def test_an_unreachable_gateway_is_a_gateway_error(
    make: Callable[..., HttpSmsSender], caplog: pytest.LogCaptureFixture, provider: str
) -> None:
    error = await fail(make(provider, "http://127.0.0.1:9/sms"), caplog)
    assert error.reason is SendFailure.GATEWAY_ERROR
    assert "cannot reach http://127.0.0.1:9/sms" in str(error)


@pytest.mark.parametrize("provider", ["mitake", "every8d"])
async def test_a_number_that_is_not_a_mobile_is_refused_without_a_request(
    gateway: FakeGateway, make: Callable[..., HttpSmsSender], provider: str
) -> None:
    gateway.answer = text(MITAKE_OK)
    sender = make(provider, gateway.url)
    for number in ("0223456789", "12345", "+1 415 555 0100"):
        with pytest.raises(SendError) as failure:
            await sender.send(otp_sms(number))
        assert failure.value.reason is SendFailure.REJECTED_DESTINATION
    assert gateway.requests == []


async def test_the_session_is_shared_and_closed(
    gateway: FakeGateway, make: Callable[..., HttpSmsSender]
) -> None:
    gateway.answer = text(EVERY8D_OK)
    sender = make("every8d", gateway.url)
    await sender.send(otp_sms())
    session = sender._session
    await sender.send(otp_sms())
    assert sender._session is session and session is not None
    await sender.close()
    assert session.closed and sender._session is None
    await sender.send(otp_sms())  # a closed sender opens a new session when used again
    assert len(gateway.requests) == 3


def test_configured_credentials_are_not_in_reprs_or_the_endpoint() -> None:
    settings = settings_for("mitake", f"https://user:{SMS_PASSWORD}@gw.example/SmSend?x=1")
    sender = sms_sender(settings)
    assert isinstance(sender, MitakeSender)
    assert sender.endpoint == "https://gw.example/SmSend"
    assert SMS_PASSWORD not in repr(sender)
    assert isinstance(sms_sender(settings_for("every8d", "https://gw.example/")), Every8dSender)


@pytest.mark.parametrize(
    ("raw", "charset", "expected"),
    [
        ("帳號、密碼錯誤".encode("cp950"), "big5", "帳號、密碼錯誤"),
        ("帳號、密碼錯誤".encode("cp950"), None, "帳號、密碼錯誤"),
        ("帳號、密碼錯誤".encode("cp950"), "utf-8", "帳號、密碼錯誤"),
        ("帳號、密碼錯誤".encode(), None, "帳號、密碼錯誤"),
        ("\ufeffstatuscode=1".encode(), None, "statuscode=1"),
        (b"statuscode=1", "no-such-charset", "statuscode=1"),
    ],
)
def test_decode_answer(raw: bytes, charset: str | None, expected: str) -> None:
    assert decode_answer(raw, charset) == expected
