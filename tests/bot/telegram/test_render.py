"""Neutral messages as Telegram messages: keyboards with opaque data within 64 bytes, tables as
escaped HTML, links and deliveries as URL buttons, long texts split under 4,096."""

from __future__ import annotations

from telegram.constants import ParseMode

from bot.channels.telegram.adapter import command_in
from bot.channels.telegram.render import (
    MAX_TEXT,
    CallbackKeys,
    render,
    split_text,
    utf16_length,
)
from dialogs import Choices, Delivery, ForgetInput, Link, Option, Table, Text


def test_choices_become_an_inline_keyboard_of_the_wire_keys() -> None:
    choices = Choices(
        "請選擇：", (Option("3:agree", "我已閱讀並同意"), Option("3:menu", "回主選單"))
    )
    (message,) = render(choices, "zh_TW")
    assert message.text == "請選擇：" and message.markup is not None
    rows = message.markup.inline_keyboard
    assert [[b.callback_data for b in row] for row in rows] == [["3:agree"], ["3:menu"]]


def test_a_long_list_of_short_labels_goes_two_a_row() -> None:
    options = tuple(Option(f"1:item{n}", f"項目{n}") for n in range(7))
    (message,) = render(Choices("選單", options), "zh_TW")
    assert message.markup is not None
    assert [len(row) for row in message.markup.inline_keyboard] == [2, 2, 2, 1]


def test_a_key_over_64_bytes_is_swapped_for_a_digest_and_resolved_back() -> None:
    keys = CallbackKeys()
    long_key = "12:" + "選" * 30  # 93 bytes
    (message,) = render(Choices("?", (Option(long_key, "選"),)), "zh_TW", keys.data_for)
    assert message.markup is not None
    data = message.markup.inline_keyboard[0][0].callback_data
    assert isinstance(data, str) and len(data.encode()) <= 64
    assert keys.key_for(data) == long_key
    assert keys.key_for("1:menu") == "1:menu"
    assert keys.data_for("1:menu") == "1:menu"


def test_a_table_is_escaped_html() -> None:
    table = Table("憑證查詢 <結果>", ("身分證字號", "狀態"), (("A120XXX53", "有效 & <b>"),))
    (message,) = render(table, "zh_TW")
    assert message.parse_mode == ParseMode.HTML
    assert message.text.split("\n") == [
        "<b>憑證查詢 &lt;結果&gt;</b>",
        "",
        "<b>身分證字號</b>：A120XXX53",
        "<b>狀態</b>：有效 &amp; &lt;b&gt;",
    ]


def test_a_big_table_is_split_between_rows() -> None:
    rows = tuple((f"{n:040d}", "x" * 200) for n in range(40))
    messages = render(Table("T", ("a", "b"), rows), "zh_TW")
    assert len(messages) > 1
    assert all(utf16_length(m.text) <= MAX_TEXT for m in messages)
    assert sum(m.text.count("<b>a</b>") for m in messages) == 40


def test_link_and_delivery_are_url_buttons() -> None:
    (link,) = render(Link("說明", "https://example.com/help", "開啟"), "zh_TW")
    assert (
        link.markup is not None
        and link.markup.inline_keyboard[0][0].url == "https://example.com/help"
    )
    (delivery,) = render(Delivery("tok", "請下載", "https://x.example/d/tok"), "en")
    assert delivery.markup is not None
    button = delivery.markup.inline_keyboard[0][0]
    assert button.url == "https://x.example/d/tok" and button.text == "Open the download page"
    # A delivery answered from the record has no link: its words only.
    (replayed,) = render(Delivery("", "請下載", ""), "en")
    assert replayed.markup is None
    assert render(ForgetInput(), "en") == []


def test_a_refused_url_button_is_written_into_the_text() -> None:
    (delivery,) = render(Delivery("tok", "請下載", "http://127.0.0.1/d/tok"), "zh_TW")
    plain = delivery.without_url_buttons()
    assert plain.markup is None and plain.text == "請下載\n開啟憑證下載頁面: http://127.0.0.1/d/tok"


def test_long_texts_are_split_at_line_ends_under_the_limit() -> None:
    line = "憑" * 1000
    text = "\n".join([line] * 9)
    parts = split_text(text)
    assert len(parts) == 3
    assert all(utf16_length(p) <= MAX_TEXT for p in parts)
    assert "\n".join(parts) == text
    (last, *_) = reversed(render(Text(text), "zh_TW"))
    assert last.text == parts[-1]
    # One line over the limit, and characters outside the BMP (two UTF-16 units each).
    wide = "😀" * 3000
    assert all(utf16_length(p) <= MAX_TEXT for p in split_text(wide))
    assert "".join(split_text(wide)) == wide
    assert split_text("") == ["…"]


def test_commands_are_read_as_telegram_writes_them() -> None:
    assert command_in("/start", None) == "start"
    assert command_in("/Menu extra words", None) == "menu"
    assert command_in("/help@CertDeskTestBot", "CertDeskTestBot") == "help"
    assert command_in("/help@SomeOtherBot", "CertDeskTestBot") is None
    assert command_in("/", None) is None
    assert command_in("A123456789", None) is None
    assert command_in("/ menu", None) is None
