"""The console channel, `certdesk chat`: in-process with scripted streams, and as a real process
driven line by line through a pipe (a whole application and a revocation).

In dev mode the one-time codes appear inline in the output, so a script reads the code from
what the console printed, as a person at the terminal would.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import select

from bot.channels.console import (
    Console,
    chat,
    conversation_id_for,
    display_width,
    render,
    render_table,
    write_pfx,
)
from certcore.audit import Actor, verify_chain
from certcore.clock import FrozenClock
from certcore.config import Settings
from certcore.core import Core
from certcore.customers import load_demo_customers
from certcore.i18n import translate
from certcore.notify import Medium, outbox_since
from certcore.otp import Binding, Operation
from certcore.pki import DeliveredFile, DeliveryState, RevocationReason, serial_hex, token_hash
from certcore.pki.records import all_certificates
from certcore.storage.schema import conversation_events, deliveries
from dialogs.flows import all_flows
from dialogs.messages import (
    Choices,
    Delivery,
    EventKind,
    Inbound,
    Link,
    Option,
    Outbound,
    Table,
    Text,
)
from tests.conftest import TEST_PASSPHRASE

REPO = Path(__file__).resolve().parents[2]
CODE = re.compile(r"\b([A-Z]{4})-(\d{6})\b")
WANG = ("A120786753", "761205")
"""王三, the manual's demo customer: one account, a mobile and an e-mail."""
PASSWORD = "Console2026"
STEP_SECONDS = 30.0

Line = str | Callable[[str], str]


def t(key: str, locale: str = "zh_TW", **params: object) -> str:
    return translate(locale, key, **params)


class ScriptedInput:
    """A stdin that is not a terminal: each line is text, or made from the output so far (to
    type the code the console just printed)."""

    def __init__(self, out: io.StringIO, lines: list[Line]) -> None:
        self.out = out
        self.lines = list(lines)
        self.lines_read = 0

    def readline(self) -> str:
        if not self.lines:
            return ""
        item = self.lines.pop(0)
        self.lines_read += 1
        return (item(self.out.getvalue()) if callable(item) else item) + "\n"

    def isatty(self) -> bool:
        return False


def last_code(output: str) -> str:
    codes = CODE.findall(output)
    assert codes, f"no code was printed:\n{output}"
    digits: str = codes[-1][1]
    return digits


def run_chat(
    settings: Settings,
    environ: dict[str, str],
    workdir: Path,
    lines: list[Line],
    *,
    lang: str | None = None,
    user: str = "tester",
) -> str:
    out = io.StringIO()
    code = chat(
        settings,
        lang=lang,
        stdin=ScriptedInput(out, lines),
        stdout=out,
        workdir=workdir,
        user=user,
        environ=environ,
    )
    assert code == 0
    return out.getvalue()


def link_lines(then: list[Line] | None = None) -> list[Line]:
    """From the menu: 憑證查詢, then linking (ID, date, SMS, send, the printed code)."""
    return ["1", WANG[0], WANG[1], "1", "1", last_code, *(then or [])]


# -- rendering -------------------------------------------------------------------------------


def test_choices_are_numbered_under_their_question() -> None:
    choices = Choices("請選擇：", (Option("1:a", "憑證查詢"), Option("1:b", "憑證申請")))
    assert render(choices) == "請選擇：\n  1) 憑證查詢\n  2) 憑證申請"


def value_column(line: str, column: str) -> int:
    """The terminal column where the value starts on a `  column  value` line."""
    assert line.startswith(f"  {column}"), (line, column)
    rest = line[2 + len(column) :]
    return 2 + display_width(column) + len(rest) - len(rest.lstrip(" "))


def test_a_table_is_title_then_aligned_column_value_lines() -> None:
    columns = ("身分證字號", "憑證序號", "Status")
    table = Table(
        "我的憑證", columns, (("A120XXX53", "4F2A", "有效"), ("A120XXX53", "77B1", "已註銷"))
    )
    lines = render_table(table).splitlines()
    assert lines[0] == "我的憑證"
    assert lines[1:4] == ["  身分證字號  A120XXX53", "  憑證序號    4F2A", "  Status      有效"]
    assert lines[4] == ""  # rows are separated by a blank line
    assert lines[5:] == ["  身分證字號  A120XXX53", "  憑證序號    77B1", "  Status      已註銷"]
    # Aligned in terminal columns, where a CJK character is two columns wide.
    assert {value_column(line, c) for line, c in zip(lines[1:4], columns, strict=True)} == {14}


