"""The engine's neutral messages in LINE's own forms, and nothing else (no HTTP here).

LINE's rules shape every rendering (DESIGN §7): quick replies hold at most 13 items with labels
of at most 20 characters, and LINE PC shows none of them, so every question also lists its
options numbered in the text (the engine understands a typed number or label); a table becomes
a Flex bubble whose `altText` is the plain-text rendering, shown in notifications and where
Flex is not; a link or a certificate delivery is a Flex bubble with a URI button, since a
buttons template cuts its text at 160 characters. A `ForgetInput` renders as nothing: LINE
cannot delete a customer's message.

The messages are LINE's own JSON (the Messaging API's message objects), built as plain dicts:
line-bot-sdk's pydantic models would cost more to build and serialise than the rest of a turn
(the tests check every rendering against the SDK's models and the fake API's limits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.channels.console import render_table
from certcore.i18n import DEFAULT_LOCALE, translate
from dialogs import Choices, Delivery, ForgetInput, Link, Outbound, Table, Text

LineMessage = dict[str, Any]
"""One message object of LINE's Messaging API, as JSON."""

MAX_MESSAGES = 5
"""Messages per reply or push request."""
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
"""Characters of a quick reply's or a button's label."""
MAX_TEXT = 5000
MAX_ALT_TEXT = 400
MAX_DISPLAY_TEXT = 300
MAX_POSTBACK_DATA = 300
ELLIPSIS = "…"
BUTTON_COLOUR = "#1F5FA6"


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def render(message: Outbound, locale: str = DEFAULT_LOCALE) -> LineMessage | None:
    """One neutral message as one LINE message; None for what LINE shows nothing of."""
    if isinstance(message, Text):
        return text_message(message.text)
    if isinstance(message, Choices):
        return render_choices(message)
    if isinstance(message, Table):
        return render_table_flex(message)
    if isinstance(message, Link):
        return uri_bubble(
            message.text, message.label, message.url, alt=f"{message.text} {message.url}"
        )
    if isinstance(message, Delivery):
        if not message.url:  # a redelivered record: the one-time link is not kept
            return text_message(message.text)
        label = translate(locale, "line.delivery.button")
        return uri_bubble(message.text, label, message.url, alt=message.text)
    if isinstance(message, ForgetInput):
        return None
    raise TypeError(f"not an outbound message: {type(message).__name__}")


def render_all(replies: Iterable[Outbound], locale: str = DEFAULT_LOCALE) -> list[LineMessage]:
    return [r for reply in replies if (r := render(reply, locale)) is not None]


def batches(messages: Sequence[LineMessage]) -> list[list[LineMessage]]:
    """The messages in requests of at most five, in order."""
    return [list(messages[i : i + MAX_MESSAGES]) for i in range(0, len(messages), MAX_MESSAGES)]


def typed_fallback(choices: Choices) -> str:
    """The question with its options numbered: what LINE PC, which shows no quick replies, and a
    customer who prefers typing see."""
    lines = [choices.text, *(f"{n}. {o.label}" for n, o in enumerate(choices.options, 1))]
    return "\n".join(lines)


def text_message(text: str) -> LineMessage:
    return {"type": "text", "text": clip(text, MAX_TEXT) or " "}


def render_choices(choices: Choices) -> LineMessage:
    items = [
        {
            "type": "action",
            "action": {
                "type": "postback",
                "label": clip(option.label, MAX_LABEL),
                "data": option.key[:MAX_POSTBACK_DATA],
                "displayText": clip(option.label, MAX_DISPLAY_TEXT),
            },
        }
        for option in choices.options[:MAX_QUICK_REPLIES]
    ]
    message = text_message(typed_fallback(choices))
    if items:
        message["quickReply"] = {"items": items}
    return message


def render_table_flex(table: Table) -> LineMessage:
    """The certificate table as one bubble: the title, then per row `column  value` lines."""
    body: list[dict[str, Any]] = [
        {"type": "text", "text": table.title or " ", "weight": "bold", "size": "md", "wrap": True}
    ]
    for row in table.rows:
        body.append({"type": "separator", "margin": "md"})
        for column, value in zip(table.columns, row, strict=False):
            body.append(
                {
                    "type": "box",
                    "layout": "horizontal",
                    "margin": "sm",
                    "contents": [
                        {
                            "type": "text",
                            "text": column or " ",
                            "size": "sm",
                            "color": "#666666",
                            "flex": 2,
                            "wrap": True,
                        },
                        {
                            "type": "text",
                            "text": value or "-",
                            "size": "sm",
                            "flex": 5,
                            "wrap": True,
                        },
                    ],
                }
            )
    bubble = {
        "type": "bubble",
        "size": "giga",
        "body": {"type": "box", "layout": "vertical", "contents": body},
    }
    return {"type": "flex", "altText": clip(render_table(table), MAX_ALT_TEXT), "contents": bubble}


def uri_bubble(text: str, label: str, url: str, *, alt: str) -> LineMessage:
    """A text and one button that opens `url`."""
    bubble = {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "contents": [{"type": "text", "text": text or " ", "wrap": True, "size": "sm"}],
        },
        "footer": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {
                    "type": "button",
                    "style": "primary",
                    "color": BUTTON_COLOUR,
                    "action": {"type": "uri", "label": clip(label, MAX_LABEL), "uri": url},
                }
            ],
        },
    }
    return {"type": "flex", "altText": clip(alt or label, MAX_ALT_TEXT), "contents": bubble}
