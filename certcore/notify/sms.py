"""SMS through the HTTP gateways Taiwanese brokers use: Mitake (三竹資訊) and Every8d (互動資通).

Both gateways answer HTTP 200 for almost everything, errors included, and both speak plain
text rather than JSON, so the answer is parsed strictly: only the documented success form counts
as sent, anything else is an error with the gateway's own code and words in the detail.

The request carries the credentials in the POST body, never in the URL, so that neither a proxy
log nor an aiohttp exception (which quotes the URL) can leak them; the `sms_url` setting is the
gateway's endpoint, and only its scheme, host and path are ever shown.

Mitake `SmSend` (`sms_url` e.g. https://smsapi.mitake.com.tw/api/mtk/SmSend; CharsetURL=UTF8 is
added to the query so the gateway reads the form as UTF-8):
fields username, password, dstaddr, smbody (line breaks sent as ASCII 6, as the API requires);
the answer is INI-like text, possibly Big5::

    [1]
    msgid=1490732632
    statuscode=1
    AccountPoint=4980

statuscode 0 (scheduled), 1–3 (handed to the carrier) and 4 (delivered) mean accepted; a
letter (`e` wrong account or password, `k` address not allowed, `v` invalid number, …) or
5–9 is an error, often with an `Error=…` line. `v` (無效的手機號碼) and `6` (門號有錯誤) are the
documented codes for a bad destination → REJECTED_DESTINATION.

Every8d `sendSMS.ashx` (POST form to e.g. https://api.e8d.tw/API21/HTTP/sendSMS.ashx): fields
UID, PWD, SB (a note, not sent), MSG, DEST, ST (empty = now). Success is one line
`CREDIT,SENDED,COST,UNSEND,BATCH_ID`; a negative CREDIT or a line `-code, message` (still HTTP
200) is an error. No Every8d code for an invalid number is documented in the material we have
(-24 empty content, -100/-101/-300 account or password), so every Every8d error is
GATEWAY_ERROR.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import ClassVar, Final

import aiohttp
from yarl import URL

from certcore.config import Settings
from certcore.identity import taiwan_mobile
from certcore.masking import mask_mobile
from certcore.notify.base import Medium, OutgoingMessage, SendError, SendFailure
from certcore.notify.redaction import BODY, SECRET, scrub

log = logging.getLogger("certdesk.notify.sms")

_CODEC_ALIASES: Final = {"big5": "cp950", "x-big5": "cp950", "ms950": "cp950", "utf8": "utf-8"}


def decode_answer(raw: bytes, charset: str | None) -> str:
    """The charset the gateway declared, else UTF-8, else Big5 (as cp950, its superset).

    Mitake answers in Big5 unless told otherwise and does not always say so; a wrong guess must
    not turn an error into garbage that happens to parse.
    """
    candidates = []
    if charset:
        candidates.append(_CODEC_ALIASES.get(charset.strip().lower(), charset.strip()))
    candidates += ["utf-8-sig", "cp950"]
    for encoding in candidates:
        try:
            return raw.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode("cp950", errors="replace")


@dataclass(frozen=True)
class GatewayAnswer:
    """What a gateway said: a receipt when it accepted, else its code and words."""

    receipt: str | None
    code: str = ""
    text: str = ""
    reason: SendFailure = SendFailure.GATEWAY_ERROR


class HttpSmsSender:
    """The shared part: one lazily created aiohttp session, the bound, the error mapping."""

    provider: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.url = URL(settings.sms_url)
        self.username = settings.sms_username
        self._password = settings.sms_password
        self.timeout = settings.send_timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.endpoint!r})"

    @property
    def endpoint(self) -> str:
        """The URL without user info or query: safe to show."""
        return str(self.url.with_user(None).with_query(None).with_fragment(None))

    async def send(self, message: OutgoingMessage) -> str:
        if message.medium is not Medium.SMS:
            raise ValueError(f"{type(self).__name__} sends SMS only")
        mobile = taiwan_mobile(message.destination)
        masked = mask_mobile(message.destination)
        if mobile is None:
            raise self._failed(
                masked,
                SendFailure.REJECTED_DESTINATION,
                "not a Taiwanese mobile number (09XXXXXXXX); nothing was sent",
            )
        try:
            async with asyncio.timeout(self.timeout):
                status, raw, charset = await self._post(self.form(mobile, message))
        except TimeoutError:
            raise self._failed(
                masked,
                SendFailure.TIMEOUT,
                f"no answer from {self.endpoint} within {self.timeout} s",
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise self._failed(
                masked,
                SendFailure.GATEWAY_ERROR,
                f"cannot reach {self.endpoint}: {exc.os_error.strerror or type(exc).__name__}",
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise self._failed(
                masked,
                SendFailure.GATEWAY_ERROR,
                f"{type(exc).__name__} talking to {self.endpoint}",
            ) from None
        if not 200 <= status < 300:
            raise self._failed(
                masked, SendFailure.GATEWAY_ERROR, f"{self.endpoint} answered HTTP {status}"
            )
        answer = self.parse(decode_answer(raw, charset))
        if answer.receipt is None:
            words = self._scrub(answer.text, mobile, message.body)
            code = self._scrub(answer.code, mobile, message.body)
            raise self._failed(masked, answer.reason, f"gateway code {code}: {words}")
        log.info("SMS to %s accepted by %s: %s", masked, self.provider, answer.receipt)
        return answer.receipt

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def form(self, mobile: str, message: OutgoingMessage) -> dict[str, str]:
        raise NotImplementedError

    def request_url(self) -> URL:
        return self.url

    def parse(self, text: str) -> GatewayAnswer:
        raise NotImplementedError

    async def _post(self, form: dict[str, str]) -> tuple[int, bytes, str | None]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        async with self._session.post(self.request_url(), data=form) as response:
            return response.status, await response.read(), response.charset

    def _scrub(self, text: str, mobile: str, body: str) -> str:
        return scrub(
            text,
            {
                self._password: SECRET,
                self.username: SECRET,
                body: BODY,
                mobile: mask_mobile(mobile),
                mobile[1:]: mask_mobile(mobile),  # the +886 form without its trunk 0
            },
        )

    def _failed(self, masked: str, reason: SendFailure, detail: str) -> SendError:
        log.warning("SMS to %s via %s failed (%s): %s", masked, self.provider, reason.value, detail)
        return SendError(reason, f"{self.provider}: SMS to {masked}: {detail}")


def unexpected(text: str) -> GatewayAnswer:
    """An answer in neither the success nor the error form: an error, quoting the answer.

    Not cut here: the caller scrubs first and shortens after, so that a number cut in half
    cannot slip past the scrubbing.
    """
    return GatewayAnswer(None, "?", f"unexpected answer: {text.strip() or '(empty)'}")


class MitakeSender(HttpSmsSender):
    provider = "mitake"

    ACCEPTED: ClassVar[frozenset[str]] = frozenset({"0", "1", "2", "3", "4"})
    BAD_DESTINATION: ClassVar[frozenset[str]] = frozenset({"v", "6"})
    STATUS_TEXT: ClassVar[dict[str, str]] = {
        "*": "系統發生錯誤",
        "a": "簡訊發送功能暫時停止服務",
        "b": "簡訊發送功能暫時停止服務",
        "c": "請輸入帳號",
        "d": "請輸入密碼",
        "e": "帳號、密碼錯誤",
        "f": "帳號已過期",
        "h": "帳號已被停用",
        "k": "無效的連線位址",
        "m": "必須變更密碼",
        "n": "密碼已逾期",
        "p": "沒有權限使用外部Http程式",
        "r": "系統暫停服務",
        "s": "帳務處理失敗",
        "t": "簡訊已過期",
        "u": "簡訊內容不得為空白",
        "v": "無效的手機號碼",
        "5": "內容有錯誤",
        "6": "門號有錯誤",
        "7": "簡訊已停用",
        "8": "逾時無送達",
        "9": "預約已取消",
    }
    """The vendor's own descriptions (mitaketw/sms-java StatusCode), used when no Error= line."""

    def request_url(self) -> URL:
        return self.url.update_query(CharsetURL="UTF8")

    def form(self, mobile: str, message: OutgoingMessage) -> dict[str, str]:
        return {
            "username": self.username,
            "password": self._password,
            "dstaddr": mobile,
            "smbody": message.body.replace("\r\n", "\n").replace("\n", "\x06"),
        }

    def parse(self, text: str) -> GatewayAnswer:
        fields: dict[str, str] = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or (line.startswith("[") and line.endswith("]")):
                continue
            key, sep, value = line.partition("=")
            if sep:
                fields.setdefault(key.strip().lower(), value.strip())
        status, error, msgid = (fields.get(k, "") for k in ("statuscode", "error", "msgid"))
        if status in self.ACCEPTED and not error and msgid:
            return GatewayAnswer(msgid)
        if not status and not error:
            return unexpected(text)
        reason = (
            SendFailure.REJECTED_DESTINATION
            if status in self.BAD_DESTINATION
            else SendFailure.GATEWAY_ERROR
        )
        words = error or self.STATUS_TEXT.get(status, "")
        if status in self.ACCEPTED:
            words = words or "accepted without a msgid"
        return GatewayAnswer(None, status or "?", words, reason)


