"""The message catalogues: both languages carry the same keys with the same placeholders, nothing
is left untranslated, and every key the code asks for exists."""

from __future__ import annotations

import ast
import importlib
import string
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from certcore.handoff import HandoffOutcome, HandoffReason
from certcore.i18n import (
    DEFAULT_LOCALE,
    LOCALES_DIR,
    SUPPORTED_LOCALES,
    normalise_locale,
    translate,
    translations,
)
from certcore.identity import RocDateProblem
from certcore.notify import SendFailure
from certcore.otp import Operation

ROOT = Path(__file__).resolve().parents[2]
SOURCE_PACKAGES = ("certcore", "dialogs", "bot")

KEY_ARGUMENT = {"translate": 1}
"""Functions that take a message key, and the position of the key among their arguments."""
KEY_METHOD_ARGUMENT = {"t": 0, "say": 0, "ask": 0, "tell": 1}
"""The conversation turn's helpers (`turn.t(key)`, `turn.say(key)`, `turn.ask(key, …)`), and the
support group's `tell(topic, key)`."""

# f-string keys: the literal text before the placeholder, and where the values that may fill it
# come from, so that every key they can form is checked. An unlisted prefix is only checked as a
# family (at least one key with that prefix exists): list it here to check it fully.
DYNAMIC_KEYS: dict[str, Callable[[], Iterable[str]]] = {
    "otp.purpose.": lambda: [operation.value for operation in Operation],
    "global.": lambda: importlib.import_module("dialogs.flows.words").GLOBAL_WORDS,
    "verify.send.failed.": lambda: [reason.value for reason in SendFailure],
    "verify.birth_date.": lambda: [problem.name.lower() for problem in RocDateProblem],
    # `help` in the middle of a flow explains that flow's step; outside one, the menu.
    "help.step.": lambda: ["menu", *importlib.import_module("dialogs.flows").all_flows()],
    # The Telegram support group names every reason and every way a hand-off ends.
    "telegram.support.reason.": lambda: [reason.value for reason in HandoffReason],
    "telegram.support.ended.": lambda: [outcome.value for outcome in HandoffOutcome],
    # The agent console (bot.agent): the hand-off's reason and state, the redirects' words.
    "agent.reason.": lambda: [
        r.value for r in importlib.import_module("certcore.handoff").HandoffReason
    ],
    "agent.state.": lambda: [
        s.value for s in importlib.import_module("certcore.handoff").HandoffState
    ],
    "agent.flash.": lambda: importlib.import_module("bot.agent.pages").FLASH,
    "agent.error.": lambda: importlib.import_module("bot.agent.pages").ERRORS,
    "agent.queue.col.": lambda: importlib.import_module("bot.agent.views").QUEUE_COLUMNS,
    "status.": lambda: [s.value for s in importlib.import_module("certcore.pki").CertificateStatus],
}


