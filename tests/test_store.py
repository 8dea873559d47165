"""The store on real SQLite files: migrations, one ticket per message, atomic changes."""

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.store import MIGRATIONS, Store
from bot.triage import OPEN, InboundMessage, TicketDecision

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)


def message(i: int, text: str = "pkh saya belum cair") -> InboundMessage:
    return InboundMessage(id=f"c{i}", account="kemensos", channel="comment", text=text,
                          created_at=NOW - timedelta(minutes=i), author_username=f"warga{i}")


def decision() -> TicketDecision:
    return TicketDecision("kemensos", OPEN, "linjamsos", ("complaint",), {"complaint": 0.9}, "rule", "id", NOW + timedelta(days=3))


def test_migrations_run_once_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "triage.db"
    Store(path).close()
    store = Store(path)
    assert store.schema_version == len(MIGRATIONS)
    rows = store.db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()
    assert rows[0] == len(MIGRATIONS)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_message_is_stored_once_and_makes_one_ticket(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    assert store.save_messages([message(1), message(1), message(2)], now=NOW) == ["c1", "c2"]
    assert store.save_messages([message(1)], now=NOW) == []
    route = lambda tid, d: [(f"ticket:{tid}:unit", -100, "ticket")]  # noqa: E731
    first = store.record_triage("c1", {"labels": ["complaint"]}, decision(), now=NOW, deliver_to=route)
    again = store.record_triage("c1", {"labels": ["complaint"]}, decision(), now=NOW, deliver_to=route)
    assert first is not None and again is None
    assert len(store.tickets()) == 1
    assert len(store.due_outbox(NOW)) == 1
    assert [e["kind"] for e in store.ticket_events(first)] == ["created"]


def test_poll_state_is_saved_with_the_messages_or_not_at_all(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    broken = InboundMessage(id="c9", account="kemensos", channel="comment", text=None,  # type: ignore[arg-type]
                            created_at=NOW)
    with pytest.raises(sqlite3.IntegrityError):  # NOT NULL text: the whole batch and its state roll back
        store.save_messages([message(1), broken], now=NOW, account_state=("kemensos", '{"v": 1}'))
    assert store.known_message_ids(["c1"]) == set()
    assert store.poll_state("kemensos") == (None, None)


def test_stale_change_does_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    store.save_messages([message(1)], now=NOW)
    tid = store.record_triage("c1", {}, decision(), now=NOW)
    assert tid is not None
    ack = {"status": "acknowledged", "acknowledged_by": 7101, "acknowledged_at": NOW}
    assert store.update_ticket(tid, ack, actor="7101", kind="acknowledged", now=NOW, expect_status=["open"])
    assert not store.update_ticket(tid, ack, actor="7102", kind="acknowledged", now=NOW, expect_status=["open"])
    ticket = store.ticket(tid)
    assert ticket is not None and ticket.acknowledged_by == 7101
    assert [e["actor"] for e in store.ticket_events(tid)] == ["system", "7101"]


def test_search_treats_wildcards_as_text(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    store.save_messages([message(1, "diskon 100% palsu"), message(2, "harga 100 ribu")], now=NOW)
    for mid in ("c1", "c2"):
        store.record_triage(mid, {}, decision(), now=NOW)
    assert [t.message_id for t in store.tickets(search="100%")] == ["c1"]


def test_outbox_key_is_sent_at_most_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    assert store.enqueue("alert:1", -1, "text", now=NOW, payload={"text": "halo"})
    assert not store.enqueue("alert:1", -1, "text", now=NOW, payload={"text": "halo"})
    row = store.due_outbox(NOW)[0]
    store.mark_failed(row["id"], "429", NOW + timedelta(seconds=30))
    assert store.due_outbox(NOW) == []
    assert len(store.due_outbox(NOW + timedelta(seconds=31))) == 1
    store.mark_sent(row["id"], 55, NOW)
    assert store.due_outbox(NOW + timedelta(days=1)) == []


def test_chat_migration_moves_unsent_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    store.enqueue("a", -100, "text", now=NOW, payload={"text": "x"})
    store.add_chat_alias(-100, -100777, NOW)
    assert store.chat_alias(-100) == -100777
    assert store.due_outbox(NOW)[0]["chat_id"] == -100777


def test_feedback_exports_training_records(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    store.save_messages([message(1)], now=NOW)
    tid = store.record_triage("c1", {}, decision(), now=NOW)
    assert tid is not None
    store.add_feedback(tid, ["question"], "pusdatin", actor="5001", now=NOW)
    store.add_feedback(tid, ["complaint", "question"], "pfm", actor="5001", now=NOW)
    records = list(store.feedback_records())
    assert records == [{"id": "fb-c1", "account": "kemensos", "channel": "comment", "text": "pkh saya belum cair",
                        "labels": ["complaint", "question"], "unit": "pfm", "lang": None}]
    json.dumps(records)
