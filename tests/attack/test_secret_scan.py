"""After complete flows, no secret in clear in any log line or anywhere in the database.

Threat: logs go to a pipeline many people read, and a database is copied into backups, test
environments and laptops. DESIGN §9: secrets — private keys, one-time codes, export passwords —
never reach logs or the database in clear; DESIGN §3: ID numbers are masked in logs, and full
ones are kept only where the service cannot work without them.

What runs: the whole app with LINE on, over the fake LINE API, and two customers' complete
lives through it, each with its own export password: in the web chat, linking, an application,
the download page (the password typed there, the .pfx taken), and a revocation; on LINE, the same
through signed webhooks. A second test does the same on Telegram in document mode, where the
export password is typed in the chat itself. Every log record of every logger at DEBUG is kept
meanwhile.

What is scanned: (a) every log line (the message with its arguments, and the traceback of any
exception); (b) every value of every column of every table in
`certcore.storage.schema.metadata`, text and binary alike. For: "PRIVATE KEY" (any PEM key), the
DER of the CA's key and of each customer's key (read back from the .pfx with its password) and
their base64; every one-time code that was sent (read from the development outbox, with and
without its prefix); each export password; and full ID numbers outside the columns that must
hold them (`ID_COLUMNS`, each with its reason).

One documented exception: in development mode (no SMTP or SMS configured) the outbox table
`dev_outbox` holds the messages that would have been sent, codes in them — that is its job
(README, "One-time codes"), and it is not created on a production sender. The test asserts that
codes are found there and nowhere else; the codes themselves are stored as keyed hashes
(`otp_codes.code_hash`).

Lines of the `aiohttp.access` logger are left out: the test server writes an access log, which
names the URL (a session id, a link's token), but `certdesk serve` runs with none
(`bot.serve.app_runner`, `access_log=None`).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import select

from certcore.core import Core
from certcore.pki import CAFiles
from certcore.storage.schema import metadata
from dialogs.turn import decode_choice
from tests.bot.line.conftest import Line, add_customer
from tests.bot.line.test_flows import assert_keys, link, verify
from tests.bot.telegram.conftest import CHAT as TELEGRAM_CHAT
from tests.bot.telegram.conftest import Factory
from tests.bot.telegram.test_flows import link as telegram_link
from tests.bot.telegram.test_flows import verified
from tests.conftest import _FULL_ID, TEST_PASSPHRASE
from tests.fakes.line_api import uri_buttons

LINE_USER = "U5ec2e7a5ca1ab5e0000000000000cafe"
LINE_PASSWORD = "Lx7Qw2Zp9K"
WEB_CUSTOMER = "A120786753"
WEB_BIRTH = "761205"  # as `add_customer` files every customer
WEB_PASSWORD = "Wb4Tn8Yc3R"
TELEGRAM_PASSWORD = "Tg5Vm3Xk8P"
_CODE = re.compile(r"\b([A-Z]{4})-(\d{6})\b")

ID_COLUMNS: dict[str, str] = {
    "customers.id_number": "the directory itself: the back office's key for the customer",
    "certificates.customer_id": "whose certificate it is: query, renew, revoke look it up",
    "certificates.der": "the certificate: its subject's CN is the ID number (DESIGN §4)",
    "holder_locks.customer_id": "the row a customer's issuance locks (one valid certificate)",
    "revocation_quota.customer_id": "the quota is per customer and year (DESIGN §3)",
    "otp_codes.customer_id": "a code is bound to one customer (DESIGN §3)",
    "deliveries.customer_id": "whose certificate the link will make",
    "deliveries.filename": "`{ID}-{ISSUER_TAG}(expiry).pfx`, the file's name (DESIGN §4)",
    "conversations.customer_id": "the customer a chat is linked to",
    "account_links.customer_id": "the customer a LINE Account Link nonce links",
    "reminder_outbox.customer_id": "whom an expiry reminder is for",
}
"""The columns that must hold a full ID number, and why. Anything else is a finding, except
`conversations.data` while a flow runs (`WHILE_A_FLOW_RUNS`)."""
WHILE_A_FLOW_RUNS = "conversations.data"
"""A newcomer's identity check spans several events (ID number, birth date, code) and the
state lives in the database (DESIGN §5: any instance takes the next event), so the flow's data
holds the ID number typed until the flow ends (`Turn.end` empties it). Held by a conversation
with no flow running, it is a finding."""


@dataclass
class Secrets:
    """What must not be found, by name, as text and as bytes."""

    texts: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    codes: dict[str, re.Pattern[str]] = field(default_factory=dict)

    def key(self, name: str, der: bytes) -> None:
        self.blobs[name] = der
        self.texts[f"{name} (base64)"] = base64.b64encode(der).decode()[64:128]
        self.texts[f"{name} (hex)"] = der.hex()[128:256]


class Keeper(logging.Handler):
    """Every record of every logger, as the text a log line would carry."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "aiohttp.access":
            return
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