def catalogues(locale: str) -> list[tuple[str, Catalog]]:
    """Every `.po` file of a locale (a locale's messages may be split by area), by file name."""
    found = []
    for path in sorted((LOCALES_DIR / locale / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            found.append((path.name, read_po(handle, locale=locale)))
    return found


def messages(locale: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, catalog in catalogues(locale):
        for message in catalog:
            if message.id:
                assert message.id not in merged, f"{locale}/{name}: {message.id} defined twice"
                merged[str(message.id)] = str(message.string)
    return merged


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


# -- the catalogues themselves -------------------------------------------------------------


def test_both_catalogues_have_the_same_keys() -> None:
    zh, en = messages("zh_TW"), messages("en")
    assert set(zh) - set(en) == set(), "keys missing in en"
    assert set(en) - set(zh) == set(), "keys missing in zh_TW"
    assert zh, "empty catalogue"


def test_both_languages_split_their_messages_alike() -> None:
    files = {locale: [name for name, _ in catalogues(locale)] for locale in SUPPORTED_LOCALES}
    assert files["zh_TW"] == files["en"]
    assert "certdesk.po" in files["zh_TW"]


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_message_is_translated(locale: str) -> None:
    for name, catalog in catalogues(locale):
        for message in catalog:
            if not message.id:
                continue  # the header
            where = f"{locale}/{name}: {message.id}"
            assert str(message.string).strip(), f"{where} has no text"
            assert not message.fuzzy, f"{where} is fuzzy (gettext would skip it)"


@pytest.mark.parametrize("key", sorted(messages("zh_TW")))
def test_placeholders_are_the_same_in_both_languages(key: str) -> None:
    zh, en = messages("zh_TW"), messages("en")
    assert placeholders(zh[key]) == placeholders(en.get(key, "")), key


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_message_formats_with_its_placeholders(locale: str) -> None:
    for key, text in messages(locale).items():
        params = {name: f"<{name}>" for name in placeholders(text)}
        rendered = translate(locale, key, **params)
        assert rendered != key, f"{locale}: {key} is not found through gettext"
        assert all(value in rendered for value in params.values())
        assert "{" not in rendered and "}" not in rendered, f"{locale}: {key} left a brace"


# -- the code's keys -----------------------------------------------------------------------


def translate_calls(package: str) -> list[tuple[str, int, ast.expr]]:
    """Every call that names a message key in a package: (file, line, key expression)."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in KEY_ARGUMENT:
                position = KEY_ARGUMENT[func.id]
            elif isinstance(func, ast.Attribute) and func.attr in KEY_ARGUMENT:
                position = KEY_ARGUMENT[func.attr]
            elif isinstance(func, ast.Attribute) and func.attr in KEY_METHOD_ARGUMENT:
                position = KEY_METHOD_ARGUMENT[func.attr]
            else:
                continue
            if len(node.args) > position:
                found.append((str(path.relative_to(ROOT)), node.lineno, node.args[position]))
    return found


def keys_used_in(package: str) -> tuple[set[str], set[str]]:
    """The keys a package asks for, and the key families (f-string prefixes) it draws on.

    An f-string key whose prefix is listed in DYNAMIC_KEYS becomes every key it can form; any
    other f-string key can only be checked as a family (some key with its prefix exists). A key
    held in a variable (a helper passing its argument on) cannot be read statically and is left
    to the callers' own literal keys.
    """
    keys: set[str] = set()
    families: set[str] = set()
    for where, line, key in translate_calls(package):
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            keys.add(key.value)
        elif isinstance(key, ast.JoinedStr):
            first = key.values[0]
            literal = first.value if isinstance(first, ast.Constant) else ""
            assert isinstance(literal, str)
            assert literal, f"{where}:{line}: an f-string key must start with its family's name"
            shape = [type(part) for part in key.values]
            if shape == [ast.Constant, ast.FormattedValue] and literal in DYNAMIC_KEYS:
                keys.update(f"{literal}{value}" for value in DYNAMIC_KEYS[literal]())
            else:
                families.add(literal)
    return keys, families


def test_the_scan_finds_the_keys_we_know_of() -> None:
    used, families = keys_used_in("certcore")
    assert {
        "brand.name",
        "otp.message.sms",
        "otp.message.email.subject",
        "otp.message.email.body",
    } <= used
    assert {f"otp.purpose.{operation.value}" for operation in Operation} <= used
    assert families == set()


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("package", SOURCE_PACKAGES)
def test_every_key_used_in_code_exists(package: str, locale: str) -> None:
    used, families = keys_used_in(package)
    known = set(messages(locale))
    assert sorted(used - known) == [], f"keys {package} uses that {locale} lacks"
    empty = {family for family in families if not any(k.startswith(family) for k in known)}
    assert sorted(empty) == [], f"key families {package} uses that {locale} has no key of"


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("operation", list(Operation))
def test_every_operation_has_a_purpose(locale: str, operation: Operation) -> None:
    key = f"otp.purpose.{operation.value}"
    assert translate(locale, key) != key


# -- choosing the language -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "locale"),
    [
        (None, "zh_TW"),
        ("", "zh_TW"),
        ("zh_TW", "zh_TW"),
        ("zh-TW", "zh_TW"),
        ("zh-Hant-TW", "zh_TW"),
        ("zh-Hant", "zh_TW"),
        ("zh", "zh_TW"),
        ("en", "en"),
        ("en-US", "en"),
        ("en_GB", "en"),
        ("EN-us", "en"),
        ("ja", "zh_TW"),
        ("ko-KR", "zh_TW"),
        ("th", "zh_TW"),
    ],
)
def test_normalise_locale(hint: str | None, locale: str) -> None:
    assert normalise_locale(hint) == locale
    assert normalise_locale(hint) in SUPPORTED_LOCALES


def test_default_locale_is_traditional_chinese() -> None:
    assert DEFAULT_LOCALE == "zh_TW"
    assert translate(DEFAULT_LOCALE, "otp.purpose.apply") == "憑證申請"


def test_a_missing_key_comes_back_as_itself() -> None:
    assert translate("en", "no.such.key") == "no.such.key"


def test_an_unsupported_locale_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported locale"):
        translations("fr")
