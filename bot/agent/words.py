"""The console's language: zh_TW for the broker's support desk, English on request.

`?lang=en` (or `?lang=zh-TW`) on any page switches and is remembered in a cookie for the
console's path; the texts come from the `agent.*` keys of the message catalogues, like every
other text of the product.
"""

from __future__ import annotations

from aiohttp import web

from certcore.i18n import DEFAULT_LOCALE, translate

COOKIE = "certdesk_agent_lang"
CHOICES = {"zh-TW": "zh_TW", "zh_TW": "zh_TW", "en": "en"}
HTML_LANG = {"zh_TW": "zh-Hant-TW", "en": "en"}


class Words:
    """The console's texts in one language."""

    def __init__(self, locale: str) -> None:
        self.locale = locale

    def t(self, key: str, /, **params: object) -> str:
        return translate(self.locale, key, **params)

    @property
    def html_lang(self) -> str:
        return HTML_LANG[self.locale]

    @property
    def other(self) -> str:
        """The `?lang=` value of the other language."""
        return "en" if self.locale == "zh_TW" else "zh-TW"


def asked_locale(request: web.Request) -> str | None:
    return CHOICES.get(request.query.get("lang", ""))


def words_for(request: web.Request) -> Words:
    locale = asked_locale(request) or CHOICES.get(request.cookies.get(COOKIE, ""))
    return Words(locale or DEFAULT_LOCALE)


def remember(request: web.Request, response: web.StreamResponse) -> None:
    """Keep a language asked for by `?lang=` for the next pages."""
    locale = asked_locale(request)
    if locale is not None:
        response.set_cookie(
            COOKIE, locale, path="/agent", httponly=True, samesite="Strict", max_age=31536000
        )
