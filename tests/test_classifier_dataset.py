"""Loading, checking and merging labelled files."""

import json
from pathlib import Path
from typing import Sequence

import pytest

from classifiers.dataset import DatasetError, load_records, merge, split

GOOD = {"id": "a1", "account": "kemensos", "channel": "comment", "text": "pkh kok belum cair",
        "labels": ["complaint"], "unit": "linjamsos", "lang": "id"}


def write(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_loads_good_records(tmp_path: Path) -> None:
    recs = load_records(write(tmp_path / "a.jsonl", [GOOD, {**GOOD, "id": "a2", "labels": [], "unit": None}]))
    assert [r.id for r in recs] == ["a1", "a2"]
    assert recs[0].labels == ("complaint",) and recs[0].source.endswith("a.jsonl:1")


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", [
        GOOD,
        "{oops",
        {**GOOD, "labels": ["spam", "complaint"], "unit": None},
        {**GOOD, "labels": ["angry"]},
        {**GOOD, "labels": [], "unit": "humas"},
        {**GOOD, "unit": None},
        {**GOOD, "channel": "fax"},
        {**GOOD, "unit": "pdn"},
    ])
    with pytest.raises(DatasetError) as exc:
        load_records(path, units={"kemensos": {"linjamsos", "humas"}})
    msg = str(exc.value)
    for line in range(2, 9):
        assert f"bad.jsonl:{line}:" in msg
    assert "bad.jsonl:1:" not in msg
    assert "stand alone" in msg and "unknown label" in msg and "not a unit of" in msg


def test_feedback_overrides_by_id(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", [GOOD, {**GOOD, "id": "a2"}])
    fb = write(tmp_path / "fb.jsonl", [{**GOOD, "labels": ["question"]}])
    recs = merge([a], fb)
    assert len(recs) == 2
    assert {r.id: r.labels for r in recs}["a1"] == ("question",)
    assert merge([a], tmp_path / "missing-feedback.jsonl") == merge([a])


def test_split_is_deterministic_and_keeps_duplicates_together(tmp_path: Path) -> None:
    rows = [{**GOOD, "id": f"x{i}", "text": f"teks {i % 30}"} for i in range(90)]
    recs = load_records(write(tmp_path / "a.jsonl", rows))
    a1, b1 = split(recs, 0.2, seed=1)
    a2, b2 = split(recs, 0.2, seed=1)
    assert [r.id for r in b1] == [r.id for r in b2]
    assert len(b1) == 18
    assert not ({r.text for r in a1} & {r.text for r in b1})