class Every8dSender(HttpSmsSender):
    provider = "every8d"

    def form(self, mobile: str, message: OutgoingMessage) -> dict[str, str]:
        return {
            "UID": self.username,
            "PWD": self._password,
            "SB": message.subject,
            "MSG": message.body,
            "DEST": mobile,
            "ST": "",
        }

    def parse(self, text: str) -> GatewayAnswer:
        line = text.strip().splitlines()[0].strip() if text.strip() else ""
        parts = [part.strip() for part in line.split(",")]
        try:
            credit, sent, _cost, unsent, batch_id = parts
            credit_value, sent_count, unsent_count = float(credit), float(sent), float(unsent)
        except ValueError:  # not five fields, or not numbers: the error form or garbage
            if line.startswith("-"):
                code, _, words = line.partition(",")
                return GatewayAnswer(None, code.strip(), words.strip())
            return unexpected(text)
        if credit_value < 0:
            return GatewayAnswer(None, credit, "negative CREDIT: the gateway did not send")
        if sent_count < 1:
            return GatewayAnswer(None, "0", f"nothing sent (UNSEND={unsent_count:g}, no credit?)")
        if not batch_id:
            return unexpected(text)
        return GatewayAnswer(batch_id)


SMS_SENDERS: Final[dict[str, type[HttpSmsSender]]] = {
    MitakeSender.provider: MitakeSender,
    Every8dSender.provider: Every8dSender,
}


def sms_sender(settings: Settings) -> HttpSmsSender:
    """The adapter for `settings.sms_provider` (validated to be one of SMS_SENDERS)."""
    return SMS_SENDERS[settings.sms_provider](settings)
