"""The SQLite store: the single source of truth, and the only module that writes SQL.

Every change that must happen together happens in one transaction, so a process
killed at any point leaves either the old state or the new one. Uniqueness
(message id, ticket per message, outbox key) is enforced by the schema, so
overlapping polls or a webhook and a poll seeing the same comment make one ticket.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

import sqlite_utils

from bot.store_surges import SurgeTables
from bot.triage import ACTIVE_STATUSES, InboundMessage, Ticket, TicketDecision, iso

# What an outbox row sends (the deliverer renders and sends each kind). A CARD is a surge's
# card, rendered from the store when it is sent; an EDIT with "shows": "card" redraws it.
TICKET, MIRROR, EDIT, TEXT, DOCUMENT, PHOTO = "ticket", "mirror", "edit", "text", "document", "photo"
CARD = "card"

log = logging.getLogger(__name__)

# Errors that belong to one malformed item (a lone surrogate, a missing NOT NULL field, an
# integer SQLite cannot hold, nesting too deep to serialise), not to the database: such an
# item is set aside and the rest of its batch is stored. Locks and I/O errors
# (sqlite3.OperationalError) still roll back the whole batch.
ITEM_ERRORS = (ValueError, TypeError, OverflowError, RecursionError, sqlite3.IntegrityError,
               sqlite3.InterfaceError, sqlite3.ProgrammingError)

def iso_ms(moment: datetime) -> str:
    """Like iso(), with milliseconds (for moments measured, not compared)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the store needs time-zone-aware moments")
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class Timing(NamedTuple):
    id: int
    account: str
    unit: str | None
    status: str
    deadline: datetime | None
    received_at: datetime
    acknowledged_by: int | None


@dataclass(frozen=True)
class StoredMessage:
    message: InboundMessage
    ingested_at: datetime


def _migration_1(db: sqlite_utils.Database) -> None:
    db.table("messages").create(
        {
            "id": str, "account": str, "channel": str, "text": str, "created_at": str,
            "author_id": str, "author_username": str, "media_id": str, "conversation_id": str,
            "parent_id": str, "permalink": str, "raw": str, "source": str, "ingested_at": str,
            "triaged_at": str, "prediction": str,
        },
        pk="id",
        not_null={"account", "channel", "text", "created_at", "ingested_at"},
    )
    db.table("messages").create_index(["triaged_at"])
    db.table("tickets").create(
        {
            "id": int, "message_id": str, "account": str, "channel": str, "unit": str, "status": str,
            "labels": str, "scores": str, "unit_source": str, "lang": str, "received_at": str,
            "created_at": str, "updated_at": str, "deadline": str, "acknowledged_by": int,
            "acknowledged_at": str, "resolved_by": int, "resolved_at": str, "resolution_note": str,
        },
        pk="id",
        not_null={"message_id", "account", "status", "created_at"},
        foreign_keys=[("message_id", "messages", "id")],
    )
    db.table("tickets").create_index(["message_id"], unique=True)
    db.table("tickets").create_index(["status", "deadline"])
    db.table("tickets").create_index(["account", "unit", "status"])
    db.table("ticket_events").create(
        {"id": int, "ticket_id": int, "at": str, "actor": str, "kind": str, "detail": str},
        pk="id",
        not_null={"ticket_id", "at", "kind"},
        foreign_keys=[("ticket_id", "tickets", "id")],
    )
    db.table("ticket_events").create_index(["ticket_id"])
    db.table("outbox").create(
        {
            "id": int, "key": str, "chat_id": int, "kind": str, "ticket_id": int, "payload": str,
            "created_at": str, "not_before": str, "attempts": int, "sent_at": str,
            "telegram_message_id": int, "last_error": str,
        },
        pk="id",
        not_null={"key", "chat_id", "kind", "created_at"},
    )
    db.table("outbox").create_index(["key"], unique=True)
    db.table("outbox").create_index(["sent_at", "not_before"])
    db.table("poll_state").create({"account": str, "state": str, "updated_at": str, "stopped_reason": str}, pk="account")
    db.table("alerts").create(
        {"id": int, "account": str, "kind": str, "text": str, "created_at": str, "delivered_at": str},
        pk="id",
        not_null={"kind", "text", "created_at"},
    )
    db.table("feedback").create(
        {"id": int, "ticket_id": int, "labels": str, "unit": str, "actor": str, "at": str},
        pk="id",
        not_null={"ticket_id", "at"},
    )


def _migration_2(db: sqlite_utils.Database) -> None:
    # Names of the people who pressed buttons, so messages can say who did what.
    db.table("people").create({"user_id": int, "name": str, "username": str, "updated_at": str}, pk="user_id")
    # A group upgraded to a supergroup gets a new id; routing.yaml keeps the old one.
    db.table("chat_aliases").create({"old_chat_id": int, "new_chat_id": int, "at": str}, pk="old_chat_id")


def _migration_3(db: sqlite_utils.Database) -> None:
    # The digest and the monthly report select tickets by when they were made, received,
    # acknowledged and resolved, and messages by when they were written: without these
    # indexes each of those reads scans the whole history.
    for column in ("created_at", "received_at", "acknowledged_at", "resolved_at"):
        db.table("tickets").create_index([column])
    db.table("messages").create_index(["created_at"])


def _migration_4(db: sqlite_utils.Database) -> None:
    # Answers drafted in a unit group, approved by the media team, posted on Instagram.
    db.table("drafts").create(
        {"id": int, "ticket_id": int, "text": str, "author": int, "created_at": str, "status": str,
         "approved_by": int, "sent_at": str, "error": str, "instagram_id": str, "updated_at": str},
        pk="id",
        not_null={"ticket_id", "text", "created_at", "status"},
        foreign_keys=[("ticket_id", "tickets", "id")],
    )
    db.table("drafts").create_index(["ticket_id"])