def test_text_link_and_delivery_render_as_lines() -> None:
    assert render(Text("您好")) == "您好"
    link = Link("匯入說明請見：", "https://example.com/help", "開啟說明")
    assert render(link) == "匯入說明請見：\n  開啟說明: https://example.com/help"
    # A delivery's one-time link is never printed: the console sets the password itself.
    delivery = Delivery("secret-token", "請設定匯出密碼", "https://example.com/d/secret-token")
    assert render(delivery) == "請設定匯出密碼"


def test_a_pfx_never_overwrites_a_file(tmp_path: Path) -> None:
    delivered = DeliveredFile("A120786753-TAG(2027-11-24).pfx", b"pfx-bytes", "01", None)
    (tmp_path / delivered.filename).write_bytes(b"mine")
    first = write_pfx(tmp_path, delivered)
    second = write_pfx(tmp_path, delivered)
    assert first.name == "A120786753-TAG(2027-11-24)-1.pfx"
    assert second.name == "A120786753-TAG(2027-11-24)-2.pfx"
    assert (tmp_path / delivered.filename).read_bytes() == b"mine"
    assert first.read_bytes() == b"pfx-bytes"
    assert first.stat().st_mode & 0o777 == 0o600
    # A name with a directory in it stays in the directory.
    sneaky = DeliveredFile("../../escape.pfx", b"x", "02", None)
    assert write_pfx(tmp_path, sneaky) == tmp_path / "escape.pfx"


# -- the conversation, in-process ------------------------------------------------------------


def test_welcome_and_numbered_menu_then_a_number_or_a_label(
    settings: Settings, environ: dict[str, str], tmp_path: Path
) -> None:
    out = run_chat(settings, environ, tmp_path, ["1", "選單", t("menu.item.query")])
    assert t("console.dev_mode") in out
    assert t("welcome") in out
    assert "  1) 憑證查詢" in out
    assert f"  12) {t('menu.item.agent')}" in out
    # "1" and the typed label both lead to the same place: linking asks for the ID number.
    assert out.count(t("link.id.prompt")) == 2
    assert out.rstrip().endswith(t("console.goodbye"))


def test_lang_en_and_empty_lines_are_ignored(
    settings: Settings, environ: dict[str, str], tmp_path: Path
) -> None:
    out = run_chat(settings, environ, tmp_path, ["", "   ", "1"], lang="en")
    assert f"  1) {t('menu.item.query', 'en')}" in out
    assert t("link.id.prompt", "en") in out
    assert t("error.not_understood", "en") not in out
    assert t("menu.not_understood", "en") not in out

    async def events() -> int:
        core = await Core.open(settings, environ=environ)
        try:
            async with core.db.read() as conn:
                rows = await conn.execute(
                    select(conversation_events.c.event_id).where(
                        conversation_events.c.conversation_id == conversation_id_for("tester")
                    )
                )
                return len(rows.all())
        finally:
            await core.close()

    assert asyncio.run(events()) == 2  # the FOLLOW and "1": blank lines are no events


def test_linking_with_the_printed_code_then_a_table(
    settings: Settings, environ: dict[str, str], tmp_path: Path
) -> None:
    """The code printed inline by the development outbox is what links the chat; a linked
    customer holding a certificate gets the portal's table as aligned lines."""

    async def issue() -> None:
        core = await Core.open(settings, environ=environ, create_ca=True)
        try:
            await load_demo_customers(core.db, core.clock())
            await core.certificates.issue(WANG[0], "abc123", actor=Actor("operator:t", "cli"))
        finally:
            await core.close()

    asyncio.run(issue())
    out = run_chat(settings, environ, tmp_path, link_lines())
    assert "[開發模式簡訊 → 0936XXX054] 【" in out
    assert t("verify.code.accepted") in out
    keys = ("id", "serial", "validity", "status", "window")
    columns = [t(f"query.column.{key}") for key in keys]
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"  {columns[0]}"))
    assert lines[first - 1] == t("query.table.title")
    rows = lines[first : first + len(columns)]
    assert "A120XXX53" in rows[0]
    assert len({value_column(line, c) for line, c in zip(rows, columns, strict=True)}) == 1


