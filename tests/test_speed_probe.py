"""The default backend's first start on a machine: the bot starts on `ngram` at once, a process of
its own times the transformer, and the next start uses what it found (slow: loads torch)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from classifiers.pipeline import DEFAULT_MODEL_DIR, PROBE_LOCK, load_classifier, read_config
from tests.test_classifier_model import project_rules

pytestmark = pytest.mark.slow


def test_first_start_times_the_transformer_beside_it_and_the_next_start_uses_the_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    if "transformer" not in read_config(DEFAULT_MODEL_DIR)["backends"]:
        pytest.skip("this model has no transformer backend")
    monkeypatch.setenv("TRIAGE_MODEL_CACHE", str(tmp_path))
    monkeypatch.setenv("TRIAGE_SPEED_PROBE", "background")
    started = time.monotonic()
    first = load_classifier(project_rules())
    assert first.config.name == "ngram" and first.transformer is None
    assert "being timed in process" in first.choice, first.choice
    assert time.monotonic() - started < 20  # it did not load the transformer itself
    lock = tmp_path / PROBE_LOCK
    assert lock.exists()
    again = load_classifier(project_rules())  # a second start while it times: no second probe
    assert again.config.name == "ngram" and "is being timed (see" in again.choice
    deadline = time.monotonic() + 300
    while lock.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert not lock.exists(), (tmp_path / "speed-probe.log").read_text(encoding="utf-8")
    log = (tmp_path / "speed-probe.log").read_text(encoding="utf-8")
    assert "speed probe:" in log and "comments/s" in log, log
    assert not list(tmp_path.glob("*.json.tmp")) and len(list(tmp_path.glob("tmp*.json"))) == 0
    later = load_classifier(project_rules())
    assert "measured at an earlier start" in later.choice
    assert later.config.name in ("ngram", "transformer", "fast")
    assert (later.transformer is not None) == (later.config.name != "ngram")
