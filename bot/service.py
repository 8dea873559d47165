"""Ticket actions as the Telegram handlers call them: check, apply through the store, queue.

Each action re-reads the ticket, asks `workflow` whether it is allowed, applies
the change with the states it expects (so a stale or doubled button press
changes nothing), and queues the edits and sends in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from bot import workflow
from bot.callbacks import Callback
from bot.config import RoutingConfig
from bot.pii import mask_pii
from bot.store import EDIT, MIRROR, TICKET, Store
from bot.triage import Ticket
from bot.workflow import Change, ChatScope, Person, Refused

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who pressed a button or sent a command, and where."""

    person: Person
    scope: ChatScope
    name: str

    @property
    def tag(self) -> str:
        return str(self.person.user_id)


def ticket_destinations(routing: RoutingConfig, ticket_id: int, account: str, unit: str | None,
                        *, round_: int = 0) -> list[tuple[str, int, str]]:
    """A ticket goes to its unit's group and, compactly, to the media team's group.
    `round_` > 0 is a reassignment: the new unit gets its own copy."""
    if unit is None:
        return []
    unit_chat = routing.accounts[account].units[unit].chat_id
    rows = [(f"ticket:{ticket_id}:unit:{unit}:{round_}", unit_chat, TICKET)]
    if round_ == 0 and unit_chat != routing.media_team.chat_id:
        rows.append((f"ticket:{ticket_id}:media", routing.media_team.chat_id, MIRROR))
    return rows


