"""Metrics on hand-made predictions, checked by hand."""

import json

import pytest

from classifiers.base import Prediction
from classifiers.dataset import Record
from classifiers.evaluate import evaluate, figures, format_report, to_json

SCORES = {"complaint": 0.0, "question": 0.0, "negative": 0.0, "spam": 0.0}


def rec(i: int, labels: tuple[str, ...], unit: str | None, lang: str = "id", hard: bool = False) -> Record:
    return Record(f"r{i}", "kemensos", "comment", "x", labels, unit, lang, hard)


def pred(labels: tuple[str, ...], unit: str | None, lang: str = "id", source: str = "model") -> Prediction:
    return Prediction(labels=labels, scores=SCORES, unit=unit, lang=lang, unit_source=source)


RECORDS = [
    rec(0, ("complaint",), "linjamsos"),
    rec(1, ("complaint", "question"), "pfm", hard=True),
    rec(2, ("negative",), "humas", lang="jv"),
    rec(3, ("spam",), None, hard=True),
    rec(4, (), None, lang="en"),
]
PREDS = [
    pred(("complaint",), "linjamsos"),            # exact
    pred(("question",), "pfm"),                   # complaint missed
    pred(("negative", "complaint"), "humas", lang="id"),  # complaint false positive, wrong language
    pred((), None, source="none"),                # spam missed
    pred(("spam",), None, lang="en", source="none"),  # spam false positive
]


def test_per_label_counts() -> None:
    rep = evaluate(RECORDS, PREDS, seconds=2.0)
    c = rep["overall"]["per_label"]["complaint"]
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (1, 1, 1, 2)
    assert c["precision"] == pytest.approx(0.5) and c["recall"] == pytest.approx(0.5) and c["f1"] == pytest.approx(0.5)
    q = rep["overall"]["per_label"]["question"]
    assert (q["tp"], q["fp"], q["fn"]) == (1, 0, 0) and q["f1"] == 1.0
    n = rep["overall"]["per_label"]["negative"]
    assert n["f1"] == 1.0
    s = rep["overall"]["per_label"]["spam"]
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (0, 1, 1, 3) and s["f1"] == 0.0
    assert rep["overall"]["macro_f1"] == pytest.approx((0.5 + 1 + 1 + 0) / 4)


def test_exact_match_and_unit_accuracy() -> None:
    rep = evaluate(RECORDS, PREDS)
    assert rep["overall"]["exact_match"] == pytest.approx(1 / 5)
    assert rep["overall"]["unit_accuracy"] == 1.0  # None == None counts
    assert rep["language_accuracy"] == pytest.approx(4 / 5)


def test_hard_subset_and_languages() -> None:
    rep = evaluate(RECORDS, PREDS)
    assert rep["hard"]["n"] == 2
    assert rep["hard"]["exact_match"] == 0.0
    assert set(rep["by_lang"]) == {"id", "jv", "en"}
    assert rep["by_lang"]["id"]["n"] == 3


def test_unit_confusion_and_throughput() -> None:
    preds = list(PREDS)
    preds[0] = pred(("complaint",), "pfm")
    rep = evaluate(RECORDS, preds, seconds=2.0)
    assert rep["overall"]["unit_accuracy"] == pytest.approx(4 / 5)
    assert rep["unit_confusion"] == {"kemensos:linjamsos": {"pfm": 1}}
    assert rep["messages_per_second"] == pytest.approx(2.5)
    assert rep["unit_sources"] == {"model": 3, "none": 2}


def test_text_and_json_reports() -> None:
    rep = evaluate(RECORDS, PREDS, seconds=1.0)
    text = format_report(rep)
    assert "macro-F1" in text and "complaint" in text and "throughput" in text and "hard" in text
    assert json.loads(to_json(rep))["overall"]["n"] == 5


def test_empty_subset_is_zero_not_error() -> None:
    fig = figures([], [], [], [])
    assert fig["n"] == 0 and fig["macro_f1"] == 0.0


def test_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        evaluate(RECORDS, PREDS[:2])