@pytest.fixture
def keeper() -> Iterator[Keeper]:
    handler = Keeper()
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


class WebChat:
    """A browser on the web chat, over the app's own session."""

    def __init__(self, line: Line) -> None:
        self.line = line
        self.session = ""
        self.messages: list[dict[str, Any]] = []

    async def start(self) -> None:
        async with self.line.session.post(self.line.server.make_url("/api/chat/sessions")) as r:
            assert r.status == 201
            self.session = (await r.json())["session"]
        await self.refresh()  # the welcome and the menu

    async def refresh(self) -> None:
        """Every message so far, pushed ones too (the download page's confirmation)."""
        url = self.line.server.make_url(f"/api/chat/sessions/{self.session}/messages")
        async with self.line.session.get(url) as response:
            self.messages = (await response.json())["messages"]

    async def post(self, body: dict[str, str]) -> list[dict[str, Any]]:
        url = self.line.server.make_url(f"/api/chat/sessions/{self.session}/messages")
        async with self.line.session.post(url, json=body) as response:
            assert response.status == 200, await response.text()
            replies: list[dict[str, Any]] = (await response.json())["messages"]
        self.messages.extend(replies)
        return replies

    async def say(self, text: str) -> list[dict[str, Any]]:
        return await self.post({"text": text})

    async def tap(self, key: str | None = None) -> list[dict[str, Any]]:
        """The option `key` of the newest question offering it (None: the first option)."""
        for message in reversed(self.messages):
            for choice in message.get("choices") or []:
                decoded = decode_choice(choice["action"])
                if key is None or (decoded is not None and decoded[1] == key):
                    return await self.post({"action": choice["action"]})
        raise AssertionError(f"no option {key}: {self.messages[-3:]}")

    async def verify(self, code: str) -> None:
        await self.say(WEB_BIRTH)
        await self.tap("sms")
        await self.tap("send")
        await self.say(code)


async def last_code(line: Line) -> str:
    return await line.last_code()


async def take_delivery(line: Line, url: str, password: str, secrets: Secrets) -> None:
    """The download page: the password typed twice, the .pfx taken, its key remembered."""
    path = "/d/" + url.rsplit("/d/", 1)[1]
    async with line.session.get(line.server.make_url(path)) as response:
        assert response.status == 200
        found = re.search(r'name="form_key" value="([0-9a-f]+)"', await response.text())
    assert found is not None
    fields = {
        "password": password,
        "password_confirm": password,
        "format": "standard",
        "form_key": found.group(1),
    }
    async with line.session.post(line.server.make_url(path), data=fields) as response:
        assert response.status == 200, await response.text()
        pfx = await response.read()
    key, _, _ = pkcs12.load_key_and_certificates(pfx, password.encode())
    assert key is not None
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    secrets.key(f"customer key ({password})", der)
    await line.channel.idle()


