"""The console channel: a conversation with the engine over a terminal, or over a script.

`certdesk chat` is a channel like LINE or Telegram, with a terminal for a platform: each line
typed is one TEXT event, and the engine's replies are printed. Options are printed numbered
(the customer types the number or the label: the engine resolves both), tables as aligned
`column: value` lines, a delivery asks for the export password here and writes the .pfx into
the current directory. In dev mode the codes "sent" to the development outbox are printed
inline, clearly marked, since no SMS or e-mail goes anywhere.

It works the same with stdin not a terminal: prompts are then plain lines, and the export
password is read from the next two lines, so a script can drive a whole application.

The I/O is blocking and on the main thread (so Ctrl-C interrupts a read at once); the engine
and the database run on one event loop, a turn at a time (`asyncio.Runner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import unicodedata
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

from bot.channels.base import ChannelAdapter
from certcore.audit import Actor
from certcore.clock import TAIPEI, Clock, system_clock
from certcore.config import Settings
from certcore.core import Core
from certcore.customers import load_demo_customers
from certcore.errors import CertdeskError
from certcore.i18n import normalise_locale, translate
from certcore.notify import Medium, OutboxEntry
from certcore.pki import EXPORT_PASSWORD, DeliveredFile, DeliveryUnavailable, Pkcs12Format
from dialogs import engine_for
from dialogs.engine import Engine
from dialogs.messages import (
    Choices,
    Delivery,
    EventKind,
    ForgetInput,
    Inbound,
    Link,
    Outbound,
    Table,
    Text,
)

log = logging.getLogger("certdesk.console")

CHANNEL = "console"
PASSWORD_ATTEMPTS = 3
"""Tries at typing the export password twice alike (and valid) before the console gives up."""

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]


class LineInput(Protocol):
    """What the console reads from: lines (sys.stdin, a script), and whether a terminal types
    them."""

    def readline(self) -> str: ...

    def isatty(self) -> bool: ...


def console_user() -> str:
    try:
        return getpass.getuser() or "local"
    except (KeyError, OSError):
        return "local"


def conversation_id_for(user: str) -> str:
    """`console:<OS user>`: stable, so a linked chat stays linked across sessions."""
    return Console.conversation_id(user)


class Console(ChannelAdapter[str]):
    """One customer at a terminal. `run` executes a coroutine on the session's event loop."""

    name = CHANNEL

    def __init__(
        self,
        core: Core,
        engine: Engine,
        run: Run[Any],
        *,
        conversation_id: str,
        stdin: LineInput,
        stdout: TextIO,
        workdir: Path,
        locale_hint: str | None = None,
        interactive: bool | None = None,
        read_secret: Callable[[str], str] = getpass.getpass,
    ) -> None:
        super().__init__(engine)
        self.core = core
        self.run = run
        self.chat_id = conversation_id
        """This session's conversation (`conversation_id`, the classmethod, names any user's)."""
        self.stdin = stdin
        self.stdout = stdout
        self.workdir = workdir
        self.locale_hint = locale_hint
        self.interactive = _isatty(stdin) if interactive is None else interactive
        self.read_secret = read_secret
        self.locale = normalise_locale(locale_hint)
        self.outbox = core.outbox
        self.outbox_seen = 0
        self.actor = Actor(name=f"customer@{conversation_id}"[:64], channel=CHANNEL)

    # -- the session -------------------------------------------------------------------------

    def session(self) -> None:
        """Greet (or resume), then one turn per line until EOF."""
        locale = self.run(self.engine.locale_of(self.chat_id))
        if locale is not None and self.locale_hint is None:
            self.locale = locale  # the language chosen last time
        if self.outbox is not None:
            self.outbox_seen = self.run(self.outbox.last_id())
            self.say("console.dev_mode")
        self._begin()
        while True:
            line = self._read_line("> ")
            if line is None:
                break
            text = line.strip()
            if not text:
                continue
            self._turn(Inbound(self.chat_id, _event_id(), EventKind.TEXT, text=text))
        self.say("console.goodbye")

    def _begin(self) -> None:
        """FOLLOW for a new conversation, or one between flows: the welcome and the menu. A
        conversation the engine says to resume (left in the middle of an identity flow) shows
        its last question again instead."""
        last = self.run(self.engine.resumable(self.chat_id))
        if last is not None:
            self.locale = self.run(self._conversation_locale())
            self.say("console.resumed")
            # A delivery's token is not kept with the record: only its words can be shown.
            self._show([m for m in last if not isinstance(m, Delivery)])
            return
        self._turn(
            Inbound(
                self.chat_id,
                _event_id(),
                EventKind.FOLLOW,
                locale_hint=self.locale_hint,
            )
        )

    def _turn(self, event: Inbound) -> None:
        replies = self.run(self.dispatch(event))
        # No `serve` upkeep here: a session that goes on past a delivery's window ends it.
        self.run(self.core.deliveries.erase_expired())
        self._print_outbox()
        for delivery in [r for r in replies if isinstance(r, Delivery)]:
            self._deliver(delivery)

    # -- rendering ---------------------------------------------------------------------------

    def render(self, message: Outbound) -> str:
        return render(message)

    async def send(self, conversation_id: str, replies: Sequence[Outbound]) -> None:
        """Print the replies (the console has one conversation: its own)."""
        self.locale = await self._conversation_locale()
        self._show(replies)

    def _show(self, replies: Sequence[Outbound]) -> None:
        for reply in replies:
            if not isinstance(reply, ForgetInput):  # a terminal keeps no chat history to clean
                self._write(self.render(reply))
        self.stdout.flush()

    def _print_outbox(self) -> None:
        if self.outbox is None:
            return
        entries = self.run(self.outbox.since(self.outbox_seen))
        for entry in entries:
            self._write(self._outbox_text(entry))
            self.outbox_seen = max(self.outbox_seen, entry.id)
        self.stdout.flush()

    def _outbox_text(self, entry: OutboxEntry) -> str:
        if entry.medium is Medium.SMS:
            return self.t("console.outbox.sms", destination=entry.masked_destination) + (
                f" {entry.body}"
            )
        heading = self.t(
            "console.outbox.email", destination=entry.masked_destination, subject=entry.subject
        )
        body = "\n".join(f"    {line}".rstrip() for line in entry.body.splitlines())
        return f"{heading}\n{body}"

    # -- delivery ----------------------------------------------------------------------------

    def _deliver(self, delivery: Delivery) -> None:
        """Ask for the export password, issue, write the .pfx here, tell the engine."""
        token = delivery.delivery_id
        if not token:
            self.say("console.delivery.unavailable")
            return
        password = self._export_password()
        if password is None:
            self._gave_up(token, delivery.url)
            return
        self.say("console.delivery.issuing")
        try:
            delivered = self.run(
                self.core.deliveries.fulfil(
                    token, password, actor=self.actor, fmt=Pkcs12Format.STANDARD
                )
            )
        except DeliveryUnavailable:
            self.say("console.delivery.unavailable")
            return
        except CertdeskError as error:
            log.warning("console delivery failed: %s", error.code)
            self.say("console.delivery.failed")
            return
        try:
            path = write_pfx(self.workdir, delivered)
        except OSError as error:
            until = self._until(token)
            self.say(
                "console.delivery.write_failed",
                path=str(self.workdir / _safe_name(delivered.filename)),
                error=error.strerror or type(error).__name__,
                until=until,
                url=delivery.url,
            )
            return
        self.say("console.delivery.written", path=str(path))
        self._turn(Inbound(self.chat_id, _event_id(), EventKind.DELIVERED, choice=token))

    def _export_password(self) -> str | None:
        """The export password typed twice alike and valid, or None (gave up, or EOF)."""
        for attempt in range(PASSWORD_ATTEMPTS):
            first = self._read_secret(self.t("console.password.prompt"))
            if first is None:
                return None
            second = self._read_secret(self.t("console.password.again"))
            if second is None:
                return None
            if first != second:
                problem = "console.password.mismatch"
            elif not EXPORT_PASSWORD.fullmatch(first):
                problem = "console.password.invalid"
            else:
                return first
            if attempt + 1 < PASSWORD_ATTEMPTS:
                self.say(problem)
        return None

    def _gave_up(self, token: str, url: str) -> None:
        until = self._until(token)
        if until:
            self.say("console.password.gave_up", until=until, url=url)
        else:
            self.say("console.delivery.unavailable")

    def _until(self, token: str) -> str:
        described = self.run(self.core.deliveries.describe(token))
        if described is None:
            return ""
        return f"{described.expires_at.astimezone(TAIPEI):%Y-%m-%d %H:%M}"

    # -- reading and writing -----------------------------------------------------------------

    def _read_line(self, prompt: str) -> str | None:
        """The next line, or None at EOF. A prompt is shown only at a terminal."""
        if self.interactive:
            self.stdout.write(prompt)
            self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            return None
        return line.rstrip("\r\n")

    def _read_secret(self, prompt: str) -> str | None:
        """A password: without echo at a terminal; from the next line of a script otherwise
        (the prompt is then printed as a line of its own, the password never)."""
        if self.interactive:
            try:
                return self.read_secret(prompt)
            except EOFError:
                return None
        self._write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            return None
        return line.rstrip("\r\n")

    def t(self, key: str, /, **params: object) -> str:
        return translate(self.locale, key, **params)

    def say(self, key: str, /, **params: object) -> None:
        self._write(translate(self.locale, key, **params))
        self.stdout.flush()

    def _write(self, text: str) -> None:
        self.stdout.write(text + "\n")

    async def _conversation_locale(self) -> str:
        return await self.engine.locale_of(self.chat_id) or self.locale


