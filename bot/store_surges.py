"""The store's surge tables: surges, groups of similar tickets, group answers and their replies.

Part of the store (`Store.surges`), kept apart so that store.py stays readable; like
store.py it is the only place these tables are written. Every write that must
happen together happens in one transaction of the store's connection.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from bot.triage import ACTIVE_STATUSES, SPAM, Ticket, iso

# Group answer states, and the states of its reply under one comment.
PENDING, APPROVED, DONE = "pending", "approved", "done"
QUEUED, POSTING, SENT, FAILED, SKIPPED = "queued", "posting", "sent", "failed", "skipped"


class SurgeTables:
    def __init__(self, conn: sqlite3.Connection, transaction: Callable[[], Any],
                 ticket_rows: Callable[[str, Sequence[Any]], list[Ticket]]):
        self.conn, self.transaction, self._ticket_rows = conn, transaction, ticket_rows

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, list(params))
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    # -- detection --------------------------------------------------------------

    def busy_posts(self, since: datetime, until: datetime, at_least: int) -> list[tuple[str, str, int]]:
        """(account, media_id, count) of posts with comments not triaged yet, counting the
        comments written in [since, until] that are untriaged or became a ticket that is not spam."""
        rows = self.conn.execute(
            "SELECT m.account, m.media_id, COUNT(*) FROM messages m LEFT JOIN tickets t ON t.message_id = m.id "
            "WHERE m.channel = 'comment' AND m.media_id IS NOT NULL AND m.created_at >= ? AND m.created_at <= ? "
            "AND (m.triaged_at IS NULL OR (t.id IS NOT NULL AND t.status != ?)) "
            "GROUP BY m.account, m.media_id HAVING SUM(m.triaged_at IS NULL) > 0 AND COUNT(*) >= ?",
            [iso(since), iso(until), SPAM, int(at_least)]).fetchall()
        return [(r[0], r[1], int(r[2])) for r in rows]

    def ticket_count(self, account: str, since: datetime, until: datetime) -> int:
        """Tickets that are not spam, received in [since, until), for the account's usual rate."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM tickets WHERE account = ? AND status != ? AND received_at >= ? AND received_at < ?",
            [account, SPAM, iso(since), iso(until)]).fetchone()
        return int(row[0])

    def open_surges(self) -> dict[tuple[str, str], int]:
        rows = self.conn.execute("SELECT account, media_id, id FROM surges WHERE closed_at IS NULL").fetchall()
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def open_surge(self, account: str, media_id: str, *, since: datetime, now: datetime) -> int:
        """A new surge of a post; tickets of the post received since `since` join it."""
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO surges (account, media_id, opened_at, last_ticket_at, peak) VALUES (?,?,?,?,0)",
                [account, media_id, iso(now), iso(now)])
            surge_id = int(cursor.lastrowid or 0)
            self.conn.execute(
                "UPDATE tickets SET surge_id = ? WHERE surge_id IS NULL AND account = ? AND received_at >= ? AND "
                "message_id IN (SELECT id FROM messages WHERE media_id = ? AND channel = 'comment')",
                [surge_id, account, iso(since), media_id])
        return surge_id

    def set_post(self, surge_id: int, caption: str | None, permalink: str | None) -> None:
        self.conn.execute("UPDATE surges SET caption = ?, permalink = ? WHERE id = ?",
                          [(caption or "")[:500], permalink, surge_id])

    def touch(self, surge_id: int, last_ticket_at: datetime, peak: int) -> None:
        self.conn.execute("UPDATE surges SET last_ticket_at = MAX(COALESCE(last_ticket_at, ''), ?), "
                          "peak = MAX(COALESCE(peak, 0), ?) WHERE id = ?", [iso(last_ticket_at), int(peak), surge_id])

    def close(self, surge_id: int, now: datetime, summary: Mapping[str, Any]) -> bool:
        cursor = self.conn.execute("UPDATE surges SET closed_at = ?, summary = ? WHERE id = ? AND closed_at IS NULL",
                                   [iso(now), json.dumps(summary, ensure_ascii=False), surge_id])
        return bool(cursor.rowcount)

    def surge(self, surge_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM surges WHERE id = ?", [surge_id])
        return _with_summary(rows[0]) if rows else None

    def surges_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Surges opened in [start, end), oldest first."""
        return [_with_summary(r) for r in self._rows(
            "SELECT * FROM surges WHERE opened_at >= ? AND opened_at < ? ORDER BY opened_at, id", [iso(start), iso(end)])]

    def surges_with_counts(self, start: datetime, end: datetime) -> list[tuple[dict[str, Any], int]]:
        """Surges open at any time in [start, end), with their tickets that are not spam."""
        rows = self._rows(
            "SELECT s.*, (SELECT COUNT(*) FROM tickets t WHERE t.surge_id = s.id AND t.status != ?) AS tickets "
            "FROM surges s WHERE s.opened_at < ? AND (s.closed_at IS NULL OR s.closed_at >= ?) ORDER BY s.opened_at",
            [SPAM, iso(end), iso(start)])
        return [(_with_summary(r), int(r["tickets"])) for r in rows]

    def open_surge_rows(self) -> list[dict[str, Any]]:
        return [_with_summary(r) for r in self._rows("SELECT * FROM surges WHERE closed_at IS NULL ORDER BY id")]

    def rate(self, surge_id: int, since: datetime, until: datetime) -> int:
        """The surge's tickets (not spam) whose comment was written in [since, until)."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM tickets WHERE surge_id = ? AND status != ? AND received_at >= ? AND received_at < ?",
            [surge_id, SPAM, iso(since), iso(until)]).fetchone()
        return int(row[0])

    # -- the surge's tickets --------------------------------------------------------

    def tickets(self, surge_id: int) -> list[Ticket]:
        return self._ticket_rows("WHERE t.surge_id = ? ORDER BY t.id", [surge_id])

    def ungrouped(self, surge_id: int) -> list[Ticket]:
        """Active complaints and questions of the surge that belong to no group yet."""
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        return self._ticket_rows(
            f"WHERE t.surge_id = ? AND t.group_id IS NULL AND t.status IN ({marks}) "
            "AND (instr(t.labels, '\"complaint\"') > 0 OR instr(t.labels, '\"question\"') > 0) ORDER BY t.id",
            [surge_id, *ACTIVE_STATUSES])

    def units(self, surge_id: int) -> list[tuple[str, str]]:
        rows = self.conn.execute("SELECT DISTINCT account, unit FROM tickets WHERE surge_id = ? AND unit IS NOT NULL",
                                 [surge_id]).fetchall()
        return sorted((r[0], r[1]) for r in rows)

    def release(self, surge_id: int) -> list[int]:
        """A surge that came to nothing (its comments were spam): its tickets leave it."""
        ids = [int(r[0]) for r in self.conn.execute("SELECT id FROM tickets WHERE surge_id = ?", [surge_id])]
        with self.transaction():
            self.conn.execute("UPDATE tickets SET surge_id = NULL, group_id = NULL WHERE surge_id = ?", [surge_id])
            self.conn.execute("DELETE FROM ticket_groups WHERE surge_id = ?", [surge_id])
            self.conn.execute("DELETE FROM surges WHERE id = ?", [surge_id])
        return ids

    # -- groups ---------------------------------------------------------------------

    def add_group(self, surge_id: int, account: str, unit: str | None, title: str, vector_kind: str,
                  centroid: bytes, ticket_ids: Sequence[int], now: datetime) -> int:
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO ticket_groups (surge_id, account, unit, title, vector_kind, centroid, example_ticket_id, "
                "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                [surge_id, account, unit, title, vector_kind, centroid, ticket_ids[0], iso(now), iso(now)])
            group_id = int(cursor.lastrowid or 0)
            self._join(group_id, ticket_ids)
        return group_id

    def join_group(self, group_id: int, ticket_ids: Sequence[int], centroid: bytes, now: datetime) -> None:
        with self.transaction():
            self._join(group_id, ticket_ids)
            self.conn.execute("UPDATE ticket_groups SET centroid = ?, updated_at = ? WHERE id = ?",
                              [centroid, iso(now), group_id])

    def _join(self, group_id: int, ticket_ids: Sequence[int]) -> None:
        for ticket_id in ticket_ids:
            self.conn.execute("UPDATE tickets SET group_id = ? WHERE id = ? AND group_id IS NULL", [group_id, ticket_id])

    def leave_group(self, ticket_id: int) -> bool:
        return bool(self.conn.execute("UPDATE tickets SET group_id = NULL WHERE id = ? AND group_id IS NOT NULL",
                                      [ticket_id]).rowcount)

    def set_group_unit(self, group_id: int, unit: str, now: datetime) -> None:
        self.conn.execute("UPDATE ticket_groups SET unit = ?, updated_at = ? WHERE id = ?", [unit, iso(now), group_id])

    def group(self, group_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM ticket_groups WHERE id = ?", [group_id])
        return rows[0] if rows else None

    def groups(self, surge_id: int) -> list[dict[str, Any]]:
        """The surge's groups with their counts: size, active, resolved."""
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        return self._rows(
            "SELECT g.*, COUNT(t.id) AS size, "
            f"COALESCE(SUM(t.status IN ({marks})), 0) AS active, COALESCE(SUM(t.status = 'open'), 0) AS unacknowledged "
            "FROM ticket_groups g LEFT JOIN tickets t ON t.group_id = g.id WHERE g.surge_id = ? "
            "GROUP BY g.id ORDER BY size DESC, g.id", [*ACTIVE_STATUSES, surge_id])

    def group_tickets(self, group_id: int, *, active_only: bool = False) -> list[Ticket]:
        if active_only:
            marks = ",".join("?" * len(ACTIVE_STATUSES))
            return self._ticket_rows(f"WHERE t.group_id = ? AND t.status IN ({marks}) ORDER BY t.id",
                                     [group_id, *ACTIVE_STATUSES])
        return self._ticket_rows("WHERE t.group_id = ? ORDER BY t.id", [group_id])

    def active_groups(self) -> list[dict[str, Any]]:
        """Groups with active tickets: (id, account, unit, title, surge_id, size, earliest deadline)."""
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        return self._rows(
            "SELECT g.id, g.account, g.unit, g.title, g.surge_id, COUNT(t.id) AS size, MIN(t.deadline) AS deadline, "
            "COALESCE(SUM(t.status = 'open'), 0) AS unacknowledged FROM ticket_groups g "
            f"JOIN tickets t ON t.group_id = g.id WHERE t.status IN ({marks}) GROUP BY g.id ORDER BY g.id",
            list(ACTIVE_STATUSES))

    # -- group answers ------------------------------------------------------------------

    def add_answer(self, group_id: int, text: str, author: int, now: datetime) -> int:
        cursor = self.conn.execute(
            "INSERT INTO group_answers (group_id, text, author, status, created_at, updated_at) VALUES (?,?,?,?,?,?)",
            [group_id, text, author, PENDING, iso(now), iso(now)])
        return int(cursor.lastrowid or 0)

    def answer(self, answer_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM group_answers WHERE id = ?", [answer_id])
        return rows[0] if rows else None

    def answers_of(self, group_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM group_answers WHERE group_id = ? ORDER BY id", [group_id])

    def revise_answer(self, answer_id: int, text: str, now: datetime) -> bool:
        return bool(self.conn.execute(
            "UPDATE group_answers SET text = ?, updated_at = ? WHERE id = ? AND status = ?",
            [text, iso(now), answer_id, PENDING]).rowcount)

    def approve(self, answer_id: int, approver: int, ticket_ids: Sequence[int], now: datetime) -> bool:
        """Approve a pending answer and queue one reply per ticket, at once."""
        with self.transaction():
            cursor = self.conn.execute(
                "UPDATE group_answers SET status = ?, approved_by = ?, approved_at = ?, updated_at = ? "
                "WHERE id = ? AND status = ?", [APPROVED, approver, iso(now), iso(now), answer_id, PENDING])
            if not cursor.rowcount:
                return False
            self.queue_replies(answer_id, ticket_ids, now)
        return True

    def queue_replies(self, answer_id: int, ticket_ids: Sequence[int], now: datetime) -> int:
        """Queue replies for tickets not yet answered by this answer; returns how many were new."""
        added = 0
        for ticket_id in ticket_ids:
            added += self.conn.execute(
                "INSERT OR IGNORE INTO group_replies (answer_id, ticket_id, status, attempts, updated_at) "
                "VALUES (?,?,?,0,?)", [answer_id, ticket_id, QUEUED, iso(now)]).rowcount
        return added

    def due_replies(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Replies to post: queued ones due now, and ones a crash left half-posted (checked first)."""
        return self._rows(
            "SELECT r.*, a.text, a.approved_by, a.group_id FROM group_replies r "
            "JOIN group_answers a ON a.id = r.answer_id WHERE r.status IN (?, ?) "
            "AND (r.not_before IS NULL OR r.not_before <= ?) ORDER BY r.status = ? DESC, r.answer_id, r.ticket_id "
            "LIMIT ?", [QUEUED, POSTING, iso(now), POSTING, int(limit)])

    def set_reply(self, answer_id: int, ticket_id: int, status: str, now: datetime, *,
                  instagram_id: str | None = None, error: str | None = None,
                  not_before: datetime | None = None, attempt: bool = False) -> None:
        self.conn.execute(
            "UPDATE group_replies SET status = ?, instagram_id = COALESCE(?, instagram_id), error = ?, "
            "not_before = ?, attempts = attempts + ?, updated_at = ? WHERE answer_id = ? AND ticket_id = ?",
            [status, instagram_id, error, iso(not_before) if not_before else None, 1 if attempt else 0,
             iso(now), answer_id, ticket_id])

    def reply_counts(self, answer_id: int) -> dict[str, int]:
        rows = self.conn.execute("SELECT status, COUNT(*) FROM group_replies WHERE answer_id = ? GROUP BY status",
                                 [answer_id]).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def failed_replies(self, answer_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM group_replies WHERE answer_id = ? AND status = ? ORDER BY ticket_id",
                          [answer_id, FAILED])

    def retry_failed(self, answer_id: int, now: datetime) -> int:
        return int(self.conn.execute(
            "UPDATE group_replies SET status = ?, not_before = NULL, error = NULL, updated_at = ? "
            "WHERE answer_id = ? AND status = ?", [QUEUED, iso(now), answer_id, FAILED]).rowcount)

    def finish_answer(self, answer_id: int, now: datetime) -> bool:
        """Mark an approved answer done once no reply is left to post."""
        return bool(self.conn.execute(
            "UPDATE group_answers SET status = ?, updated_at = ? WHERE id = ? AND status = ? AND NOT EXISTS "
            "(SELECT 1 FROM group_replies WHERE answer_id = ? AND status IN (?, ?))",
            [DONE, iso(now), answer_id, APPROVED, answer_id, QUEUED, POSTING]).rowcount)

    def reopen_answer(self, answer_id: int, now: datetime) -> None:
        """A done answer with new replies queued (late arrivals, a retry) is being posted again."""
        self.conn.execute("UPDATE group_answers SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
                          [APPROVED, iso(now), answer_id, DONE])

    def unanswered_in_group(self, group_id: int, answer_id: int) -> list[int]:
        """Active tickets of the group that this answer has not been queued for (late arrivals)."""
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        rows = self.conn.execute(
            f"SELECT id FROM tickets WHERE group_id = ? AND status IN ({marks}) AND id NOT IN "
            "(SELECT ticket_id FROM group_replies WHERE answer_id = ?) ORDER BY id",
            [group_id, *ACTIVE_STATUSES, answer_id]).fetchall()
        return [int(r[0]) for r in rows]


def _with_summary(row: dict[str, Any]) -> dict[str, Any]:
    row["summary"] = json.loads(row["summary"]) if row.get("summary") else None
    return row
