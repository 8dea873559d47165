"""The nightly spam refresh: the media team's corrections teach the spam model new campaigns.

`triage run` calls `retrain_spam` at 02:30; `triage retrain-spam [--now ISO]` runs the
same job once. The adopted model is kept beside the database (0600, like it), so a
restart keeps it; `apply_saved` puts it back into a freshly loaded classifier.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.store import Store, iso
from classifiers.dataset import Record, load_records
from classifiers.drift import CorrectedSpamModel, RetrainResult, summary_id
from classifiers.drift import retrain_spam as fit_and_judge

log = logging.getLogger(__name__)

CLASSIFIER_DATA = Path(__file__).resolve().parent.parent / "classifiers" / "data"


def state_path(settings: Settings) -> Path:
    """Where the adopted spam model lives: next to the database it learnt from."""
    return settings.db_path.with_name(settings.db_path.name + ".spam-model.joblib")


def corrections(store: Store) -> list[Record]:
    """Every ticket's latest Koreksi whose message has text, as labelled records."""
    out = []
    for row in store.feedback_records():
        if row.get("text"):
            out.append(Record(row["id"], row["account"], row["channel"], row["text"], tuple(row["labels"]),
                              row.get("unit"), "id"))
    return out


def apply_saved(classifier: Any, settings: Settings) -> bool:
    """Use the spam model adopted on an earlier night, if there is one that fits this classifier."""
    import joblib

    path = state_path(settings)
    if not path.exists() or not hasattr(classifier, "spam_model"):
        return False
    try:
        saved = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - a damaged file must not stop the bot: the shipped model is fine
        log.warning("ignoring the saved spam model %s: %s", path, exc)
        return False
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), CorrectedSpamModel):
        return False
    classifier.spam_model = saved["model"]
    return True


def retrain_spam(settings: Settings, store: Store, classifier: Any, *, now: datetime) -> RetrainResult | None:
    """Retrain on the corrections if there are new ones since the last night; adopt the new model
    only when it is not worse; tell the media team in one line. None: nothing new to learn."""
    import joblib

    found = corrections(store)
    path = state_path(settings)
    seen = _seen_count(path)
    if len(found) == seen:
        return None
    # Each night starts again from the shipped model and is judged against it: nights never pile up.
    shipped = getattr(classifier.spam_model, "base", classifier.spam_model)
    ours = [r for f in sorted((CLASSIFIER_DATA / "train").glob("*.jsonl")) for r in load_records(f)]
    dev = load_records(CLASSIFIER_DATA / "eval.jsonl")
    threshold = float(classifier.config.thresholds.get("spam", 0.5))
    result = fit_and_judge(shipped, found, ours, dev, threshold)
    if result.adopted:
        classifier.spam_model = result.model
    _save(path, {"model": classifier.spam_model if isinstance(classifier.spam_model, CorrectedSpamModel) else None,
                 "corrections": len(found), "figures": result.figures, "at": iso(now)}, joblib)
    store.enqueue(f"spam-retrain:{iso(now)}", settings.routing.media_team.chat_id, "text", now=now,
                  payload={"text": summary_id(result)})
    log.info("spam model: %s (%s)", "adopted" if result.adopted else "kept", json.dumps(result.figures))
    return result


def _seen_count(path: Path) -> int:
    import joblib

    if not path.exists():
        return 0
    try:
        return int(joblib.load(path).get("corrections", 0))
    except Exception:  # noqa: BLE001 - unreadable: learn again
        return 0


def _save(path: Path, state: dict[str, Any], joblib: Any) -> None:
    """Write privately (it holds words of citizens' messages) and atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        joblib.dump(state, fh, compress=3)
    os.replace(tmp, path)