# -- rendering -----------------------------------------------------------------------------


def render(message: Outbound) -> str:
    """One outbound message as console lines."""
    if isinstance(message, Text):
        return message.text
    if isinstance(message, Choices):
        options = [f"  {n}) {option.label}" for n, option in enumerate(message.options, 1)]
        return "\n".join([message.text, *options])
    if isinstance(message, Table):
        return render_table(message)
    if isinstance(message, Link):
        return f"{message.text}\n  {message.label}: {message.url}"
    if isinstance(message, Delivery):
        return message.text
    if isinstance(message, ForgetInput):
        return ""
    raise TypeError(f"not an outbound message: {type(message).__name__}")


def render_table(table: Table) -> str:
    """The title, then each row as `column: value` lines, the values aligned."""
    width = max((display_width(c) for c in table.columns), default=0)
    blocks = []
    for row in table.rows:
        lines = [
            f"  {column}{' ' * (width - display_width(column))}  {value}"
            for column, value in zip(table.columns, row, strict=False)
        ]
        blocks.append("\n".join(lines))
    return "\n".join([table.title, *_separated(blocks)])


def _separated(blocks: list[str]) -> list[str]:
    out: list[str] = []
    for index, block in enumerate(blocks):
        if index:
            out.append("")
        out.append(block)
    return out


