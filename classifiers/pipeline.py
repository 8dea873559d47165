"""The classifier the bot uses: language, spam fast path, labels, thresholds, unit.

    classifier = load_classifier(settings.routing.account_rules())
    predictions = classifier.predict([MessageIn("kemensos", "comment", "pkh kok blm cair?")])

For a batch:
1. the language of each message (classifiers.language);
2. the n-gram spam model; a message whose spam probability reaches
   `spam_fast` is spam alone and skips everything below (the transformer too);
3. label probabilities: the n-gram model, the fine-tuned transformer, or a
   weighted average of both (which one, and the weight, are decided at training
   time by measurement and stored in the model's config.json);
4. per-label thresholds (tuned on held-out training data, stored with the
   model); spam stands alone;
5. the unit, from the Router (routing.yaml keywords first, then the learned
   unit model).

Backends: "default" (what config.json names as default, normally the
transformer ensemble) and "ngram" (no torch: fast, small; also for tests).
Bad input (empty, huge, control characters, emoji only, a URL only) always
gets a prediction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from classifiers.base import LABELS, AccountRules, MessageIn, Prediction
from classifiers.language import detect_language, warm_up
from classifiers.router import Router

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path(__file__).parent / "model"
CONFIG_FILE = "config.json"
FORMAT = "triage-pipeline/1"
MAX_TEXT_CHARS = 20000  # longer texts are cut: the start carries the message


@dataclass(frozen=True)
class BackendConfig:
    """How one backend turns scores into labels and units."""

    name: str
    weights: Mapping[str, float]  # label-probability sources and their weights: "ngram", "transformer"
    thresholds: Mapping[str, float]  # per label
    unit_model: str  # "ngram", "embed" (LR on transformer embeddings) or "none"
    spam_fast: float = 0.9  # spam probability at which a message is spam alone, unseen by the rest
    # Cascade: a message whose n-gram probabilities are all far enough from the n-gram thresholds
    # (`cascade_thresholds`) is decided by the n-gram model alone; see `sure_rows` for the rules.
    cascade_margin: float = 0.0
    cascade_thresholds: Mapping[str, float] = field(default_factory=dict)
    cascade_rule: str = "absolute"
    quantize: bool = False  # run the transformer with dynamic int8 Linear layers
    # The unit model's probability at which a higher-priority unit outranks a keyword (None: never).
    unit_outrank_at: float | None = None

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> "BackendConfig":
        rule = data.get("cascade_rule", "absolute")
        if rule not in CASCADE_RULES:
            raise ValueError(f"backend {name!r}: unknown cascade_rule {rule!r}; expected one of {CASCADE_RULES}")
        return cls(name=name, weights=dict(data["weights"]), thresholds=dict(data["thresholds"]),
                   unit_model=str(data.get("unit_model", "ngram")), spam_fast=float(data.get("spam_fast", 0.9)),
                   cascade_margin=float(data.get("cascade_margin", 0.0)),
                   cascade_thresholds=dict(data.get("cascade_thresholds", {})),
                   cascade_rule=str(rule),
                   quantize=bool(data.get("quantize", False)),
                   unit_outrank_at=None if data.get("unit_outrank_at") is None else float(data["unit_outrank_at"]))

    def to_json(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "thresholds": dict(self.thresholds), "unit_model": self.unit_model,
                "spam_fast": self.spam_fast,
                "cascade_margin": self.cascade_margin, "cascade_thresholds": dict(self.cascade_thresholds),
                "cascade_rule": self.cascade_rule, "quantize": self.quantize, "unit_outrank_at": self.unit_outrank_at}


def clean_input(text: object) -> str:
    """Whatever arrives as text, as a bounded string."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    return text[:MAX_TEXT_CHARS]


CASCADE_RULES = ("absolute", "relative")


