"""Delivery as a document (`telegram_delivery = "document"`): the .pfx handed over in the chat.

DESIGN §4: Telegram may receive the encrypted .pfx as a document, the export password then
typed in the chat and the bot deleting those messages at once. When the engine offers a
delivery, the chat gets its text with the download link (which keeps working whatever happens
here: after a restart, or if the customer prefers the page), then a request for the export
password. The next texts are the password, typed twice (4–12 letters or digits, as
`certcore.pki.EXPORT_PASSWORD` says); each is deleted from the chat the moment it is read,
before anything else is done with it. When both agree the certificate is issued through the
delivery (`DeliveryService.fulfil`, as the download page does), sent as a document with
`protect_content`, and the engine is told (DELIVERED), so the chat says 「憑證申請完成」.

What is pending lives in this process's memory only, for the delivery's window: the token and
(between the two entries) the first password are never written anywhere. A command, a button
or a file ends the entry; so do three failed tries. The link stays usable in every case.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.channels.telegram.render import Outgoing, render
from certcore.audit import Actor
from certcore.clock import TAIPEI
from certcore.errors import CertdeskError
from certcore.i18n import translate
from certcore.pki import (
    EXPORT_PASSWORD,
    DeliveryState,
    DeliveryUnavailable,
    PasswordProblem,
    export_password_problem,
    token_hash,
)
from dialogs import Delivery, EventKind, Inbound

if TYPE_CHECKING:
    from bot.channels.telegram.adapter import TelegramChannel

log = logging.getLogger("certdesk.telegram")

PASSWORD_ATTEMPTS = 3
"""Tries at typing a valid export password twice alike before the chat entry ends."""
CANCEL = "tg:export:cancel"
"""The callback data of the prompt's cancel button (not an engine key: no `<seq>:` in it)."""


@dataclass
class PendingExport:
    token: str = field(repr=False)
    expires_at: datetime
    locale: str
    first: str | None = field(default=None, repr=False)
    failures: int = 0


class ExportDesk:
    def __init__(self, channel: TelegramChannel) -> None:
        self.channel = channel
        self._pending: dict[int, PendingExport] = {}

    def waiting(self, chat_id: int) -> bool:
        return chat_id in self._pending

    def owns(self, callback_data: str) -> bool:
        return callback_data == CANCEL

    def cancel(self, chat_id: int) -> None:
        """End a password entry, silently (the customer moved on; the link still works)."""
        pending = self._pending.pop(chat_id, None)
        if pending is not None:
            pending.first = None

    async def offer(self, chat_id: int, delivery: Delivery, locale: str) -> None:
        """The delivery's text and link, then the request for the export password."""
        channel = self.channel
        for outgoing in render(delivery, locale, channel.keys.data_for):
            await channel.post(chat_id, outgoing)
        token = delivery.delivery_id or delivery.url.rstrip("/").rpartition("/")[2]
        described = await channel.core.deliveries.describe(token)
        if described is None or described.state is not DeliveryState.OPEN:
            return
        self._pending[chat_id] = PendingExport(
            token=token, expires_at=described.expires_at, locale=locale
        )
        until = f"{described.expires_at.astimezone(TAIPEI):%H:%M}"
        button = InlineKeyboardButton(
            translate(locale, "telegram.export.cancel_button"), callback_data=CANCEL
        )
        await channel.post(
            chat_id,
            Outgoing(
                translate(locale, "telegram.export.prompt", until=until),
                markup=InlineKeyboardMarkup([[button]]),
            ),
        )

    async def tapped(self, chat_id: int, data: str, hint: str | None) -> None:
        """The prompt's cancel button (`data` is `CANCEL`, the one button the desk owns)."""
        pending = self._pending.pop(chat_id, None)
        locale = pending.locale if pending else await self.channel.locale(chat_id, hint)
        await self.channel.post(chat_id, Outgoing(translate(locale, "telegram.export.cancelled")))

    async def password(self, chat_id: int, message: Message) -> None:
        """A text typed while the password is asked for: deleted at once, then checked."""
        channel = self.channel
        await channel.delete(chat_id, message.message_id)
        pending = self._pending.get(chat_id)
        if pending is None:
            return
        typed = message.text or ""
        if channel.core.clock() > pending.expires_at:
            self.cancel(chat_id)
            await self._say(chat_id, pending, "telegram.export.expired")
            return
        if pending.first is None:
            if EXPORT_PASSWORD.fullmatch(typed):
                pending.first = typed
                await self._say(chat_id, pending, "telegram.export.again")
            else:
                await self._failed(chat_id, pending, "telegram.export.invalid")
            return
        problem = export_password_problem(pending.first, typed)
        if problem is not None:
            pending.first = None
            key = "mismatch" if problem is PasswordProblem.MISMATCH else "invalid"
            await self._failed(chat_id, pending, f"telegram.export.{key}")
            return
        self.cancel(chat_id)  # forgets the first entry; `typed` lives until the issue below
        await self._issue(chat_id, pending, typed)

    async def _failed(self, chat_id: int, pending: PendingExport, key: str) -> None:
        pending.failures += 1
        if pending.failures >= PASSWORD_ATTEMPTS:
            self.cancel(chat_id)
            await self._say(chat_id, pending, "telegram.export.gave_up", until=_until(pending))
            return
        await self._say(chat_id, pending, key)

    async def _issue(self, chat_id: int, pending: PendingExport, password: str) -> None:
        channel = self.channel
        await channel.typing(chat_id)
        await self._say(chat_id, pending, "telegram.export.issuing")
        conversation = channel.conversation_id(str(chat_id))
        actor = Actor(name=f"customer@{conversation}"[:64], channel=channel.name)
        try:
            delivered = await channel.core.deliveries.fulfil(pending.token, password, actor=actor)
        except DeliveryUnavailable:
            await self._say(chat_id, pending, "telegram.export.unavailable")
            return
        except CertdeskError as error:
            log.warning("Telegram delivery failed: %s", error.code)
            await self._say(chat_id, pending, "telegram.export.failed", until=_until(pending))
            return
        sent = await channel.send_document(
            chat_id,
            delivered.filename,
            delivered.pkcs12,
            translate(pending.locale, "telegram.export.caption"),
        )
        if sent is None:
            await self._say(chat_id, pending, "telegram.export.not_sent", until=_until(pending))
            return
        # As the download page does once the file is handed over: the engine confirms it.
        event = Inbound(
            conversation,
            f"{channel.name}:delivered:{token_hash(pending.token)[:32]}",
            EventKind.DELIVERED,
            choice=pending.token,
        )
        await channel.apply(event)

    async def _say(self, chat_id: int, pending: PendingExport, key: str, **params: object) -> None:
        await self.channel.post(chat_id, Outgoing(translate(pending.locale, key, **params)))


def _until(pending: PendingExport) -> str:
    return f"{pending.expires_at.astimezone(TAIPEI):%Y-%m-%d %H:%M}"
