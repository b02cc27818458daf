"""Conversation transcripts: flows written down as the customer sees them, run in both languages.

A transcript is a text file. `@` lines set the scene, `>` lines are what the customer (or the
channel) does, `<` lines are the replies expected, in order, all of them. Replies are named by
their catalogue key, so one transcript checks both languages: the reply must read exactly as
the key's text in the conversation's language, with any `{placeholder}` standing for one value.

    @customer A123456789 761205 name=王三 mobile=0936123054 accounts=1020-0324338;1020-0324339
    @linked A123456789          the chat starts linked to this customer
    @certificate A123456789     the customer holds a certificate, issued now (see @advance)
    @advance 29d                move the clock (s, m, h, d)
    @restart                    a new process: a new engine over the same database
    @sender fail timeout        the next code sends fail with this SendFailure
    @quota A123456789 used=2    this year's online revocations already used by the customer
    @revoked A123456789         the branch revokes the customer's newest certificate (offline)
    @locale en                  from here on the conversation speaks en (after a switch in it)

    > text 憑證查詢               type text
    > say 我要申請憑證 | I want a certificate   type the first in Chinese, the second in English
    > tap send                  tap the option with this key on the last question
    > number 2                  type an option's number
    > label verify.button.send  type an option's label, in the conversation's language
    > code | code prefixed | code wrong | code old   type the last code sent (or a wrong/old one)
    > file current | file other-ca | file garbage   send a certificate file
    > file current-der | previous | ca | pfx | large      … or one of these
    > paste current             paste a file's content as text (PEM)
    > deliver abc123            the channel takes the offered delivery with this export password
    > delivered [TOKEN]         the channel reports the offered (or this) delivery as handed over,
                                without an export password being set
    > replay                    deliver the previous event again, with the same event id
    > follow | unfollow
    > remind A123456789 30      the service's expiry reminder for the customer's newest
                                certificate at this milestone (a REMIND event)
    > claim mei                 the agent claims the conversation's waiting hand-off (AGENT)
    > agent mei 您好 | Hello      the agent's words, Chinese or English by the locale (AGENT)
    > handback resolved mei     the hand-off ends this way, by this agent (HANDBACK; no agent
                                for `timed_out`)

    < verify.birth_date.prompt                  the next reply, by key
    < menu.prompt [query, apply, ...]           a question and exactly its option keys
    < faq:forgot-password                       the FAQ catalogue's answer to this entry
    < error.unexpected !                        (none — every reply must be listed)
"""

from __future__ import annotations

import io
import random
import re
import shlex
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import delete, insert, select

from bot.channels.console import Console
from certcore.audit import Actor
from certcore.clock import FrozenClock, taipei
from certcore.config import Settings
from certcore.core import Core
from certcore.customers import Customer, CustomerKind
from certcore.customers.directory import upsert_customers
from certcore.i18n import translate
from certcore.identity import IdKind, classify_id, parse_roc_date
from certcore.notify import OutgoingMessage, Sender, SendError, SendFailure
from certcore.pki import RevocationReason, quota_year
from certcore.pki.records import all_certificates, certificates_of
from certcore.storage.schema import dev_outbox, revocation_quota
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
    reminder_choice,
)
from dialogs.turn import decode_choice
from tests.dialogs.catalogue import expected_pattern
from tests.dialogs.scene import link_conversation

