"""Inference forward pass of a BERT encoder over packed tokens, in bf16 where the CPU is faster.

Why: in a length-sorted batch of 32 Instagram messages about 45% of the padded
positions are padding, and the per-token layers (the six Linear layers, the
LayerNorms, GELU) are ~95% of the encoder's work. Here those layers run on
the real tokens only, packed into one (n_tokens, hidden) matrix; only the
attention itself is computed on the padded (batch, heads, T, T) layout. The
maths is that of `BertModel.forward` in eval mode (checked against it in
tests/test_classifier_packed.py and at every load by the model's self-check).

bf16: on CPUs with native bf16 dot products (AVX512-BF16, AMX) autocast to
bf16 roughly halves the time of the Linear layers; on CPUs without it bf16 is
emulated and slower than fp32. `matmul_dtype()` therefore measures both once
per process instead of guessing from CPU flags. TRIAGE_TRANSFORMER_DTYPE=fp32
or bf16 overrides the measurement.
"""

from __future__ import annotations

import functools
import logging
import os
import time

log = logging.getLogger(__name__)

DTYPE_ENV = "TRIAGE_TRANSFORMER_DTYPE"
BF16_MIN_SPEEDUP = 1.3  # below this the precision cost of bf16 is not worth it


def encode_pooled(model, input_ids, attention_mask, *, bf16: bool = False):
    """Masked mean of the last hidden state, (batch, hidden) float32."""
    import torch

    keep = attention_mask.bool()
    flat = keep.reshape(-1).nonzero().squeeze(1)  # positions of the real tokens in (batch * T)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        padded = model.embeddings(input_ids=input_ids)
        x = padded.reshape(-1, padded.shape[-1]).index_select(0, flat)  # (n_tokens, hidden)
        for layer in model.encoder.layer:
            x = _layer(layer, x, keep, flat)
    x = x.float()
    seq = flat // keep.shape[1]  # the row of the batch each packed token belongs to
    sums = torch.zeros((input_ids.shape[0], x.shape[1]), dtype=x.dtype).index_add_(0, seq, x)
    counts = keep.sum(1, keepdim=True).clamp(min=1).to(x.dtype)
    return sums / counts


def _layer(layer, x, keep, flat):
    att = layer.attention
    ctx = _self_attention(att.self, x, keep, flat)
    x = att.output.LayerNorm(att.output.dense(ctx) + x)
    inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
    return layer.output.LayerNorm(layer.output.dense(inner) + x)


def _self_attention(sa, x, keep, flat):
    """Scaled dot-product attention on the padded layout; padded keys are masked out."""
    import torch

    batch, length = keep.shape
    heads, size = sa.num_attention_heads, sa.attention_head_size
    width = heads * size
    qkv = _qkv(sa, x)  # (n_tokens, 3 * width)
    padded = qkv.new_zeros((batch * length, qkv.shape[1])).index_copy_(0, flat, qkv)
    q, k, v = (padded[:, i * width:(i + 1) * width].reshape(batch, length, heads, size).transpose(1, 2)
               for i in range(3))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :],
                                                           scale=sa.scaling)
    return out.transpose(1, 2).reshape(batch * length, width).index_select(0, flat)


def _qkv(sa, x):
    """Query, key and value in one matmul (one (3w x w) Linear instead of three)."""
    import torch

    fused = getattr(sa, "_packed_qkv", None)
    if fused is None:
        parts = (sa.query, sa.key, sa.value)
        if not all(isinstance(p, torch.nn.Linear) for p in parts):  # e.g. int8-quantised layers
            return torch.cat([p(x) for p in parts], dim=1)
        fused = torch.nn.Linear(x.shape[1], 3 * parts[0].out_features)
        with torch.no_grad():
            fused.weight.copy_(torch.cat([p.weight for p in parts]))
            fused.bias.copy_(torch.cat([p.bias for p in parts]))
        sa._packed_qkv = fused
    return fused(x)


@functools.lru_cache(maxsize=1)
def matmul_dtype() -> str:
    """'bf16' or 'fp32': the faster of the two for an encoder-sized Linear on this CPU."""
    forced = os.environ.get(DTYPE_ENV, "").strip().lower()
    if forced in ("fp32", "bf16"):
        return forced
    if forced not in ("", "auto"):
        raise ValueError(f"{DTYPE_ENV}={forced!r}: use fp32, bf16 or auto")
    fp32, bf16 = _time_linear(False), _time_linear(True)
    choice = "bf16" if fp32 / bf16 >= BF16_MIN_SPEEDUP else "fp32"
    log.info("transformer matmuls in %s (fp32 %.2f ms, bf16 %.2f ms per probe)", choice, fp32 * 1e3, bf16 * 1e3)
    return choice


def _time_linear(bf16: bool, rounds: int = 5) -> float:
    """Best-of-rounds time of a (512 x 384) @ (384 x 1536) Linear, the shape of the encoder's FFN."""
    import torch

    gen = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(384, 1536)
    x = torch.randn(512, 384, generator=gen)
    best = float("inf")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        lin(x)  # first call pays for kernel selection
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(4):
                lin(x)
            best = min(best, time.perf_counter() - t)
    return best