def test_a_flow_left_unfinished_is_resumed_in_the_next_session(
    settings: Settings, environ: dict[str, str], tmp_path: Path
) -> None:
    first = run_chat(settings, environ, tmp_path, ["1", WANG[0]])
    assert t("verify.birth_date.prompt").splitlines()[0] in first
    second = run_chat(settings, environ, tmp_path, [WANG[1]])
    assert t("console.resumed") in second
    assert t("welcome") not in second
    assert t("verify.destination.prompt") in second  # the date answered the resumed question
    # Another OS user is another conversation: a new chat with the welcome.
    other = run_chat(settings, environ, tmp_path, [], user="someone-else")
    assert t("welcome") in other


# -- the delivery, in-process ----------------------------------------------------------------


@dataclass
class DeliveryEngine:
    """Stands in for the engine: offers one delivery, records the DELIVERED event."""

    delivery: Delivery
    events: list[Inbound] = field(default_factory=list)

    async def handle(self, event: Inbound) -> list[Outbound]:
        self.events.append(event)
        if event.kind is EventKind.DELIVERED:
            return [Text("憑證申請完成")]
        if event.kind is EventKind.TEXT and event.text == "go":
            return [Text("驗證成功"), self.delivery]
        return [Text("ok")]

    async def locale_of(self, conversation_id: str) -> str | None:
        return None

    async def resumable(self, conversation_id: str) -> list[Outbound] | None:
        return None


@dataclass
class DeliverySession:
    core: Core
    runner: asyncio.Runner
    token: str
    url: str

    def state(self) -> DeliveryState | None:
        described = self.runner.run(self.core.deliveries.describe(self.token))
        return None if described is None else described.state

    def talk(self, workdir: Path, lines: list[Line]) -> tuple[str, DeliveryEngine]:
        engine = DeliveryEngine(Delivery(self.token, "請設定匯出密碼以下載憑證。", self.url))
        out = io.StringIO()
        console = Console(
            self.core,
            engine,  # type: ignore[arg-type]
            self.runner.run,
            conversation_id="console:tester",
            stdin=ScriptedInput(out, lines),
            stdout=out,
            workdir=workdir,
        )
        console.session()
        return out.getvalue(), engine


async def _open_delivery(core: Core) -> tuple[str, str]:
    """A delivery opened the way the apply flow opens one: with a verified code."""
    await load_demo_customers(core.db, core.clock())
    binding = Binding(WANG[0], "console:tester", Operation.APPLY)
    actor = Actor("customer@console:tester", "console")
    await core.otp.send(
        binding, medium=Medium.SMS, destination="0936123054", locale="zh_TW", actor=actor
    )
    async with core.db.read() as conn:
        body = (await outbox_since(conn, 0))[-1].body
    receipt = await core.otp.verify(binding, last_code(body), actor=actor)
    ticket = await core.deliveries.open(
        binding=binding, receipt=receipt, requester="console:tester", actor=actor
    )
    return ticket.token, ticket.url


@pytest.fixture
def delivery_session(settings: Settings, environ: dict[str, str]) -> Iterator[DeliverySession]:
    with asyncio.Runner() as runner:
        core = runner.run(Core.open(settings, environ=environ, create_ca=True))
        try:
            token, url = runner.run(_open_delivery(core))
            yield DeliverySession(core, runner, token, url)
        finally:
            runner.run(core.close())


def test_delivery_re_asks_on_mismatch_and_invalid_then_writes_the_pfx(
    delivery_session: DeliverySession, tmp_path: Path
) -> None:
    lines: list[Line] = ["go", "abcd1", "abcd2", "ab!", "ab!", PASSWORD, PASSWORD]
    out, engine = delivery_session.talk(tmp_path, lines)
    assert out.count(t("console.password.prompt")) == 3
    assert out.count(t("console.password.again")) == 3
    assert t("console.password.mismatch") in out
    assert t("console.password.invalid") in out
    for secret in ("abcd1", "abcd2", "ab!", PASSWORD):
        assert secret not in out, "a password was echoed"
    files = list(tmp_path.glob("*.pfx"))
    assert len(files) == 1
    assert files[0].name.startswith(f"{WANG[0]}-") and files[0].name.endswith(").pfx")
    assert t("console.delivery.written", path=str(files[0])) in out
    key, certificate, _ = pkcs12.load_key_and_certificates(files[0].read_bytes(), PASSWORD.encode())
    assert key is not None and certificate is not None
    assert WANG[0] in certificate.subject.rfc4514_string()
    # The engine hears that the file was handed over, and its confirmation is printed.
    delivered = [e for e in engine.events if e.kind is EventKind.DELIVERED]
    assert [e.choice for e in delivered] == [delivery_session.token]
    assert out.index("憑證申請完成") > out.index(t("console.delivery.written", path=str(files[0])))
    assert delivery_session.state() is DeliveryState.ISSUED
    assert len({e.event_id for e in engine.events}) == len(engine.events)


