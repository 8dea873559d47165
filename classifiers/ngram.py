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
                 tone: bool = False, spacing: bool = False) -> None:
        self.tone = tone  # add normalize.tone_words (models saved before it have no such attribute)
        self.spacing = spacing  # undo corpus tokenisation (normalize.respace); likewise
        self.char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), max_features=char_features,
                                    min_df=min_df, sublinear_tf=True, lowercase=False, dtype=np.float32)
        self.word = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), max_features=word_features,
                                    min_df=min_df, sublinear_tf=True, lowercase=False, dtype=np.float32,
                                    token_pattern=r"(?u)\b\w+\b")

    def prepare(self, texts: Sequence[str]) -> list[str]:
        tone, spacing = getattr(self, "tone", False), getattr(self, "spacing", False)
        return [features_text(t or "", tone=tone, spacing=spacing) for t in texts]

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


def _lr(c: float, seed: int) -> LogisticRegression:
    return LogisticRegression(C=c, class_weight="balanced", max_iter=2000, solver="liblinear", random_state=seed)


def _calibrated_lr(c: float, seed: int) -> CalibratedClassifierCV:
    # ensemble=False: one regression on all data, sigmoid fitted on its out-of-fold scores.
    return CalibratedClassifierCV(_lr(c, seed), method="sigmoid", cv=3, ensemble=False)


def _shrink(model: CalibratedClassifierCV) -> CalibratedClassifierCV:
    for cc in model.calibrated_classifiers_:
        est = cc.estimator
        est.coef_ = est.coef_.astype(np.float32)
    return model


class CalibratedOnOurs:
    """A logistic regression fitted on every row, its sigmoid calibration fitted on the out-of-fold
    scores of our records alone. The real rows outnumber ours five to one and rarely carry a
    label, so a calibration on all rows reads every probability low on our kind of message (the
    one-model complaint threshold was 0.225); the domain mixture averages this expert with one
    trained on our records, and both must speak on the same scale."""

    folds = 3

    def __init__(self, c: float, seed: int) -> None:
        self.c, self.seed = c, seed

    def fit(self, x: sparse.csr_matrix, y: np.ndarray, w: np.ndarray, ours: np.ndarray) -> Self:
        fold_of = np.random.default_rng(self.seed).permutation(len(y)) % self.folds
        scores = np.zeros(len(y))
        for k in range(self.folds):
            train, scored = fold_of != k, (fold_of == k) & ours
            fold_lr = _lr(self.c, self.seed).fit(x[train], y[train], sample_weight=w[train])
            scores[scored] = fold_lr.decision_function(x[scored])
        platt = LogisticRegression(C=1e4, max_iter=1000).fit(scores[ours][:, None], y[ours])
        self.a, self.b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        self.lr = _lr(self.c, self.seed).fit(x, y, sample_weight=w)
        self.lr.coef_ = self.lr.coef_.astype(np.float32)
        return self

    def predict_proba(self, x: sparse.csr_matrix) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(self.a * self.lr.decision_function(x) + self.b)))
        return np.column_stack([1.0 - p, p])


class NgramLabelModel:
    """One calibrated logistic regression per label over shared n-gram features.

    With `domain_mix`, fitted with rows marked as our own (`ours`), it is a mixture of two
    experts over the same features: the regressions on every row (ours and the real sets'), and
    regressions on our records alone (both calibrated on our records), weighted per message by a
    gate that tells our kind of message (comments to a ministry) from the real sets' (tweets,
    product reviews, YouTube comments). Real rows taught the one model that calm reviews are no complaint and chatter is
    not negative, and cost it the subtle ministry comments; the mixture lets each expert speak
    where its data came from.
    """

    def __init__(self, labels: Sequence[str] = LABELS, c: float = 4.0, seed: int = 13, domain_mix: bool = False,
                 **feature_args: Any) -> None:
        self.labels = tuple(labels)
        self.c = c
        self.seed = seed
        self.domain_mix = domain_mix
        self.features = NgramFeatures(**feature_args)
        self.models: dict[str, CalibratedClassifierCV | float] = {}
        self.ours_models: dict[str, CalibratedClassifierCV | float] = {}
        self.gate: LogisticRegression | None = None

    def fit(self, texts: Sequence[str], y: np.ndarray, sample_weight: np.ndarray | None = None,
            label_weights: np.ndarray | None = None, ours: np.ndarray | None = None) -> Self:
        """label_weights (n, labels): a row's weight for each label's regression; 0 leaves the row
        out of it (public sentiment data says something about `negative` only). ours (n,) bool:
        the rows written for this project (the rest are real sets' rows), for `domain_mix`."""
        x = self.features.fit_transform(texts)
        y = np.asarray(y)
        base = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        weights = np.ones(y.shape) if label_weights is None else np.asarray(label_weights, dtype=np.float64)
        mask = None if ours is None else np.asarray(ours, dtype=bool)
        mix = self.domain_mix and mask is not None and 0 < mask.sum() < len(mask)
        self.models = self._fit_each(x, y, base[:, None] * weights, calibrate_on=mask if mix else None)
        if mix:
            assert mask is not None
            self.ours_models = self._fit_each(x, y, base[:, None] * weights * mask[:, None])
            self.gate = _lr(GATE_C, self.seed).fit(x, mask.astype(np.int64))
            self.gate.coef_ = self.gate.coef_.astype(np.float32)
        return self

    def _fit_each(self, x: sparse.csr_matrix, y: np.ndarray, weights: np.ndarray,
                  calibrate_on: np.ndarray | None = None) -> dict[str, Any]:
        """One calibrated regression per label; with calibrate_on (a row mask), each is calibrated
        on those rows' out-of-fold scores only."""
        models: dict[str, Any] = {}
        for j, label in enumerate(self.labels):
            w = weights[:, j]
            rows = np.flatnonzero(w > 0)
            col = y[rows, j]
            if len(rows) == 0 or col.min() == col.max() or min(col.sum(), len(col) - col.sum()) < 3:
                models[label] = float(col.mean()) if len(rows) else 0.0  # too few examples: a constant
                continue
            if calibrate_on is not None and len(set(col[calibrate_on[rows]])) == 2:
                models[label] = CalibratedOnOurs(self.c, self.seed).fit(x[rows], col, w[rows], calibrate_on[rows])
            else:
                models[label] = _shrink(_calibrated_lr(self.c, self.seed).fit(x[rows], col, sample_weight=w[rows]))
        return models

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float64)
        x = self.features.transform(texts)
        out = _probs(self.models, self.labels, x)
        gate = getattr(self, "gate", None)  # models saved before the mixture have none
        if gate is not None:
            g = gate.predict_proba(x)[:, 1][:, None]
            out = g * _probs(self.ours_models, self.labels, x) + (1.0 - g) * out
        return out

    def domain_share(self, texts: Sequence[str]) -> np.ndarray:
        """The gate's probability that each text is our kind of message (1.0 without a gate)."""
        gate = getattr(self, "gate", None)
        if gate is None or not texts:
            return np.ones(len(texts))
        return gate.predict_proba(self.features.transform(texts))[:, 1]


# The gate's regularisation: ours and the real sets differ in topic and register, and a gate that
# is too sure switches between the experts on one word.
GATE_C = 1.0


def _probs(models: Mapping[str, Any], labels: Sequence[str], x: sparse.csr_matrix) -> np.ndarray:
    out = np.zeros((x.shape[0], len(labels)), dtype=np.float64)
    for j, label in enumerate(labels):
        m = models[label]
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
