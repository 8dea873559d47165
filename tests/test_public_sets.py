"""The real public sets: their labels mapped to ours, a stable text-keyed split, rates per group."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from classifiers.base import Prediction
from classifiers.public_sets import available, in_test_part, load_set, rates, score_sets
from classifiers.training import Extra


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture()
def public(tmp_path: Path) -> Path:
    tweets = [[f"saham BBCA naik {w} hari ini", "Neutral"] for w in ("pelan", "tajam", "lagi", "terus", "dikit")]
    tweets += [["apakah saham UNVR sudah murah?", "Neutral"], ["dividen BBRI mantap", "Positive"],
               ["rugi terus, dahlah", "Negative"]]
    write_csv(tmp_path / "idsmsa_stock" / "idsmsa.csv", ["text", "label"], tweets)
    reviews = [["barang bagus, seller ramah", "Positive", "Happy", "5"],
               ["barang rusak, seller kabur, kecewa", "Negative", "Anger", "1"],
               ["paket belum sampai, sedih", "Negative", "Sadness", "2"]]
    write_csv(tmp_path / "prdect_id" / "prdect_id.csv", ["text", "sentiment", "emotion", "rating"], reviews)
    return tmp_path


def all_items(public: Path, name: str) -> list:  # type: ignore[type-arg]
    return load_set(name, public, "train") + load_set(name, public, "test")


def test_labels_are_mapped_as_the_sources_settle_them(public: Path) -> None:
    items = {it.text: it for it in all_items(public, "prdect_id")}
    assert items["barang bagus, seller ramah"].gold == {"complaint": 0, "question": 0, "negative": 0, "spam": 0}
    assert items["barang rusak, seller kabur, kecewa"].gold == {"complaint": 1, "spam": 0, "negative": 1}
    assert items["paket belum sampai, sedih"].gold == {"complaint": 1, "spam": 0}  # sadness: negative unsettled
    assert items["paket belum sampai, sedih"].unit == "pktn"
    tweets = [it.text for it in all_items(public, "idsmsa_stock")]
    assert "rugi terus, dahlah" not in tweets  # negative news is not our `negative`: not used


def test_the_split_is_by_text_and_stable(public: Path) -> None:
    train, test = load_set("idsmsa_stock", public, "train"), load_set("idsmsa_stock", public, "test")
    assert not {it.text for it in train} & {it.text for it in test}
    assert all(in_test_part(it.text) for it in test) and not any(in_test_part(it.text) for it in train)
    assert [it.text for it in load_set("idsmsa_stock", public, "test")] == [it.text for it in test]


def test_a_question_mark_leaves_question_unsettled_for_training(public: Path) -> None:
    items = [it for it in all_items(public, "idsmsa_stock") if "?" in it.text]
    extra = Extra.from_public(items, 1.0)
    q = 1  # LABELS.index("question")
    assert extra.weights[0, q] == 0 and extra.weights[0, 0] == 1


def test_rates_and_targets(public: Path) -> None:
    assert available(public) == ["idsmsa_stock", "prdect_id"]

    class Everything:
        def predict(self, messages):  # type: ignore[no-untyped-def]
            return [Prediction(("complaint", "negative"), {}, "pktn", "id") for _ in messages]

    report = score_sets(Everything(), public)
    figures = report["figures"]
    for group, fig in figures.items():
        assert fig["complaint"] == 1.0 and fig["spam"] == 0.0, group
    for row in report["targets"]:
        if row["group"] in figures:  # everything is called a complaint: each "≤" on complaint fails
            assert row["measured"] == figures[row["group"]][row["label"]]
            assert row["met"] == (row["measured"] <= row["bound"] if row["kind"] == "max"
                                  else row["measured"] >= row["bound"])
        else:
            assert row["met"] is None and row["measured"] is None  # the set is absent
    assert rates([], []) == {}
