"""The web chat channel: the broker's own page, its messages kept in CertDesk's database.

Unlike LINE or Telegram there is no platform keeping the history, so this channel keeps it: every
message the customer sees (and what the customer typed) is a row of the chat log
(`certcore.storage.ChatLog`), numbered per conversation, so a page reload, a second tab or
another instance shows the same conversation, and a push (the download page's 「憑證申請完成」,
a reminder, an agent's reply) reaches a page that is not even open at the time.

A session is a 256-bit secret that only the browser holds. The conversation is named by a hash
of it (`web:<32 hex of SHA-256>`), so the database never holds the secret, and what must stay
secret inside the log — the one-time download link (whoever holds it can set the export password
and take the customer's certificate) and the text the customer typed (codes, dates) — is sealed
with AES-GCM under a key derived from the session secret (HKDF-SHA256): a copy of the database
alone opens none of it. A pushed download link for a session this process has not seen since it
started cannot be sealed, so it is left out (the text stays); such pushes do not happen today.

Live updates are an in-process wake-up (`listen`): a page's event stream waits on it and reads
the log after the last seq it sent. Another instance's appends reach the stream at its next
heartbeat, when it reads the log again; `?after=` polling works across instances as it is.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.channels.base import ChannelAdapter
from certcore.config import Settings
from certcore.i18n import DEFAULT_LOCALE, translate
from certcore.storage import ChatEntry, ChatLog
from dialogs import Engine, Inbound
from dialogs.messages import Choices, Delivery, ForgetInput, Link, Outbound, Table, Text

log = logging.getLogger("certdesk.webchat")

CHANNEL = "web"
SESSION_BYTES = 32
"""`secrets.token_urlsafe(32)`: 256 bits, 43 characters of the URL-safe alphabet."""
_KEY_INFO = b"certdesk web chat sealed messages v1"
_KEYS_REMEMBERED = 10_000
"""Sessions whose sealing key this process keeps for pushes (most recently used first)."""

Message = dict[str, Any]


def new_session() -> str:
    return secrets.token_urlsafe(SESSION_BYTES)


@dataclass(frozen=True)
class Session:
    """What a request's session secret opens: its conversation and its sealing key."""

    conversation_id: str
    key: bytes = b""

    @classmethod
    def of(cls, secret: str) -> Session:
        digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()[:32]
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(
            secret.encode("utf-8")
        )
        return cls(conversation_id=WebChat.conversation_id(digest), key=key)

    def seal(self, text: str) -> str:
        nonce = os.urandom(12)
        box = AESGCM(self.key).encrypt(nonce, text.encode("utf-8"), self._aad)
        return base64.urlsafe_b64encode(nonce + box).decode("ascii")

    def unseal(self, sealed: str) -> str | None:
        """The sealed text, or None when this session's key does not open it."""
        if not self.key:
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
            return AESGCM(self.key).decrypt(raw[:12], raw[12:], self._aad).decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error, UnicodeError):
            return None

    @property
    def _aad(self) -> bytes:
        return self.conversation_id.encode("utf-8")


