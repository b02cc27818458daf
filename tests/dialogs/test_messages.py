"""The neutral messages' JSON form, which keeps an event's replies for its redelivery."""

from __future__ import annotations

import json

import pytest

from dialogs.messages import (
    Choices,
    Delivery,
    ForgetInput,
    Link,
    Option,
    Outbound,
    Table,
    Text,
    outbound_from_json,
    outbound_to_json,
)

MESSAGES: list[Outbound] = [
    Text("您好"),
    Choices("請選擇", (Option("3:query", "憑證查詢"), Option("3:apply", "憑證申請"))),
    Table("我的憑證", ("序號", "狀態"), (("1A2B", "有效"), ("3C4D", "已註銷"))),
    Link("下載", "https://example.test/d/x", "開啟"),
    ForgetInput(),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_comes_back_from_its_json(message: Outbound) -> None:
    stored = json.loads(json.dumps(outbound_to_json(message), ensure_ascii=False))
    assert outbound_from_json(stored) == message


def test_a_delivery_is_kept_without_its_link() -> None:
    stored = outbound_to_json(Delivery("token-secret", "您的憑證", "https://example.test/d/t"))
    assert "token-secret" not in json.dumps(stored)
    assert outbound_from_json(stored) == Delivery("", "您的憑證", "")