def sure_rows(probs: np.ndarray, thresholds: Mapping[str, float], margin: float, rule: str) -> np.ndarray:
    """Rows whose probabilities of complaint, question and negative are all far from their thresholds.

    "absolute": |p - t| >= margin. "relative": p <= t * (1 - margin) or p >= t + (1 - t) * margin,
    a fraction of the room on that side of the threshold. Why both: with an absolute margin at
    or above a low threshold (negative: 0.25) no text can be sure it is *not* negative, so the
    skip rate collapses (measured: 69% at margin 0.2, 12% at 0.25); the relative rule keeps both
    sides reachable for every label. Training measures both and keeps the one that skips most
    within the tolerance.
    """
    if margin <= 0:
        return np.zeros(len(probs), dtype=bool)
    if rule not in CASCADE_RULES:
        raise ValueError(f"unknown cascade rule {rule!r}; expected one of {CASCADE_RULES}")
    cols = [j for j, label in enumerate(LABELS) if label != "spam"]
    p = np.asarray(probs, dtype=np.float64)[:, cols]
    th = np.array([thresholds.get(LABELS[j], 0.5) for j in cols])
    if rule == "absolute":
        return np.asarray((np.abs(p - th) >= margin).all(axis=1))
    return np.asarray(((p <= th * (1 - margin)) | (p >= th + (1 - th) * margin)).all(axis=1))


def decide_labels(probs: Mapping[str, float], thresholds: Mapping[str, float]) -> tuple[str, ...]:
    """Labels whose probability reaches their threshold; spam stands alone."""
    chosen = tuple(label for label in LABELS if probs.get(label, 0.0) >= thresholds.get(label, 0.5))
    if "spam" in chosen:
        return ("spam",)
    return chosen


class Pipeline:
    """Implements classifiers.base.Classifier."""

    def __init__(self, router: Router, config: BackendConfig, *, ngram_labels: Any, spam_model: Any,
                 transformer: Any = None, unit_models: Mapping[str, Any] | None = None) -> None:
        self.router = router
        self.config = config
        self.ngram_labels = ngram_labels
        self.spam_model = spam_model
        self.transformer = transformer
        self.unit_models = dict(unit_models or {})
        if config.weights.get("transformer") and transformer is None:
            raise ValueError(f"backend {config.name!r} needs the transformer, which is not loaded")

    def with_rules(self, rules: Mapping[str, AccountRules]) -> "Pipeline":
        """The same models with new routing rules (a keyword change needs no retraining)."""
        return Pipeline(Router(rules, outrank_at=self.config.unit_outrank_at), self.config, ngram_labels=self.ngram_labels,
                        spam_model=self.spam_model, transformer=self.transformer, unit_models=self.unit_models)

    # -- scoring
    def easy_mask(self, ngram_probs: np.ndarray) -> np.ndarray:
        """Rows the n-gram model is sure enough about to skip the transformer."""
        if not self.config.weights.get("transformer"):
            return np.zeros(len(ngram_probs), dtype=bool)
        return sure_rows(ngram_probs, self.config.cascade_thresholds, self.config.cascade_margin,
                         self.config.cascade_rule)

    def _unit_probs(self, accounts: Sequence[str], texts: Sequence[str], emb: np.ndarray | None,
                    idx: Sequence[int]) -> dict[int, dict[str, float]]:
        """Unit probabilities for the rows in idx; rows without an embedding use the n-gram unit model."""
        out: dict[int, dict[str, float]] = {}
        if not idx:
            return out
        rest = list(idx)
        embed_model = self.unit_models.get("embed") if self.config.unit_model == "embed" else None
        if embed_model is not None and emb is not None:
            with_emb = [i for i in idx if np.any(emb[i])]
            if with_emb:
                got = embed_model.unit_probs_from_embeddings([accounts[i] for i in with_emb], emb[with_emb])
                out.update(zip(with_emb, got))
            rest = [i for i in idx if i not in out]
        ngram_model = self.unit_models.get("ngram")
        if rest and ngram_model is not None:
            got = ngram_model.unit_probs([accounts[i] for i in rest], [texts[i] for i in rest])
            out.update(zip(rest, got))
        return out

    def predict(self, messages: Sequence[MessageIn]) -> list[Prediction]:
        n = len(messages)
        if n == 0:
            return []
        texts = [clean_input(getattr(m, "text", "")) for m in messages]
        accounts = [str(getattr(m, "account", "")) for m in messages]
        langs = [detect_language(t) for t in texts]
        spam_p = np.asarray(self.spam_model.spam_proba(texts), dtype=np.float64)
        fast = spam_p >= self.config.spam_fast
        ngram_all = self.ngram_labels.predict_proba(texts)
        spam_col = LABELS.index("spam")
        w_ng = self.config.weights.get("ngram", 0.0)
        w_tf = self.config.weights.get("transformer", 0.0)
        easy = self.easy_mask(ngram_all) & ~fast
        heavy = [i for i in range(n) if not fast[i] and not easy[i]]

        probs = ngram_all.copy()
        probs[:, spam_col] = spam_p  # the spam model is the n-gram side's spam score
        emb_full = None
        if heavy:
            if w_tf:
                # the n-gram member's spam probability is the spam model's
                tp, emb = self.transformer.probs_and_embed([texts[i] for i in heavy])
                probs[heavy] = (w_ng * probs[heavy] + w_tf * np.asarray(tp, dtype=np.float64)) / (w_ng + w_tf)
                emb_full = np.zeros((n, np.asarray(emb).shape[1]), dtype=np.float32)
                emb_full[heavy] = emb

        labels: list[tuple[str, ...]] = []
        for i in range(n):
            if fast[i]:
                labels.append(("spam",))
            elif easy[i]:
                labels.append(decide_labels(dict(zip(LABELS, probs[i])), self.config.cascade_thresholds))
            else:
                labels.append(decide_labels(dict(zip(LABELS, probs[i])), self.config.thresholds))

        need = [i for i in range(n) if labels[i] and "spam" not in labels[i]
                and {"complaint", "question"} & set(labels[i])]
        unit_probs = self._unit_probs(accounts, texts, emb_full, need)

        out: list[Prediction] = []
        for i in range(n):
            up = unit_probs.get(i, {})
            unit, source = self.router.route(accounts[i], texts[i], labels[i], up)
            out.append(Prediction(
                labels=labels[i],
                scores={label: float(round(probs[i, j], 6)) for j, label in enumerate(LABELS)},
                unit=unit,
                lang=langs[i],
                unit_source=source,
                unit_scores={u: float(round(p, 6)) for u, p in up.items()},
            ))
        return out


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no trained model here; run `triage train` first") from None
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown model format {data.get('format')!r}, expected {FORMAT!r}")
    return data


