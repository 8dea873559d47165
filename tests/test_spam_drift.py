"""The nightly spam refresh: corrections teach a new campaign; a worse model is never adopted."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path


from bot.config import Settings
from bot.store import Store
from bot.triage import OPEN, InboundMessage, TicketDecision
from classifiers.dataset import Record
from classifiers.drift import CorrectedSpamModel, held_out, retrain_spam, summary_id
from classifiers.pipeline import Pipeline
from tests.test_classifier_pipeline import synthetic

NOW = datetime(2026, 11, 23, 19, 30, tzinfo=timezone.utc)
CAMPAIGN = ["ZORBAPLAY77 lagi bagi bagi jp {n}x, mampir ke profil", "zorbaplay77 gas tarik cuan {n} rb",
            "Z O R B A P L A Y 7 7 pasti wd {n}jt", "main di zorbaplay77 auto sultan {n}",
            "cuma di ZORBAPLAY77 deposit {n}rb dapet bonus", "zorba play 77 room {n} lagi gacor parah",
            "link zorbaplay77 ada di bio, langsung {n}x", "bukti wd zorbaplay77 hari ini {n}jt"]


def campaign(start: int, count: int) -> list[Record]:
    texts = [CAMPAIGN[i % len(CAMPAIGN)].format(n=start + i) for i in range(count)]
    return [Record(f"fb-{start + i}", "kemensos", "comment", t, ("spam",), None, "id") for i, t in enumerate(texts)]


def test_corrections_teach_a_new_campaign_and_the_new_model_is_adopted(small: Pipeline) -> None:
    threshold = small.config.thresholds["spam"]
    fresh = "ZORBAPLAY77 malam ini jp 999x, cek profil ya"
    assert small.spam_model.spam_proba([fresh])[0] < threshold  # the shipped model does not know the brand
    corrections = campaign(10, 24)
    assert any(held_out(r.text) for r in corrections) and not all(held_out(r.text) for r in corrections)
    result = retrain_spam(small.spam_model, corrections, synthetic(30, 1, "tr"), synthetic(10, 7, "dev"), threshold)
    assert result.adopted, result
    assert isinstance(result.model, CorrectedSpamModel)
    assert result.model.spam_proba([fresh])[0] >= threshold
    assert result.figures["dev_new"] >= result.figures["dev_current"]
    ham = "pkh saya belum cair sudah 5 bulan"
    assert result.model.spam_proba([ham])[0] < threshold
    assert "diperbarui dari 24 koreksi" in summary_id(result)


def test_a_model_worse_on_held_out_corrections_is_not_adopted(small: Pipeline) -> None:
    threshold = small.config.thresholds["spam"]
    # Contradictory corrections: the held-out share says the opposite of the training share.
    places = ["bandung", "garut", "cianjur", "bogor", "depok", "bekasi", "subang", "karawang", "cirebon", "kuningan",
              "majalengka", "sumedang", "tasik", "ciamis", "banjar", "pangandaran", "sukabumi", "purwakarta",
              "indramayu", "cimahi"]
    texts = [f"info pendaftaran bantuan di {p} kapan dibuka {w}" for p in places for w in ("ya", "min")]
    records = [Record(f"fb-{i}", "kemensos", "comment", t, ("spam",) if not held_out(t) else ("question",),
                      "humas" if held_out(t) else None, "id") for i, t in enumerate(texts)]
    result = retrain_spam(small.spam_model, records, synthetic(30, 1, "tr"), synthetic(10, 7, "dev"), threshold)
    assert not result.adopted and "held_out" in result.reason
    assert result.model is small.spam_model
    assert "tidak diubah" in summary_id(result)


def test_too_few_corrections_change_nothing(small: Pipeline) -> None:
    result = retrain_spam(small.spam_model, campaign(1, 1), [], [], 0.5)
    assert not result.adopted and result.model is small.spam_model


def test_the_nightly_job_adopts_keeps_the_model_private_and_tells_the_media_team(
        small: Pipeline, settings: Settings, tmp_path: Path) -> None:
    from bot import spam_drift

    store = Store(settings.db_path)
    rows = campaign(100, 24)
    store.save_messages([InboundMessage(id=r.id, account="kemensos", channel="comment", text=r.text,
                                        created_at=NOW - timedelta(hours=1), author_username="bot99")
                         for r in rows], now=NOW)
    for r in rows:  # each came in as a complaint, and the media team corrected it to spam
        tid = store.record_triage(r.id, {}, TicketDecision("kemensos", OPEN, "humas", ("complaint",), {}, "model",
                                                           "id", NOW + timedelta(days=3)), now=NOW)
        assert tid is not None
        store.add_feedback(tid, ["spam"], None, actor="5001", now=NOW)
    before = small.spam_model
    result = spam_drift.retrain_spam(settings, store, small, now=NOW)
    assert result is not None and result.corrections == 24
    path = spam_drift.state_path(settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    media = {settings.routing.media_team.chat_id, store.chat_alias(settings.routing.media_team.chat_id)}
    notices = [row["payload"]["text"] for row in store.due_outbox(NOW + timedelta(minutes=1))
               if row["chat_id"] in media and "Model spam" in row["payload"].get("text", "")]
    assert len(notices) == 1 and "\n" not in notices[0]  # one line
    # the same corrections the next night: nothing new, no notice
    assert spam_drift.retrain_spam(settings, store, small, now=NOW + timedelta(days=1)) is None
    assert result.adopted and isinstance(small.spam_model, CorrectedSpamModel)
    small.spam_model = before  # as after a restart: the shipped model, then the saved one
    assert spam_drift.apply_saved(small, settings)
    assert isinstance(small.spam_model, CorrectedSpamModel)
    small.spam_model = before