async def web_chat_life(line: Line, secrets: Secrets) -> None:
    chat = WebChat(line)
    await chat.start()
    await chat.tap("query")
    await chat.say(WEB_CUSTOMER)
    await chat.say(WEB_BIRTH)
    await chat.tap("sms")
    await chat.tap("send")
    await chat.say(await last_code(line))
    await chat.tap("apply")
    await chat.tap("agree")
    await chat.say(WEB_BIRTH)
    await chat.tap("sms")
    await chat.tap("send")
    await chat.say(await last_code(line))
    replies = await chat.tap("issue")
    url = replies[-1]["link"]["url"]
    await take_delivery(line, url, WEB_PASSWORD, secrets)
    await chat.refresh()
    await chat.say("選單")
    await chat.tap("revoke")
    await chat.tap("agree")
    await chat.say(WEB_BIRTH)
    await chat.tap("sms")
    await chat.tap("send")
    await chat.say(await last_code(line))
    await chat.tap()  # the first reason
    replies = await chat.tap("confirm")
    [record] = await line.core.certificates.issued_of(WEB_CUSTOMER)
    assert record.revoked, replies
    await chat.say("選單")  # the flow ends: its data is dropped


async def line_life(line: Line, secrets: Secrets) -> None:
    await link(line, LINE_USER)
    assert_keys(await line.tap(LINE_USER, "申請"), "apply.consent")
    assert_keys(await line.tap(LINE_USER, 1), "verify.birth_date.prompt")
    assert_keys(await verify(line, LINE_USER), "apply.ready")
    assert_keys(await line.tap(LINE_USER, 1), "apply.delivery")
    [url] = uri_buttons(line.fake.messages_to(LINE_USER)[-1])
    await take_delivery(line, url, LINE_PASSWORD, secrets)
    await line.say(LINE_USER, "選單")
    assert_keys(await line.tap(LINE_USER, "憑證註銷"), "revoke.consent")
    assert_keys(await line.tap(LINE_USER, 1), "verify.birth_date.prompt")
    assert_keys(await verify(line, LINE_USER), "verify.code.accepted", "revoke.reason.prompt")
    assert_keys(await line.tap(LINE_USER, 1), "revoke.confirm.prompt")
    assert_keys(await line.tap(LINE_USER, 1), "revoke.done")
    await line.say(LINE_USER, "選單")  # the flow ends: its data is dropped


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return "" if value is None else str(value)


async def database_cells(core: Core) -> list[tuple[str, object, dict[str, Any]]]:
    """Every value of every column of every table, named `table.column`, with its row."""
    cells: list[tuple[str, object, dict[str, Any]]] = []
    async with core.db.read() as conn:
        for table in metadata.sorted_tables:
            for row in (await conn.execute(select(table))).all():
                values = dict(row._mapping)
                for column, value in values.items():
                    cells.append((f"{table.name}.{column}", value, values))
    assert {where.split(".")[0] for where, _, _ in cells} >= {"customers", "conversations"}
    return cells


def id_allowed(where: str, row: dict[str, Any]) -> bool:
    if where == WHILE_A_FLOW_RUNS:
        return row["flow"] is not None
    return where in ID_COLUMNS


def findings_in(where: str, value: object, secrets: Secrets) -> Iterator[str]:
    text = _text(value)
    raw = bytes(value) if isinstance(value, bytes | bytearray | memoryview) else text.encode()
    if "PRIVATE KEY" in text:
        yield f"a PEM private key in {where}"
    for name, der in secrets.blobs.items():
        if der in raw:
            yield f"{name} (DER) in {where}"
    for name, needle in secrets.texts.items():
        if needle in text:
            yield f"{name} in {where}"
    for name, pattern in secrets.codes.items():
        if pattern.search(text):
            yield f"one-time code {name} in {where}"


