"""The SentencePiece tokenizer gives tokenizer.json's ids; the 4-bit embedding table gives the fp32 rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.tokenizer import E5Tokenizer, TokenizerFormatError, model_bytes, write_model

from tests.test_transformer import BAD_INPUTS, TEXTS, _build_tiny_base


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    return _build_tiny_base(tmp_path_factory.mktemp("tiny_tok"))


def _reference_ids(base: Path, texts: list[str], max_length: int) -> list[list[int]]:
    from tokenizers import Tokenizer

    tk = Tokenizer.from_file(str(base / "tokenizer.json"))
    tk.enable_truncation(max_length)
    return [e.ids for e in tk.encode_batch(texts)]


def _cleaned(texts: list[str]) -> list[str]:
    from classifiers.transformer import PREFIX, clean_text

    return [PREFIX + clean_text(t) for t in texts]


def test_same_ids_as_tokenizer_json(tiny_base):
    texts = _cleaned(TEXTS + BAD_INPUTS + ["bansos    pkh", "  dtks  ", "BANSOS pkh"])
    texts = [t for t in texts if t.strip() != "query:"]
    assert E5Tokenizer.load(tiny_base).encode(texts, 32) == _reference_ids(tiny_base, texts, 32)


def test_an_empty_message_is_the_prefix_alone(tiny_base):
    """No trailing-space piece: what transformers' XLM-R tokenizer gave in training ("query: " + "")."""
    tok = E5Tokenizer.load(tiny_base)
    assert tok.encode(_cleaned(["", "   "]), 32) == [tok.encode(["query:"], 32)[0]] * 2


def test_model_file_is_read_when_present(tiny_base, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "tokenizer.json").write_text((tiny_base / "tokenizer.json").read_text())
    write_model(base / "tokenizer.json", base / "sentencepiece.model")
    (base / "tokenizer.json").unlink()  # only the model file is left to read
    texts = _cleaned(TEXTS[:5])
    assert E5Tokenizer.load(base).encode(texts, 32) == _reference_ids(tiny_base, texts, 32)


def test_truncation_keeps_the_start_and_the_specials(tiny_base):
    tok = E5Tokenizer.load(tiny_base)
    long = tok.encode(["query: " + "bansos pkh " * 50], 16)[0]
    assert len(long) == 16
    assert long[0] == tok.bos_id and long[-1] == tok.eos_id
    assert tok.pieces(long[1:4]) == ["\u2581query:", "\u2581bansos", "\u2581pkh"]
    assert tok.encode([""], 16) == [[tok.bos_id, tok.eos_id]]
    with pytest.raises(ValueError, match="max_length"):
        tok.encode(["x"], 2)


def test_refuses_a_tokenizer_it_cannot_reproduce(tiny_base):
    tj = json.loads((tiny_base / "tokenizer.json").read_text())
    word_level = dict(tj, model={"type": "WordLevel", "vocab": {"<unk>": 0}, "unk_token": "<unk>"})
    with pytest.raises(TokenizerFormatError, match="Unigram"):
        model_bytes(word_level)
    with pytest.raises(TokenizerFormatError, match="Metaspace"):
        model_bytes(dict(tj, pre_tokenizer={"type": "Whitespace"}))
    with pytest.raises(TokenizerFormatError, match="special tokens"):
        model_bytes(dict(tj, added_tokens=[]))


def test_q4_embedding_rows_are_the_dequantised_rows():
    """Q4Embedding's arithmetic is _dequant_q4's: bit-identical rows, whatever the lookup shape."""
    import torch

    from classifiers.e5_weights import QK, _dequant_q4, _q4_embedding_class

    rng = np.random.default_rng(0)
    rows, hidden = 50, 64
    blocks = rng.integers(0, 256, size=(rows * hidden // QK, 18), dtype=np.uint8)
    scales = (rng.standard_normal(rows * hidden // QK) * 0.05).astype(np.float16)
    blocks[:, :2] = scales.view(np.uint8).reshape(-1, 2)
    table = _dequant_q4(blocks.tobytes(), 0, rows * hidden).reshape(rows, hidden)
    b = blocks.reshape(rows, hidden // QK, 18)
    emb = _q4_embedding_class()(torch.from_numpy(b[:, :, :2].copy().view(np.float16)[:, :, 0].copy()),
                                torch.from_numpy(b[:, :, 2:].copy()))
    ids = torch.tensor([[0, 7, 49, 7], [3, 3, 1, 0]])
    got = emb(ids).numpy()
    assert got.shape == (2, 4, hidden) and got.dtype == np.float32
    assert np.array_equal(got, table[ids.numpy()])


@pytest.mark.slow
def test_real_tokenizer_and_embeddings_match_the_fp32_folder():
    """On the real base folder: same ids as tokenizer.json on our training texts, same embedding rows."""
    import torch
    from safetensors import safe_open

    from classifiers.e5_weights import Q4_EMBEDDINGS, base_model_dir, load_q4_embedding

    base = base_model_dir()
    texts = [json.loads(line)["text"] for f in sorted((Path(__file__).parents[1] / "classifiers" / "data"
                                                       / "train").glob("*.jsonl"))
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = _cleaned(texts)
    ours = E5Tokenizer.load(base).encode(texts, 128)
    ref = _reference_ids(base, texts, 128)
    differ = [i for i in range(len(texts)) if ours[i] != ref[i]]
    # equal-score segmentations (runs of "x") may come out in another order: same pieces, same length
    assert len(differ) <= len(texts) // 1000, [texts[i] for i in differ[:5]]
    assert all(sorted(ours[i]) == sorted(ref[i]) for i in differ)

    assert (base / Q4_EMBEDDINGS).is_file()
    emb = load_q4_embedding(base)
    ids = torch.tensor(sorted({i for row in ours[:500] for i in row}))
    with safe_open(str(base / "model.safetensors"), "pt") as f:
        table = f.get_tensor("embeddings.word_embeddings.weight")
    assert torch.equal(emb(ids), table[ids])
