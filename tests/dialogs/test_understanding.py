"""Understanding free text: the shipped intent catalogue, the matcher, and how well it routes.

The corpus `data/utterances.tsv` (locale, intent, utterance) was written apart from the
catalogue's phrasings, as customers type on LINE; only its utterances that are not phrasings of
the catalogue are scored, so the accuracy measures what the matcher makes of sentences it has
not seen. A misrouted utterance is listed when the test fails.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certcore.errors import ConfigurationError
from certcore.i18n import SUPPORTED_LOCALES
from dialogs import all_flows
from dialogs.faq import Faq
from dialogs.flows.words import GLOBAL_WORDS
from dialogs.understanding import (
    OUT_OF_SCOPE,
    Certainty,
    IntentCatalogue,
    IntentKind,
    Matcher,
    fold,
    load_matcher,
)

CORPUS = Path(__file__).parent / "data" / "utterances.tsv"
ACCURACY = 0.95
SENSITIVE = {name for name, flow in all_flows().items() if flow.sensitive} | {"logout"}


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return load_matcher(None, None)


def corpus() -> list[dict[str, str]]:
    with CORPUS.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def routed(matcher: Matcher, text: str) -> str:
    """Where the text leads: the best intent, or out of scope when nothing is near (both are
    answered with what the bot can do, and nothing starts)."""
    reading = matcher.read(text)
    if reading.best is None or reading.certainty is Certainty.NONE:
        return OUT_OF_SCOPE
    return reading.best.id


def held_out(matcher: Matcher) -> list[dict[str, str]]:
    variants = matcher.catalogue.variants
    phrasings = {
        fold(p, variants)
        for intent in matcher.catalogue.intents
        for examples in intent.phrasings.values()
        for p in examples
    }
    return [row for row in corpus() if fold(row["utterance"], variants) not in phrasings]


def test_the_corpus_covers_every_intent_in_both_languages(matcher: Matcher) -> None:
    rows = corpus()
    assert len(rows) >= 300
    intents = {intent.id for intent in matcher.catalogue.intents}
    assert {row["intent"] for row in rows} <= intents
    for locale in SUPPORTED_LOCALES:
        mine = [row for row in rows if row["locale"] == locale]
        assert {row["intent"] for row in mine} == intents - {"staff-never-ask"}, locale
        share = sum(row["intent"] == OUT_OF_SCOPE for row in mine) / len(mine)
        assert 0.18 <= share <= 0.25, (locale, share)
    # Most of it is kept out of the catalogue (short words like 取消 or "menu" cannot be), so
    # the score is of unseen sentences.
    assert len(held_out(matcher)) >= max(300, 0.75 * len(rows))


def test_routing_accuracy_on_held_out_utterances(matcher: Matcher) -> None:
    rows = held_out(matcher)
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    wrong = []
    for row in rows:
        got = routed(matcher, row["utterance"])
        total[row["locale"]] += 1
        if got == row["intent"]:
            right[row["locale"]] += 1
        else:
            wrong.append(f"{row['locale']} {row['utterance']!r}: {row['intent']} → {got}")
    overall = sum(right.values()) / sum(total.values())
    report = "\n".join(wrong)
    assert overall >= ACCURACY, f"{overall:.3f} overall; misrouted:\n{report}"
    for locale in SUPPORTED_LOCALES:
        accuracy = right[locale] / total[locale]
        assert accuracy >= ACCURACY, f"{locale} {accuracy:.3f}; misrouted:\n{report}"


def test_out_of_scope_never_starts_a_sensitive_flow(matcher: Matcher) -> None:
    started = []
    for row in corpus():
        if row["intent"] != OUT_OF_SCOPE:
            continue
        intent = matcher.read(row["utterance"]).clear
        if intent is not None and intent.id in SENSITIVE:
            started.append((row["utterance"], intent.id))
    assert not started


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("我要申請憑證", "apply"),
        ("申請憑證", "apply"),
        ("憑證申請", "apply"),
        ("請問一下，我想要申請一張新的憑證", "apply"),
        ("我要申请凭证", "apply"),  # Simplified
        ("I need a new certificate", "apply"),
        ("I need a new certficate", "apply"),  # a typo
        ("ＩＮＥＥＤＡＮＥＷＣＥＲＴＩＦＩＣＡＴＥ", "apply"),  # full-width, no spaces
        ("憑證快到期了怎麼辦", "renew"),
        ("我要renew", "renew"),
        ("renew my certificate", "renew"),
        ("我的憑證被盜用了", "revoke"),
        ("我要註銷憑證", "revoke"),
        ("我要註消憑証", "revoke"),  # near-homophone and variant
        ("換電腦要怎麼把憑證搬過去", "import_help"),
        ("有人跟我索取驗證碼，可以給嗎", "fraud"),
        ("有人打電話來要我的匯出密碼", "fraud"),
        ("減資註銷的股票怎麼算", OUT_OF_SCOPE),
        ("你好", OUT_OF_SCOPE),
        ("台積電今天多少錢", OUT_OF_SCOPE),
        ("我要取消", "cancel"),
        ("回主選單", "menu"),
        ("找真人", "agent"),
    ],
)
def test_what_customers_type(matcher: Matcher, text: str, intent: str) -> None:
    assert routed(matcher, text) == intent


def test_fold_makes_one_form() -> None:
    variants = {"憑証": "憑證"}
    assert fold("ＲＥＮＥＷ　我的憑証！！", variants) == "renew 我的憑證"
    assert fold("我要申请凭证", variants) == "我要申請憑證"
    assert fold("😀…？", variants) == ""


def test_a_text_with_nothing_known_is_not_understood(matcher: Matcher) -> None:
    reading = matcher.read("😀😀")
    assert reading.certainty is Certainty.NONE and reading.best is None


# -- the shipped catalogue ---------------------------------------------------------------------


def test_every_function_has_twenty_phrasings_per_language(matcher: Matcher) -> None:
    flows = all_flows()
    for intent in matcher.catalogue.intents:
        if intent.kind is IntentKind.FLOW:
            assert intent.id in flows, intent.id
        if intent.kind is IntentKind.GLOBAL:
            assert intent.id in GLOBAL_WORDS, intent.id
        if intent.kind in (IntentKind.FLOW, IntentKind.GLOBAL, IntentKind.WARNING):
            for locale in SUPPORTED_LOCALES:
                assert len(intent.phrasings[locale]) >= 20, (intent.id, locale)
    menu_functions = {"query", "apply", "renew", "revoke", "import_help", "check"}
    assert menu_functions <= {i.id for i in matcher.catalogue.intents}


def test_faq_entries_are_intents() -> None:
    catalogue = IntentCatalogue.load(Faq.load())
    faq = {intent.id for intent in catalogue.intents if intent.kind is IntentKind.FAQ}
    assert {"forgot-password", "lost-certificate", "renewal-window", "validity"} <= faq


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[[intent]]\nid = "x"\nkind = "flow"\n', "malformed"),
        ('[[intent]]\nid = "x"\nkind = "nonsense"\nphrasings.zh_TW = ["a"]\n', "malformed"),
        ('[[intent]]\nid = "x"\nkind = "flow"\nphrasings.zh_TW = ["a"]\n', "no en phrasings"),
        ("", "out_of_scope"),
        ("[confidence]\nclear = 0.1\nunsure = 0.5\n", "out_of_scope"),
    ],
)
def test_a_broken_catalogue_is_refused(tmp_path: Path, toml: str, problem: str) -> None:
    path = tmp_path / "intents.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=problem):
        IntentCatalogue.load(Faq([]), path)


def test_bad_thresholds_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "intents.toml"
    path.write_text(
        '[confidence]\nclear = 0.1\nunsure = 0.5\n[[intent]]\nid = "out_of_scope"\n'
        'kind = "out_of_scope"\nphrasings.zh_TW = ["你好"]\nphrasings.en = ["hi"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError, match="confidence"):
        IntentCatalogue.load(Faq([]), path)


def test_the_matcher_is_made_once_per_process() -> None:
    assert load_matcher(None, None) is load_matcher(None, None)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_reads_without_error(text: str) -> None:
    reading = load_matcher(None, None).read(text)
    assert len(reading.guesses) <= 3
    assert all(0.0 <= guess.score <= 1.0 for guess in reading.guesses)
    assert (reading.certainty is Certainty.CLEAR) == (reading.clear is not None)
