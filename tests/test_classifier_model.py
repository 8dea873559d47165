"""Regression: the shipped default model on the evaluation set (slow: loads the full model).

The thresholds below are the project's targets (shipped figures in
classifiers/MODEL_CARD.md); they are not lowered to make a test pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bot.config import load_routing
from classifiers import evaluate
from classifiers.base import AccountRules, MessageIn
from classifiers.dataset import load_records
from classifiers.pipeline import DEFAULT_MODEL_DIR, load_classifier, read_config

EVAL = Path(__file__).resolve().parents[1] / "classifiers" / "data" / "eval.jsonl"
TARGETS = {"smsa_negative_f1": 0.85}
SMSA = Path(__file__).resolve().parents[2] / "shared" / "data" / "public" / "indonlu_smsa"  # ../shared, as in CI

pytestmark = pytest.mark.slow


def project_rules() -> dict[str, AccountRules]:
    """The routing rules of routing.yaml ($TRIAGE_CONFIG or the project's copy)."""
    root = Path(__file__).resolve().parents[1]
    return load_routing(Path(os.environ.get("TRIAGE_CONFIG", root / "routing.yaml"))).account_rules()


@pytest.fixture(scope="module")
def report() -> dict:  # type: ignore[type-arg]
    """The `ngram` backend: what `default` measures itself to be on this project's machines, and
    the same everywhere (the default's choice depends on the machine's speed)."""
    if not (DEFAULT_MODEL_DIR / "config.json").exists():
        pytest.fail("no shipped model in classifiers/model; run `triage train`")
    clf = load_classifier(project_rules(), backend="ngram")
    return evaluate.run(clf, load_records(EVAL))


# Issue 12's evaluation-set targets. The n-gram backend (the default on this project's machines,
# and the same everywhere) reaches all three (0.930 / 0.906 / 0.930; MODEL_CARD.md).
ISSUE_TARGETS = {"macro_f1": 0.92, "hard_macro_f1": 0.89, "unit_accuracy": 0.93}
# What this model measured when it was trained. It is below the models it replaced (0.937 / 0.921 /
# 0.932, then 0.932 / 0.910 / 0.930) on purpose: its `negative` threshold holds each group of real
# neutral and positive messages to the 8% bound, at the upper end of what the group's rate
# estimates (SmSA's test rows 0.122 -> 0.081 -> 0.071), which costs `negative` recall on our
# records. A change to the pipeline or a retraining may not fall below it without saying so here.
SHIPPED = {"macro_f1": 0.930, "hard_macro_f1": 0.906, "unit_accuracy": 0.930}


def _figures(report: dict) -> dict[str, float]:  # type: ignore[type-arg]
    return {"macro_f1": report["overall"]["macro_f1"], "hard_macro_f1": report["hard"]["macro_f1"],
            "unit_accuracy": report["overall"]["unit_accuracy"]}


def test_no_figure_falls_below_what_the_shipped_model_measured(report: dict) -> None:  # type: ignore[type-arg]
    got = _figures(report)
    assert all(round(got[k], 3) >= SHIPPED[k] for k in SHIPPED), (got, evaluate.format_report(report))


def test_macro_f1(report: dict) -> None:  # type: ignore[type-arg]
    assert report["overall"]["macro_f1"] >= ISSUE_TARGETS["macro_f1"], evaluate.format_report(report)


def test_hard_case_macro_f1(report: dict) -> None:  # type: ignore[type-arg]
    assert report["hard"]["macro_f1"] >= ISSUE_TARGETS["hard_macro_f1"], evaluate.format_report(report)


def test_unit_accuracy(report: dict) -> None:  # type: ignore[type-arg]
    assert report["overall"]["unit_accuracy"] >= ISSUE_TARGETS["unit_accuracy"], evaluate.format_report(report)


PUBLIC = SMSA.parent


# Issue 12's real-set targets, every one: the default on this project's machines (ngram) and the
# ensemble that is the default where the transformer is fast enough (`fast` meets them too, see
# MODEL_CARD.md; left out here for CI's time).
@pytest.mark.parametrize("name", ["ngram", "transformer"])
def test_real_set_targets(name: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    from classifiers.public_sets import SETS, available, format_scores, score_sets

    if name != "ngram":
        pytest.importorskip("torch")
        from classifiers.packed import DTYPE_ENV, matmul_dtype

        # The figures were measured in fp32; where bf16 is faster the scorer would use it, and
        # its rounding moves scores near a threshold (complaint on positive reviews is 37 of 742).
        monkeypatch.setenv(DTYPE_ENV, "fp32")
        matmul_dtype.cache_clear()
        request.addfinalizer(matmul_dtype.cache_clear)
    assert available(PUBLIC) == list(SETS), f"the real sets are expected in {PUBLIC}"
    clf = load_classifier(project_rules(), backend=name)
    assert clf.config.name == name, clf.choice  # not the n-gram fallback of a missing transformer
    got = score_sets(clf, PUBLIC)
    missed = [row for row in got["targets"] if not row["met"]]
    assert not missed, format_scores(got)


@pytest.fixture(scope="module")
def smsa_negative_f1() -> float:
    from classifiers.training import f1_score, load_smsa

    if not SMSA.exists():
        pytest.skip(f"{SMSA} not found (the shared data sets sit beside the repository)")
    texts, negative = load_smsa(SMSA, "test")
    clf = load_classifier(project_rules(), backend="default")
    preds = clf.predict([MessageIn("kemensos", "comment", t) for t in texts])
    return f1_score(negative, np.array([int("negative" in p.labels) for p in preds]))


def test_smsa_negative_f1(smsa_negative_f1: float) -> None:
    """Real text, not written for this project: does `negative` generalise?"""
    assert smsa_negative_f1 >= TARGETS["smsa_negative_f1"]


def test_ngram_backend_loads_and_predicts() -> None:
    clf = load_classifier(project_rules(), backend="ngram")
    (p,) = clf.predict([MessageIn("kemensos", "comment", "min PKH tahap 2 kok belum cair ya?")])
    assert "complaint" in p.labels or "question" in p.labels
    assert p.unit == "linjamsos"


def test_default_backend_survives_bad_input() -> None:
    clf = load_classifier(project_rules(), backend="default")
    texts = ["", "😀" * 40, "https://bit.ly/x", "\x00\x07", "x" * 100_000]
    preds = clf.predict([MessageIn("kemendag", "comment", t) for t in texts])
    assert len(preds) == len(texts)


# Issue 12: what the media team must be able to trust on real text. The texts are written here,
# not taken from the evaluation set or the training data; every backend the default may choose
# that this model has is checked (training offers `fast` only when the int8 transformer adds
# something on held-out data).
BACKENDS = tuple(b for b in ("ngram", "transformer", "fast") if b in read_config(DEFAULT_MODEL_DIR)["backends"])
GAMBLING_NAMED = [
    ("kemensos", "situs slot gacor88 masih bisa dibuka sampai sekarang, tolong diblokir pak"),
    ("kemensos", "suami saya habis uang bansos buat depo di situs judol maxwin, tolong ditindak"),
    ("kemendag", "kenapa iklan situs judi online dibiarkan di kolom komentar akun ini min?"),
    ("kemendag", "saya ketipu robot trading yang promosi di link bio, uang 20jt hilang, lapor kemana ya"),
]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return load_classifier(project_rules(), backend=request.param)


def test_naming_a_gambling_site_to_complain_or_ask_keeps_the_ticket(backend) -> None:  # type: ignore[no-untyped-def]
    preds = backend.predict([MessageIn(acc, "comment", text) for acc, text in GAMBLING_NAMED])
    for (acc, text), p in zip(GAMBLING_NAMED, preds):
        assert "spam" not in p.labels and {"complaint", "question"} & set(p.labels), (text, p)
        assert p.unit is not None and not p.may_hide, (text, p)


# Not yet: the shipped model calls the issue's own example spam (`ngram`: spam 0.46, question
# 0.34) and "ada saran keyboard mekanik yang murah?" nothing at all (question 0.05, every backend).
# A retraining with 64 product questions written for it (classifiers/data/candidates) fixed the
# first but cost evaluation-set unit accuracy (0.932 -> 0.927, below 0.93), so it did not ship
# (MODEL_CARD.md). Strict: this turns red once a model gets them right.
@pytest.mark.xfail(strict=True, reason="product questions without a request word: not yet learnt (issue 12)")
def test_a_question_about_a_product_is_a_question_not_spam(backend) -> None:  # type: ignore[no-untyped-def]
    texts = ["rekomendasi router buat game?",  # issue 12's own example
             "hp yang enak buat main game online merk apa ya min",
             "ada saran keyboard mekanik yang murah?",
             "konsol game impor wajib SNI juga gak?"]
    for p in backend.predict([MessageIn("kemendag", "comment", t) for t in texts]):
        assert "spam" not in p.labels and "question" in p.labels and p.unit is not None, p


def test_complaints_outside_every_units_topics_reach_the_default_unit(backend) -> None:  # type: ignore[no-untyped-def]
    texts = ["lampu jalan depan rumah mati sudah seminggu, tolong diperbaiki",
             "jalan di depan gang kami berlubang besar, sudah 2 motor jatuh"]
    for account in ("kemensos", "kemendag"):
        for p in backend.predict([MessageIn(account, "comment", t) for t in texts]):
            assert "complaint" in p.labels and p.unit == "humas", p


def test_spaced_and_math_letter_brands_are_caught(backend) -> None:  # type: ignore[no-untyped-def]
    texts = ["𝐆 𝐀 𝐉 𝐀 𝐇 𝟕 𝟕 lagi gacor parah, wd berapapun dibayar, cek profil",
             "K O M E T 8 8 maxwin hari ini, depo 10rb aja bosku",
             "𝕻𝖆𝖓𝖙𝖆𝖎𝟒𝟒 anti rungkad, link di bio"]
    for p in backend.predict([MessageIn("kemensos", "comment", t) for t in texts]):
        assert p.labels == ("spam",), p


def test_the_default_is_the_most_accurate_backend_that_reaches_the_speed_targets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from classifiers import pipeline

    monkeypatch.setattr(pipeline, "SPEED_TARGETS", {"comment": 0.0, "dm": 0.0})
    reachable = load_classifier(project_rules(), backend="default")
    assert reachable.config.name == "transformer" and "reaches the targets" in reachable.choice
    monkeypatch.setattr(pipeline, "SPEED_TARGETS", {"comment": 1e9, "dm": 1e9})
    unreachable = load_classifier(project_rules(), backend="default")
    assert unreachable.config.name == "ngram"
    assert "transformer" in unreachable.choice and "below the targets" in unreachable.choice
