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
    spam_weights: Mapping[str, float] = field(default_factory=lambda: {"spam_model": 1.0})

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> "BackendConfig":
        return cls(name=name, weights=dict(data["weights"]), thresholds=dict(data["thresholds"]),
                   unit_model=str(data.get("unit_model", "ngram")), spam_fast=float(data.get("spam_fast", 0.9)),
                   spam_weights=dict(data.get("spam_weights", {"spam_model": 1.0})))

    def to_json(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "thresholds": dict(self.thresholds), "unit_model": self.unit_model,
                "spam_fast": self.spam_fast, "spam_weights": dict(self.spam_weights)}


def clean_input(text: object) -> str:
    """Whatever arrives as text, as a bounded string."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    return text[:MAX_TEXT_CHARS]


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
        return Pipeline(Router(rules, self.router.unit_model), self.config, ngram_labels=self.ngram_labels,
                        spam_model=self.spam_model, transformer=self.transformer, unit_models=self.unit_models)

    # -- scoring
    def label_probs(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """(n, 4) combined label probabilities and, with the transformer, its embeddings."""
        n = len(texts)
        total = np.zeros((n, len(LABELS)))
        emb = None
        if n == 0:
            return total, emb
        wsum = 0.0
        w = self.config.weights.get("ngram", 0.0)
        if w:
            total += w * self.ngram_labels.predict_proba(texts)
            wsum += w
        w = self.config.weights.get("transformer", 0.0)
        if w:
            probs, emb = self.transformer.probs_and_embed(list(texts))
            total += w * np.asarray(probs, dtype=np.float64)
            wsum += w
        return total / (wsum or 1.0), emb

    def _unit_probs(self, accounts: Sequence[str], texts: Sequence[str], emb: np.ndarray | None,
                    idx: Sequence[int]) -> dict[int, dict[str, float]]:
        if not idx:
            return {}
        kind = self.config.unit_model
        model = self.unit_models.get(kind)
        if model is None:
            return {}
        if kind == "embed":
            if emb is None:
                return {}
            got = model.unit_probs_from_embeddings([accounts[i] for i in idx], emb[list(idx)])
        else:
            got = model.unit_probs([accounts[i] for i in idx], [texts[i] for i in idx])
        return dict(zip(idx, got))

    def predict(self, messages: Sequence[MessageIn]) -> list[Prediction]:
        n = len(messages)
        if n == 0:
            return []
        texts = [clean_input(getattr(m, "text", "")) for m in messages]
        accounts = [str(getattr(m, "account", "")) for m in messages]
        langs = [detect_language(t) for t in texts]
        spam_p = np.asarray(self.spam_model.spam_proba(texts), dtype=np.float64)
        fast = spam_p >= self.config.spam_fast
        rest = [i for i in range(n) if not fast[i]]
        ngram_all = self.ngram_labels.predict_proba(texts) if self.config.weights.get("ngram") or fast.any() else None

        probs = np.zeros((n, len(LABELS)))
        emb_rest = None
        if rest:
            rest_texts = [texts[i] for i in rest]
            if self.config.weights.get("transformer"):
                p, emb_rest = self.label_probs(rest_texts)
            else:
                assert ngram_all is not None
                p = ngram_all[rest]
            probs[rest] = p
        spam_col = LABELS.index("spam")
        sw = self.config.spam_weights
        spam_final = sw.get("spam_model", 1.0) * spam_p + sw.get("labels", 0.0) * probs[:, spam_col]
        spam_final /= (sw.get("spam_model", 1.0) + sw.get("labels", 0.0)) or 1.0
        if fast.any():
            assert ngram_all is not None
            probs[fast] = ngram_all[fast]
            spam_final[fast] = spam_p[fast]
        probs[:, spam_col] = spam_final

        labels: list[tuple[str, ...]] = []
        for i in range(n):
            if fast[i]:
                labels.append(("spam",))
            else:
                labels.append(decide_labels(dict(zip(LABELS, probs[i])), self.config.thresholds))

        need = [i for i in range(n) if labels[i] and "spam" not in labels[i]
                and {"complaint", "question"} & set(labels[i])]
        emb_full = None
        if emb_rest is not None:
            emb_full = np.zeros((n, emb_rest.shape[1]), dtype=np.float32)
            emb_full[rest] = emb_rest
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

            transformer = TransformerScorer.load(model_dir / "transformer", quantize=bool(data.get("quantize", False)))
        except (ImportError, OSError, ValueError) as exc:
            log.warning("transformer backend unavailable (%s); falling back to the n-gram backend", exc)
            config = BackendConfig.from_json("ngram", data["backends"]["ngram"])
    ngram_labels = joblib.load(model_dir / "ngram_labels.joblib")
    spam_model = joblib.load(model_dir / "ngram_spam.joblib")
    unit_models: dict[str, Any] = {}
    if config.unit_model != "none":
        unit_models[config.unit_model] = joblib.load(model_dir / f"unit_{config.unit_model}.joblib")
    warm_up()
    router = Router(rules, unit_model=unit_models.get("ngram"))
    return Pipeline(router, config, ngram_labels=ngram_labels, spam_model=spam_model,
                    transformer=transformer, unit_models=unit_models)
