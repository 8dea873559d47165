"""The e5 (XLM-R) tokenizer on SentencePiece: same ids as tokenizer.json, an eighth of the memory.

Why: the `tokenizers` library builds its Unigram model for XLM-R's 250,002
pieces as a trie of hash maps, which measured ~260 MB resident (~400 MB with
transformers' AutoTokenizer), a third of the classifier's memory. SentencePiece
keeps the same pieces in a double-array trie: ~55 MB, and it encodes ~9x
faster. The vocabulary, scores and normalisation (the precompiled NFKC char
map) are taken from tokenizer.json unchanged, with pieces in tokenizer.json's
order, so ids need no remapping. On 18,292 messages (our data, the dev set,
SmSA) it gave identical ids for all but 3: two equal-score segmentations of
runs of "x", and the literal text "<mask>", which SentencePiece rightly keeps
as text instead of turning it into a control token.

`write_model(tokenizer_json, dst)` writes the SentencePiece model file
(classifiers.e5_weights does it once when it builds the base folder);
`E5Tokenizer.load(base_dir)` reads it, or converts tokenizer.json in memory
when the file is absent (the tiny test models). `pad_ids(rows, pad_id)` pads a
batch of ids into the tensors the encoder takes (torch is imported there only).

The model file is a protobuf (sentencepiece_model.proto); the few fields it
needs are written by hand here, so that protobuf is not a dependency.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any, Sequence

MODEL_FILE = "sentencepiece.model"

# sentencepiece_model.proto: SentencePiece.Type
_NORMAL, _UNKNOWN, _CONTROL = 1, 2, 3
_UNIGRAM = 1  # TrainerSpec.ModelType


class TokenizerFormatError(ValueError):
    """tokenizer.json is not an XLM-R-style Unigram tokenizer."""


# ------------------------------------------------------------ protobuf wire format


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # negative int32 values are sent as 10-byte two's complement
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _field_float(number: int, value: float) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<f", value)


# ------------------------------------------------------------ conversion


def _specials(tj: dict[str, Any]) -> dict[str, int]:
    return {t["content"]: int(t["id"]) for t in tj.get("added_tokens", []) if t.get("special")}


def _charsmap(tj: dict[str, Any]) -> bytes | None:
    """The precompiled normaliser map, or None for a tokenizer without one."""
    norm = tj.get("normalizer") or {}
    steps = norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm]
    for step in steps:
        if step and step.get("type") == "Precompiled":
            return base64.b64decode(step["precompiled_charsmap"])
    return None


def model_bytes(tj: dict[str, Any]) -> bytes:
    """A serialised SentencePiece ModelProto with tokenizer.json's pieces, scores and normaliser."""
    model = tj.get("model") or {}
    if model.get("type") != "Unigram":
        raise TokenizerFormatError(f"expected a Unigram tokenizer, got {model.get('type')!r}")
    pre = tj.get("pre_tokenizer") or {}
    if pre.get("type") != "Metaspace":
        raise TokenizerFormatError(f"expected the Metaspace pre-tokenizer, got {pre.get('type')!r}")
    vocab = model["vocab"]
    specials = _specials(tj)
    unk = model.get("unk_id")
    need = {"<s>", "</s>", "<pad>"}
    if unk is None or not need <= set(specials):
        raise TokenizerFormatError("tokenizer.json needs an unk_id and the special tokens <s>, </s>, <pad>")
    out = bytearray()
    for i, (piece, score) in enumerate(vocab):
        kind = _UNKNOWN if i == unk else _CONTROL if piece in specials else _NORMAL
        out += _field_bytes(1, _field_bytes(1, piece.encode("utf-8")) + _field_float(2, float(score))
                            + _field_varint(3, kind))
    trainer = (_field_varint(3, _UNIGRAM) + _field_varint(4, len(vocab))
               + _field_varint(40, int(unk)) + _field_varint(41, specials["<s>"])
               + _field_varint(42, specials["</s>"]) + _field_varint(43, specials["<pad>"])
               + _field_bytes(45, vocab[unk][0].encode()) + _field_bytes(46, b"<s>")
               + _field_bytes(47, b"</s>") + _field_bytes(48, b"<pad>"))
    out += _field_bytes(2, trainer)
    charsmap = _charsmap(tj)
    normalizer = _field_bytes(1, b"nmt_nfkc" if charsmap else b"identity")
    if charsmap:
        normalizer += _field_bytes(2, charsmap)
    # add_dummy_prefix (Metaspace's prefix space), remove_extra_whitespaces, escape_whitespaces
    normalizer += _field_varint(3, 1) + _field_varint(4, 1) + _field_varint(5, 1)
    out += _field_bytes(3, normalizer)
    return bytes(out)


def write_model(tokenizer_json: Path, dst: Path) -> None:
    tj = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    Path(dst).write_bytes(model_bytes(tj))


# ------------------------------------------------------------ the tokenizer


class E5Tokenizer:
    """Token ids with <s> ... </s>, truncated from the end: the start of a long DM is kept."""

    def __init__(self, processor: Any) -> None:
        self._sp = processor
        self.bos_id = int(processor.bos_id())
        self.eos_id = int(processor.eos_id())
        self.pad_token_id = int(processor.pad_id())

    @classmethod
    def load(cls, base_dir: Path) -> "E5Tokenizer":
        import sentencepiece as spm

        base_dir = Path(base_dir)
        path = base_dir / MODEL_FILE
        if path.is_file():
            return cls(spm.SentencePieceProcessor(model_file=str(path)))
        tj = json.loads((base_dir / "tokenizer.json").read_text(encoding="utf-8"))
        return cls(spm.SentencePieceProcessor(model_proto=model_bytes(tj)))

    def encode(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        if max_length < 3:
            raise ValueError("max_length must leave room for <s>, a token and </s>")
        keep = max_length - 2
        return [[self.bos_id, *ids[:keep], self.eos_id] for ids in self._sp.encode(list(texts))]

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self._sp.id_to_piece(int(i)) for i in ids]


def pad_ids(rows: list[list[int]], pad_id: int):
    """(input_ids, attention_mask) torch tensors of a batch, padded to its longest row."""
    import torch

    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    am = torch.zeros((len(rows), T), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        am[i, : len(r)] = 1
    return ids, am
