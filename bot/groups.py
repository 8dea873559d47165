"""Groups of similar tickets in a surge, acted on as one: view, acknowledge, reassign,
resolve, take a ticket out, and answer them all with one text the media team approves.

Every action on a group goes through the same check as an action on a ticket
(`workflow.check_may`, on the group's unit), and every ticket in it changes through
`workflow` like a ticket changed alone, so a group action is exactly its tickets' actions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable

from bot import surges, workflow
from bot.callbacks import Button, Callback, to_payload
from bot.config import RoutingConfig
from bot.service import Actor, TicketService, ticket_destinations
from bot.store import TEXT, Store
from bot.store_surges import PENDING
from bot.triage import ACTIVE_STATUSES, OPEN
from bot.workflow import Refused

COMMENT_LIMIT = 2200  # characters Instagram accepts in a comment


@dataclass(frozen=True)
class Group:
    """A group as the checks see it: whose it is (`workflow.Owned`)."""

    id: int
    account: str
    unit: str | None
    title: str
    surge_id: int


class GroupService:
    def __init__(self, store: Store, routing: RoutingConfig, tickets: TicketService, clock: Callable[[], datetime]):
        self.store, self.routing, self.tickets, self.clock = store, routing, tickets, clock

    # -- loading through the check -------------------------------------------------

    def load(self, actor: Actor, group_id: int, action: str) -> Group:
        row = self.store.surges.group(group_id)
        if row is None:
            raise Refused(f"Kelompok #{group_id} tidak ditemukan.")
        group = Group(int(row["id"]), row["account"], row["unit"], row["title"] or "", int(row["surge_id"]))
        workflow.check_may(self.routing, actor.person, actor.scope, group, action)
        return group

    def authorize(self, actor: Actor, callback: Callback) -> Group:
        """A button on a group or on a group answer: the group it concerns, checked."""
        group_id = callback.target
        if callback.on_group_answer:
            answer = self.store.surges.answer(callback.target)
            if answer is None:
                raise Refused("Jawaban kelompok tidak ditemukan.")
            group_id = int(answer["group_id"])
        return self.load(actor, group_id, callback.action)

    # -- showing -------------------------------------------------------------------------

    def view(self, group: Group) -> tuple[str, list[list[Button]]]:
        row = self.store.surges.group(group.id)
        assert row is not None
        tickets = self.store.surges.group_tickets(group.id)
        answers = self.store.surges.answers_of(group.id)
        counts = {int(a["id"]): self.store.surges.reply_counts(int(a["id"])) for a in answers}
        unit = self.routing.accounts[group.account].units.get(group.unit or "")
        return surges.group_view(row, tickets, answers, counts, unit_name=unit.name if unit else None,
                                 tz=self.routing.timezone, now=self.clock())

    def unit_choices(self, group: Group) -> list[tuple[str, str]]:
        return [(k, u.name) for k, u in self.routing.accounts[group.account].units.items()]

    # -- acting on every ticket --------------------------------------------------------------

    def acknowledge_all(self, actor: Actor, group: Group) -> str:
        done = self._each(actor, group, "ack", lambda t: workflow.acknowledge(t, actor.person, self.clock()),
                          only=(OPEN,))
        return f"{done} tiket kelompok #{group.id} diterima oleh {actor.name}."

    def resolve_all(self, actor: Actor, group: Group) -> str:
        done = self._each(actor, group, "done", lambda t: workflow.resolve(t, actor.person, self.clock()))
        return f"{done} tiket kelompok #{group.id} diselesaikan."

    def reassign_all(self, actor: Actor, group: Group, unit: str) -> str:
        """The whole group moves; the new unit gets the group view once, not a message per ticket."""
        def change(ticket: object) -> workflow.Change:
            return replace(workflow.reassign(self.routing, ticket, unit, actor.person),  # type: ignore[arg-type]
                           notify_units=())

        done = self._each(actor, group, "move", change)
        self.store.surges.set_group_unit(group.id, unit, self.clock())
        moved = replace(group, unit=unit)
        text, buttons = self.view(moved)
        chat = self.routing.accounts[group.account].units[unit].chat_id
        self.store.enqueue(f"group:{group.id}:moved:{unit}:{self.clock().timestamp():.0f}", chat, TEXT,
                           now=self.clock(), payload={"text": "↪️ Kelompok dialihkan ke unit ini.\n" + text,
                                                      "buttons": to_payload(buttons)})
        return f"{done} tiket kelompok #{group.id} dialihkan ke {unit.upper()}."

    def _each(self, actor: Actor, group: Group, action: str, change: Callable[..., workflow.Change],
              only: tuple[str, ...] = ACTIVE_STATUSES) -> int:
        done = 0
        for ticket in self.store.surges.group_tickets(group.id, active_only=True):
            if ticket.status not in only:
                continue
            try:
                workflow.check_may(self.routing, actor.person, actor.scope, ticket, action)
                self.tickets.apply(ticket, actor, change(ticket))
                done += 1
            except Refused:
                continue  # changed meanwhile by someone else, or moved out of this chat's units
        if not done:
            raise Refused(f"Tidak ada tiket kelompok #{group.id} yang dapat diproses.")
        return done

    def take_out(self, actor: Actor, ticket_id: int) -> str:
        """/keluarkan ID: the ticket leaves its group and comes to its unit's group on its own."""
        ticket = self.tickets.load(actor, ticket_id, "g_leave")
        if ticket.group_id is None or not self.store.surges.leave_group(ticket.id):
            raise Refused(f"Tiket #{ticket_id} tidak berada dalam kelompok.")
        self.store.add_event(ticket.id, actor=actor.tag, kind="left_group", now=self.clock(),
                             detail={"group_id": ticket.group_id})
        round_ = len(self.store.ticket_events(ticket.id))
        for key, chat, kind in ticket_destinations(self.routing, ticket.id, ticket.account, ticket.unit, round_=round_):
            self.store.enqueue(key, chat, kind, now=self.clock(), ticket_id=ticket.id, payload={"single": True})
        return f"Tiket #{ticket_id} dikeluarkan dari kelompok #{ticket.group_id} dan dikirim tersendiri."

    # -- one answer for the group ------------------------------------------------------------

    def draft(self, actor: Actor, group: Group, text: str, per_minute: int) -> int:
        """An officer's answer for the whole group, to the media team for approval; a second
        draft while the first waits replaces its text."""
        text = text.strip()
        if not text:
            raise Refused("Jawaban kosong. Tulis: /jawabkelompok ID teks jawabannya")
        if len(text) > COMMENT_LIMIT - 40:  # room for the @username each reply starts with
            raise Refused(f"Jawaban terlalu panjang ({len(text)} karakter); paling banyak {COMMENT_LIMIT - 40}.")
        active = self.store.surges.group_tickets(group.id, active_only=True)
        if not active:
            raise Refused(f"Semua tiket kelompok #{group.id} sudah selesai.")
        now = self.clock()
        pending = [a for a in self.store.surges.answers_of(group.id) if a["status"] == PENDING]
        if pending:
            answer_id = int(pending[-1]["id"])
            self.store.surges.revise_answer(answer_id, text, now)
        else:
            answer_id = self.store.surges.add_answer(group.id, text, actor.person.user_id, now)
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]  # the same text is shown once
        self._show_answer(answer_id, per_minute, key=f"ga:{answer_id}:draft:{digest}")
        return answer_id

    def _show_answer(self, answer_id: int, per_minute: int, *, key: str) -> None:
        text, buttons = self.answer_view(answer_id, per_minute)
        self.store.enqueue(key, self.routing.media_team.chat_id, TEXT, now=self.clock(),
                           payload={"text": text, "buttons": to_payload(buttons)})

    def answer_view(self, answer_id: int, per_minute: int) -> tuple[str, list[list[Button]]]:
        answer = self.store.surges.answer(answer_id)
        assert answer is not None
        group = self.store.surges.group(int(answer["group_id"]))
        assert group is not None
        size = len(self.store.surges.group_tickets(int(group["id"]), active_only=True))
        author = self.store.person_name(answer["author"]) or str(answer["author"])
        approver = self.store.person_name(answer["approved_by"])
        return surges.group_answer_view(answer, group, size, author, self.store.surges.reply_counts(answer_id),
                                        approver, per_minute)

    def approve(self, actor: Actor, answer_id: int) -> str:
        """Kirim: queue one reply per active comment of the group; the replier posts them."""
        answer = self.store.surges.answer(answer_id)
        assert answer is not None
        ids = [t.id for t in self.store.surges.group_tickets(int(answer["group_id"]), active_only=True)
               if t.channel == "comment"]
        if not ids:
            raise Refused("Tidak ada komentar aktif di kelompok ini.")
        if not self.store.surges.approve(answer_id, actor.person.user_id, ids, self.clock()):
            raise Refused("Jawaban ini sudah disetujui.")
        return f"Disetujui: {len(ids)} balasan dikirim bertahap."

    def send_to_late_arrivals(self, actor: Actor, answer_id: int) -> str:
        answer = self.store.surges.answer(answer_id)
        assert answer is not None
        if answer["status"] == PENDING:
            raise Refused("Jawaban ini belum disetujui.")
        late = self.store.surges.unanswered_in_group(int(answer["group_id"]), answer_id)
        added = self.store.surges.queue_replies(answer_id, late, self.clock())
        if not added:
            raise Refused("Tidak ada tiket baru yang belum dijawab.")
        self.store.surges.reopen_answer(answer_id, self.clock())
        return f"{added} balasan tambahan dikirim bertahap."

    def retry_failed(self, actor: Actor, answer_id: int) -> str:
        count = self.store.surges.retry_failed(answer_id, self.clock())
        if not count:
            raise Refused("Tidak ada balasan yang gagal.")
        self.store.surges.reopen_answer(answer_id, self.clock())
        return f"{count} balasan yang gagal dicoba lagi."
