"""New spam campaigns, learnt from the media team's *Koreksi* corrections in seconds.

    result = retrain_spam(current_spam_model, corrections, ours, dev)
    if result.adopted: pipeline.spam_model = result.model

The shipped spam model was trained on data that is not shipped (the judol
comments), so it cannot be refitted at a ministry's site. A `CorrectedSpamModel`
keeps it and learns on top of it: a logistic regression over n-gram features
of our shipped training records and the corrections, plus the shipped model's
log-odds (a correction weighs more: it is this account's newest truth). A
brand the media team marked a few times is caught the next night.

The new model is adopted only when it is not worse than the current one on
the evaluation set (spam F1) and on a held-out share of the corrections
(accuracy of the spam decision), both at the pipeline's spam threshold.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from classifiers.dataset import Record
from classifiers.ngram import NgramFeatures
from classifiers.normalize import normalize

CORRECTION_WEIGHT = 5.0  # a correction against one of our records
HOLDOUT_PERCENT = 25  # share of corrections kept aside to judge the new model
MIN_CORRECTIONS = 2


class CorrectedSpamModel:
    """The shipped spam model plus what the corrections taught; same `spam_proba` contract."""

    def __init__(self, base: Any, c: float = 2.0, seed: int = 13) -> None:
        self.base: Any = base.base if isinstance(base, CorrectedSpamModel) else base
        self.c = c
        self.seed = seed
        # Its own small vocabulary, fitted with the corrections: a new brand's letters may be
        # missing from the shipped model's vocabulary.
        self.own = NgramFeatures(char_features=30000, word_features=10000, min_df=1)
        self.lr: LogisticRegression | None = None
        self.trained_on = 0

    def _logit(self, texts: Sequence[str]) -> sparse.csr_matrix:
        p = np.clip(np.asarray(self.base.spam_proba(texts), dtype=np.float64), 1e-4, 1 - 1e-4)
        return sparse.csr_matrix(np.log(p / (1 - p)).reshape(-1, 1).astype(np.float32))

    def fit(self, texts: Sequence[str], y: np.ndarray, sample_weight: np.ndarray) -> "CorrectedSpamModel":
        x = sparse.hstack([self.own.fit_transform(texts), self._logit(texts)]).tocsr()
        self.lr = LogisticRegression(C=self.c, max_iter=2000, solver="liblinear", random_state=self.seed)
        self.lr.fit(x, np.asarray(y), sample_weight=np.asarray(sample_weight))
        self.trained_on = len(texts)
        return self

    def _x(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([self.own.transform(texts), self._logit(texts)]).tocsr()

    def spam_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.lr is None or not len(texts):
            return np.asarray(self.base.spam_proba(texts), dtype=np.float64)
        return self.lr.predict_proba(self._x(texts))[:, 1]


@dataclass
class RetrainResult:
    adopted: bool
    model: Any
    corrections: int
    held_out: int
    figures: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def held_out(text: str) -> bool:
    """Whether a correction is kept aside for judging (stable for a text, whatever night)."""
    digest = hashlib.sha1(normalize(text).encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HOLDOUT_PERCENT


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float(((y == 1) & (pred == 1)).sum())
    denom = float(2 * tp + ((y == 0) & (pred == 1)).sum() + ((y == 1) & (pred == 0)).sum())
    return 2 * tp / denom if denom else 1.0


def retrain_spam(current: Any, corrections: Sequence[Record], ours: Sequence[Record], dev: Sequence[Record],
                 threshold: float, seed: int = 13) -> RetrainResult:
    """Fit a CorrectedSpamModel on our records and the training share of the corrections; adopt it
    when it is at least as good as `current` on `dev` and on the held-out corrections."""
    if len(corrections) < MIN_CORRECTIONS:
        return RetrainResult(False, current, len(corrections), 0, reason="too few corrections")
    train = [r for r in corrections if not held_out(r.text)]
    judge = [r for r in corrections if held_out(r.text)]
    if not train:
        train, judge = list(corrections), []
    texts = [r.text for r in ours] + [r.text for r in train]
    y = np.array([int("spam" in r.labels) for r in ours] + [int("spam" in r.labels) for r in train])
    weights = np.concatenate([np.ones(len(ours)), np.full(len(train), CORRECTION_WEIGHT)])
    candidate = CorrectedSpamModel(current, seed=seed).fit(texts, y, weights)

    figures: dict[str, float] = {}
    for name, records in (("dev", dev), ("held_out", judge)):
        if not records:
            continue
        gold = np.array([int("spam" in r.labels) for r in records])
        for who, model in (("current", current), ("new", candidate)):
            pred = (np.asarray(model.spam_proba([r.text for r in records])) >= threshold).astype(int)
            figures[f"{name}_{who}"] = round(_f1(gold, pred) if name == "dev" else float((pred == gold).mean()), 4)
    worse = [name for name in ("dev", "held_out")
             if f"{name}_new" in figures and figures[f"{name}_new"] < figures[f"{name}_current"]]
    if worse:
        return RetrainResult(False, current, len(corrections), len(judge), figures,
                             reason="worse on " + " and ".join(worse))
    return RetrainResult(True, candidate, len(corrections), len(judge), figures)


def summary_id(result: RetrainResult) -> str:
    """One line for the media team, in Indonesian."""
    f = result.figures
    dev = f"set evaluasi F1 spam {f.get('dev_current', 0):.2f} → {f.get('dev_new', 0):.2f}" if "dev_new" in f else ""
    held = (f"koreksi yang disisihkan benar {f.get('held_out_current', 0):.0%} → {f.get('held_out_new', 0):.0%}"
            if "held_out_new" in f else "belum ada koreksi yang disisihkan")
    if result.adopted:
        return f"🔁 Model spam diperbarui dari {result.corrections} koreksi tim media ({dev}; {held})."
    if result.reason == "too few corrections":
        return f"Model spam tidak diubah: baru {result.corrections} koreksi, perlu minimal {MIN_CORRECTIONS}."
    return f"Model spam tidak diubah: versi baru lebih buruk ({dev}; {held})."
