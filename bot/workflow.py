"""Who may do what to a ticket, and what each action changes. Pure: no I/O.

The Telegram handlers ask this module for a decision, apply it through the
store, and render the result; a refusal carries a reason safe to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from bot.indonesian import unit_label
from bot.triage import ACKNOWLEDGED, ACTIVE_STATUSES, OPEN, RESOLVED, SPAM, STATUSES, Ticket
from classifiers.base import LABELS

if TYPE_CHECKING:
    from bot.config import RoutingConfig

MEDIA, SUPERVISOR, OFFICER = "media", "supervisor", "officer"


@dataclass(frozen=True)
class Person:
    """A Telegram user as routing.yaml knows them."""

    user_id: int
    roles: frozenset[str]
    units: frozenset[tuple[str, str]]  # (account, unit) pairs the user is an officer of

    @property
    def known(self) -> bool:
        return bool(self.roles)

    @property
    def sees_everything(self) -> bool:
        return MEDIA in self.roles or SUPERVISOR in self.roles

    @property
    def role(self) -> str:
        for role in (MEDIA, SUPERVISOR, OFFICER):
            if role in self.roles:
                return role
        return ""


@dataclass(frozen=True)
class ChatScope:
    """What a Telegram chat is for: the media team, the supervisor, or some units' group."""

    chat_id: int
    kind: str  # MEDIA, SUPERVISOR or "unit"
    units: frozenset[tuple[str, str]] = frozenset()

    @property
    def sees_everything(self) -> bool:
        return self.kind in (MEDIA, SUPERVISOR)


NOT_REGISTERED = "Maaf, Anda belum terdaftar sebagai petugas di bot ini. Hubungi tim media."


class Refused(Exception):
    """An action that is not allowed; the message is shown to the person (Indonesian)."""


@dataclass(frozen=True)
class Change:
    """What an action does to a ticket: columns, the event kind, and the states it applies from."""

    columns: Mapping[str, Any]
    kind: str
    from_statuses: tuple[str, ...]
    detail: Mapping[str, Any] = field(default_factory=dict)
    notify_units: tuple[str, ...] = ()  # other units whose group must get the ticket (reassign)


def person(routing: RoutingConfig, user_id: int) -> Person:
    roles: set[str] = set()
    units: set[tuple[str, str]] = set()
    if user_id in routing.media_team.members:
        roles.add(MEDIA)
    if user_id in routing.supervisor.members:
        roles.add(SUPERVISOR)
    for acc_key, acc in routing.accounts.items():
        for unit_key, unit in acc.units.items():
            if user_id in unit.officers:
                units.add((acc_key, unit_key))
    if units:
        roles.add(OFFICER)
    return Person(user_id, frozenset(roles), frozenset(units))


def chat_scope(routing: RoutingConfig, chat_id: int) -> ChatScope | None:
    """None for a chat routing.yaml does not name: the bot ignores it."""
    if chat_id == routing.media_team.chat_id:
        return ChatScope(chat_id, MEDIA)
    if chat_id == routing.supervisor.chat_id:
        return ChatScope(chat_id, SUPERVISOR)
    units = frozenset(
        (acc_key, unit_key)
        for acc_key, acc in routing.accounts.items()
        for unit_key, unit in acc.units.items()
        if unit.chat_id == chat_id
    )
    return ChatScope(chat_id, "unit", units) if units else None


class Owned(Protocol):
    """What the checks need of a ticket or a group: whose it is."""

    @property
    def account(self) -> str: ...

    @property
    def unit(self) -> str | None: ...


def check_may_act(routing: RoutingConfig, who: Person, ticket: Owned) -> None:
    """Officers act on their own unit's tickets; the media team and supervisor on all."""
    if who.sees_everything:
        return
    if not who.known:
        raise Refused(NOT_REGISTERED)
    if (ticket.account, ticket.unit or "") not in who.units:
        raise Refused(f"Maaf, tiket ini milik unit {unit_label(ticket.unit)}; "
                      "hanya petugas unit itu atau tim media yang dapat memprosesnya.")


