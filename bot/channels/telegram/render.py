"""The engine's neutral messages in Telegram's own form, as plain data the sender posts.

Choices become an inline keyboard (a button a row; a long list of short labels two a row) whose
callback data is the option's opaque wire key; a key over Telegram's 64 bytes is never cut
(a cut key would be a different key) but swapped for a short digest the channel resolves back.
A table becomes an HTML message, every value escaped; a link, and a delivery's download link,
a URL button. Texts over Telegram's 4,096 characters are split at line ends, the buttons on the
last part. Nothing here sends anything or knows the conversation.
"""

from __future__ import annotations

import hashlib
import html
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode

from certcore.i18n import translate
from dialogs import Choices, Delivery, ForgetInput, Link, Outbound, Table, Text

MAX_TEXT = 4096
"""Telegram's limit on a message's text, counted in UTF-16 code units."""
MAX_CALLBACK_DATA = 64
"""Telegram's limit on a button's callback data, in bytes."""
DIGEST_PREFIX = "h:"
PAIRED_FROM = 6
"""From this many options, short labels go two a row."""
SHORT_LABEL = 14
"""Labels up to this many columns (seven CJK characters) count as short."""


@dataclass(frozen=True)
class Outgoing:
    """One Telegram message to send: `sendMessage`'s text, parse mode and keyboard."""

    text: str
    parse_mode: str | None = None
    markup: InlineKeyboardMarkup | None = None

    def without_url_buttons(self) -> Outgoing:
        """The same message with every URL button written into the text instead, for when
        Telegram refuses a button's URL (it takes no loopback or intranet hosts)."""
        if self.markup is None:
            return self
        kept: list[list[InlineKeyboardButton]] = []
        written: list[str] = []
        for row in self.markup.inline_keyboard:
            plain = [button for button in row if button.url is None]
            written.extend(f"{b.text}: {b.url}" for b in row if b.url is not None)
            if plain:
                kept.append(plain)
        escape = html.escape if self.parse_mode == ParseMode.HTML else str
        text = "\n".join([self.text, *(escape(line) for line in written)])
        return Outgoing(text, self.parse_mode, InlineKeyboardMarkup(kept) if kept else None)


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class CallbackKeys:
    """Callback data for a wire key: the key itself when it fits in 64 bytes, else a digest
    this process remembers (the most recent `capacity` of them). A digest it no longer knows
    goes to the engine as it is, which answers it as a stale button."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._long: OrderedDict[str, str] = OrderedDict()

    def data_for(self, key: str) -> str:
        if len(key.encode("utf-8")) <= MAX_CALLBACK_DATA and not key.startswith(DIGEST_PREFIX):
            return key
        digest = DIGEST_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        self._long[digest] = key
        self._long.move_to_end(digest)
        while len(self._long) > self.capacity:
            self._long.popitem(last=False)
        return digest

    def key_for(self, data: str) -> str:
        return self._long.get(data, data)


def render(
    message: Outbound,
    locale: str,
    callback_data: Callable[[str], str] | None = None,
) -> list[Outgoing]:
    """One neutral message as the Telegram messages that show it (none for `ForgetInput`);
    `callback_data` turns an option's wire key into a button's data (`CallbackKeys.data_for`)."""
    callback_data = callback_data or CallbackKeys().data_for
    if isinstance(message, Text):
        return [Outgoing(part) for part in split_text(message.text)]
    if isinstance(message, Choices):
        return _with_markup(split_text(message.text), keyboard(message, callback_data))
    if isinstance(message, Table):
        return [Outgoing(part, ParseMode.HTML) for part in table_html(message)]
    if isinstance(message, Link):
        button = InlineKeyboardButton(message.label, url=message.url)
        return _with_markup(split_text(message.text), InlineKeyboardMarkup([[button]]))
    if isinstance(message, Delivery):
        parts = split_text(message.text)
        if not message.url:  # a redelivered record keeps no link: its words only
            return [Outgoing(part) for part in parts]
        label = translate(locale, "telegram.delivery.open")
        button = InlineKeyboardButton(label, url=message.url)
        return _with_markup(parts, InlineKeyboardMarkup([[button]]))
    if isinstance(message, ForgetInput):
        return []
    raise TypeError(f"not an outbound message: {type(message).__name__}")


def keyboard(choices: Choices, callback_data: Callable[[str], str]) -> InlineKeyboardMarkup:
    """One button a row; two for a long list of short labels (the main menu), so the keyboard
    stays within a phone's screen."""
    buttons = [
        InlineKeyboardButton(option.label, callback_data=callback_data(option.key))
        for option in choices.options
    ]
    short = all(display_width(option.label) <= SHORT_LABEL for option in choices.options)
    per_row = 2 if len(buttons) > PAIRED_FROM - 1 and short else 1
    return InlineKeyboardMarkup(
        [buttons[start : start + per_row] for start in range(0, len(buttons), per_row)]
    )


def display_width(text: str) -> int:
    """Columns on a screen: CJK (East Asian wide and full-width) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _with_markup(parts: list[str], markup: InlineKeyboardMarkup) -> list[Outgoing]:
    rendered = [Outgoing(part) for part in parts[:-1]]
    rendered.append(Outgoing(parts[-1], markup=markup))
    return rendered


def table_html(table: Table) -> list[str]:
    """The title in bold, then each row as `column: value` lines (bold columns), a blank line
    between rows; packed into as few messages as fit Telegram's limit."""
    blocks = [f"<b>{html.escape(table.title)}</b>"]
    for row in table.rows:
        lines = [
            f"<b>{html.escape(column)}</b>：{html.escape(value)}"
            for column, value in zip(table.columns, row, strict=False)
        ]
        blocks.append("\n".join(lines))
    messages: list[str] = []
    current = ""
    for block in blocks:
        candidate = f"{current}\n\n{block}" if current else block
        if current and utf16_length(candidate) > MAX_TEXT:
            messages.append(current)
            candidate = block
        current = candidate
    messages.append(current)
    return [m if utf16_length(m) <= MAX_TEXT else _truncate(m) for m in messages]


def _truncate(text: str) -> str:
    """A single table row longer than a message: unheard of, but never a refused send. The
    markup is dropped (cutting it could leave a tag open) and the words cut."""
    plain = html.escape(html.unescape(text.replace("<b>", "").replace("</b>", "")))
    return split_text(plain)[0]


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """The text in parts of at most `limit` UTF-16 units, cut at line ends where it can."""
    if not text:
        return ["…"]  # Telegram refuses an empty message
    if utf16_length(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        for piece in _hard_split(line, limit):
            candidate = f"{current}\n{piece}" if current else piece
            if current and utf16_length(candidate) > limit:
                parts.append(current)
                candidate = piece
            current = candidate
    if current:
        parts.append(current)
    return parts or ["…"]


def _hard_split(line: str, limit: int) -> list[str]:
    if utf16_length(line) <= limit:
        return [line]
    pieces: list[str] = []
    current = ""
    for ch in line:
        if utf16_length(current + ch) > limit:
            pieces.append(current)
            current = ""
        current += ch
    pieces.append(current)
    return pieces
