"""The intent catalogue: what customers may mean, with example phrasings the broker edits.

`dialogs/intents.toml` (or the `intents_file` setting) lists every menu function, the global
words, the warning about people asking for codes, and "out of scope", each with phrasings per
language; the FAQ entries bring their own phrasings from the FAQ catalogue, so a new question
is understood as soon as it is written down. A `[variants]` table maps mistyped and variant
forms to the standard one (憑証 → 憑證), and `[confidence]` holds the matcher's thresholds, so
both are tuned without code.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from certcore.errors import ConfigurationError
from certcore.i18n import SUPPORTED_LOCALES
from dialogs.faq import Faq
from dialogs.understanding.folding import fold

DEFAULT_INTENTS_FILE = Path(__file__).resolve().parents[1] / "intents.toml"
"""Package data of dialogs, shipped in the wheel."""

OUT_OF_SCOPE = "out_of_scope"


class IntentKind(StrEnum):
    FLOW = "flow"
    """A menu function: the flow of the same name starts, as a tap on its menu item would."""
    GLOBAL = "global"
    """A global word (menu, cancel, help, agent, language): acts at any step."""
    WARNING = "warning"
    """Someone asks the customer for a code, a password or the file: warn first, at any step."""
    FAQ = "faq"
    """An entry of the FAQ catalogue: its answer."""
    OUT_OF_SCOPE = "out_of_scope"
    """Small talk, stock prices, greetings: said politely, and nothing starts."""


@dataclass(frozen=True)
class Intent:
    id: str
    kind: IntentKind
    phrasings: Mapping[str, tuple[str, ...]] = field(repr=False, compare=False)
    """Examples per language, as customers type them."""


@dataclass(frozen=True)
class Confidence:
    """When a guess is taken. Scores are cosine similarities in [0, 1]."""

    clear: float = 0.5
    """At least this, and `margin` ahead of the next intent: act on it."""
    margin: float = 0.2
    unsure: float = 0.25
    """At least this (and not clear): ask which of the best few was meant."""
    in_step: float = 0.75
    """Inside a step, where typed words are first the step's answer, a global word or the
    warning is taken only at this probability or more."""


@dataclass(frozen=True)
class IntentCatalogue:
    intents: tuple[Intent, ...]
    variants: Mapping[str, str]
    confidence: Confidence

    def get(self, intent_id: str) -> Intent | None:
        return next((intent for intent in self.intents if intent.id == intent_id), None)

    @classmethod
    def load(cls, faq: Faq, path: Path | None = None) -> IntentCatalogue:
        path = path or DEFAULT_INTENTS_FILE
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read the intent catalogue {path}: {exc}") from exc
        intents = [
            _intent(raw, path, number) for number, raw in enumerate(document.get("intent", []), 1)
        ]
        intents += [
            Intent(entry.id, IntentKind.FAQ, entry.phrasings)
            for entry in faq.entries
            if any(entry.phrasings.values())
        ]
        seen: set[str] = set()
        for intent in intents:
            if intent.id in seen:
                raise ConfigurationError(f"{path}: intent {intent.id!r} is defined twice")
            seen.add(intent.id)
        if OUT_OF_SCOPE not in seen:
            raise ConfigurationError(f"{path}: the catalogue needs an {OUT_OF_SCOPE!r} intent")
        variants = {
            fold(str(variant)): fold(str(standard))
            for variant, standard in document.get("variants", {}).items()
        }
        return cls(tuple(intents), variants, _confidence(document.get("confidence", {}), path))


def _intent(raw: Any, path: Path, number: int) -> Intent:
    try:
        kind = IntentKind(str(raw["kind"]))
        phrasings = {
            locale: tuple(str(p) for p in raw["phrasings"].get(locale, ()))
            for locale in SUPPORTED_LOCALES
        }
        intent = Intent(id=str(raw["id"]), kind=kind, phrasings=phrasings)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigurationError(f"{path}: intent {number} is malformed ({exc})") from None
    if (intent.id == OUT_OF_SCOPE) != (kind is IntentKind.OUT_OF_SCOPE):
        raise ConfigurationError(f"{path}: only {OUT_OF_SCOPE!r} is of kind {kind.value}")
    for locale, examples in phrasings.items():
        if not examples:
            raise ConfigurationError(f"{path}: intent {intent.id!r} has no {locale} phrasings")
    return intent


def _confidence(raw: Any, path: Path) -> Confidence:
    try:
        confidence = Confidence(**{key: float(value) for key, value in raw.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{path}: [confidence] is malformed ({exc})") from None
    if not 0 < confidence.unsure <= confidence.clear <= confidence.in_step <= 1:
        raise ConfigurationError(f"{path}: [confidence] needs 0 < unsure <= clear <= in_step <= 1")
    if not 0 <= confidence.margin < 1:
        raise ConfigurationError(f"{path}: [confidence] needs 0 <= margin < 1")
    return confidence