class WebChat(ChannelAdapter[Message | None]):
    """The web chat's adapter: renders messages as the page's JSON, keeps them in the log."""

    name = CHANNEL

    def __init__(self, engine: Engine, chatlog: ChatLog, settings: Settings) -> None:
        super().__init__(engine)
        self.chatlog = chatlog
        self.settings = settings
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._listeners: dict[str, set[asyncio.Event]] = {}
        self.closing = False

    # -- sessions ----------------------------------------------------------------------------

    def session(self, secret: str) -> Session:
        """The session of a request's secret, remembered so a later push can seal for it."""
        opened = Session.of(secret)
        self._sessions[opened.conversation_id] = opened
        self._sessions.move_to_end(opened.conversation_id)
        while len(self._sessions) > _KEYS_REMEMBERED:
            self._sessions.popitem(last=False)
        return opened

    async def exists(self, session: Session) -> bool:
        return await self.chatlog.last_seq(session.conversation_id) is not None

    # -- rendering ---------------------------------------------------------------------------

    def render(self, message: Outbound, locale: str = DEFAULT_LOCALE) -> Message | None:
        """One message in the page's JSON (without its seq); None for ForgetInput. A delivery's
        link is in clear here: `record` seals it before it is stored."""
        shown: Message = {"from": "bot", "text": "", "choices": [], "table": None, "link": None}
        if isinstance(message, Text):
            shown["text"] = message.text
        elif isinstance(message, Choices):
            shown["text"] = message.text
            shown["choices"] = [
                {"label": option.label, "action": option.key} for option in message.options
            ]
        elif isinstance(message, Table):
            shown["text"] = message.title
            shown["table"] = {
                "columns": list(message.columns),
                "rows": [list(row) for row in message.rows],
            }
        elif isinstance(message, Link):
            shown["text"] = message.text
            shown["link"] = {"label": message.label, "url": message.url}
        elif isinstance(message, Delivery):
            shown["text"] = message.text
            if message.url:
                shown["link"] = {
                    "label": translate(locale, "webchat.delivery.link"),
                    "url": self._site_relative(message.url),
                    "secret": True,
                }
        elif isinstance(message, ForgetInput):
            return None
        else:
            raise TypeError(f"not an outbound message: {type(message).__name__}")
        return shown

    def _site_relative(self, url: str) -> str:
        """The download page is on this same site: a link to it is made a path, so it works
        whatever address the page was opened at (and `public_url` is the other channels')."""
        public = urlsplit(self.settings.public_url)
        link = urlsplit(url)
        if (link.scheme, link.netloc) == (public.scheme, public.netloc):
            return link.path + (f"?{link.query}" if link.query else "")
        return url

    # -- the log -----------------------------------------------------------------------------

    async def send(self, conversation_id: str, replies: Sequence[Outbound]) -> None:
        """A push: append the replies to the log and wake the pages that listen."""
        await self.record(conversation_id, replies)

    async def dispatch(self, event: Inbound) -> list[Outbound]:
        """An event that did not come from the page (a delivery confirmation, a reminder): its
        replies are logged under the event's id, so the same event dispatched again (a reminder
        sweep retried after a crash, answered from the engine's record) shows them once."""
        replies = await self.engine.handle(event)
        await self.record(event.conversation_id, replies, event_id=event.event_id)
        return replies

    async def record(
        self,
        conversation_id: str,
        replies: Sequence[Outbound],
        *,
        said: Message | None = None,
        event_id: str | None = None,
    ) -> list[Message]:
        """Append what the customer `said` (if given) and the rendered replies, in one
        transaction; returns the replies as the page shows them, with their seqs. A retried
        `event_id` gets the rows it wrote the first time."""
        session = self._sessions.get(conversation_id, Session(conversation_id))
        locale = DEFAULT_LOCALE
        if any(isinstance(reply, Delivery) for reply in replies):  # the link's label is ours
            locale = await self.engine.locale_of(conversation_id) or DEFAULT_LOCALE
        rows: list[Message] = []
        if said is not None:
            if any(isinstance(reply, ForgetInput) for reply in replies):
                said = {**said, "text": "", "sealed": None, "hidden": True}
            rows.append(said)
        for reply in replies:
            shown = self.render(reply, locale)
            if shown is not None:
                rows.append(self._sealed(shown, session))
        entries, new = await self.chatlog.append(conversation_id, rows, event_id=event_id)
        if new:
            self._wake(conversation_id)
        return [
            shown
            for entry in entries
            if (shown := self.shown(entry, session)) is not None and shown["from"] == "bot"
        ]

    def said(self, session: Session, *, text: str = "", label: str = "") -> Message:
        """The row for what the customer typed (sealed) or tapped (the option's label)."""
        if text:
            return {"from": "customer", "text": "", "sealed": session.seal(text)}
        return {"from": "customer", "text": label}

    def _sealed(self, shown: Message, session: Session) -> Message:
        link = shown.get("link")
        if not link or not link.pop("secret", False):
            return shown
        if not session.key:
            log.warning("download link pushed to %s left out: no key", session.conversation_id)
            return {**shown, "link": None}
        return {**shown, "link": {"label": link["label"], "sealed": session.seal(link["url"])}}

    async def messages_after(self, session: Session, seq: int) -> list[Message]:
        entries = await self.chatlog.after(session.conversation_id, seq)
        return [shown for entry in entries if (shown := self.shown(entry, session)) is not None]

    def shown(self, entry: ChatEntry, session: Session) -> Message | None:
        """A stored row as the page shows it: seqs in, sealed parts opened with the session's
        key (a part it cannot open is left out)."""
        row = entry.message
        who = "customer" if row.get("from") == "customer" else "bot"
        text = str(row.get("text") or "")
        if who == "customer" and row.get("sealed"):
            text = session.unseal(str(row["sealed"])) or ""
        link = row.get("link")
        if isinstance(link, dict) and "sealed" in link:
            url = session.unseal(str(link["sealed"]))
            link = None if url is None else {"label": link.get("label", ""), "url": url}
        shown: Message = {
            "seq": entry.seq,
            "from": who,
            "text": text,
            "choices": row.get("choices") or [],
            "table": row.get("table"),
            "link": link if isinstance(link, dict) else None,
        }
        if row.get("hidden"):
            shown["hidden"] = True
        return shown

    async def choice_label(self, session: Session, action: str) -> str:
        """The label of the option with this key among the recent messages (what the customer
        tapped, for the history), or "" when it is not there."""
        for entry in reversed(await self.chatlog.recent(session.conversation_id, 20)):
            for choice in entry.message.get("choices") or []:
                if choice.get("action") == action:
                    return str(choice.get("label", ""))
        return ""

    # -- live updates ------------------------------------------------------------------------

    def listen(self, conversation_id: str) -> asyncio.Event:
        """An event set at the next append to this conversation (or at shutdown)."""
        waiter = asyncio.Event()
        if self.closing:
            waiter.set()
        self._listeners.setdefault(conversation_id, set()).add(waiter)
        return waiter

    def unlisten(self, conversation_id: str, waiter: asyncio.Event) -> None:
        waiters = self._listeners.get(conversation_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._listeners[conversation_id]

    def _wake(self, conversation_id: str) -> None:
        for waiter in self._listeners.get(conversation_id, ()):
            waiter.set()

    def close(self) -> None:
        """The app stops: every open event stream ends."""
        self.closing = True
        for waiters in self._listeners.values():
            for waiter in waiters:
                waiter.set()
