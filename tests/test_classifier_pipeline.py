"""The n-gram pipeline end to end, trained in seconds on a small synthetic set."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from classifiers.base import LABELS, AccountRules, MessageIn, UnitRules
from classifiers.commands import classify_stream, evaluate_file
from classifiers.dataset import Record, write_records
from classifiers.pipeline import load_classifier
from classifiers.training import TrainOptions, train_all

RULES = {
    "kemensos": AccountRules("kemensos", "humas", (
        UnitRules("linjamsos", ("pkh",)),
        UnitRules("pfm", ("bpnt",)),
        UnitRules("rehsos", ("lansia",)),
        UnitRules("humas", ()),
    )),
    "kemendag": AccountRules("kemendag", "humas", (
        UnitRules("pdn", ("minyak goreng",)),
        UnitRules("pktn", ()),
        UnitRules("humas", ()),
    )),
}

TEMPLATES = {
    ("complaint",): ["{p} saya belum cair sudah {n} bulan", "{p} ibu saya dipotong, tolong dicek", "nama saya hilang dari {p}"],
    ("question",): ["mohon info syarat daftar {p}", "kapan jadwal {p} tahap {n}?", "cara daftar {p} bagaimana ya"],
    ("complaint", "negative"): ["{p} tidak cair lagi, kalian kerja apa sih!!", "muak sama {p}, bertahun tahun ga cair, payah"],
    ("negative",): ["pejabat korup semua, payah", "kerja kalian ngapain aja sih, memalukan", "dasar pembohong semua"],
    ("spam",): ["slot gacor hari ini maxwin {n}x cek bio", "DEWA{n} situs terpercaya depo 10k", "s l o t g4c0r link di bio bosku"],
    (): ["terima kasih kemensos 🙏", "mantap min, semangat", "selamat pagi semua", "❤️❤️"],
}
TOPICS = {"kemensos": [("pkh", "linjamsos"), ("bpnt", "pfm"), ("kursi roda lansia", "rehsos"), ("harga cabai", "humas")],
          "kemendag": [("minyak goreng", "pdn"), ("barang palsu toko online", "pktn"), ("bansos pkh", "humas")]}


def synthetic(n_per: int, seed: int, prefix: str) -> list[Record]:
    rng = random.Random(seed)
    out: list[Record] = []
    for labels, templates in TEMPLATES.items():
        for _ in range(n_per):
            account = rng.choice(sorted(TOPICS))
            topic, unit = rng.choice(TOPICS[account])
            text = rng.choice(templates).format(p=topic, n=rng.randint(2, 99))
            if not labels or labels == ("spam",):
                u = None
            elif set(labels) & {"complaint", "question"}:
                u = unit
            else:
                u = "humas"
            out.append(Record(f"{prefix}-{len(out)}", account, rng.choice(["comment", "dm"]), text, labels, u, "id"))
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    report = train_all(synthetic(30, 1, "tr"), out, rules=RULES,
                       options=TrainOptions(skip_transformer=True, folds=3), progress=lambda s: None)
    assert report["config"]["default_backend"] == "ngram"
    return out


@pytest.fixture(scope="module")
def clf(model_dir: Path):  # type: ignore[no-untyped-def]
    return load_classifier(RULES, model_dir, backend="ngram")


def test_artifacts_are_small(model_dir: Path) -> None:
    names = sorted(p.name for p in model_dir.iterdir())
    assert names == ["config.json", "ngram_labels.joblib", "ngram_spam.joblib", "unit_ngram.joblib"]
    assert sum(p.stat().st_size for p in model_dir.iterdir()) < 5_000_000


def test_default_backend_without_transformer_is_ngram(model_dir: Path) -> None:
    clf = load_classifier(RULES, model_dir)
    assert clf.config.name == "ngram"


def test_predicts_labels_scores_unit_lang(clf) -> None:  # type: ignore[no-untyped-def]
    preds = clf.predict([
        MessageIn("kemensos", "comment", "pkh saya belum cair sudah 5 bulan"),
        MessageIn("kemensos", "comment", "slot gacor hari ini maxwin 7x cek bio"),
        MessageIn("kemensos", "comment", "terima kasih kemensos 🙏"),
        MessageIn("kemendag", "dm", "mohon info syarat daftar minyak goreng"),
    ])
    assert [p.labels for p in preds] == [("complaint",), ("spam",), (), ("question",)]
    assert [p.unit for p in preds] == ["linjamsos", None, None, "pdn"]
    assert preds[0].unit_source == "rule"
    for p in preds:
        assert set(p.scores) == set(LABELS)
        assert all(0.0 <= v <= 1.0 for v in p.scores.values())
        assert p.lang in ("id", "en", "jv", "su", "mixed")


def test_spam_stands_alone(clf) -> None:  # type: ignore[no-untyped-def]
    for p in clf.predict([MessageIn("kemensos", "comment", "pkh tidak cair, mending 𝐒𝐋𝐎𝐓 𝐆𝐀𝐂𝐎𝐑 maxwin cek bio")]):
        assert "spam" not in p.labels or p.labels == ("spam",)


def test_new_keyword_without_retraining(model_dir: Path) -> None:
    text = "mohon info syarat daftar barang palsu toko online"
    before = load_classifier(RULES, model_dir, backend="ngram").predict([MessageIn("kemendag", "dm", text)])[0]
    assert before.unit_source == "model"
    rules = dict(RULES)
    acc = rules["kemendag"]
    rules["kemendag"] = AccountRules(acc.account, acc.default_unit,
                                     acc.units + (UnitRules("pdn", ("toko online",)),))
    after = load_classifier(rules, model_dir, backend="ngram").predict([MessageIn("kemendag", "dm", text)])[0]
    assert (after.unit, after.unit_source) == ("pdn", "rule")


BAD = ["", " ", "\x00\x01\x02\x1b[31m", "😀" * 50, "🙏", "https://bit.ly/xyz", "@kemensos", "a" * 100_000,
       "tolong min " * 10_000, "\ud800", "𝐒" * 1000, "\u202e\u200b", "12345678901234567890"]


@pytest.mark.parametrize("text", BAD)
def test_bad_input_never_crashes(clf, text: str) -> None:  # type: ignore[no-untyped-def]
    (p,) = clf.predict([MessageIn("kemensos", "comment", text)])
    assert set(p.scores) == set(LABELS)
    assert p.unit is None or p.unit in ("linjamsos", "pfm", "rehsos", "humas")


def test_bad_batch_and_unknown_account(clf) -> None:  # type: ignore[no-untyped-def]
    msgs = [MessageIn("kemenkeu", "comment", "pajak saya salah, tolong dicek")] + [MessageIn("kemensos", "dm", t) for t in BAD]
    preds = clf.predict(msgs)
    assert len(preds) == len(msgs)
    assert preds[0].unit is None
    assert clf.predict([]) == []


def test_classify_stream_with_bad_lines(clf) -> None:  # type: ignore[no-untyped-def]
    lines = [
        json.dumps({"id": "a", "account": "kemensos", "channel": "comment", "text": "pkh saya belum cair sudah 3 bulan"}),
        "{not json",
        json.dumps({"id": "b", "account": "kemensos", "channel": "comment"}),
        json.dumps([1, 2]),
        "",
        json.dumps({"id": "c", "account": "kemensos", "channel": "fax", "text": "halo"}),
        json.dumps({"id": "d", "account": "kemendag", "channel": "dm", "text": "slot gacor hari ini maxwin 9x cek bio"}),
    ]
    out, err = io.StringIO(), io.StringIO()
    rc = classify_stream(io.StringIO("\n".join(lines) + "\n"), out, clf, err_stream=err)
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert rc == 1
    assert [r.get("id") for r in rows] == ["a", None, "b", None, "c", "d"]
    assert rows[0]["labels"] == ["complaint"] and rows[0]["unit"] == "linjamsos" and rows[0]["lang"] == "id"
    assert set(rows[0]["scores"]) == set(LABELS)
    assert rows[1]["line"] == 2 and "JSON" in rows[1]["error"]
    assert "text" in rows[2]["error"]
    assert "channel" in rows[4]["error"]
    assert rows[5]["labels"] == ["spam"] and rows[5]["unit"] is None
    assert len(err.getvalue().splitlines()) == 4


def test_classify_stream_survives_a_failing_classifier() -> None:
    class Broken:
        def predict(self, messages):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    out, err = io.StringIO(), io.StringIO()
    line = json.dumps({"id": 1, "account": "kemensos", "channel": "dm", "text": "x"})
    classify_stream(io.StringIO(line + "\n" + line + "\n"), out, Broken(), err_stream=err)
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r["error"] for r in rows] == ["classifier failed", "classifier failed"]


def test_evaluate_file(clf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "eval.jsonl"
    write_records(synthetic(5, 2, "ev"), path)
    report = evaluate_file(path, clf)
    assert report.data["overall"]["n"] == 30
    assert report.data["overall"]["macro_f1"] > 0.8
    assert "macro-F1" in str(report)
    assert json.loads(report.to_json())["overall"]["n"] == 30


def test_cascade_rules_decide_which_rows_are_sure() -> None:
    import numpy as np

    from classifiers.pipeline import sure_rows

    th = {"complaint": 0.5, "question": 0.5, "negative": 0.25, "spam": 0.5}
    #                 complaint question negative spam (spam never counts)
    probs = np.array([[0.02, 0.97, 0.05, 0.99],   # sure on every label
                      [0.02, 0.97, 0.20, 0.00],   # negative 0.20: just under its low threshold
                      [0.45, 0.97, 0.05, 0.00]])  # complaint 0.45: near its threshold
    assert sure_rows(probs, th, 0.0, "relative").tolist() == [False, False, False]  # margin 0: no cascade
    assert sure_rows(probs, th, 0.5, "relative").tolist() == [True, False, False]
    # an absolute margin at the negative threshold leaves no room below it: nothing is sure
    assert sure_rows(probs, th, 0.25, "absolute").tolist() == [False, False, False]
    assert sure_rows(probs, th, 0.2, "absolute").tolist() == [True, False, False]
    with pytest.raises(ValueError, match="cascade rule"):
        sure_rows(probs, th, 0.5, "sideways")


def test_a_config_with_an_unknown_cascade_rule_is_refused(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "model"
    shutil.copytree(model_dir, bad)
    config = json.loads((bad / "config.json").read_text())
    config["backends"]["ngram"]["cascade_rule"] = "sideways"
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="backend 'ngram': unknown cascade_rule 'sideways'"):
        load_classifier(RULES, bad, backend="ngram")