def load_classifier(rules: Mapping[str, AccountRules], model_dir: Path | None = None, *,
                    backend: str = "default") -> Pipeline:
    """The trained pipeline in `model_dir` (default classifiers/model) with the given routing rules.

    backend: "default" (the combination chosen at training time) or "ngram" (no torch).
    """
    import joblib

    model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    data = read_config(model_dir)
    name = data.get("default_backend", "ngram") if backend == "default" else backend
    if name not in data["backends"]:
        raise ValueError(f"unknown backend {backend!r}; this model has {sorted(data['backends'])}")
    config = BackendConfig.from_json(name, data["backends"][name])
    transformer = None
    if config.weights.get("transformer") or config.unit_model == "embed":
        try:
            from classifiers.transformer import TransformerScorer

            transformer = TransformerScorer.load(model_dir / "transformer", quantize=config.quantize)
        except (ImportError, OSError, ValueError) as exc:
            log.warning("transformer backend unavailable (%s); falling back to the n-gram backend", exc)
            config = BackendConfig.from_json("ngram", data["backends"]["ngram"])
    ngram_labels = joblib.load(model_dir / "ngram_labels.joblib")
    spam_model = joblib.load(model_dir / "ngram_spam.joblib")
    unit_models: dict[str, Any] = {"ngram": joblib.load(model_dir / "unit_ngram.joblib")}
    if config.unit_model == "embed":
        unit_models["embed"] = joblib.load(model_dir / "unit_embed.joblib")
    warm_up()
    router = Router(rules, outrank_at=config.unit_outrank_at)
    return Pipeline(router, config, ngram_labels=ngram_labels, spam_model=spam_model,
                    transformer=transformer, unit_models=unit_models)