TRANSCRIPTS = Path(__file__).parent / "transcripts"
START = taipei(2026, 11, 24, 10, 0, 0)
_CODE = re.compile(r"\b([A-Z]{4})-(\d{6})\b")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class ScriptedSender:
    """Wraps the development outbox so a transcript can make the next sends fail."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self.failures: list[SendFailure] = []

    async def send(self, message: OutgoingMessage) -> str:
        if self.failures:
            raise SendError(self.failures.pop(0), "scripted failure")
        return await self.inner.send(message)


@dataclass
class Session:
    """One conversation in a transcript: the process, the customer's screen and the codes."""

    settings: Settings
    clock: FrozenClock
    locale: str
    core: Core | None = None
    engine: Engine | None = None
    conversation_id: str = Console.conversation_id("transcript")
    console: Console | None = None
    screen: io.StringIO = field(default_factory=io.StringIO)
    last_choices: Choices | None = None
    last_event: Inbound | None = None
    last_delivery: Delivery | None = None
    codes: list[tuple[str, str]] = field(default_factory=list)
    event_count: int = 0
    sender: ScriptedSender | None = None
    serials: list[str] = field(default_factory=list)
    """Every certificate's serial in the order the transcript made it: the frozen clock gives
    certificates of one scene the same creation time, which no backend orders by itself."""

    async def start(self, environ: dict[str, str]) -> None:
        self.core = await Core.open(
            self.settings, clock=self.clock, rng=random.Random(7), environ=environ
        )
        self.sender = ScriptedSender(next(iter(self.core.senders.values())))
        self.core.otp.senders = {medium: self.sender for medium in self.core.senders}
        self.engine = engine_for(self.core)
        self.console = Console(
            self.core,
            self.engine,
            _no_blocking_run,
            conversation_id=self.conversation_id,
            stdin=io.StringIO(),
            stdout=self.screen,
            workdir=self.settings.data_dir,
            locale_hint=self.locale,
            interactive=False,
        )

    async def restart(self, environ: dict[str, str]) -> None:
        failures = self.sender.failures if self.sender else []
        await self.close()
        await self.start(environ)
        assert self.sender is not None
        self.sender.failures = failures

    async def close(self) -> None:
        if self.core is not None:
            await self.core.close()
            self.core = None

    async def send(self, event: Inbound) -> list[Outbound]:
        """Through the console channel, as `certdesk chat` does: the engine's replies, and what
        the console showed for them."""
        assert self.console is not None
        self.last_event = event
        shown_before = len(self.screen.getvalue())
        replies = await self.console.dispatch(event)
        check_console_shows(self.screen.getvalue()[shown_before:], replies)
        for reply in replies:
            if isinstance(reply, Choices):
                self.last_choices = reply
            if isinstance(reply, Delivery) and reply.delivery_id:
                # A redelivered event's record shows the text without the secret link.
                self.last_delivery = reply
        await self._collect_codes()
        return replies

    def event(self, kind: EventKind, **values: object) -> Inbound:
        self.event_count += 1
        return Inbound(
            conversation_id=self.conversation_id,
            event_id=f"e{self.event_count}",
            kind=kind,
            locale_hint=self.locale,
            **values,  # type: ignore[arg-type]
        )

    async def _collect_codes(self) -> None:
        assert self.core is not None
        async with self.core.db.read() as conn:
            rows = await conn.execute(select(dev_outbox.c.body).order_by(dev_outbox.c.id))
            bodies = [row.body for row in rows]
        self.codes = [
            (m.group(1), m.group(2)) for body in bodies for m in [_CODE.search(body)] if m
        ]


def _no_blocking_run(awaitable: object) -> object:
    raise AssertionError("a transcript awaits the console's channel methods directly")


def check_console_shows(shown: str, replies: list[Outbound]) -> None:
    """The console printed every reply, in order, each choice's options numbered."""
    expected: list[str] = []
    for reply in replies:
        expected.append(reply_text(reply))
        if isinstance(reply, Choices):
            expected.extend(f"  {n}) {o.label}" for n, o in enumerate(reply.options, 1))
    position = 0
    for piece in expected:
        found = shown.find(piece, position)
        assert found >= 0, f"the console did not show {piece!r} in order:\n{shown}"
        position = found + len(piece)


def reply_text(reply: Outbound) -> str:
    if isinstance(reply, Text):
        return reply.text
    if isinstance(reply, Choices):
        return reply.text
    if isinstance(reply, Table):
        return reply.title
    if isinstance(reply, Link | Delivery):
        return reply.text
    if isinstance(reply, ForgetInput):
        return ""
    raise AssertionError(f"unknown reply {reply!r}")