def test_a_session_that_goes_on_past_the_window_erases_the_kept_file(
    settings: Settings, environ: dict[str, str], clock: FrozenClock, tmp_path: Path
) -> None:
    """No `serve` runs beside a console: the session itself ends the delivery it outlived."""

    def sixteen_minutes_later(_: str) -> str:
        clock.advance(minutes=15, seconds=1)
        return "hello"

    with asyncio.Runner() as runner:
        core = runner.run(Core.open(settings, clock=clock, environ=environ, create_ca=True))
        try:
            token, url = runner.run(_open_delivery(core))
            session = DeliverySession(core, runner, token, url)
            session.talk(tmp_path, ["go", PASSWORD, PASSWORD, sixteen_minutes_later])
            assert len(list(tmp_path.glob("*.pfx"))) == 1

            async def kept() -> bytes | None:
                async with core.db.read() as conn:
                    file: bytes | None = (
                        await conn.execute(
                            select(deliveries.c.pkcs12).where(
                                deliveries.c.token_hash == token_hash(token)
                            )
                        )
                    ).scalar()
                return file

            assert runner.run(kept()) is None
            assert session.state() is DeliveryState.EXPIRED
        finally:
            runner.run(core.close())


def test_delivery_gives_up_after_three_failed_tries(
    delivery_session: DeliverySession, tmp_path: Path
) -> None:
    lines: list[Line] = ["go", "aaaa", "bbbb", "cccc", "dddd", "x", "x", "hello"]
    out, engine = delivery_session.talk(tmp_path, lines)
    assert out.count(t("console.password.prompt")) == 3
    assert t("console.password.gave_up").split("{")[0][:10] in out
    assert delivery_session.url in out  # the link still lets the customer set the password
    assert not list(tmp_path.glob("*.pfx"))
    assert all(e.kind is not EventKind.DELIVERED for e in engine.events)
    assert delivery_session.state() is DeliveryState.OPEN
    assert engine.events[-1].text == "hello"  # the conversation goes on


def test_delivery_ends_at_eof_without_a_certificate(
    delivery_session: DeliverySession, tmp_path: Path
) -> None:
    out, _ = delivery_session.talk(tmp_path, ["go", PASSWORD])
    assert not list(tmp_path.glob("*.pfx"))
    assert delivery_session.state() is DeliveryState.OPEN
    assert out.rstrip().endswith(t("console.goodbye"))


def test_a_used_delivery_is_not_issued_twice(
    delivery_session: DeliverySession, tmp_path: Path
) -> None:
    delivery_session.talk(tmp_path, ["go", PASSWORD, PASSWORD])
    out, _ = delivery_session.talk(tmp_path, ["go", PASSWORD, PASSWORD])
    assert t("console.delivery.unavailable") in out
    assert len(list(tmp_path.glob("*.pfx"))) == 1


# -- a real process, driven through a pipe ---------------------------------------------------


class ChatProcess:
    """`python -m bot chat` with stdin and stdout pipes, read line by line with timeouts."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    @classmethod
    async def start(cls, cwd: Path, data_dir: Path, *args: str) -> ChatProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERTDESK_")}
        env.update(
            PYTHONPATH=str(REPO),
            PYTHONIOENCODING="utf-8",
            CERTDESK_CA_PASSPHRASE=TEST_PASSPHRASE.decode(),
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "chat",
            "--data-dir",
            str(data_dir),
            *args,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    @property
    def transcript(self) -> str:
        return "\n".join(self.lines)

    async def until(self, pattern: str, *, literal: bool = True) -> re.Match[str]:
        """Read lines until one matches (a literal line start by default, else a regex)."""
        regex = re.compile(re.escape(pattern) if literal else pattern)
        assert self.process.stdout is not None
        while True:
            try:
                raw = await asyncio.wait_for(self.process.stdout.readline(), STEP_SECONDS)
            except TimeoutError:
                raise AssertionError(f"waited for {pattern!r}; got:\n{self.transcript}") from None
            if not raw:
                raise AssertionError(f"EOF waiting for {pattern!r}; got:\n{self.transcript}")
            line = raw.decode("utf-8").rstrip("\n")
            self.lines.append(line)
            found = regex.search(line)
            if found:
                return found

    async def option(self, label: str) -> str:
        """The number printed before an option with this label."""
        return (await self.until(rf"^  (\d+)\) {re.escape(label)}$", literal=False)).group(1)

    async def choose(self, label: str) -> None:
        await self.send(await self.option(label))

    async def code(self) -> str:
        return (
            await self.until(r"^\[開發模式簡訊 → [^]]+\] .*\b[A-Z]{4}-(\d{6})\b", literal=False)
        ).group(1)

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode("utf-8") + b"\n")
        await self.process.stdin.drain()

    async def finish(self) -> tuple[int, str]:
        """Close stdin (EOF ends the session) and wait for a clean exit."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        out, err = await asyncio.wait_for(self.process.communicate(), STEP_SECONDS)
        self.lines += out.decode("utf-8").splitlines()
        return self.process.returncode or 0, err.decode("utf-8", "replace")


