"""The store on real SQLite files: migrations, one ticket per message, atomic changes."""

import json
import os
import sqlite3
import stat
from dataclasses import replace
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
    # A database failure (here: a trigger whose table is gone) is no item's fault: the whole
    # batch and its state roll back, and the next poll reads them again.
    store.db.execute("CREATE TABLE gone (x)")
    store.db.execute("CREATE TRIGGER fail BEFORE INSERT ON messages WHEN NEW.id = 'c9' "
                     "BEGIN INSERT INTO gone VALUES (1); END")
    store.db.execute("DROP TABLE gone")
    with pytest.raises(sqlite3.OperationalError):
        store.save_messages([message(1), message(9)], now=NOW, account_state=("kemensos", '{"v": 1}'))
    assert store.known_message_ids(["c1"]) == set()
    assert store.poll_state("kemensos") == (None, None)


def test_a_lone_surrogate_is_repaired_and_its_neighbours_stored(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    half = InboundMessage(id="c2", account="kemensos", channel="comment", text="bansos belum cair \ud83d",
                          created_at=NOW, author_username="warga\udc00", raw={"text": "bansos belum cair \ud83d"})
    split = replace(message(3), text="terima kasih \ud83d\ude4f")  # a pair as two code points: joined
    assert store.save_messages([message(1), half, split], now=NOW, account_state=("kemensos", "{}")) == ["c1", "c2", "c3"]
    stored = store.message("c2")
    assert stored is not None and stored.text == "bansos belum cair \ufffd" and stored.author_username == "warga\ufffd"
    assert stored.raw == {"text": "bansos belum cair \ufffd"}
    assert store.message("c3").text == "terima kasih \U0001f64f"  # type: ignore[union-attr]
    assert store.known_message_ids(["c2", "c9"]) == {"c2"}
    assert store.poll_state("kemensos")[0] == "{}"
    assert store.quarantined() == [] and store.undelivered_alerts() == []


def test_an_item_that_cannot_be_stored_is_quarantined_counted_and_reported(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    no_text = InboundMessage(id="c9", account="kemensos", channel="comment", text=None,  # type: ignore[arg-type]
                             created_at=NOW)
    naive = replace(message(8), created_at=datetime(2026, 11, 23, 10, 0))  # no time zone
    saved = store.save_messages([message(1), no_text, naive, message(2)], now=NOW,
                                account_state=("kemensos", '{"v": 1}'))
    assert saved == ["c1", "c2"] and store.poll_state("kemensos")[0] == '{"v": 1}'
    assert [(q["item_id"], q["account"]) for q in store.quarantined()] == [("c9", "kemensos"), ("c8", "kemensos")]
    assert "NOT NULL" in store.quarantined()[0]["reason"]
    [alert] = store.undelivered_alerts()
    assert alert["kind"] == "quarantine" and alert["account"] == "kemensos"
    assert alert["text"].startswith("2 pesan Instagram akun kemensos") and "c9, c8" in alert["text"]
    # read again by the next poll: known, not stored or reported twice
    assert store.known_message_ids(["c9", "c8"]) == {"c9", "c8"}
    assert store.save_messages([no_text], now=NOW) == []
    assert len(store.quarantined()) == 2 and len(store.undelivered_alerts()) == 1


def test_the_database_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "triage.db"
    old = os.umask(0o022)
    try:
        store = Store(path)
        store.save_messages([message(1)], now=NOW)
    finally:
        os.umask(old)
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert all(f.exists() for f in files)
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: "0o600" for f in files}
    store.close()
    path.chmod(0o644)  # as an older version left it
    Store(path).close()
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files if f.exists()} == {
        f.name: "0o600" for f in files if f.exists()}


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


def test_an_outbox_row_whose_payload_cannot_be_read_does_not_hide_the_others(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    for key in ("a", "b", "c"):
        store.enqueue(key, -100, "text", now=NOW, payload={"text": key})
    store.db.execute("UPDATE outbox SET payload = '{broken' WHERE key = 'a'")
    store.db.execute("UPDATE outbox SET payload = '[1]' WHERE key = 'b'")
    rows = store.due_outbox(NOW)
    assert [r["payload"] for r in rows] == [{"unreadable_payload": "{broken"}, {"unreadable_payload": "[1]"}, {"text": "c"}]