class TicketService:
    def __init__(self, store: Store, routing: RoutingConfig, clock: Callable[[], datetime]):
        self.store, self.routing, self.clock = store, routing, clock

    def actor(self, user_id: int, chat_id: int, name: str, username: str | None) -> Actor | None:
        """None when the chat is not one routing.yaml names: the bot ignores it."""
        scope = workflow.chat_scope(self.routing, self.store.chat_alias_reverse(chat_id))
        if scope is None:
            return None
        self.store.remember_person(user_id, name, username, self.clock())
        return Actor(workflow.person(self.routing, user_id), scope, name)

    def load(self, actor: Actor, ticket_id: int, action: str = workflow.VIEW) -> Ticket:
        """The ticket, if `actor` may do `action` to it here (`workflow.check_may`), else Refused.
        Every action, from a button, a command or a reply, loads its ticket through this."""
        ticket = self.store.ticket(ticket_id)
        if ticket is None:
            raise Refused(f"Tiket #{ticket_id} tidak ditemukan.")
        workflow.check_may(self.routing, actor.person, actor.scope, ticket, action)
        return ticket

    def authorize(self, actor: Actor, callback: Callback) -> Ticket:
        """A button press: the ticket it names (a draft's ticket for draft actions), checked."""
        ticket_id = callback.target
        if callback.on_draft:
            draft = self.store.draft(callback.target)
            if draft is None:
                raise Refused("Draf tidak ditemukan.")
            ticket_id = draft["ticket_id"]
        return self.load(actor, ticket_id, callback.action)

    def acknowledge(self, actor: Actor, ticket_id: int) -> str:
        ticket = self.load(actor, ticket_id, "ack")
        self._apply(ticket, actor, workflow.acknowledge(ticket, actor.person, self.clock()))
        return f"Tiket #{ticket_id} diterima oleh {actor.name}."

    def reassign(self, actor: Actor, ticket_id: int, unit: str) -> str:
        ticket = self.load(actor, ticket_id, "move")
        self._apply(ticket, actor, workflow.reassign(self.routing, ticket, unit, actor.person))
        return f"Tiket #{ticket_id} dialihkan ke {unit.upper()}."

    def resolve(self, actor: Actor, ticket_id: int, note: str | None = None) -> str:
        ticket = self.load(actor, ticket_id, "done")
        self._apply(ticket, actor, workflow.resolve(ticket, actor.person, self.clock(), note))
        return f"Tiket #{ticket_id} selesai."

    def answered(self, actor: Actor, ticket: Ticket, text: str, detail: dict[str, object]) -> None:
        """An approved answer was posted on Instagram: resolve the ticket with it. Posted is
        posted, so a ticket closed meanwhile keeps its state and the answer is only logged."""
        try:
            self._apply(ticket, actor, workflow.answered(ticket, actor.person, self.clock(), text, detail))
        except Refused:
            self.store.add_event(ticket.id, actor=actor.tag, kind="answered", now=self.clock(), detail=detail)

    def add_note(self, actor: Actor, ticket_id: int, note: str) -> str:
        """A reply to a ticket message: the answer given, kept with the ticket."""
        ticket = self.load(actor, ticket_id, "note")
        self._apply(ticket, actor, workflow.note(ticket, note))
        return f"Catatan untuk tiket #{ticket_id} disimpan."

    def correct(self, actor: Actor, ticket_id: int, labels: Sequence[str], unit: str | None) -> str:
        ticket = self.load(actor, ticket_id, "fixok")
        change = workflow.correct(self.routing, ticket, tuple(labels), unit)
        self._apply(ticket, actor, change)
        fixed = self.store.ticket(ticket_id)
        if fixed is not None:
            self.store.add_feedback(ticket_id, fixed.labels, fixed.unit, actor=actor.tag, now=self.clock())
        return f"Koreksi tiket #{ticket_id} disimpan sebagai masukan untuk model."

    def reveal(self, actor: Actor, ticket_id: int) -> Ticket:
        """Personal data is shown in full only to authorised users, and every look is logged."""
        ticket = self.load(actor, ticket_id, "reveal")
        self.store.add_event(ticket.id, actor=actor.tag, kind="revealed", now=self.clock(),
                             detail={"chat_id": actor.scope.chat_id})
        return ticket

    def open_single(self, actor: Actor, ticket_id: int) -> None:
        """'Buka #123' under a batch message: send that ticket's full message to this chat."""
        ticket = self.load(actor, ticket_id, "open")
        kind = MIRROR if actor.scope.kind == workflow.MEDIA else TICKET
        stamp = self.clock()
        self.store.enqueue(f"ticket:{ticket.id}:open:{actor.scope.chat_id}", actor.scope.chat_id, kind,
                           now=stamp, ticket_id=ticket.id, payload={"single": True})

    def queue(self, actor: Actor) -> list[Ticket]:
        if not actor.person.known:
            raise Refused(workflow.NOT_REGISTERED)
        tickets = self.store.active_tickets()
        if actor.scope.sees_everything:
            return tickets
        return [t for t in tickets if (t.account, t.unit or "") in actor.scope.units]

    def visible(self, actor: Actor, tickets: Sequence[Ticket]) -> list[Ticket]:
        return [t for t in tickets if actor.scope.sees_everything or (t.account, t.unit or "") in actor.scope.units]

    def search(self, actor: Actor, query: str, *, limit: int = 200) -> list[Ticket]:
        """/cari: this chat's tickets whose text holds query as the searcher may see it. For
        those who may not reveal a ticket's personal data, that is the masked text, so the
        hidden digits cannot be found by searching for them."""
        needle = query.casefold()
        found = []
        for ticket in self.visible(actor, self.store.tickets(search=query, order="t.id DESC", limit=limit)):
            try:
                workflow.check_may_act(self.routing, actor.person, ticket)  # who may reveal
            except Refused:
                if needle not in mask_pii(ticket.text).casefold():
                    continue
            found.append(ticket)
        return found

    def apply(self, ticket: Ticket, actor: Actor, change: Change) -> None:
        """Apply a change `workflow` decided (group actions apply one per ticket)."""
        self._apply(ticket, actor, change)

    def _apply(self, ticket: Ticket, actor: Actor, change: Change) -> None:
        enqueue: list[tuple[object, ...]] = list(self.edits(ticket.id))
        for unit in change.notify_units:
            round_ = len(self.store.ticket_events(ticket.id))
            enqueue += ticket_destinations(self.routing, ticket.id, ticket.account, unit, round_=round_)
        applied = self.store.update_ticket(ticket.id, change.columns, actor=actor.tag, kind=change.kind,
                                           now=self.clock(), detail=change.detail,
                                           expect_status=change.from_statuses, enqueue=enqueue)
        if not applied:
            raise Refused(f"Tiket #{ticket.id} baru saja diubah orang lain; coba lagi.")

    def edits(self, ticket_id: int) -> list[tuple[object, ...]]:
        """One edit per message already showing the ticket; a message not sent yet
        will show the new state anyway when it goes out."""
        count = len(self.store.ticket_events(ticket_id))
        return [
            (f"edit:{ticket_id}:{count}:{sent['id']}", sent["chat_id"], EDIT,
             {"message_id": sent["telegram_message_id"], "shows": sent["kind"]})
            for sent in self.store.sent_for_ticket(ticket_id)
        ]
