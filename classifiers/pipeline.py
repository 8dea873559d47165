"""The classifier the bot uses: language, spam fast path, labels, thresholds, unit.

    classifier = load_classifier(settings.routing.account_rules())
    predictions = classifier.predict([MessageIn("kemensos", "comment", "pkh kok blm cair?")])

For a batch:
1. the language of each message (classifiers.language);
2. the n-gram spam model and the n-gram label model; a message whose spam
   probability reaches `spam_fast` and in which no other label reaches its
   threshold is a plain promotion: spam alone, unseen by the transformer;
3. label probabilities: the n-gram model, the fine-tuned transformer, or a
   weighted average of both (which one, and the weight, are decided at training
   time by measurement and stored in the model's config.json);
4. per-label thresholds (tuned on held-out training data, stored with the
   model); spam is one signal among others: it stands alone only when nothing
   else reaches its threshold, otherwise the other labels (and the ticket) stay
   and `spam_flag` is set; `may_hide` only for spam alone at `spam_hide_at`;
5. the unit, from the Router (routing.yaml keywords first, then the learned
   unit model, then the account's default unit when the model is unsure).

Backends: "default" is chosen on this machine by measured speed
(`choose_default`): the most accurate backend that reaches SPEED_TARGETS, and
"ngram" (no torch: fast, small; also for tests) where none does or torch is
not installed.
Bad input (empty, huge, control characters, emoji only, a URL only) always
gets a prediction.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from classifiers.base import LABELS, AccountRules, MessageIn, Prediction, rules_to_json
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
    # Below this unit-model probability (and with no keyword) a ticket goes to the account's
    # default unit rather than a specialist who would bounce it (None: no floor).
    unit_floor: float | None = None
    # Spam probability at which a spam-only comment may be hidden on Instagram: chosen at training
    # time where precision on held-out real text was >= 0.99 (None: never hide).
    spam_hide_at: float | None = None
    # Against a spam score, another label keeps the message from being spam alone from this
    # probability on (and its own threshold); chosen on held-out data (0: its threshold alone).
    spam_evidence: float = 0.0

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
                   unit_outrank_at=_optional_float(data.get("unit_outrank_at")),
                   unit_floor=_optional_float(data.get("unit_floor")),
                   spam_hide_at=_optional_float(data.get("spam_hide_at")),
                   spam_evidence=float(data.get("spam_evidence", 0.0)))

    def to_json(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "thresholds": dict(self.thresholds), "unit_model": self.unit_model,
                "spam_fast": self.spam_fast,
                "cascade_margin": self.cascade_margin, "cascade_thresholds": dict(self.cascade_thresholds),
                "cascade_rule": self.cascade_rule, "quantize": self.quantize, "unit_outrank_at": self.unit_outrank_at,
                "unit_floor": self.unit_floor, "spam_hide_at": self.spam_hide_at, "spam_evidence": self.spam_evidence}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


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


def decide_labels(probs: Mapping[str, float], thresholds: Mapping[str, float],
                  spam_evidence: float = 0.0) -> tuple[str, ...]:
    """Labels whose probability reaches their threshold.

    Spam is one signal among others: a message is spam (alone) only when nothing else in it
    reaches its threshold. A citizen who names a gambling site to report it, asks about one, or
    is angry about one keeps the complaint, question or negative label and so the ticket
    (LABELS.md); `spam_flagged` tells the bot the spam score was high too. Against a spam
    score, another label counts from `spam_evidence` on (if above its threshold): promotions
    often ask ("mau jp?") or sound like a complaint, so the level is chosen on held-out data.
    """
    chosen = tuple(label for label in LABELS if probs.get(label, 0.0) >= thresholds.get(label, 0.5))
    if "spam" not in chosen or len(chosen) == 1:
        return chosen
    if any(probs.get(label, 0.0) >= spam_evidence for label in chosen if label != "spam"):
        return tuple(label for label in chosen if label != "spam")
    return ("spam",)


def spam_flagged(probs: Mapping[str, float], thresholds: Mapping[str, float]) -> bool:
    return bool(probs.get("spam", 0.0) >= thresholds.get("spam", 0.5))  # a plain bool: it goes into JSON


def other_evidence(probs: np.ndarray, thresholds: Mapping[str, float], spam_evidence: float = 0.0) -> np.ndarray:
    """Rows where complaint, question or negative reaches its threshold and `spam_evidence`."""
    cols = [j for j, label in enumerate(LABELS) if label != "spam"]
    th = np.maximum(np.array([thresholds.get(LABELS[j], 0.5) for j in cols]), spam_evidence)
    return np.asarray((np.asarray(probs)[:, cols] >= th).any(axis=1))


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
        self.choice = config.name  # which backend, and why (load_classifier fills it in)
        self.speed: dict[str, float] = {}  # the speed measured when it was chosen, if it was
        if config.weights.get("transformer") and transformer is None:
            raise ValueError(f"backend {config.name!r} needs the transformer, which is not loaded")

    def with_rules(self, rules: Mapping[str, AccountRules]) -> "Pipeline":
        """The same models with new routing rules (a keyword change needs no retraining)."""
        pipe = Pipeline(Router(rules, outrank_at=self.config.unit_outrank_at, floor=self.config.unit_floor),
                        self.config, ngram_labels=self.ngram_labels, spam_model=self.spam_model,
                        transformer=self.transformer, unit_models=self.unit_models)
        pipe.choice, pipe.speed = self.choice, self.speed
        return pipe

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
        ngram_all = self.ngram_labels.predict_proba(texts)
        # The fast path is for plain promotions: a high spam score with a complaint, question or
        # anger in it goes the whole way, so the citizen behind it keeps the ticket.
        fast = (spam_p >= self.config.spam_fast) & ~other_evidence(
            ngram_all, self.config.cascade_thresholds or self.config.thresholds, self.config.spam_evidence)
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

        # Hiding was measured with the shipped spam model; a model the corrections taught on top of
        # it (classifiers.drift) must also convince the shipped one before a comment is hidden.
        hide_p = spam_p
        base = getattr(self.spam_model, "base", None)
        if base is not None and self.config.spam_hide_at is not None:
            hide_p = np.minimum(spam_p, np.asarray(base.spam_proba(texts), dtype=np.float64))
        labels: list[tuple[str, ...]] = []
        flagged: list[bool] = []
        for i in range(n):
            th = self.config.cascade_thresholds if easy[i] else self.config.thresholds
            row = dict(zip(LABELS, probs[i]))
            labels.append(("spam",) if fast[i] else decide_labels(row, th, self.config.spam_evidence))
            if labels[i] == ("spam",) and not fast[i] and not easy[i] and w_tf:
                labels[i] = self._ngram_evidence(ngram_all[i]) or labels[i]
            flagged.append(bool(fast[i]) or spam_flagged(row, th))

        need = [i for i in range(n) if labels[i] and "spam" not in labels[i]
                and {"complaint", "question"} & set(labels[i])]
        unit_probs = self._unit_probs(accounts, texts, emb_full, need)

        out: list[Prediction] = []
        for i in range(n):
            up = unit_probs.get(i, {})
            unit, source = self.router.route(accounts[i], texts[i], labels[i], up)
            hide_at = self.config.spam_hide_at
            out.append(Prediction(
                labels=labels[i],
                scores={label: float(round(probs[i, j], 6)) for j, label in enumerate(LABELS)},
                unit=unit,
                lang=langs[i],
                unit_source=source,
                unit_scores={u: float(round(p, 6)) for u, p in up.items()},
                spam_flag=flagged[i],
                may_hide=labels[i] == ("spam",) and hide_at is not None and bool(hide_p[i] >= hide_at),
            ))
        return out

    def _ngram_evidence(self, ngram_row: np.ndarray) -> tuple[str, ...]:
        """The labels other than spam that the n-gram model alone gives a message the ensemble calls
        spam alone (at the n-gram backend's thresholds). Spam stands alone only when no model sees
        anything else in it: "situs slot ... masih bisa dibuka, tolong diblokir" scored complaint
        0.27 in the ensemble (threshold 0.275), whose transformer knew few such reports, and 0.35
        in the n-gram model (threshold 0.225)."""
        th = self.config.cascade_thresholds
        return tuple(label for j, label in enumerate(LABELS)
                     if label != "spam" and th and ngram_row[j] >= th.get(label, 1.0))


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no trained model here; run `triage train` first") from None
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown model format {data.get('format')!r}, expected {FORMAT!r}")
    return data


# The speed a backend must reach on this machine to be the default (issue 12): an account's
# comment flood and its DMs, classified as they arrive, with room for the rest of the bot.
SPEED_TARGETS = {"comment": 300.0, "dm": 150.0}
# Texts no model trained on: on its own training texts the n-gram model is sure of nearly
# everything, the cascade skips the transformer, and a probe would overstate its speed 3x.
PROBE_FILE = Path(__file__).parent / "data" / "eval.jsonl"
CHOICE_FILE = "default-backend.json"


def load_classifier(rules: Mapping[str, AccountRules], model_dir: Path | None = None, *,
                    backend: str = "default") -> Pipeline:
    """The trained pipeline in `model_dir` (default classifiers/model) with the given routing rules.

    backend: "default" chooses by measurement on this machine (`choose_default`); any other name
    is a backend of config.json ("transformer", "fast", "ngram", ...), loaded as asked.
    """
    import joblib

    model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    data = read_config(model_dir)
    if backend != "default" and backend not in data["backends"]:
        raise ValueError(f"unknown backend {backend!r}; this model has {sorted(data['backends'])}")
    parts = {"ngram_labels": joblib.load(model_dir / "ngram_labels.joblib"),
             "spam_model": joblib.load(model_dir / "ngram_spam.joblib"),
             "unit_models": {"ngram": joblib.load(model_dir / "unit_ngram.joblib")}}
    warm_up()
    if backend == "default":
        return choose_default(rules, model_dir, data, parts)
    config = BackendConfig.from_json(backend, data["backends"][backend])
    transformer = None
    if config.weights.get("transformer") or config.unit_model == "embed":
        transformer, why = _load_transformer(model_dir, config.quantize)
        if transformer is None:
            log.warning("transformer backend unavailable (%s); falling back to the n-gram backend", why)
            config = BackendConfig.from_json("ngram", data["backends"]["ngram"])
    if config.unit_model == "embed":
        parts["unit_models"]["embed"] = joblib.load(model_dir / "unit_embed.joblib")
    pipe = _pipeline(rules, config, parts, transformer)
    pipe.choice = f"{config.name} (asked for)"
    return pipe


def _pipeline(rules: Mapping[str, AccountRules], config: BackendConfig, parts: Mapping[str, Any],
              transformer: Any) -> Pipeline:
    router = Router(rules, outrank_at=config.unit_outrank_at, floor=config.unit_floor)
    return Pipeline(router, config, ngram_labels=parts["ngram_labels"], spam_model=parts["spam_model"],
                    transformer=transformer, unit_models=dict(parts["unit_models"]))


def _load_transformer(model_dir: Path, quantize: bool) -> tuple[Any, str]:
    try:
        from classifiers.transformer import TransformerScorer

        return TransformerScorer.load(model_dir / "transformer", quantize=quantize), ""
    except ImportError as exc:
        return None, f"torch is not installed ({exc.name}); install the 'transformer' extra for it"
    except (OSError, ValueError) as exc:
        return None, str(exc)


def probe_messages() -> dict[str, list[MessageIn]]:
    """Comments and DMs of the evaluation set (read for their texts only), to time a backend."""
    rows = [json.loads(line) for line in PROBE_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    out: dict[str, list[MessageIn]] = {"comment": [], "dm": []}
    for row in rows:
        bucket = out.get(row.get("channel", "comment"))
        if bucket is not None and len(bucket) < 96:
            bucket.append(MessageIn(row["account"], row["channel"], row["text"]))
    return out


def measure_speed(pipe: Pipeline, probe: Mapping[str, Sequence[MessageIn]], batch: int = 32) -> dict[str, float]:
    """Messages per second, per channel, in batches as the bot sends them (after one warm-up batch)."""
    import time

    rates = {}
    for channel, msgs in probe.items():
        pipe.predict(list(msgs[:8]))
        t0 = time.perf_counter()
        for i in range(0, len(msgs), batch):
            pipe.predict(list(msgs[i:i + batch]))
        rates[channel] = len(msgs) / max(time.perf_counter() - t0, 1e-9)
    return rates


def choose_default(rules: Mapping[str, AccountRules], model_dir: Path, data: Mapping[str, Any],
                   parts: Mapping[str, Any]) -> Pipeline:
    """The most accurate backend that reaches SPEED_TARGETS on this machine, by measurement.

    Order (most accurate first, as the model card measures them): config.json's default (the
    transformer ensemble), then `fast` (the same ensemble with int8 matmuls), then `ngram`, which
    needs no torch and always reaches the targets. A CPU flag says little about speed (bf16 was
    slower than fp32 on some machines that have it), so each candidate is timed on ~190 messages
    of the evaluation set; without torch the choice is `ngram` at once. The choice is remembered
    per model, targets and CPU in $TRIAGE_MODEL_CACHE (default ~/.cache/ministry-triage)/
    default-backend.json, so later starts load only what was chosen.

    Where nothing is remembered yet, the timing runs in a process of its own
    (classifiers.speed_probe) and this start uses `ngram`: loading torch and the transformer only
    to time them took 15-18 s and 860 MB on 2 cores, more than the bot may spend at a start.
    TRIAGE_SPEED_PROBE=now times them here instead, before returning.
    """
    candidates = [name for name in (data.get("default_backend"), "fast")
                  if name and name in data["backends"] and name != "ngram"]
    cached = _cached_choice(model_dir)
    if cached is not None and (cached["name"] == "ngram" or cached["name"] in candidates):
        return _remembered(rules, model_dir, data, parts, cached)
    if candidates and _torch_installed() and os.environ.get("TRIAGE_SPEED_PROBE", "background") != "now":
        pipe = _pipeline(rules, BackendConfig.from_json("ngram", data["backends"]["ngram"]), parts, None)
        pipe.choice = "ngram for this start: " + _start_probe(rules, model_dir)
        log.info("classifier: %s", pipe.choice)
        return pipe
    return _measure_and_choose(rules, model_dir, data, parts, candidates)


def _remembered(rules: Mapping[str, AccountRules], model_dir: Path, data: Mapping[str, Any],
                parts: Mapping[str, Any], cached: Mapping[str, str]) -> Pipeline:
    config = BackendConfig.from_json(cached["name"], data["backends"][cached["name"]])
    scorer = None
    if config.weights.get("transformer"):
        scorer, why = _load_transformer(model_dir, config.quantize)
        if scorer is None:
            config = BackendConfig.from_json("ngram", data["backends"]["ngram"])
    pipe = _pipeline(rules, config, parts, scorer)
    pipe.choice = f"{cached['why']} (measured at an earlier start on this machine; delete {choice_path()} to measure again)"
    log.info("classifier: %s", pipe.choice)
    return pipe


def _torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


PROBE_LOCK = "speed-probe.lock"
PROBE_STALE_SECONDS = 600  # a probe that left its lock behind this long ago has died
# Probes this process started: held so that a running one is not collected (Popen warns), and
# polled at the next start so that a finished one leaves no zombie behind.
_PROBES: list[Any] = []


def _start_probe(rules: Mapping[str, AccountRules], model_dir: Path) -> str:
    """Start classifiers.speed_probe unless one is already timing; say what happens."""
    import subprocess
    import sys
    import tempfile
    import time

    _PROBES[:] = [p for p in _PROBES if p.poll() is None]
    folder = choice_path().parent
    lock = folder / PROBE_LOCK
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if lock.exists() and time.time() - lock.stat().st_mtime < PROBE_STALE_SECONDS:
            return f"the transformer's speed on this machine is being timed (see {lock}); the next start uses the result"
        lock.write_text(str(time.time()), encoding="utf-8")
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=folder, delete=False, encoding="utf-8") as fh:
            fh.write(rules_to_json(rules))
        log_file = open(folder / "speed-probe.log", "a", encoding="utf-8")
        with log_file:
            proc = subprocess.Popen([sys.executable, "-m", "classifiers.speed_probe", str(model_dir), fh.name],
                                    stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=Path(__file__).resolve().parents[1])
        _PROBES.append(proc)
    except OSError as exc:
        lock.unlink(missing_ok=True)
        log.warning("could not start the classifier speed probe: %s", exc)
        return f"the transformer's speed could not be timed ({exc}); set TRIAGE_SPEED_PROBE=now to time it at the start"
    return (f"the transformer's speed on this machine is being timed in process {proc.pid} "
            f"(log: {folder / 'speed-probe.log'}); the next start uses the result")


def _measure_and_choose(rules: Mapping[str, AccountRules], model_dir: Path, data: Mapping[str, Any],
                        parts: Mapping[str, Any], candidates: Sequence[str]) -> Pipeline:
    probe = probe_messages()
    notes: list[str] = []
    scorer = None
    for name in candidates:
        config = BackendConfig.from_json(name, data["backends"][name])
        if config.unit_model == "embed":
            continue  # not shipped by training since the n-gram unit model won; keeps this simple
        if scorer is None:
            scorer, why = _load_transformer(model_dir, config.quantize)
            if scorer is None:
                notes.append(why)
                break
        elif config.quantize and not scorer.quantized:
            scorer = scorer.quantized_copy()
        pipe = _pipeline(rules, config, parts, scorer)
        rates = measure_speed(pipe, probe)
        shown = f"{name} ({_path(scorer)}): {rates['comment']:.0f} comments/s, {rates['dm']:.0f} DMs/s"
        if all(rates[c] >= SPEED_TARGETS[c] for c in SPEED_TARGETS):
            pipe.choice = f"{shown}, reaches the targets (>= {SPEED_TARGETS['comment']:.0f}/{SPEED_TARGETS['dm']:.0f})"
            pipe.speed = rates
            _remember_choice(model_dir, name, pipe.choice)
            log.info("classifier: %s", pipe.choice)
            return pipe
        notes.append(f"{shown}, below the targets")
    config = BackendConfig.from_json("ngram", data["backends"]["ngram"])
    pipe = _pipeline(rules, config, parts, None)
    pipe.choice = "ngram" + (" because " + "; ".join(notes) if notes else "")
    if scorer is not None:  # measured too slow (not merely absent): remember it, so no start pays again
        _remember_choice(model_dir, "ngram", pipe.choice)
    log.info("classifier: %s", pipe.choice)
    return pipe


def choice_path() -> Path:
    root = os.environ.get("TRIAGE_MODEL_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "ministry-triage") / CHOICE_FILE


def _choice_key(model_dir: Path) -> str:
    """The model, the targets and the machine: a choice holds only while all three stay."""
    import hashlib
    import platform

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    blob = json.dumps([(model_dir / CONFIG_FILE).read_text(encoding="utf-8"), SPEED_TARGETS, cpu, os.cpu_count()])
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


def _cached_choice(model_dir: Path) -> dict[str, str] | None:
    try:
        saved = json.loads(choice_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    got = saved.get(_choice_key(model_dir)) if isinstance(saved, dict) else None
    return got if isinstance(got, dict) and isinstance(got.get("name"), str) else None


def _remember_choice(model_dir: Path, name: str, why: str) -> None:
    """Best effort: a read-only home only means the next start measures again."""
    path = choice_path()
    try:
        saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        saved = saved if isinstance(saved, dict) else {}
        saved[_choice_key(model_dir)] = {"name": name, "why": why}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        log.warning("could not remember the classifier choice in %s: %s", path, exc)


def _path(scorer: Any) -> str:
    return "int8" if scorer.quantized else "bf16" if scorer.bf16 else "fp32"
