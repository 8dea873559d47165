"""The n-gram backend: TF-IDF over characters (2-5, char_wb) and words (1-2) of
normalised text, one calibrated logistic regression per label.

- `NgramLabelModel`: complaint / question / negative / spam probabilities.
- `NgramSpamModel`: the same shape for spam alone, trained on our spam records
  plus a public gambling-comment set; the pipeline's fast path.
- `NgramUnitModel`: one multinomial regression per account over its units.

The vocabularies are bounded (max_features) and the pruned-term lists dropped
before saving, so each saved model stays a few MB.
"""

from __future__ import annotations

from typing import Any, Mapping, Self, Sequence

import numpy as np
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from classifiers.base import LABELS
from classifiers.normalize import features_text


class NgramFeatures:
    """Character and word TF-IDF of `features_text`, both L2-normalised, side by side."""

    def __init__(self, char_features: int = 60000, word_features: int = 20000, min_df: int = 2,
                 tone: bool = False) -> None:
        self.tone = tone  # add normalize.tone_words (models saved before it have no such attribute)
        self.char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), max_features=char_features,
                                    min_df=min_df, sublinear_tf=True, lowercase=False, dtype=np.float32)
        self.word = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), max_features=word_features,
                                    min_df=min_df, sublinear_tf=True, lowercase=False, dtype=np.float32,
                                    token_pattern=r"(?u)\b\w+\b")

    def prepare(self, texts: Sequence[str]) -> list[str]:
        tone = getattr(self, "tone", False)
        return [features_text(t or "", tone=tone) for t in texts]

    def fit_transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        prepared = self.prepare(texts)
        x = sparse.hstack([self.char.fit_transform(prepared), self.word.fit_transform(prepared)]).tocsr()
        # The pruned-term sets are only for introspection and are large: drop them before pickling.
        for vec in (self.char, self.word):
            if hasattr(vec, "stop_words_"):
                vec.stop_words_ = set()
        return x

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        prepared = self.prepare(texts)
        return sparse.hstack([self.char.transform(prepared), self.word.transform(prepared)]).tocsr()


def _calibrated_lr(c: float, seed: int) -> CalibratedClassifierCV:
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, solver="liblinear", random_state=seed)
    # ensemble=False: one regression on all data, sigmoid fitted on its out-of-fold scores.
    return CalibratedClassifierCV(lr, method="sigmoid", cv=3, ensemble=False)


def _shrink(model: CalibratedClassifierCV) -> CalibratedClassifierCV:
    for cc in model.calibrated_classifiers_:
        est = cc.estimator
        est.coef_ = est.coef_.astype(np.float32)
    return model


class NgramLabelModel:
    """One calibrated logistic regression per label over shared n-gram features."""

    def __init__(self, labels: Sequence[str] = LABELS, c: float = 4.0, seed: int = 13, **feature_args: Any) -> None:
        self.labels = tuple(labels)
        self.c = c
        self.seed = seed
        self.features = NgramFeatures(**feature_args)
        self.models: dict[str, CalibratedClassifierCV | float] = {}

    def fit(self, texts: Sequence[str], y: np.ndarray, sample_weight: np.ndarray | None = None,
            label_weights: np.ndarray | None = None) -> Self:
        """label_weights (n, labels): a row's weight for each label's regression; 0 leaves the row
        out of it (public sentiment data says something about `negative` only)."""
        x = self.features.fit_transform(texts)
        y = np.asarray(y)
        base = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        for j, label in enumerate(self.labels):
            w = base if label_weights is None else base * np.asarray(label_weights)[:, j]
            rows = np.flatnonzero(w > 0)
            col = y[rows, j]
            if len(rows) == 0 or col.min() == col.max() or min(col.sum(), len(col) - col.sum()) < 3:
                self.models[label] = float(col.mean()) if len(rows) else 0.0  # too few examples: a constant
                continue
            model = _calibrated_lr(self.c, self.seed).fit(x[rows], col, sample_weight=w[rows])
            self.models[label] = _shrink(model)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        if not texts:
            return out
        x = self.features.transform(texts)
        for j, label in enumerate(self.labels):
            m = self.models[label]
            out[:, j] = m if isinstance(m, float) else m.predict_proba(x)[:, 1]
        return out


class NgramSpamModel(NgramLabelModel):
    """Spam alone: `spam_proba(texts)` -> (n,)."""

    def __init__(self, c: float = 4.0, seed: int = 13, **feature_args: Any) -> None:
        super().__init__(labels=("spam",), c=c, seed=seed, **feature_args)

    def spam_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_proba(texts)[:, 0]


class NgramUnitModel:
    """Per account, a multinomial logistic regression over the account's units."""

    def __init__(self, c: float = 8.0, seed: int = 13) -> None:
        self.c = c
        self.seed = seed
        self.features: dict[str, NgramFeatures] = {}
        self.models: dict[str, LogisticRegression | str] = {}

    def fit(self, accounts: Sequence[str], texts: Sequence[str], units: Sequence[str]) -> "NgramUnitModel":
        by_account: dict[str, list[int]] = {}
        for i, acc in enumerate(accounts):
            by_account.setdefault(acc, []).append(i)
        for acc, idx in by_account.items():
            ys = [units[i] for i in idx]
            if len(set(ys)) < 2:
                self.models[acc] = ys[0]
                continue
            feats = NgramFeatures(char_features=40000, word_features=15000, min_df=1)
            x = feats.fit_transform([texts[i] for i in idx])
            lr = LogisticRegression(C=self.c, class_weight="balanced", max_iter=3000, random_state=self.seed)
            lr.fit(x, ys)
            lr.coef_ = lr.coef_.astype(np.float32)
            self.features[acc] = feats
            self.models[acc] = lr
        return self

    def unit_probs(self, accounts: Sequence[str], texts: Sequence[str]) -> list[dict[str, float]]:
        out: list[dict[str, float]] = [{} for _ in texts]
        by_account: dict[str, list[int]] = {}
        for i, acc in enumerate(accounts):
            by_account.setdefault(acc, []).append(i)
        for acc, idx in by_account.items():
            m = self.models.get(acc)
            if m is None:
                continue
            if isinstance(m, str):
                for i in idx:
                    out[i] = {m: 1.0}
                continue
            probs = m.predict_proba(self.features[acc].transform([texts[i] for i in idx]))
            for row, i in zip(probs, idx):
                out[i] = {str(u): float(p) for u, p in zip(m.classes_, row)}
        return out


def unit_probs_from_matrix(classes: Sequence[str], probs: np.ndarray) -> list[Mapping[str, float]]:
    return [{c: float(p) for c, p in zip(classes, row)} for row in probs]