def secrets_of(data_dir: Path, passwords: dict[str, str]) -> Secrets:
    """The CA's key (decrypted from its file) and the export passwords the flows will use."""
    secrets = Secrets()
    ca_key = serialization.load_pem_private_key(
        CAFiles(data_dir).key_path.read_bytes(), TEST_PASSPHRASE
    )
    secrets.key(
        "CA key",
        ca_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    for name, password in passwords.items():
        secrets.texts[f"export password ({name})"] = password
    return secrets


async def scan(core: Core, keeper: Keeper, secrets: Secrets, *, codes: int) -> None:
    """Read the codes sent from the outbox, then scan every log line and database cell."""
    assert core.outbox is not None
    sent = [m for entry in await core.outbox.since(0) for m in _CODE.finditer(entry.body)]
    assert len(sent) == codes
    for found in sent:
        prefix, code = found.groups()
        secrets.codes[f"{prefix}-{code}"] = re.compile(
            rf"{prefix}\W*{code}|(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])"
        )
    cells = await database_cells(core)
    conversations = [row for where, _, row in cells if where == "conversations.id"]
    assert conversations and all(row["flow"] is None for row in conversations)

    # The scan finds what it looks for (a scan that finds nothing could be blind).
    controls: list[str | bytes] = [*secrets.blobs.values(), *secrets.texts.values()]
    controls += list(secrets.codes)
    for control in controls:
        assert list(findings_in("control", control, secrets)), control
    assert list(findings_in("control", b"-----BEGIN PRIVATE KEY-----", secrets))

    problems: list[str] = []
    for number, text in enumerate(keeper.lines):
        problems.extend(findings_in(f"log line {number}: {text[:120]!r}", text, secrets))
        if _FULL_ID.search(text):
            problems.append(f"a full ID number in log line {number}: {text[:120]!r}")
    outbox_codes = set()
    for where, value, row in cells:
        for problem in findings_in(where, value, secrets):
            if where == "dev_outbox.body" and problem.startswith("one-time code"):
                outbox_codes.add(problem.split()[2])  # the development outbox's own job
            else:
                problems.append(problem)
        if not id_allowed(where, row) and _FULL_ID.search(_text(value)):
            problems.append(f"a full ID number in {where}: {_text(value)[:120]!r}")
    assert keeper.lines, "no log line was kept"
    assert not problems, "\n".join(sorted(set(problems)))
    assert outbox_codes == set(secrets.codes)  # each code in the outbox, as designed


async def test_no_secret_in_any_log_line_or_database_column(
    line: Line, keeper: Keeper, data_dir: Path
) -> None:
    """The web chat and LINE: link, apply, the download page, revoke."""
    await add_customer(line.core, WEB_CUSTOMER)  # the LINE fixture's customer is on file
    secrets = secrets_of(data_dir, {"web": WEB_PASSWORD, "LINE": LINE_PASSWORD})
    await web_chat_life(line, secrets)
    await line_life(line, secrets)
    await scan(line.core, keeper, secrets, codes=6)  # link, apply, revoke on each channel


async def test_no_secret_after_a_password_typed_in_telegram(
    telegram_app: Factory, keeper: Keeper, data_dir: Path
) -> None:
    """Telegram's document delivery, where the export password is typed in the chat itself
    (and deleted there at once): it must not stay in the conversation's record either."""
    tg = await telegram_app(telegram_delivery="document")
    secrets = secrets_of(data_dir, {"Telegram": TELEGRAM_PASSWORD})
    await telegram_link(tg)
    await tg.tap(TELEGRAM_CHAT, "apply")
    await verified(tg, TELEGRAM_CHAT, "apply.consent")
    await tg.tap(TELEGRAM_CHAT, "issue")
    await tg.text(TELEGRAM_CHAT, TELEGRAM_PASSWORD)
    await tg.text(TELEGRAM_CHAT, TELEGRAM_PASSWORD)
    [document] = [s.document for s in tg.fake.to(TELEGRAM_CHAT) if s.document is not None]
    key, _, _ = pkcs12.load_key_and_certificates(document[1], TELEGRAM_PASSWORD.encode())
    assert key is not None
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    secrets.key("customer key (Telegram)", der)
    await tg.text(TELEGRAM_CHAT, "/menu")  # the flow ends: its data is dropped
    await scan(tg.core, keeper, secrets, codes=2)  # link, apply
