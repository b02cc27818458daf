"""Understanding free text: the matcher's accuracy on held-back utterances and its time per
message, against a bare exact-label lookup measured in the same run.

    .venv/bin/python -m bench.understanding [--quick]

- accuracy: the labelled corpus of the tests (`tests/dialogs/data/utterances.tsv`), only the
  utterances that are not phrasings of the catalogue (held back), routed as the engine routes
  them (the best intent, or out of scope when nothing is near), overall and per language;
- time per message: `Matcher.read` (folding, Simplified → Traditional, typo correction, the
  TF-IDF vector and the regression) over every corpus utterance in turn, against the floor:
  the exact-label lookup the menu did before (fold the text, look it up in a dict of every
  menu label and global word in both languages), over the same utterances;
- the one-off cost: building the matcher from the catalogues (once per process).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.issuance import Table, machine_rows, percentile
from certcore.i18n import SUPPORTED_LOCALES, translate
from dialogs.faq import Faq
from dialogs.flows.menu import MENU_ITEMS
from dialogs.flows.words import GLOBAL_WORDS
from dialogs.text import normalise_words
from dialogs.understanding import OUT_OF_SCOPE, Certainty, IntentCatalogue, Matcher, fold

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "dialogs" / "data" / "utterances.tsv"
TARGET_MS = 1.0


def corpus() -> list[dict[str, str]]:
    with CORPUS.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def held_out(matcher: Matcher, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    variants = matcher.catalogue.variants
    seen = {
        fold(p, variants)
        for intent in matcher.catalogue.intents
        for examples in intent.phrasings.values()
        for p in examples
    }
    return [row for row in rows if fold(row["utterance"], variants) not in seen]


def exact_labels() -> dict[str, str]:
    labels = {}
    for locale in SUPPORTED_LOCALES:
        for key, label in MENU_ITEMS:
            labels[normalise_words(translate(locale, label))] = key
        for word in GLOBAL_WORDS:
            for synonym in translate(locale, f"global.{word}").split("|"):
                labels[normalise_words(synonym)] = word
    return labels


def timed(call: Callable[[str], object], texts: list[str], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            call(text)
            samples.append((time.perf_counter() - started) * 1e6)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    options = parser.parse_args()
    rounds = 3 if options.quick else 20

    print("Machine")
    for name, value in machine_rows():
        print(f"  {name}: {value}")

    builds = []
    for _ in range(1 if options.quick else 5):
        started = time.perf_counter()
        matcher = Matcher(IntentCatalogue.load(Faq.load()))
        builds.append(time.perf_counter() - started)
    phrasings = sum(len(p) for i in matcher.catalogue.intents for p in i.phrasings.values())

    rows = corpus()
    kept = held_out(matcher, rows)
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for row in kept:
        reading = matcher.read(row["utterance"])
        best = reading.best
        got = OUT_OF_SCOPE if best is None or reading.certainty is Certainty.NONE else best.id
        total[row["locale"]] += 1
        right[row["locale"]] += got == row["intent"]
    accuracy = Table(
        "Routing accuracy on held-back utterances",
        ["language", "utterances", "routed right", "accuracy"],
        [
            [locale, f"{total[locale]}", f"{right[locale]}", f"{right[locale] / total[locale]:.1%}"]
            for locale in SUPPORTED_LOCALES
        ]
        + [
            [
                "all",
                f"{sum(total.values())}",
                f"{sum(right.values())}",
                f"{sum(right.values()) / sum(total.values()):.1%}",
            ]
        ],
        [
            f"{len(kept)} of the corpus's {len(rows)} utterances are not catalogue phrasings "
            f"(the catalogue has {phrasings} phrasings of {len(matcher.catalogue.intents)} "
            "intents); target >= 95% overall and per language.",
        ],
    )

    texts = [row["utterance"] for row in rows]
    labels = exact_labels()
    timed(matcher.read, texts, 1)  # warm
    floor = timed(lambda text: labels.get(normalise_words(text)), texts, rounds)
    reads = timed(matcher.read, texts, rounds)
    speed = Table(
        "Time per message (every corpus utterance in turn)",
        ["path", "messages", "p50 µs", "p99 µs", "mean µs", "vs floor (p50)"],
        [
            [
                label,
                f"{len(samples):,}",
                f"{percentile(samples, 50):.1f}",
                f"{percentile(samples, 99):.1f}",
                f"{statistics.fmean(samples):.1f}",
                f"{percentile(samples, 50) / percentile(floor, 50):.0f}×",
            ]
            for label, samples in (("exact-label lookup (floor)", floor), ("Matcher.read", reads))
        ],
        [
            "Floor: fold the text, look it up among every menu label and global word of both "
            "languages (what the menu understood before), measured in the same run.",
            f"Target: well under {TARGET_MS:.0f} ms per message: p99 "
            f"{percentile(reads, 99) / 1000:.3f} ms.",
            f"Building the matcher (once per process): {statistics.median(builds) * 1000:.0f} ms "
            f"median of {len(builds)}.",
        ],
    )
    for table in (accuracy, speed):
        print()
        print(table.text())
    print("\nMarkdown:\n")
    for table in (accuracy, speed):
        print(table.markdown())
        print()


if __name__ == "__main__":
    main()
