"""常見問題: questions and answers from a catalogue the broker edits, not from code.

The catalogue is a TOML file (`dialogs/faq.toml` by default, `faq_file` in the settings): each
entry has a question, an answer and example phrasings per language, and may have a short title
per language (the label in a list of questions). Each entry is an intent of the intent
catalogue (`dialogs.understanding`), so a customer who types 「匯出密碼忘了怎麼辦」 gets that
answer straight away.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from certcore.errors import ConfigurationError
from certcore.i18n import SUPPORTED_LOCALES
from dialogs.messages import Text

DEFAULT_FAQ_FILE = Path(__file__).resolve().parent / "faq.toml"
"""Package data of dialogs, shipped in the wheel."""


@dataclass(frozen=True)
class FaqEntry:
    id: str
    question: dict[str, str]
    answer: dict[str, str]
    phrasings: dict[str, tuple[str, ...]]
    """How customers ask it, per language: the entry's phrasings in the intent catalogue."""
    title: dict[str, str] = field(default_factory=dict)
    """A short label per language for a list of questions; the question when not given."""

    def label(self, locale: str) -> str:
        return self.title.get(locale) or self.question[locale]


def _titles(raw: object, path: Path, number: int) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{path}: FAQ entry {number}: title must be a table per language")
    return {
        loc: str(raw[loc]).strip()
        for loc in SUPPORTED_LOCALES
        if loc in raw and str(raw[loc]).strip()
    }


class Faq:
    def __init__(self, entries: list[FaqEntry]) -> None:
        self.entries = entries
        self._by_id = {entry.id: entry for entry in entries}

    @classmethod
    def load(cls, path: Path | None = None) -> Faq:
        path = path or DEFAULT_FAQ_FILE
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read the FAQ catalogue {path}: {exc}") from exc
        entries = []
        for number, raw in enumerate(document.get("entry", []), start=1):
            try:
                entry = FaqEntry(
                    id=str(raw["id"]),
                    question={loc: str(raw["question"][loc]) for loc in SUPPORTED_LOCALES},
                    answer={loc: str(raw["answer"][loc]) for loc in SUPPORTED_LOCALES},
                    phrasings={
                        loc: tuple(str(k) for k in raw.get("phrasings", {}).get(loc, ()))
                        for loc in SUPPORTED_LOCALES
                    },
                    title=_titles(raw.get("title", {}), path, number),
                )
            except (KeyError, TypeError) as exc:
                raise ConfigurationError(
                    f"{path}: FAQ entry {number} lacks {exc} in some language"
                ) from None
            entries.append(entry)
        return cls(entries)

    def get(self, entry_id: str) -> FaqEntry | None:
        return self._by_id.get(entry_id)

    def answer_message(self, entry: FaqEntry, locale: str) -> Text:
        return Text(f"{entry.question[locale]}\n\n{entry.answer[locale]}")
