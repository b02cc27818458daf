"""Message catalogues: every text a customer reads comes from `certcore/locales/`, not code.

Message ids are stable keys (`otp.message.sms`), not English sentences, so both catalogues are
translations and a test can tell when either lacks a key or a placeholder. The `.po` files are
read with Babel and compiled in memory at first use, so there is no build step and no `.mo`
file to forget. A locale's messages may be split over several `.po` files (one per area of the
product); they are merged, and a key defined twice is an error.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
"""Package data of certcore (shipped in the wheel), not a directory beside the source tree."""
DOMAIN = "certdesk"
DEFAULT_LOCALE = "zh_TW"
SUPPORTED_LOCALES = ("zh_TW", "en")


def normalise_locale(hint: str | None) -> str:
    """Map a platform's language hint (`zh-Hant-TW`, `en-US`, `ja`) to a supported locale."""
    if not hint:
        return DEFAULT_LOCALE
    lowered = hint.replace("_", "-").lower()
    if lowered.startswith("en"):
        return "en"
    return DEFAULT_LOCALE


@cache
def translations(locale: str) -> gettext.GNUTranslations:
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"unsupported locale {locale!r}")
    catalog = Catalog(locale=locale, domain=DOMAIN)
    for path in sorted((LOCALES_DIR / locale / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            part = read_po(handle, locale=locale, domain=DOMAIN)
        for message in part:
            if not message.id:
                continue
            if message.id in catalog:
                raise ValueError(f"{path.name}: message {message.id!r} is defined twice")
            catalog[message.id] = message
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def translate(locale: str, key: str, /, **params: object) -> str:
    """The text for `key` in `locale`, with `{placeholders}` filled in.

    A key missing from the catalogue comes back as the key itself, which tests catch; it never
    raises at a customer.
    """
    text = translations(locale).gettext(key)
    return text.format(**params) if params else text