def describe(replies: list[Outbound]) -> str:
    lines = []
    for reply in replies:
        line = f"  {type(reply).__name__}: {reply_text(reply)!r}"
        if isinstance(reply, Choices):
            keys = [decode_choice(o.key)[1] for o in reply.options]  # type: ignore[index]
            line += f" {keys}"
        lines.append(line)
    return "\n".join(lines) or "  (no reply)"


class Transcript:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = [
            (number, line.rstrip())
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")
        ]

    async def run(self, settings: Settings, environ: dict[str, str], locale: str) -> None:
        clock = FrozenClock(START)
        session = Session(settings=settings, clock=clock, locale=locale)
        await session.start(environ)
        try:
            await self._run(session, environ)
        finally:
            await session.close()

    async def _run(self, session: Session, environ: dict[str, str]) -> None:
        pending: list[Outbound] = []
        where = ""
        for number, line in self.lines:
            where = f"{self.path.name}:{number} ({session.locale}): {line.strip()}"
            marker, _, rest = line.strip().partition(" ")
            if marker == "<":
                if not pending:
                    raise AssertionError(f"{where}\nexpected a reply, but there is none left")
                self._expect(session.locale, rest, pending.pop(0), where, pending)
                continue
            if pending:
                raise AssertionError(f"{where}\nunexpected further replies:\n{describe(pending)}")
            if marker == ">":
                # Whether a secret input is forgotten is tested beside the engine, not here.
                acted = await self._act(session, rest, where)
                pending = [reply for reply in acted if not isinstance(reply, ForgetInput)]
            elif marker.startswith("@"):
                await self._scene(session, marker[1:], rest, environ)
            else:
                raise AssertionError(f"{where}\nunknown line")
            await self._note_certificates(session)
        if pending:
            raise AssertionError(f"{where}\nunexpected further replies:\n{describe(pending)}")

    def _expect(
        self, locale: str, spec: str, reply: Outbound, where: str, rest: list[Outbound]
    ) -> None:
        key, _, options = spec.partition(" ")
        text = reply_text(reply)
        if not expected_pattern(locale, key).fullmatch(text):
            raise AssertionError(
                f"{where}\nexpected {key}: {translate(locale, key)!r}\n"
                f"got:\n{describe([reply, *rest])}"
            )
        if options:
            wanted = [o.strip() for o in options.strip("[] ").split(",") if o.strip()]
            if not isinstance(reply, Choices):
                raise AssertionError(f"{where}\nexpected options {wanted}, got {reply!r}")
            got = [decode_choice(o.key)[1] for o in reply.options]  # type: ignore[index]
            if got != wanted:
                raise AssertionError(f"{where}\nexpected options {wanted}, got {got}")

    async def _act(self, session: Session, spec: str, where: str) -> list[Outbound]:
        verb, _, argument = spec.partition(" ")
        argument = argument.strip()
        if verb == "text":
            return await session.send(session.event(EventKind.TEXT, text=argument))
        if verb == "say":
            chinese, bar, english = argument.partition(" | ")
            if not bar:
                raise AssertionError(f"{where}\nsay needs a Chinese and an English text")
            text = english if session.locale == "en" else chinese
            return await session.send(session.event(EventKind.TEXT, text=text.strip()))
        if verb in ("tap", "number", "label"):
            choices = session.last_choices
            if choices is None:
                raise AssertionError(f"{where}\nno question with options was asked")
            keys = [decode_choice(o.key)[1] for o in choices.options]  # type: ignore[index]
            if verb == "number":
                return await session.send(session.event(EventKind.TEXT, text=argument))
            if verb == "label":
                label = translate(session.locale, argument)
                return await session.send(session.event(EventKind.TEXT, text=label))
            if argument not in keys:
                raise AssertionError(f"{where}\nno option {argument!r} in {keys}")
            wire = choices.options[keys.index(argument)].key
            return await session.send(session.event(EventKind.CHOICE, choice=wire))
        if verb == "code":
            if not session.codes:
                raise AssertionError(f"{where}\nno code was sent")
            prefix, digits = session.codes[-1]
            typed = {
                "": digits,
                "prefixed": f"{prefix}-{digits}",
                "wrong": f"{(int(digits) + 1) % 1_000_000:06d}",
                "old": f"{session.codes[-2][0]}-{session.codes[-2][1]}"
                if len(session.codes) > 1
                else "",
            }[argument]
            return await session.send(session.event(EventKind.TEXT, text=typed))
        if verb == "file":
            data, name = await self._file(session, argument)
            return await session.send(session.event(EventKind.FILE, file=data, filename=name))
        if verb == "paste":
            data, _ = await self._file(session, argument)
            return await session.send(session.event(EventKind.TEXT, text=data.decode()))
        if verb == "deliver":
            return await self._deliver(session, argument, where)
        if verb == "delivered":
            token = argument or (session.last_delivery.delivery_id if session.last_delivery else "")
            return await session.send(session.event(EventKind.DELIVERED, choice=token))
        if verb == "replay":
            assert session.last_event is not None
            return await session.send(session.last_event)
        if verb in ("follow", "unfollow"):
            return await session.send(session.event(EventKind(verb)))
        if verb == "remind":
            id_number, days = argument.split()
            serial = await _newest_serial(session, id_number)
            choice = reminder_choice(serial, int(days))
            return await session.send(session.event(EventKind.REMIND, choice=choice))
        if verb == "claim":
            assert session.core is not None
            handoff = await session.core.handoffs.open_for(session.conversation_id)
            if handoff is None:
                raise AssertionError(f"{where}\nno hand-off is open")
            await session.core.handoffs.claim(handoff.id, argument)
            return await session.send(session.event(EventKind.AGENT, choice=argument))
        if verb == "agent":
            agent, _, words = argument.partition(" ")
            chinese, _, english = words.partition(" | ")
            text = english if session.locale == "en" else chinese
            return await session.send(
                session.event(EventKind.AGENT, choice=agent, text=text.strip())
            )
        if verb == "handback":
            outcome, _, agent = argument.partition(" ")
            return await session.send(session.event(EventKind.HANDBACK, choice=outcome, text=agent))
        raise AssertionError(f"{where}\nunknown action {verb!r}")

    async def _deliver(self, session: Session, password: str, where: str) -> list[Outbound]:
        delivery = session.last_delivery
        if delivery is None:
            raise AssertionError(f"{where}\nno delivery was offered")
        assert session.core is not None
        await session.core.deliveries.fulfil(
            delivery.delivery_id, password, actor=Actor("customer", "console")
        )
        return await session.send(session.event(EventKind.DELIVERED, choice=delivery.delivery_id))

    async def _note_certificates(self, session: Session) -> None:
        if session.core is None:
            return
        async with session.core.db.read() as conn:
            for record in await all_certificates(conn):
                if record.serial not in session.serials:
                    session.serials.append(record.serial)

    async def _file(self, session: Session, which: str) -> tuple[bytes, str]:
        assert session.core is not None
        if which == "garbage":
            return b"this is not a certificate", "notes.txt"
        if which == "other-ca":
            return _foreign_certificate_pem(), "other.pem"
        if which == "pfx":
            return _foreign_pkcs12(), "A123456789.pfx"
        if which == "large":
            return b"-----BEGIN CERTIFICATE-----\n" + b"A" * 70_000, "huge.cer"
        if which == "ca":
            return session.core.certificates.ca.pem, "ca.crt"
        await self._note_certificates(session)
        async with session.core.db.read() as conn:
            records = [r for r in await all_certificates(conn) if r.der is not None]
        records.sort(key=lambda r: (r.created_at, session.serials.index(r.serial)))
        if len(records) < (2 if which == "previous" else 1):
            raise AssertionError("not that many certificates were issued")
        record = records[-2] if which == "previous" else records[-1]
        certificate = x509.load_der_x509_certificate(record.der)  # type: ignore[arg-type]
        if which == "current-der":
            return certificate.public_bytes(serialization.Encoding.DER), "mine.cer"
        return certificate.public_bytes(serialization.Encoding.PEM), "mine.pem"

    async def _scene(
        self, session: Session, verb: str, argument: str, environ: dict[str, str]
    ) -> None:
        assert session.core is not None
        words = shlex.split(argument)
        if verb == "customer":
            await _add_customer(session, words)
        elif verb == "linked":
            await _link(session, words[0])
        elif verb == "certificate":
            await session.core.certificates.issue(
                words[0], "abc123", actor=Actor("operator:t", "cli")
            )
        elif verb == "advance":
            amount, unit = int(words[0][:-1]), words[0][-1]
            session.clock.advance(**{_UNITS[unit]: amount})
        elif verb == "restart":
            await session.restart(environ)
        elif verb == "locale":
            session.locale = words[0]
        elif verb == "sender":
            assert words[0] == "fail" and session.sender is not None
            session.sender.failures.append(SendFailure(words[1]))
        elif verb == "quota":
            await _set_quota(session, words[0], int(words[1].removeprefix("used=")))
        elif verb == "revoked":
            await _revoke_newest(session, words[0])
        else:
            raise AssertionError(f"unknown scene line @{verb}")