def _migration_5(db: sqlite_utils.Database) -> None:
    # Instagram tokens live 60 days; the bot refreshes them and keeps the newest here.
    # `env_fingerprint` ties a row to the token set in the environment: a new token put
    # there by a person (after a re-login) wins over what was refreshed from the old one.
    db.table("instagram_tokens").create(
        {"account": str, "env_fingerprint": str, "first_seen_at": str, "token": str,
         "refreshed_at": str, "expires_at": str, "last_error": str, "failed_at": str},
        pk="account", not_null={"env_fingerprint", "first_seen_at"},
    )


def _migration_6(db: sqlite_utils.Database) -> None:
    # Items from Instagram that could not be stored as messages, kept (escaped) for a person
    # to look at; one row per item, however often it is read again.
    db.table("quarantine").create(
        {"id": int, "account": str, "source": str, "item_key": str, "item_id": str, "reason": str,
         "raw": str, "created_at": str},
        pk="id", not_null={"item_key", "reason", "created_at"},
    )
    db.table("quarantine").create_index(["account", "item_key"], unique=True)
    db.table("quarantine").create_index(["item_id"])


def _migration_7(db: sqlite_utils.Database) -> None:
    # Surges (a post going viral) and the groups of similar tickets within them; a group answer
    # is one text approved once and posted under each comment of its group, one row per comment
    # so that posting resumes after a restart where it stopped.
    db.table("surges").create(
        {"id": int, "account": str, "media_id": str, "caption": str, "permalink": str, "opened_at": str,
         "last_ticket_at": str, "closed_at": str, "peak": int, "summary": str},
        pk="id", not_null={"account", "media_id", "opened_at"})
    db.table("surges").create_index(["account", "media_id", "closed_at"])
    db.table("ticket_groups").create(
        {"id": int, "surge_id": int, "account": str, "unit": str, "title": str, "vector_kind": str,
         "centroid": bytes, "example_ticket_id": int, "created_at": str, "updated_at": str},
        pk="id", not_null={"account", "created_at"}, foreign_keys=[("surge_id", "surges", "id")])
    db.table("ticket_groups").create_index(["surge_id"])
    db.execute("ALTER TABLE tickets ADD COLUMN surge_id INTEGER REFERENCES surges(id)")
    db.execute("ALTER TABLE tickets ADD COLUMN group_id INTEGER REFERENCES ticket_groups(id)")
    db.table("tickets").create_index(["surge_id"])
    db.table("tickets").create_index(["group_id"])
    db.table("group_answers").create(
        {"id": int, "group_id": int, "text": str, "author": int, "status": str, "approved_by": int,
         "created_at": str, "approved_at": str, "updated_at": str},
        pk="id", not_null={"group_id", "text", "status", "created_at"},
        foreign_keys=[("group_id", "ticket_groups", "id")])
    db.table("group_answers").create_index(["group_id"])
    db.table("group_replies").create(
        {"answer_id": int, "ticket_id": int, "status": str, "attempts": int, "not_before": str,
         "instagram_id": str, "error": str, "updated_at": str},
        pk=("answer_id", "ticket_id"), not_null={"status"},
        foreign_keys=[("answer_id", "group_answers", "id"), ("ticket_id", "tickets", "id")])
    db.table("group_replies").create_index(["status", "not_before"])
    db.table("group_replies").create_index(["ticket_id"])


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _migration_1, _migration_2, _migration_3, _migration_4, _migration_5, _migration_6, _migration_7)