def check_media(who: Person, action: str) -> None:
    """Actions only the media team may take: corrections, and the ministry's voice on Instagram."""
    if MEDIA not in who.roles:
        raise Refused(MEDIA_ONLY_REFUSALS.get(action, "Maaf, tindakan ini hanya untuk tim media."))


def check_in_scope(scope: ChatScope, ticket: Owned) -> None:
    """A chat acts only on the tickets it handles: a unit group on its units' tickets, the
    media team and the supervisor on all (a forged callback naming another ticket does nothing)."""
    if scope.sees_everything or (ticket.account, ticket.unit or "") in scope.units:
        return
    raise Refused("Tiket ini tidak ditangani di grup ini.")


# Who may do each action (button actions as `bot.callbacks` names them, plus "note" and "view"):
# ACT: officers of the ticket's unit, the media team and the supervisor; MEDIA: the media team;
# VIEW: anyone routing.yaml knows. Every action also needs the ticket to belong to the chat.
ACT, VIEW = "act", "view"
RIGHTS: Mapping[str, str] = {
    "ack": ACT, "move": ACT, "done": ACT, "answer": ACT, "reveal": ACT, "note": ACT,
    "fix": MEDIA, "fixl": MEDIA, "fixu": MEDIA, "fixok": MEDIA,
    "send": MEDIA, "edit": MEDIA, "spam_hide": MEDIA, "spam_show": MEDIA,
    "cancel": VIEW, "hide": VIEW, "open": VIEW, VIEW: VIEW,
    # a group of similar tickets in a surge, checked on the group's unit like a ticket
    "g_view": VIEW, "g_ack": ACT, "g_move": ACT, "g_done": ACT, "g_answer": ACT, "g_leave": ACT,
    "ga_send": MEDIA, "ga_retry": MEDIA, "ga_more": MEDIA,
}
_CORRECTION = "Maaf, koreksi label dan unit hanya dapat dilakukan oleh tim media."
_SEND = "Maaf, hanya tim media yang dapat menyetujui dan mengirim jawaban ke Instagram."
_HIDE = "Maaf, hanya tim media yang dapat menyembunyikan atau menampilkan komentar di Instagram."
MEDIA_ONLY_REFUSALS: Mapping[str, str] = {
    "fix": _CORRECTION, "fixl": _CORRECTION, "fixu": _CORRECTION, "fixok": _CORRECTION,
    "send": _SEND, "edit": "Maaf, hanya tim media yang dapat mengubah draf jawaban.",
    "spam_hide": _HIDE, "spam_show": _HIDE, "ga_send": _SEND, "ga_retry": _SEND, "ga_more": _SEND,
}


def check_may(routing: RoutingConfig, who: Person, scope: ChatScope, ticket: Owned, action: str) -> None:
    """The one who-may-do-what check every action passes before it touches or shows a ticket:
    the ticket must belong to the chat, and the person must hold the action's right."""
    check_in_scope(scope, ticket)
    right = RIGHTS.get(action)
    if right == ACT:
        check_may_act(routing, who, ticket)
    elif right == MEDIA:
        check_media(who, action)
    elif right == VIEW:
        if not who.known:
            raise Refused(NOT_REGISTERED)
    else:
        raise Refused("Maaf, permintaan ini tidak dapat diproses. Silakan coba lagi.")


def acknowledge(ticket: Ticket, who: Person, now: datetime) -> Change:
    if ticket.status != OPEN:
        raise Refused(_state_refusal(ticket))
    return Change({"status": ACKNOWLEDGED, "acknowledged_by": who.user_id, "acknowledged_at": now},
                  "acknowledged", (OPEN,))


