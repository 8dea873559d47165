"""Public sentiment rows train the `negative` label only, never the others or the calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers.base import LABELS
from classifiers.ngram import NgramLabelModel
from classifiers.training import Extra, fit_labels, load_sentiment_extra, oof_probs, read_trained_on, with_extra

NEG = LABELS.index("negative")
COMPLAINT = LABELS.index("complaint")

OURS = [
    ("bansos saya belum cair tolong dicek", (1, 0, 0, 0)),
    ("nama ibu hilang dari data, mohon diperbaiki", (1, 0, 0, 0)),
    ("saldo kks kosong padahal jadwal sudah lewat", (1, 0, 0, 0)),
    ("mohon info syarat daftar pkh", (0, 1, 0, 0)),
    ("kapan jadwal pencairan tahap dua", (0, 1, 0, 0)),
    ("cara daftar dtks bagaimana ya", (0, 1, 0, 0)),
    ("pejabat korup semua, memalukan", (0, 0, 1, 0)),
    ("kerja kalian ngapain aja, payah", (0, 0, 1, 0)),
    ("dasar pembohong semua", (0, 0, 1, 0)),
    ("terima kasih kemensos", (0, 0, 0, 0)),
    ("selamat pagi semua", (0, 0, 0, 0)),
    ("mantap min semangat", (0, 0, 0, 0)),
] * 3


def _ours():
    return [t for t, _ in OURS], np.array([y for _, y in OURS])


def test_extra_rows_train_negative_only() -> None:
    texts, y = _ours()
    # "zonk" is negative in the public rows; those rows also claim `complaint`, which must be ignored
    public = ["makanannya zonk parah", "pelayanan zonk, kecewa", "zonk banget tempatnya", "kamar zonk dan kotor",
              "harganya wajar", "tempatnya nyaman", "pelayanannya ramah", "makanannya enak"] * 3
    extra = Extra.sentiment(public, np.array(([1] * 4 + [0] * 4) * 3), weight=1.0)
    extra.y[:, COMPLAINT] = 1
    model = fit_labels(NgramLabelModel(seed=1, min_df=1), texts, y, extra)
    plain = NgramLabelModel(seed=1, min_df=1).fit(texts, y)
    p, q = model.predict_proba(["zonk"])[0], plain.predict_proba(["zonk"])[0]
    assert p[NEG] > q[NEG] + 0.1
    assert p[COMPLAINT] < 0.5


def test_with_extra_weights_and_oof_keeps_our_rows_only() -> None:
    texts, y = _ours()
    extra = Extra.sentiment(["jelek", "bagus"], np.array([1, 0]), weight=0.3)
    t, yy, w = with_extra(texts, y, extra)
    assert len(t) == len(texts) + 2 and yy.shape == (len(texts) + 2, len(LABELS))
    assert (w[: len(texts)] == 1).all()
    assert np.allclose(w[-1], [0.0, 0.0, 0.3, 0.0])
    oof = oof_probs(lambda: NgramLabelModel(seed=1, min_df=1), texts, y, 3, 1, extra)
    assert oof.shape == y.shape  # scored on our rows only


def test_load_sentiment_extra_is_a_seeded_sample(tmp_path: Path) -> None:
    (tmp_path / "train_preprocess.tsv").write_text(
        "".join(f"teks nomor {i}\t{'negative' if i % 3 == 0 else 'positive'}\n" for i in range(50)), encoding="utf-8")
    a = load_sentiment_extra(tmp_path, rows=10, weight=0.5, seed=7)
    b = load_sentiment_extra(tmp_path, rows=10, weight=0.5, seed=7)
    assert a.texts == b.texts and len(a.texts) == 10
    for text, row in zip(a.texts, a.y):
        assert row[NEG] == (int(text.split()[-1]) % 3 == 0)
    assert (a.weights[:, NEG] == 0.5).all() and a.weights.sum() == 5.0


def _fake_smsa(folder: Path) -> Path:
    folder.mkdir()
    rows = {"negative": ["pelayanan lambat kecewa", "makanannya jelek sekali", "kamar kotor dan bau"],
            "positive": ["tempatnya nyaman sekali", "pelayanan ramah", "makanan enak"],
            "neutral": ["buka jam delapan", "lokasi di jalan utama"]}
    lines = [f"{t} {i}\t{label}\n" for i in range(6) for label, ts in rows.items() for t in ts]
    for part in ("train", "valid", "test"):
        (folder / f"{part}_preprocess.tsv").write_text("".join(lines), encoding="utf-8")
    return folder


def test_train_all_with_a_tiny_transformer_and_sentiment_rows(tmp_path: Path) -> None:
    """The whole training path: SmSA rows in, cascade checked on its validation split,
    the outrank level searched, every backend measured on its test split."""
    from classifiers.pipeline import read_config
    from classifiers.training import TrainOptions, train_all
    from tests.test_classifier_pipeline import RULES, synthetic
    from tests.test_transformer import _build_tiny_base

    base = _build_tiny_base(tmp_path / "base")
    (tmp_path / "public").mkdir()
    smsa = _fake_smsa(tmp_path / "public" / "indonlu_smsa")
    report = train_all(synthetic(12, 3, "tr"), tmp_path / "model", rules=RULES, smsa=smsa, public=tmp_path / "public",
                       base_dir=base, progress=lambda s: None,
                       options=TrainOptions(folds=3, epochs=1, sentiment_rows=40, quantize=False))
    assert report["sentiment_extra"]["rows"] == 40
    # the ensemble's `negative` threshold is the one chosen within the neutral budget (which
    # _budgeted_negative's own test shows binding), measured on SmSA's validation rows
    budget = report["ensemble_negative_budget"]["transformer"]
    assert budget["table"]["0.500"]["neutral_rate"] <= budget["budget"]
    config = read_config(tmp_path / "model")
    if report["ensemble"]["w_transformer"] > 0:
        assert config["backends"]["transformer"]["thresholds"]["negative"] == budget["chosen"]
    else:  # what this tiny transformer earns: no ensemble that is the n-gram backend under another name
        assert "transformer" not in config["backends"] and config["default_backend"] == "ngram"
        assert "transformer_only" in config["backends"]
    assert "smsa_valid_negative_f1" in report["cascade"]["table"]["absolute 0.2"]
    assert set(report["unit_outrank"]["table"]) == {"never", "0.5", "0.6", "0.7", "0.8", "0.9"}
    backends = read_config(tmp_path / "model")["backends"]
    assert {f"{b}_negative_f1" for b in backends} <= set(report["smsa_test"])
    assert all("unit_outrank_at" in b for b in backends.values())
    # the transformer says which records it learnt, so a later training can reuse it and tune
    # on the held-out records it never saw (the same records and seed: all of the held-out part)
    learnt = read_trained_on(tmp_path / "model" / "transformer")
    assert 0 < len(learnt) <= report["n_fit"]
    again = train_all(synthetic(12, 3, "tr"), tmp_path / "again", rules=RULES, smsa=smsa, public=tmp_path / "public",
                      base_dir=base, progress=lambda s: None,
                      options=TrainOptions(folds=3, epochs=1, sentiment_rows=40, quantize=False,
                                           reuse_transformer=tmp_path / "model" / "transformer"))
    assert again["transformer_reused"]["held_out_unseen"] == again["n_held"] > 0
    assert read_trained_on(tmp_path / "again" / "transformer") == learnt


def test_a_transformer_that_does_not_say_what_it_learnt_is_not_reused_blindly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="trained_on.txt"):
        read_trained_on(tmp_path)


# Real product reviews where a delivery gripe is no complaint to a ministry (the source says
# positive): the one model learns "lambat" is harmless; our records say a slow payout is a complaint.
REVIEWS = [("barang bagus pengiriman lambat", (0, 0, 0, 0)), ("produk oke tapi kurir lambat", (0, 0, 0, 0)),
           ("packing rapi, ongkir lambat sampai", (0, 0, 0, 0)), ("seller ramah barang sesuai", (0, 0, 0, 0))] * 12
SLOW = [("pencairan bansos lambat sekali", (1, 0, 0, 0)), ("bantuan pkh lambat cair", (1, 0, 0, 0))] * 3


def _mixed(domain_mix: bool) -> NgramLabelModel:
    texts, y = _ours()
    texts, y = texts + [t for t, _ in SLOW], np.concatenate([y, [y_ for _, y_ in SLOW]])
    extra = Extra([t for t, _ in REVIEWS], np.array([y_ for _, y_ in REVIEWS]),
                  np.full((len(REVIEWS), len(LABELS)), 1.0, dtype=np.float32))
    return fit_labels(NgramLabelModel(seed=1, min_df=1, domain_mix=domain_mix), texts, y, extra)


def test_domain_mix_lets_our_records_speak_for_our_kind_of_message() -> None:
    mixed, single = _mixed(True), _mixed(False)
    assert single.gate is None and mixed.gate is not None
    ministry, review = "bansos pkh lambat cair", "kurir lambat, barang oke"
    share = mixed.domain_share([ministry, review])
    assert share[0] > 0.5 > share[1]
    assert mixed.predict_proba([ministry])[0, COMPLAINT] > single.predict_proba([ministry])[0, COMPLAINT] + 0.05
    # the review is the real sets' kind: the mixture stays close to the model that learnt them
    assert abs(mixed.predict_proba([review])[0, COMPLAINT] - single.predict_proba([review])[0, COMPLAINT]) < 0.1


def test_domain_mix_is_the_gate_weighted_average_of_the_two_experts() -> None:
    from classifiers.ngram import _probs

    mixed = _mixed(True)
    texts = ["bansos lambat", "barang bagus", "selamat pagi"]
    x = mixed.features.transform(texts)
    g = mixed.domain_share(texts)[:, None]
    want = g * _probs(mixed.ours_models, mixed.labels, x) + (1 - g) * _probs(mixed.models, mixed.labels, x)
    assert np.allclose(mixed.predict_proba(texts), want)


def test_a_model_saved_before_the_mixture_still_predicts() -> None:
    texts, y = _ours()
    old = NgramLabelModel(seed=1, min_df=1).fit(texts, y)
    del old.gate, old.ours_models, old.domain_mix  # as unpickled from an older release
    assert old.predict_proba(["bansos belum cair"]).shape == (1, len(LABELS))
    assert (old.domain_share(["x"]) == 1.0).all()


def test_the_all_rows_expert_is_calibrated_on_our_records() -> None:
    from classifiers.ngram import CalibratedOnOurs, _probs

    mixed, single = _mixed(True), _mixed(False)
    assert isinstance(mixed.models["complaint"], CalibratedOnOurs)
    ours = [t for t, y in OURS + SLOW if y[COMPLAINT]]
    # the unlabelled reviews pull a calibration on all rows down; ours says what our complaints score
    on_ours = _probs(mixed.models, mixed.labels, mixed.features.transform(ours))[:, COMPLAINT]
    pooled = single.predict_proba(ours)[:, COMPLAINT]
    assert on_ours.mean() > pooled.mean()


def test_the_neutral_budget_bounds_each_group_of_real_messages_on_its_own(tmp_path: Path) -> None:
    """A set's many positive messages must not hide its neutral ones: each group is its own rate,
    read from the validation split only, and `negative` messages are never in it."""
    from classifiers.training import neutral_validation

    _fake_smsa(tmp_path / "indonlu_smsa")
    groups = neutral_validation(tmp_path)
    assert set(groups) == {"smsa/neutral", "smsa/positive"}
    assert len(groups["smsa/neutral"]) == 12 and len(groups["smsa/positive"]) == 18
    assert not any("kecewa" in t or "jelek" in t for texts in groups.values() for t in texts)
    assert neutral_validation(None) == {}