async def _add_customer(session: Session, words: list[str]) -> None:
    assert session.core is not None
    id_number, roc_date, *pairs = words
    values = dict(pair.split("=", 1) for pair in pairs)
    kind = classify_id(id_number)
    assert kind is not None, f"invalid transcript ID {id_number}"
    customer = Customer(
        id_number=id_number,
        kind=CustomerKind.CORPORATE if kind is IdKind.UBN else CustomerKind.INDIVIDUAL,
        name=values.get("name", "王三"),
        birth_date=parse_roc_date(roc_date, today=START.date()),
        mobile=values.get("mobile"),
        email=values.get("email"),
        accounts=tuple(values.get("accounts", "1020-0324338").split(";")),
    )
    async with session.core.db.write() as conn:
        await upsert_customers(conn, [customer], session.clock())


async def _link(session: Session, id_number: str) -> None:
    assert session.core is not None
    await link_conversation(session.core, session.conversation_id, id_number, session.locale)


async def _set_quota(session: Session, id_number: str, used: int) -> None:
    assert session.core is not None
    year = quota_year(session.clock())
    async with session.core.db.write() as conn:
        await conn.execute(
            delete(revocation_quota).where(
                revocation_quota.c.customer_id == id_number, revocation_quota.c.year == year
            )
        )
        await conn.execute(
            insert(revocation_quota).values(customer_id=id_number, year=year, used=used)
        )


