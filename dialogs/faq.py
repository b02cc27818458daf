"""常見問題: questions and answers from a catalogue the broker edits, not from code.

The catalogue is a TOML file (`dialogs/faq.toml` by default, `faq_file` in the settings): each
entry has a question, an answer and keywords per language, and may have a short title per
language (the label in a list of questions). Idle free text is matched against
the keywords, so a customer who types "忘記密碼" gets that answer straight away.
"""

from __future__ import annotations

import tomllib
import unicodedata
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
    keywords: dict[str, tuple[str, ...]]
    title: dict[str, str] = field(default_factory=dict)
    """A short label per language for a list of questions; the question when not given."""

    def label(self, locale: str) -> str:
        return self.title.get(locale) or self.question[locale]


def _fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


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
                    keywords={
                        loc: tuple(str(k) for k in raw.get("keywords", {}).get(loc, ()))
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

    def match(self, text: str, locale: str) -> FaqEntry | None:
        """The entry whose keyword (in any language) appears in the text; the longest wins."""
        folded = _fold(text)
        if not folded:
            return None
        best: tuple[int, FaqEntry] | None = None
        for entry in self.entries:
            for keywords in entry.keywords.values():
                for keyword in keywords:
                    key = _fold(keyword)
                    if key and key in folded and (best is None or len(key) > best[0]):
                        best = (len(key), entry)
        return best[1] if best else None

    def answer_message(self, entry: FaqEntry, locale: str) -> Text:
        return Text(f"{entry.question[locale]}\n\n{entry.answer[locale]}")