class Store:
    """One SQLite file in WAL mode. Open it once per process and share it."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            _create_private(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db = sqlite_utils.Database(conn)
        if self.path != ":memory:":
            self.db.enable_wal()
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self._migrate()
        self.surges = SurgeTables(conn, self.transaction, self._ticket_rows)

    def close(self) -> None:
        self.db.conn.close()

    # -- transactions and migrations ---------------------------------------

    def transaction(self) -> "_Transaction":
        return _Transaction(self.db.conn)

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        done = {row[0] for row in self.db.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, migration in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            with self.transaction():
                migration(self.db)
                self.db.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    [version, iso(datetime.now(timezone.utc))],
                )

    @property
    def schema_version(self) -> int:
        row = self.db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # -- messages ----------------------------------------------------------

    def known_message_ids(self, ids: Sequence[str]) -> set[str]:
        """The ids already stored, or quarantined (so a poll does not report them again).
        Ids are compared as save_messages stores them, repaired."""
        stored_as = {i: _repair(i) for i in ids}
        known: set[str] = set()
        for chunk in _chunks(sorted(set(stored_as.values())), 500):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT id FROM messages WHERE id IN ({marks}) UNION "
                                   f"SELECT item_id FROM quarantine WHERE item_id IN ({marks})", chunk + chunk).fetchall()
            known.update(r[0] for r in rows)
        return {i for i, stored in stored_as.items() if stored in known}

    def save_messages(
        self,
        messages: Iterable[InboundMessage],
        *,
        now: datetime,
        source: str = "poll",
        account_state: tuple[str, str] | None = None,
    ) -> list[str]:
        """Store new messages (ignoring ones already stored) and, in the same
        transaction, the poll state that says they were seen. Returns new ids.

        One malformed item never costs its neighbours: text with lone surrogates
        (half an emoji, valid JSON) is repaired, and an item that still cannot be
        stored is quarantined (kept escaped, counted, and reported to the media
        team in one alert) while the rest of the batch is stored."""
        stamp = iso(now)
        new_ids: list[str] = []
        quarantined: list[tuple[str, str | None]] = []  # (account, item id) of newly quarantined items
        with self.transaction():
            for m in messages:
                try:
                    m, repaired = _repaired(m)
                    if repaired:
                        log.warning("message %s (%s): replaced unpaired surrogates", m.id, m.account)
                    values = [m.id, m.account, m.channel, m.text, iso(m.created_at), m.author_id, m.author_username,
                              m.media_id, m.conversation_id, m.parent_id, m.permalink,
                              json.dumps(m.raw, ensure_ascii=False), source, stamp]
                    self.db.execute("SAVEPOINT item")
                except ITEM_ERRORS as err:
                    self._quarantine(m, source, err, stamp, quarantined)
                    continue
                try:
                    new = self._insert_message(m, values)
                except ITEM_ERRORS as err:
                    self.db.execute("ROLLBACK TO item")
                    self.db.execute("RELEASE item")
                    self._quarantine(m, source, err, stamp, quarantined)
                    continue
                self.db.execute("RELEASE item")
                if new:
                    new_ids.append(m.id)
            if quarantined:
                self._alert_quarantined(quarantined, source, stamp)
            if account_state is not None:
                self._put_poll_state(account_state[0], account_state[1], stamp)
        return new_ids

    def _insert_message(self, m: InboundMessage, values: list[Any]) -> bool:
        cursor = self.db.execute(
            "INSERT INTO messages (id, account, channel, text, created_at, author_id, "
            "author_username, media_id, conversation_id, parent_id, permalink, raw, source, ingested_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING", values)
        if cursor.rowcount:
            return True
        # seen before (say by webhook, which lacks some fields): fill what is missing
        self.db.execute(
            "UPDATE messages SET permalink = COALESCE(permalink, ?), author_username = "
            "COALESCE(author_username, ?), conversation_id = COALESCE(conversation_id, ?) WHERE id = ?",
            [m.permalink, m.author_username, m.conversation_id, m.id])
        return False

    def _quarantine(self, m: Any, source: str, err: BaseException, stamp: str,
                    quarantined: list[tuple[str, str | None]]) -> None:
        """Keep an item that cannot be stored as a message, escaped so that any text fits."""
        account = _escaped(getattr(m, "account", None)) or None
        item_id = _escaped(getattr(m, "id", None)) or None
        raw = _escaped(_describe(m))
        key = item_id or hashlib.sha256(raw.encode("utf-8")).hexdigest()
        reason = _escaped(f"{type(err).__name__}: {err}")[:500]
        log.error("message %s (%s, %s) quarantined: %s", item_id, account, source, reason)
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO quarantine (account, source, item_key, item_id, reason, raw, created_at) "
            "VALUES (?,?,?,?,?,?,?)", [account, source, key, item_id, reason, raw[:100_000], stamp])
        if cursor.rowcount:
            quarantined.append((account or "?", item_id))

    def _alert_quarantined(self, quarantined: list[tuple[str, str | None]], source: str, stamp: str) -> None:
        by_account: dict[str, list[str]] = {}
        for account, item_id in quarantined:
            by_account.setdefault(account, []).append(item_id or "tanpa id")
        channel = "webhook" if source == "webhook" else "polling"
        for account, ids in by_account.items():
            total = self.db.execute("SELECT COUNT(*) FROM quarantine WHERE account IS ?",
                                    [None if account == "?" else account]).fetchone()[0]
            shown = ", ".join(ids[:5]) + (f" dan {len(ids) - 5} lainnya" if len(ids) > 5 else "")
            text = (f"{len(ids)} pesan Instagram akun {account} (dari {channel}) rusak dan tidak dapat disimpan; "
                    f"pesan itu dikarantina (seluruhnya {total} di karantina), pesan lain tetap diproses. "
                    f"Periksa langsung di Instagram: {shown}")
            self.db.execute("INSERT INTO alerts (account, kind, text, created_at) VALUES (?,?,?,?)",
                            [None if account == "?" else account, "quarantine", text, stamp])

    def quarantined(self) -> list[dict[str, Any]]:
        return _dicts(self.db.execute("SELECT * FROM quarantine ORDER BY id"))

    def untriaged_messages(self, limit: int = 256) -> list[InboundMessage]:
        rows = self.db.execute(
            "SELECT * FROM messages WHERE triaged_at IS NULL ORDER BY created_at, id LIMIT ?", [limit]
        )
        return [_message_from_row(r) for r in _dicts(rows)]

    def message(self, message_id: str) -> InboundMessage | None:
        rows = _dicts(self.db.execute("SELECT * FROM messages WHERE id = ?", [message_id]))
        return _message_from_row(rows[0]) if rows else None

    def record_triage(
        self,
        message_id: str,
        prediction: Mapping[str, Any],
        decision: TicketDecision | None,
        *,
        now: datetime,
        deliver_to: Callable[[int, TicketDecision], Sequence[tuple[str, int, str]]] | None = None,
        surge_id: int | None = None,
    ) -> int | None:
        """Mark a message triaged and make its ticket (at most one, ever), its first
        event and its outbox rows in one transaction. Returns the new ticket id,
        or None when no ticket was made (no answer needed, or made before).
        A ticket in a surge (`surge_id`) gets no message of its own: the surge card shows it."""
        stamp = iso(now)
        with self.transaction():
            updated = self.db.execute(
                "UPDATE messages SET triaged_at = ?, prediction = ? WHERE id = ? AND triaged_at IS NULL",
                [stamp, json.dumps(prediction, ensure_ascii=False), message_id],
            )
            if not updated.rowcount or decision is None:
                return None
            msg = self.db.execute("SELECT account, channel, created_at FROM messages WHERE id = ?", [message_id]).fetchone()
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO tickets (message_id, account, channel, unit, status, labels, scores, "
                "unit_source, lang, received_at, created_at, updated_at, deadline, surge_id) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [message_id, msg[0], msg[1], decision.unit, decision.status, json.dumps(list(decision.labels)),
                 json.dumps(dict(decision.scores)), decision.unit_source, decision.lang, msg[2], stamp, stamp,
                 iso(decision.deadline) if decision.deadline else None, surge_id],
            )
            if not cursor.rowcount:
                return None
            ticket_id = int(cursor.lastrowid or 0)
            self._add_event(ticket_id, stamp, "system", "created",
                            {"unit": decision.unit, "status": decision.status, "labels": list(decision.labels),
                             "spam_flag": decision.spam_flag, "may_hide": decision.may_hide})
            for key, chat_id, kind in deliver_to(ticket_id, decision) if deliver_to and surge_id is None else ():
                self._enqueue(key, chat_id, kind, ticket_id, None, stamp)
            return ticket_id

    # -- tickets -----------------------------------------------------------

    def ticket(self, ticket_id: int) -> Ticket | None:
        rows = self._ticket_rows("WHERE t.id = ?", [ticket_id])
        return rows[0] if rows else None

    def tickets(
        self,
        *,
        status: str | Sequence[str] | None = None,
        account: str | None = None,
        unit: str | None = None,
        search: str | None = None,
        order: str = "t.id",
        limit: int | None = None,
    ) -> list[Ticket]:
        where, params = ["1=1"], []  # type: list[str], list[Any]
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"t.status IN ({','.join('?' * len(statuses))})")
            params.extend(statuses)
        if account is not None:
            where.append("t.account = ?")
            params.append(account)
        if unit is not None:
            where.append("t.unit = ?")
            params.append(unit)
        if search:
            where.append("m.text LIKE ? ESCAPE '\\'")
            params.append("%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        sql = "WHERE " + " AND ".join(where) + f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._ticket_rows(sql, params)

    def active_tickets(self) -> list[Ticket]:
        return self.tickets(status=ACTIVE_STATUSES, order="t.deadline, t.id")

    def active_timings(self) -> list["Timing"]:
        """Light rows of every open or acknowledged ticket, for the reminder sweep."""
        rows = self.db.execute(
            "SELECT id, account, unit, status, deadline, received_at, acknowledged_by FROM tickets "
            "WHERE status IN ('open', 'acknowledged') AND deadline IS NOT NULL").fetchall()
        return [Timing(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4]), datetime.fromisoformat(r[5]), r[6])
                for r in rows]

    def tickets_by_ids(self, ids: Sequence[int]) -> list[Ticket]:
        found: list[Ticket] = []
        for chunk in _chunks([str(i) for i in ids], 500):
            found += self._ticket_rows(f"WHERE t.id IN ({','.join('?' * len(chunk))}) ORDER BY t.id", chunk)
        return found

    def ticket_events(self, ticket_id: int) -> list[dict[str, Any]]:
        rows = _dicts(self.db.execute("SELECT * FROM ticket_events WHERE ticket_id = ? ORDER BY id", [ticket_id]))
        for row in rows:
            row["detail"] = json.loads(row["detail"] or "{}")
        return rows

    def ticket_version(self, ticket_id: int) -> int:
        """Grows with every change to the ticket (each one logs an event)."""
        row = self.db.execute("SELECT MAX(id) FROM ticket_events WHERE ticket_id = ?", [ticket_id]).fetchone()
        return int(row[0] or 0)

    def update_ticket(
        self,
        ticket_id: int,
        changes: Mapping[str, Any],
        *,
        actor: str,
        kind: str,
        now: datetime,
        detail: Mapping[str, Any] | None = None,
        expect_status: Sequence[str] | None = None,
        enqueue: Sequence[tuple[Any, ...]] = (),
    ) -> bool:
        """Apply a change to a ticket, log it, and queue what must be sent, all at once.
        With expect_status the change applies only from those statuses (a stale button
        on a resolved ticket changes nothing). `enqueue` holds (key, chat_id, kind[, payload])
        rows for the outbox. Returns whether it applied."""
        stamp = iso(now)
        columns = dict(changes)
        columns["updated_at"] = stamp
        sets = ", ".join(f"{c} = ?" for c in columns)
        values = [_column_value(v) for v in columns.values()]
        sql = f"UPDATE tickets SET {sets} WHERE id = ?"
        params = values + [ticket_id]
        if expect_status:
            sql += f" AND status IN ({','.join('?' * len(expect_status))})"
            params += list(expect_status)
        with self.transaction():
            if not self.db.execute(sql, params).rowcount:
                return False
            self._add_event(ticket_id, stamp, actor, kind, dict(detail or {}, **{k: _jsonable(v) for k, v in changes.items()}))
            for row in enqueue:
                self._enqueue(row[0], row[1], row[2], ticket_id, row[3] if len(row) > 3 else None, stamp)
        return True

    def add_event(self, ticket_id: int, *, actor: str, kind: str, now: datetime, detail: Mapping[str, Any]) -> None:
        with self.transaction():
            self._add_event(ticket_id, iso(now), actor, kind, dict(detail))

    def notice_markers(self, ticket_ids: Sequence[int]) -> dict[int, set[str]]:
        """Which reminders, nudges and escalations each active ticket already had."""
        wanted = set(ticket_ids)
        markers: dict[int, set[str]] = {}
        rows = self.db.execute(
            "SELECT e.ticket_id, e.detail FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id "
            "WHERE e.kind IN ('reminder', 'nudge', 'escalated') AND t.status IN ('open', 'acknowledged')")
        for ticket_id, detail in rows.fetchall():
            if ticket_id in wanted:
                markers.setdefault(ticket_id, set()).update(json.loads(detail or "{}").get("markers", []))
        return markers

    def record_notice(self, key: str, chat_id: int, kind: str, ticket_ids: Sequence[int], payload: Mapping[str, Any],
                      detail: Mapping[str, Any], *, now: datetime) -> bool:
        """Queue a reminder-like message once, and log it on its tickets in the same transaction."""
        stamp = iso(now)
        with self.transaction():
            if not self._enqueue(key, chat_id, "text", ticket_ids[0] if len(ticket_ids) == 1 else None, payload, stamp):
                return False
            for ticket_id in ticket_ids:
                self._add_event(ticket_id, stamp, "system", kind, dict(detail, chat_id=chat_id))
        return True

    def add_feedback(self, ticket_id: int, labels: Sequence[str], unit: str | None, *, actor: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO feedback (ticket_id, labels, unit, actor, at) VALUES (?,?,?,?,?)",
            [ticket_id, json.dumps(list(labels)), unit, actor, iso(now)],
        )

    def feedback_records(self) -> Iterator[dict[str, Any]]:
        """Corrections as training records in the LABELS.md format (latest per ticket wins)."""
        sql = (
            "SELECT f.labels, f.unit, m.id AS message_id, m.account, m.channel, m.text FROM feedback f "
            "JOIN tickets t ON t.id = f.ticket_id JOIN messages m ON m.id = t.message_id "
            "WHERE f.id IN (SELECT MAX(id) FROM feedback GROUP BY ticket_id) ORDER BY f.id"
        )
        for row in _dicts(self.db.execute(sql)):
            yield {"id": f"fb-{row['message_id']}", "account": row["account"], "channel": row["channel"],
                   "text": row["text"], "labels": json.loads(row["labels"]), "unit": row["unit"], "lang": None}

    # -- answer drafts -------------------------------------------------------

    def add_draft(self, ticket_id: int, text: str, author: int, *, now: datetime,
                  chat_id: int, payload_for: Callable[[int], Mapping[str, Any]]) -> int:
        """A drafted answer and its message to the media team, in one transaction."""
        stamp = iso(now)
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO drafts (ticket_id, text, author, created_at, updated_at, status) VALUES (?,?,?,?,?, 'pending')",
                [ticket_id, text, author, stamp, stamp])
            draft_id = int(cursor.lastrowid or 0)
            self._add_event(ticket_id, stamp, str(author), "drafted", {"draft_id": draft_id})
            self._enqueue(f"draft:{draft_id}", chat_id, "text", ticket_id, payload_for(draft_id), stamp)
        return draft_id

    def draft(self, draft_id: int) -> dict[str, Any] | None:
        rows = _dicts(self.db.execute("SELECT * FROM drafts WHERE id = ?", [draft_id]))
        return rows[0] if rows else None

    def update_draft(self, draft_id: int, changes: Mapping[str, Any], *, now: datetime,
                     expect_status: Sequence[str] = ()) -> bool:
        columns = dict(changes, updated_at=iso(now))
        sql = f"UPDATE drafts SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"
        params = [_column_value(v) for v in columns.values()] + [draft_id]
        if expect_status:
            sql += f" AND status IN ({','.join('?' * len(expect_status))})"
            params += list(expect_status)
        return bool(self.db.execute(sql, params).rowcount)

    def draft_for_message(self, chat_id: int, telegram_message_id: int) -> int | None:
        ids = {chat_id, self.chat_alias_reverse(chat_id)}
        marks = ",".join("?" * len(ids))
        row = self.db.execute(
            f"SELECT key FROM outbox WHERE telegram_message_id = ? AND chat_id IN ({marks}) AND key LIKE 'draft:%'",
            [telegram_message_id, *ids]).fetchone()
        return int(row[0].split(":")[1]) if row else None

    # -- outbox --------------------------------------------------------------

    def enqueue(self, key: str, chat_id: int, kind: str, *, now: datetime, ticket_id: int | None = None,
                payload: Mapping[str, Any] | None = None) -> bool:
        """Queue one Telegram send; a key already queued is ignored (sent at most once)."""
        with self.transaction():
            return self._enqueue(key, chat_id, kind, ticket_id, payload, iso(now))

    def due_outbox(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        rows = _dicts(self.db.execute(
            "SELECT * FROM outbox WHERE sent_at IS NULL AND (not_before IS NULL OR not_before <= ?) "
            "ORDER BY id LIMIT ?", [iso(now), limit]))
        for row in rows:
            row["payload"] = _payload(row["payload"])
        return rows

    def mark_sent(self, outbox_id: int, telegram_message_id: int | None, now: datetime,
                  then_enqueue: Sequence[tuple[Any, ...]] = (), note: str | None = None) -> None:
        """Record a send; `then_enqueue` holds (key, chat_id, kind, ticket_id, payload) rows
        queued in the same transaction, so a follow-up cannot be lost between the two.
        `note` says why a send is recorded without a message id (its answer was unreadable).
        `sent_at` keeps milliseconds: it is when the answer was recorded."""
        with self.transaction():
            self.db.execute("UPDATE outbox SET sent_at = ?, telegram_message_id = ?, last_error = ? WHERE id = ?",
                            [iso_ms(now), telegram_message_id, note, outbox_id])
            for key, chat_id, kind, ticket_id, payload in then_enqueue:
                self._enqueue(key, chat_id, kind, ticket_id, payload, iso(now))

    def mark_batched(self, outbox_ids: Sequence[int], telegram_message_id: int | None, now: datetime,
                     note: str | None = None) -> None:
        """Rows shown together in one batch message; their own full message is sent only on request."""
        with self.transaction():
            for outbox_id in outbox_ids:
                self.db.execute(
                    "UPDATE outbox SET sent_at = ?, telegram_message_id = ?, last_error = ?, "
                    "payload = json_set(COALESCE(payload, '{}'), '$.batched', json('true')) WHERE id = ?",
                    [iso_ms(now), telegram_message_id, note, outbox_id])

    def mark_failed(self, outbox_id: int, error: str, retry_at: datetime) -> None:
        self.db.execute("UPDATE outbox SET attempts = COALESCE(attempts, 0) + 1, last_error = ?, not_before = ? WHERE id = ?",
                        [error[:500], iso(retry_at), outbox_id])

    def retarget_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: unsent messages follow it to the new id."""
        self.db.execute("UPDATE outbox SET chat_id = ? WHERE chat_id = ? AND sent_at IS NULL", [new_chat_id, old_chat_id])

    def has_outbox_prefix(self, prefix: str) -> bool:
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self.db.execute("SELECT 1 FROM outbox WHERE key LIKE ? ESCAPE '\\' LIMIT 1", [like]).fetchone() is not None

    def sent_message(self, key: str) -> dict[str, Any] | None:
        rows = _dicts(self.db.execute("SELECT * FROM outbox WHERE key = ? AND sent_at IS NOT NULL", [key]))
        return rows[0] if rows else None

    def ticket_for_message(self, chat_id: int, telegram_message_id: int) -> int | None:
        """The ticket a Telegram message shows (to read replies to it)."""
        ids = {chat_id, self.chat_alias_reverse(chat_id)}
        marks = ",".join("?" * len(ids))
        row = self.db.execute(
            f"SELECT ticket_id FROM outbox WHERE telegram_message_id = ? AND chat_id IN ({marks}) "
            "AND ticket_id IS NOT NULL AND kind IN ('ticket', 'mirror') "
            "AND json_extract(COALESCE(payload, '{}'), '$.batched') IS NULL", [telegram_message_id, *ids]).fetchone()
        return int(row[0]) if row else None

    def sent_for_ticket(self, ticket_id: int) -> list[dict[str, Any]]:
        return _dicts(self.db.execute(
            "SELECT * FROM outbox WHERE ticket_id = ? AND sent_at IS NOT NULL AND telegram_message_id IS NOT NULL "
            "AND kind IN ('ticket', 'mirror') AND json_extract(COALESCE(payload, '{}'), '$.batched') IS NULL "
            "ORDER BY id", [ticket_id]))

    def chat_alias(self, chat_id: int) -> int:
        """The chat's current id, following group-to-supergroup migrations."""
        for _ in range(5):  # a chain of migrations is short; a loop would be a bug
            row = self.db.execute("SELECT new_chat_id FROM chat_aliases WHERE old_chat_id = ?", [chat_id]).fetchone()
            if not row:
                break
            chat_id = int(row[0])
        return chat_id

    def chat_alias_reverse(self, chat_id: int) -> int:
        """The id routing.yaml knows for a chat that may have migrated since."""
        for _ in range(5):
            row = self.db.execute("SELECT old_chat_id FROM chat_aliases WHERE new_chat_id = ?", [chat_id]).fetchone()
            if not row:
                break
            chat_id = int(row[0])
        return chat_id

    def add_chat_alias(self, old_chat_id: int, new_chat_id: int, now: datetime) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO chat_aliases (old_chat_id, new_chat_id, at) VALUES (?,?,?)",
                            [old_chat_id, new_chat_id, iso(now)])
            self.retarget_chat(old_chat_id, new_chat_id)

    def remember_person(self, user_id: int, name: str, username: str | None, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO people (user_id, name, username, updated_at) VALUES (?,?,?,?) ON CONFLICT(user_id) "
            "DO UPDATE SET name = excluded.name, username = excluded.username, updated_at = excluded.updated_at",
            [user_id, name, username, iso(now)])

    def person_name(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        row = self.db.execute("SELECT name, username FROM people WHERE user_id = ?", [user_id]).fetchone()
        if not row:
            return None
        return str(row[0] or (f"@{row[1]}" if row[1] else user_id))

    # -- poll state and alerts ----------------------------------------------

    def poll_state(self, account: str) -> tuple[str | None, str | None]:
        """(state JSON, stopped reason) of an account's poller."""
        row = self.db.execute("SELECT state, stopped_reason FROM poll_state WHERE account = ?", [account]).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def stop_polling(self, account: str, reason: str, now: datetime) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO poll_state (account, state, updated_at, stopped_reason) VALUES (?, NULL, ?, ?) "
                "ON CONFLICT(account) DO UPDATE SET stopped_reason = excluded.stopped_reason, updated_at = excluded.updated_at",
                [account, iso(now), reason])

    def token_record(self, account: str, env_fingerprint: str, now: datetime) -> dict[str, Any]:
        """The account's token row for this environment token, started afresh when the
        environment holds a different token than the row was made for. Read first: every
        poll and answer asks, and only a new environment token needs the write lock."""
        row = self._token_row(account)
        if row and row["env_fingerprint"] == env_fingerprint:
            return row
        with self.transaction():  # look again under the lock: another process may have just written it
            row = self._token_row(account)
            if row and row["env_fingerprint"] == env_fingerprint:
                return row
            self.db.execute("INSERT OR REPLACE INTO instagram_tokens (account, env_fingerprint, first_seen_at) "
                            "VALUES (?, ?, ?)", [account, env_fingerprint, iso(now)])
            return self._token_row(account) or {}

    def _token_row(self, account: str) -> dict[str, Any] | None:
        rows = _dicts(self.db.execute("SELECT * FROM instagram_tokens WHERE account = ?", [account]))
        return rows[0] if rows else None

    def save_refreshed_token(self, account: str, token: str, expires_at: datetime, now: datetime) -> None:
        self.db.execute("UPDATE instagram_tokens SET token = ?, refreshed_at = ?, expires_at = ?, last_error = NULL, "
                        "failed_at = NULL WHERE account = ?", [token, iso(now), iso(expires_at), account])

    def record_token_failure(self, account: str, error: str, now: datetime) -> None:
        """`failed_at` is when the failures began; a successful refresh clears it."""
        self.db.execute("UPDATE instagram_tokens SET last_error = ?, failed_at = COALESCE(failed_at, ?) WHERE account = ?",
                        [error[:500], iso(now), account])

    def resume_polling(self, account: str) -> None:
        self.db.execute("UPDATE poll_state SET stopped_reason = NULL WHERE account = ?", [account])

    def _put_poll_state(self, account: str, state: str, stamp: str) -> None:
        self.db.execute(
            "INSERT INTO poll_state (account, state, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(account) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            [account, state, stamp])

    def add_alert(self, kind: str, text: str, *, now: datetime, account: str | None = None) -> int:
        cursor = self.db.execute("INSERT INTO alerts (account, kind, text, created_at) VALUES (?,?,?,?)",
                                 [account, kind, text, iso(now)])
        return int(cursor.lastrowid or 0)

    def has_recent_alert(self, kind: str, account: str | None, since: datetime) -> bool:
        row = self.db.execute("SELECT 1 FROM alerts WHERE kind = ? AND account IS ? AND created_at >= ? LIMIT 1",
                              [kind, account, iso(since)]).fetchone()
        return row is not None

    def undelivered_alerts(self) -> list[dict[str, Any]]:
        return _dicts(self.db.execute("SELECT * FROM alerts WHERE delivered_at IS NULL ORDER BY id"))

    def mark_alert_delivered(self, alert_id: int, now: datetime) -> None:
        self.db.execute("UPDATE alerts SET delivered_at = ? WHERE id = ?", [iso(now), alert_id])

    # -- internals -----------------------------------------------------------

    def _add_event(self, ticket_id: int, stamp: str, actor: str, kind: str, detail: Mapping[str, Any]) -> None:
        self.db.execute("INSERT INTO ticket_events (ticket_id, at, actor, kind, detail) VALUES (?,?,?,?,?)",
                        [ticket_id, stamp, actor, kind, json.dumps(detail, ensure_ascii=False)])

    def _enqueue(self, key: str, chat_id: int, kind: str, ticket_id: int | None,
                 payload: Mapping[str, Any] | None, stamp: str) -> bool:
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO outbox (key, chat_id, kind, ticket_id, payload, created_at, attempts) "
            "VALUES (?,?,?,?,?,?,0)",
            [key, chat_id, kind, ticket_id, json.dumps(payload or {}, ensure_ascii=False), stamp])
        return bool(cursor.rowcount)

    def _ticket_rows(self, tail: str, params: Sequence[Any]) -> list[Ticket]:
        sql = (
            "SELECT t.*, m.text, m.author_username, m.permalink, m.media_id, m.conversation_id "
            "FROM tickets t JOIN messages m ON m.id = t.message_id " + tail
        )
        return [_ticket_from_row(r) for r in _dicts(self.db.execute(sql, list(params)))]

    # -- digest and report queries -----------------------------------------
    # Read-only aggregates for bot.digest and bot.report. Bounds are aware
    # datetimes; a range is [start, end). Tickets with no unit (spam) are left
    # out of the per-unit figures. `day_shift` is the local zone's UTC offset
    # in seconds, to group stored UTC moments by local date.

    _TIMING_COLUMNS = ("created_at", "received_at", "acknowledged_at", "resolved_at")

    def unit_status_counts(self) -> list[tuple[str, str, str, int]]:
        """(account, unit, status, count) of every ticket that has a unit, right now."""
        rows = self.db.execute(
            "SELECT account, unit, status, COUNT(*) FROM tickets WHERE unit IS NOT NULL "
            "GROUP BY account, unit, status")
        return [(r[0], r[1], r[2], int(r[3])) for r in rows.fetchall()]

    def overdue_counts(self, now: datetime) -> list[tuple[str, str, int]]:
        """(account, unit, count) of active tickets whose deadline has passed."""
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        rows = self.db.execute(
            f"SELECT account, unit, COUNT(*) FROM tickets WHERE status IN ({marks}) AND deadline < ? "
            "GROUP BY account, unit", [*ACTIVE_STATUSES, iso(now)])
        return [(r[0], r[1], int(r[2])) for r in rows.fetchall()]

    def overdue_ticket_rows(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """The active tickets past their deadline, oldest deadline first (id, account, unit, deadline)."""
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        return _dicts(self.db.execute(
            f"SELECT id, account, unit, status, deadline FROM tickets WHERE status IN ({marks}) AND deadline < ? "
            "ORDER BY deadline, id LIMIT ?", [*ACTIVE_STATUSES, iso(now), int(limit)]))

    def new_ticket_counts(self, start: datetime, end: datetime) -> list[tuple[str, str, int]]:
        """(account, unit, count) of tickets made in [start, end)."""
        rows = self.db.execute(
            "SELECT account, unit, COUNT(*) FROM tickets WHERE unit IS NOT NULL AND created_at >= ? "
            "AND created_at < ? GROUP BY account, unit", [iso(start), iso(end)])
        return [(r[0], r[1], int(r[2])) for r in rows.fetchall()]

    def ticket_timings(self, start: datetime, end: datetime, *, by: str) -> list[tuple[Any, ...]]:
        """(account, unit, status, received_at, deadline, acknowledged_at, resolved_at) of the tickets
        with a unit whose `by` moment lies in [start, end); moments as stored (UTC ISO text or None)."""
        if by not in self._TIMING_COLUMNS:
            raise ValueError(f"by must be one of {self._TIMING_COLUMNS}, got {by!r}")
        rows = self.db.execute(
            "SELECT account, unit, status, received_at, deadline, acknowledged_at, resolved_at FROM tickets "
            f"WHERE unit IS NOT NULL AND {by} >= ? AND {by} < ?", [iso(start), iso(end)])
        return [tuple(r) for r in rows.fetchall()]

    def negative_counts(self, start: datetime, end: datetime) -> tuple[int, int]:
        """(messages triaged, tickets labelled negative made) in [start, end)."""
        bounds = [iso(start), iso(end)]
        triaged = self.db.execute(
            "SELECT COUNT(*) FROM messages WHERE triaged_at >= ? AND triaged_at < ?", bounds).fetchone()[0]
        negative = self.db.execute(
            "SELECT COUNT(*) FROM tickets WHERE created_at >= ? AND created_at < ? "
            "AND instr(labels, '\"negative\"') > 0", bounds).fetchone()[0]
        return int(triaged), int(negative)

    def complaint_texts(self, start: datetime, end: datetime, *, by: str = "created_at") -> list[tuple[str, str | None, str]]:
        """(account, unit, text) of the tickets labelled complaint whose `by` moment lies in [start, end)."""
        if by not in self._TIMING_COLUMNS:
            raise ValueError(f"by must be one of {self._TIMING_COLUMNS}, got {by!r}")
        rows = self.db.execute(
            "SELECT t.account, t.unit, m.text FROM tickets t JOIN messages m ON m.id = t.message_id "
            f"WHERE t.{by} >= ? AND t.{by} < ? AND instr(t.labels, '\"complaint\"') > 0",
            [iso(start), iso(end)])
        return [(r[0], r[1], r[2]) for r in rows.fetchall()]

    def daily_label_counts(self, start: datetime, end: datetime, day_shift: int) -> list[dict[str, Any]]:
        """Per local date of the messages written in [start, end): day, messages, triaged,
        complaint, question, negative (tickets so labelled) and spam (spam tickets)."""
        shift = f"{int(day_shift):+d} seconds"
        return _dicts(self.db.execute(
            "SELECT date(m.created_at, ?) AS day, COUNT(*) AS messages, "
            "COUNT(m.triaged_at) AS triaged, "
            "COALESCE(SUM(instr(t.labels, '\"complaint\"') > 0), 0) AS complaint, "
            "COALESCE(SUM(instr(t.labels, '\"question\"') > 0), 0) AS question, "
            "COALESCE(SUM(instr(t.labels, '\"negative\"') > 0), 0) AS negative, "
            "COALESCE(SUM(t.status = 'spam'), 0) AS spam "
            "FROM messages m LEFT JOIN tickets t ON t.message_id = m.id "
            "WHERE m.created_at >= ? AND m.created_at < ? GROUP BY day ORDER BY day",
            [shift, iso(start), iso(end)]))


class _Transaction:
    """BEGIN IMMEDIATE .. COMMIT, or ROLLBACK on any error; nests as a no-op."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.outer = False

    def __enter__(self) -> "_Transaction":
        self.outer = not self.conn.in_transaction
        if self.outer:
            self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if not self.outer:
            return
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only (0600) before SQLite opens it:
    it holds every citizen's message and the refreshed Instagram tokens. SQLite creates
    the -wal and -shm files with the database file's mode, so they follow. Files made
    by an older version, open to others, are closed to them (with a warning)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for name in (path, f"{path}-wal", f"{path}-shm"):
            try:
                mode = os.stat(name).st_mode & 0o777
                if mode & 0o077:
                    os.chmod(name, mode & 0o700)
                    log.warning("%s was readable by others (mode %o); now %o", name, mode, mode & 0o700)
            except FileNotFoundError:
                continue
            except OSError as err:  # another owner: say so, and go on
                log.warning("%s is readable by others and cannot be made private: %s", name, err)
        return
    os.close(fd)
    os.chmod(path, 0o600)  # whatever the umask


def _repair(text: str) -> str:
    """Unpaired UTF-16 surrogates (half an emoji) become U+FFFD; a pair split into two
    code points is joined into its character."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _repaired_value(value: Any) -> Any:
    if isinstance(value, str):
        return _repair(value)
    if isinstance(value, Mapping):
        return {_repaired_value(k): _repaired_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_repaired_value(v) for v in value]
    return value


def _repaired(m: InboundMessage) -> tuple[InboundMessage, bool]:
    """The message with every text field and its raw JSON repaired, and whether anything changed."""
    changes: dict[str, Any] = {}
    for name in ("id", "account", "channel", "text", "author_id", "author_username", "media_id",
                 "conversation_id", "parent_id", "permalink"):
        value = getattr(m, name)
        if isinstance(value, str) and _repair(value) != value:
            changes[name] = _repair(value)
    raw = _repaired_value(m.raw)
    if raw != m.raw:
        changes["raw"] = raw
    return (replace(m, **changes), True) if changes else (m, False)


def _escaped(value: Any) -> str:
    """Any text as storable text: unpaired surrogates and other unencodable code points escaped."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _describe(m: Any) -> str:
    """A quarantined item as JSON if it can be, else as its repr; never raises."""
    try:
        fields = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(m).items()}
        return json.dumps(fields, ensure_ascii=True, default=str)
    except Exception:  # the item is broken by definition: whatever can be kept is kept
        try:
            return repr(m)[:100_000]
        except Exception:
            return f"<{type(m).__name__}>"


def _payload(text: str | None) -> dict[str, Any]:
    """An outbox row's payload; one that cannot be read fails that row alone when it is sent."""
    try:
        payload = json.loads(text) if text else {}
    except ValueError:
        return {"unreadable_payload": text[:200] if text else ""}
    return payload if isinstance(payload, dict) else {"unreadable_payload": text[:200] if text else ""}


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _jsonable(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _column_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _message_from_row(row: Mapping[str, Any]) -> InboundMessage:
    return InboundMessage(
        id=row["id"], account=row["account"], channel=row["channel"], text=row["text"],
        created_at=datetime.fromisoformat(row["created_at"]), author_id=row["author_id"],
        author_username=row["author_username"], media_id=row["media_id"],
        conversation_id=row["conversation_id"], parent_id=row["parent_id"], permalink=row["permalink"],
        raw=json.loads(row["raw"] or "{}"),
    )


def _ticket_from_row(row: Mapping[str, Any]) -> Ticket:
    return Ticket(
        id=row["id"], message_id=row["message_id"], account=row["account"], channel=row["channel"],
        unit=row["unit"], status=row["status"], labels=tuple(json.loads(row["labels"] or "[]")),
        scores=json.loads(row["scores"] or "{}"), unit_source=row["unit_source"] or "", lang=row["lang"] or "",
        text=row["text"], author_username=row["author_username"], permalink=row["permalink"],
        media_id=row["media_id"], conversation_id=row["conversation_id"],
        received_at=datetime.fromisoformat(row["received_at"]), created_at=datetime.fromisoformat(row["created_at"]),
        deadline=parse_iso(row["deadline"]), acknowledged_by=row["acknowledged_by"],
        acknowledged_at=parse_iso(row["acknowledged_at"]), resolved_by=row["resolved_by"],
        resolved_at=parse_iso(row["resolved_at"]), resolution_note=row["resolution_note"],
        surge_id=row.get("surge_id"), group_id=row.get("group_id"),
    )