async def _newest_serial(session: Session, id_number: str) -> str:
    assert session.core is not None
    async with session.core.db.read() as conn:
        records = [r for r in await certificates_of(conn, id_number) if r.der is not None]
    assert records, f"{id_number} holds no certificate"
    return records[-1].serial


async def _revoke_newest(session: Session, id_number: str) -> None:
    assert session.core is not None
    await session.core.certificates.revoke(
        await _newest_serial(session, id_number),
        RevocationReason.KEY_COMPROMISE,
        actor=Actor("operator:t", "cli"),
        online=False,
    )


def _foreign_certificate_pem() -> bytes:
    """A client certificate from some other CA, with a name like ours."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "A123456789")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START - timedelta(days=1))
        .not_valid_after(START + timedelta(days=300))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _foreign_pkcs12() -> bytes:
    """A password-protected .pfx, key and certificate, as a customer might send by mistake."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "A123456789")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START - timedelta(days=1))
        .not_valid_after(START + timedelta(days=300))
        .sign(key, hashes.SHA256())
    )
    return pkcs12.serialize_key_and_certificates(
        b"A123456789", key, certificate, None, serialization.BestAvailableEncryption(b"abc123")
    )


def all_transcripts() -> list[Path]:
    return sorted(TRANSCRIPTS.glob("*.txt"))
