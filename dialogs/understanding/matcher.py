"""Scoring free text against the intent catalogue.

Every phrasing of every intent, folded (`folding.fold`), becomes a TF-IDF vector of character
n-grams (scikit-learn's `TfidfVectorizer`, 1–4 characters within words). Character n-grams need
no word segmentation for Chinese, do not care about word order, and still share most of their
grams with a mistyped or padded sentence (請問一下我想要申請憑證 keeps 申請, 請憑, 憑證). A
multinomial logistic regression over those vectors (scikit-learn, `saga`) learns which grams
tell the intents apart, so 「我要註銷憑證」 and "I want to 註銷 my certificate" weigh 註銷 rather
than the words around it, and gives each intent a probability. A typed Latin word the catalogue
does not know is first corrected to the closest one it does (rapidfuzz, "certficate" →
"certificate"). How far the best intent is ahead of the next decides how sure the reading is
(`Confidence` in the catalogue).

Fitting takes about 0.2 s, once per process and catalogue (`load_matcher`); a reading is a few
dictionary look-ups and a small dense product, well under a millisecond
(`bench/understanding.py` measures both, and the accuracy on held-back utterances).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from rapidfuzz import fuzz, process
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from dialogs.understanding.catalogue import Intent, IntentCatalogue
from dialogs.understanding.folding import fold, latin_words

REGULARISATION = 20.0
"""The logistic regression's C: little regularisation, since every phrasing is meant."""
TYPO_CUTOFF = 80.0
"""rapidfuzz ratio (0–100) a Latin word needs to be read as a catalogue word."""
CHOICES = 3
"""At most this many intents offered when the reading is unsure."""


class Certainty(Enum):
    CLEAR = "clear"
    """The best intent is likely and well ahead of the rest: act on it."""
    UNSURE = "unsure"
    """A middling probability, or two intents close together: ask which one."""
    NONE = "none"
    """Nothing in the catalogue is likely."""


@dataclass(frozen=True)
class Guess:
    intent: Intent
    score: float
    """The matcher's probability for the intent, 0 to 1."""


@dataclass(frozen=True)
class Reading:
    """What the text most likely means: the best guesses, best first, and how sure that is."""

    guesses: tuple[Guess, ...]
    certainty: Certainty

    @property
    def best(self) -> Intent | None:
        return self.guesses[0].intent if self.guesses else None

    @property
    def clear(self) -> Intent | None:
        """The intent to act on without asking, or None."""
        return self.best if self.certainty is Certainty.CLEAR else None


class Matcher:
    def __init__(self, catalogue: IntentCatalogue) -> None:
        self.catalogue = catalogue
        texts: list[str] = []
        owners: list[int] = []
        for index, intent in enumerate(catalogue.intents):
            for examples in intent.phrasings.values():
                for example in examples:
                    folded = fold(example, catalogue.variants)
                    if folded:
                        texts.append(folded)
                        owners.append(index)
        vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, lowercase=False
        )
        model = LogisticRegression(
            C=REGULARISATION, solver="saga", tol=1e-3, max_iter=300, random_state=0
        )
        model.fit(vectorizer.fit_transform(texts), owners)
        self._intents = [catalogue.intents[int(i)] for i in model.classes_]
        self._weights = np.ascontiguousarray(model.coef_.T)  # features × intents
        self._bias = model.intercept_
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_
        self._idf = vectorizer.idf_
        self._analyse = vectorizer.build_analyzer()
        self._latin = sorted({word for text in texts for word in latin_words(text)})
        self._latin_set = frozenset(self._latin)

    def read(self, text: str) -> Reading:
        """What the text most likely means, and how sure that is."""
        folded = self._corrected(fold(text, self.catalogue.variants))
        probabilities = self._probabilities(folded)
        if probabilities is None:
            return Reading((), Certainty.NONE)
        order = np.argsort(-probabilities)[:CHOICES]
        guesses = tuple(Guess(self._intents[i], float(probabilities[i])) for i in order)
        return Reading(guesses, self._certainty(guesses))

    def _certainty(self, guesses: tuple[Guess, ...]) -> Certainty:
        confidence = self.catalogue.confidence
        best = guesses[0].score
        if best < confidence.unsure:
            return Certainty.NONE
        runner_up = guesses[1].score if len(guesses) > 1 else 0.0
        if best >= confidence.clear and best - runner_up >= confidence.margin:
            return Certainty.CLEAR
        return Certainty.UNSURE

    def _corrected(self, folded: str) -> str:
        """Latin words the catalogue does not know, replaced by the closest it does."""
        for word in set(latin_words(folded)):
            if len(word) < 4 or word in self._latin_set:
                continue
            match = process.extractOne(
                word, self._latin, scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF
            )
            if match is not None:
                folded = folded.replace(word, match[0])
        return folded

    def _probabilities(self, folded: str) -> np.ndarray | None:
        """Each intent's probability, or None when no gram of the text is in the catalogue.
        The TF-IDF vector is built as `TfidfVectorizer.transform` builds it (sublinear term
        frequency, idf, unit length) without its per-call overhead (about 0.4 ms)."""
        counts: dict[int, int] = {}
        for gram in self._analyse(folded):
            column = self._vocabulary.get(gram)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return None
        columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
        weights = np.fromiter(
            ((1.0 + math.log(n)) * self._idf[c] for c, n in counts.items()),
            dtype=np.float64,
            count=len(counts),
        )
        weights /= np.linalg.norm(weights)
        scores = weights @ self._weights[columns] + self._bias
        scores = np.exp(scores - scores.max())
        probabilities: np.ndarray = scores / scores.sum()
        return probabilities
