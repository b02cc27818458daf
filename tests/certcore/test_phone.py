from __future__ import annotations

import pytest

from certcore.identity import taiwan_mobile


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0936123054", "0936123054"),
        ("+886936123054", "0936123054"),
        ("+886 0936-123-054", "0936123054"),
        ("00886936123054", "0936123054"),
        ("886936123054", "0936123054"),
        ("(0936) 123 054", "0936123054"),
        ("０９３６１２３０５４", "0936123054"),
        ("0223456789", None),  # a landline
        ("093612305", None),
        ("+1 415 555 0100", None),
        ("", None),
    ],
)
def test_taiwan_mobile(value: str, expected: str | None) -> None:
    assert taiwan_mobile(value) == expected
