"""Replies named by their catalogue key: a key's text in a language as a pattern, each
`{placeholder}` standing for one value, so one expectation checks both languages."""

from __future__ import annotations

import re

from certcore.i18n import translate
from dialogs.faq import Faq


def expected_pattern(locale: str, key: str) -> re.Pattern[str]:
    """The catalogue text of `key` as a regular expression, each placeholder one value."""
    if key.startswith("faq:"):
        entry = Faq.load().get(key.removeprefix("faq:"))
        assert entry is not None, f"no FAQ entry {key}"
        return re.compile(re.escape(Faq([entry]).answer_message(entry, locale).text))
    text = translate(locale, key)
    parts = re.split(r"\{[a-z_]+\}", text)
    return re.compile(".+?".join(re.escape(part) for part in parts), re.DOTALL)
