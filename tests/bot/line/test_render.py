"""The renderings keep LINE's limits whatever the engine says: 13 quick replies with labels of
at most 20 characters and every option still in the typed fallback, `altText` on Flex, the
download link as a URI button, nothing for `ForgetInput`, five messages a request."""

from __future__ import annotations

from typing import Any

from linebot.v3.messaging import Message

from bot.channels.line.render import batches, render, render_all
from dialogs import Choices, Delivery, ForgetInput, Link, Option, Table, Text
from tests.fakes.line_api import check_messages, uri_buttons


def as_json(message: dict[str, Any] | None) -> dict[str, Any]:
    """The rendering, checked to be a message line-bot-sdk's own models read back alike."""
    assert message is not None
    assert Message.from_dict(message).to_dict() == message
    return message


def test_choices_keep_lines_limits_and_list_every_option_typed() -> None:
    options = tuple(Option(f"3:k{i}", f"選項{i} " + "很長的說明" * 6) for i in range(15))
    message = as_json(render(Choices("請選擇：", options)))
    items = message["quickReply"]["items"]
    assert len(items) == 13
    assert all(len(item["action"]["label"]) <= 20 for item in items)
    assert items[0]["action"]["label"].endswith("…")
    assert items[0]["action"]["data"] == "3:k0"
    assert items[0]["action"]["type"] == "postback"
    text = str(message["text"])
    assert text.startswith("請選擇：\n1. 選項0")
    assert "15. 選項14" in text  # the 14th and 15th exist typed, as on LINE PC
    assert check_messages([message]) is None


def test_table_is_a_flex_bubble_with_the_plain_text_as_alt_text() -> None:
    table = Table("我的憑證", ("身分證字號", "狀態"), (("A123XXX89", "有效"),))
    message = as_json(render(table))
    assert message["type"] == "flex"
    assert "A123XXX89" in str(message["altText"]) and "有效" in str(message["altText"])
    assert "有效" in str(message["contents"])
    assert check_messages([message]) is None


def test_link_and_delivery_are_uri_buttons() -> None:
    link = as_json(render(Link("請看說明", "https://example.com/help", "說明")))
    assert uri_buttons(link) == ["https://example.com/help"]
    delivery = as_json(render(Delivery("d1", "請下載憑證", "https://certdesk.example/d/abc")))
    assert uri_buttons(delivery) == ["https://certdesk.example/d/abc"]
    assert delivery["altText"] == "請下載憑證"
    english = as_json(render(Delivery("d1", "Download", "https://x.example/d/abc"), "en"))
    assert "Open download page" in str(english["contents"])
    # A redelivered record holds no link: its text only.
    assert as_json(render(Delivery("", "請下載憑證", ""))) == {"type": "text", "text": "請下載憑證"}
    assert check_messages([link, delivery]) is None


def test_forget_input_is_nothing_and_requests_hold_five_messages() -> None:
    assert render(ForgetInput()) is None
    messages = render_all([Text(str(n)) for n in range(7)] + [ForgetInput()])
    assert [len(batch) for batch in batches(messages)] == [5, 2]