async def verify_by_code(chat: ChatProcess) -> None:
    """步驟一 and 步驟二 as the customer does them at a terminal."""
    await chat.until(t("verify.birth_date.prompt").splitlines()[0])
    await chat.send(WANG[1])
    await chat.choose(t("verify.via.sms", number="0936XXX054"))
    await chat.choose(t("verify.button.send"))
    await chat.send(await chat.code())


_MISSING_FLOWS = sorted({"apply", "revoke", "delivery"} - set(all_flows()))


@pytest.mark.skipif(
    bool(_MISSING_FLOWS),
    reason=f"flows not registered in dialogs.flows.all_flows() yet: {', '.join(_MISSING_FLOWS)}",
)
async def test_a_script_applies_then_revokes_through_the_console(
    data_dir: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()

    # Session 1: apply as a newcomer (one check links the chat), set the export password,
    # get the .pfx.
    chat = await ChatProcess.start(workdir, data_dir)
    await chat.until(t("console.dev_mode"))
    await chat.send(t("menu.item.apply"))  # typed label, as on LINE PC
    await chat.choose(t("apply.button.agree"))
    await chat.until(t("link.id.prompt"))
    await chat.send(WANG[0])
    await verify_by_code(chat)
    await chat.choose(t("apply.button.issue"))
    await chat.until(t("link.done", name="王三"))
    await chat.until(t("console.password.prompt"))
    await chat.send(PASSWORD)
    await chat.until(t("console.password.again"))
    await chat.send(PASSWORD)
    written = await chat.until(t("console.delivery.written", path="").split("（")[0])
    await chat.until("憑證申請完成")
    code, err = await chat.finish()
    assert code == 0, err
    assert "Traceback" not in err, err
    assert PASSWORD not in chat.transcript

    files = list(workdir.glob("*.pfx"))
    assert len(files) == 1, chat.transcript
    assert str(files[0]) in written.string
    key, certificate, extra = pkcs12.load_key_and_certificates(
        files[0].read_bytes(), PASSWORD.encode()
    )
    assert key is not None and certificate is not None
    assert certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == WANG[0]
    assert len(extra) == 1  # the CA certificate comes with it

    # Session 2, a new process: the chat is still linked, so 憑證註銷 goes straight on.
    chat = await ChatProcess.start(workdir, data_dir)
    await chat.until(t("console.dev_mode"))
    await chat.choose(t("menu.item.revoke"))
    await chat.choose(t("revoke.button.agree"))
    await verify_by_code(chat)
    await chat.choose(t("revoke.reason.key_compromise"))
    await chat.choose(t("revoke.button.confirm"))
    await chat.option(t("revoke.button.apply"))  # 「立即申請憑證」 is offered afterwards
    code, err = await chat.finish()
    assert code == 0, err
    assert "Traceback" not in err, err

    settings = Settings(data_dir=data_dir)
    environ = {"CERTDESK_CA_PASSPHRASE": TEST_PASSPHRASE.decode()}
    core = await Core.open(settings, environ=environ)
    try:
        async with core.db.read() as conn:
            records = await all_certificates(conn)
            await verify_chain(conn)
    finally:
        await core.close()
    assert [r.serial for r in records] == [serial_hex(certificate.serial_number)]
    assert records[0].revoked
    assert records[0].revoked_reason is RevocationReason.KEY_COMPROMISE