def display_width(text: str) -> int:
    """Terminal columns: CJK (East Asian wide and full-width) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


# -- the .pfx file ---------------------------------------------------------------------------


def _safe_name(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name
    return name if name not in ("", ".", "..") else "certificate.pfx"


def write_pfx(directory: Path, delivered: DeliveredFile) -> Path:
    """Write the .pfx under its delivery name, never over an existing file (`name-1.pfx` …);
    readable by the owner only, as the file holds the (encrypted) private key."""
    name = Path(_safe_name(delivered.filename))
    for n in range(1000):
        candidate = directory / (name.name if n == 0 else f"{name.stem}-{n}{name.suffix}")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(delivered.pkcs12)
        return candidate
    raise FileExistsError(f"too many files named like {name} in {directory}")


def _event_id() -> str:
    return f"console-{uuid.uuid4()}"


def _isatty(stream: LineInput) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- the command -----------------------------------------------------------------------------


def chat(
    settings: Settings,
    *,
    lang: str | None = None,
    stdin: LineInput,
    stdout: TextIO,
    workdir: Path | None = None,
    user: str | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock = system_clock,
    interactive: bool | None = None,
    read_secret: Callable[[str], str] = getpass.getpass,
) -> int:
    """`certdesk chat`: open the core (a development CA on first start, the demo customers in
    dev mode), talk until EOF or Ctrl-C, close. Returns the exit code (0)."""
    try:
        with asyncio.Runner() as runner:
            core = runner.run(_open(settings, clock, environ))
            try:
                console = Console(
                    core,
                    engine_for(core),
                    runner.run,
                    conversation_id=conversation_id_for(user or console_user()),
                    stdin=stdin,
                    stdout=stdout,
                    workdir=workdir or Path.cwd(),
                    locale_hint=lang,
                    interactive=interactive,
                    read_secret=read_secret,
                )
                with contextlib.suppress(KeyboardInterrupt):
                    console.session()
            finally:
                runner.run(core.close())
    except KeyboardInterrupt:  # while opening or closing
        pass
    with contextlib.suppress(OSError, ValueError):
        stdout.write("\n" if interactive or _isatty(stdin) else "")
        stdout.flush()
    return 0


async def _open(settings: Settings, clock: Clock, environ: Mapping[str, str] | None) -> Core:
    core = await Core.open(settings, clock=clock, create_ca=True, environ=environ)
    try:
        if settings.outbox_mode:  # dev mode, like serve: the demo customers in an empty directory
            await load_demo_customers(core.db, clock())
    except BaseException:
        await core.close()
        raise
    return core