def reassign(routing: RoutingConfig, ticket: Ticket, new_unit: str, who: Person) -> Change:
    """The ticket moves to another unit of the same account and keeps its deadline;
    the new unit must acknowledge it again."""
    if ticket.status not in ACTIVE_STATUSES:
        raise Refused(_state_refusal(ticket))
    units = routing.accounts[ticket.account].units
    if new_unit not in units:
        raise Refused(f"Unit {new_unit} tidak ada di akun {ticket.account}.")
    if new_unit == ticket.unit:
        raise Refused("Tiket sudah berada di unit itu.")
    return Change({"unit": new_unit, "status": OPEN, "acknowledged_by": None, "acknowledged_at": None},
                  "moved", ACTIVE_STATUSES, {"from_unit": ticket.unit, "by": who.user_id},
                  notify_units=(new_unit,))


def resolve(ticket: Ticket, who: Person, now: datetime, note: str | None = None) -> Change:
    if ticket.status not in ACTIVE_STATUSES:
        raise Refused(_state_refusal(ticket))
    columns: dict[str, Any] = {"status": RESOLVED, "resolved_by": who.user_id, "resolved_at": now}
    if note:
        columns["resolution_note"] = note.strip()[:500]
    return Change(columns, "resolved", ACTIVE_STATUSES)


def answered(ticket: Ticket, who: Person, now: datetime, text: str, detail: Mapping[str, Any]) -> Change:
    """An answer approved by the media team was posted on Instagram: the ticket is resolved with it."""
    if ticket.status not in ACTIVE_STATUSES:
        raise Refused(f"Tiket #{ticket.id} sudah selesai; jawaban tidak dikirim.")
    return Change({"status": RESOLVED, "resolved_by": who.user_id, "resolved_at": now,
                   "resolution_note": text[:500]}, "answered", ACTIVE_STATUSES, detail)


def note(ticket: Ticket, text: str) -> Change:
    """An officer's note (a reply starting with "catatan:"): kept with the ticket, in any state."""
    return Change({"resolution_note": text.strip()[:500]}, "note", STATUSES)


def correct(routing: RoutingConfig, ticket: Ticket, labels: tuple[str, ...], unit: str | None) -> Change:
    """The media team's correction of labels and/or unit; also training feedback.
    Spam stands alone; a ticket that needs no answer any more is resolved as spam or closed."""
    labels = tuple(label for label in LABELS if label in labels)
    if "spam" in labels:
        labels = ("spam",)
    if unit is not None and unit not in routing.accounts[ticket.account].units:
        raise Refused(f"Unit {unit} tidak ada di akun {ticket.account}.")
    columns: dict[str, Any] = {"labels": list(labels)}
    notify: tuple[str, ...] = ()
    default_unit = routing.accounts[ticket.account].default_unit
    if labels == ("spam",):
        columns.update(status=SPAM, unit=None)
    elif not labels:
        # Praise or chatter after all: nobody needs to answer, so it leaves every queue.
        columns.update(status=RESOLVED, resolution_note="Koreksi: tidak perlu dijawab")
    else:
        target = unit or (default_unit if labels == ("negative",) else ticket.unit) or default_unit
        columns["unit"] = target
        if ticket.status in (SPAM, RESOLVED) and ticket.resolved_by is None:
            columns["status"] = OPEN
        if target != ticket.unit:
            notify = (target,)
    return Change(columns, "corrected", (OPEN, ACKNOWLEDGED, RESOLVED, SPAM),
                  {"old_labels": list(ticket.labels), "old_unit": ticket.unit}, notify_units=notify)


def _state_refusal(ticket: Ticket) -> str:
    states = {OPEN: "masih terbuka", ACKNOWLEDGED: "sudah diterima", RESOLVED: "sudah selesai", SPAM: "ditandai spam"}
    return f"Tiket #{ticket.id} {states.get(ticket.status, ticket.status)}; tombol ini tidak berlaku lagi."
