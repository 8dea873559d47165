"""The reminder sweep: reminders before the deadline, nudges, escalation of overdue tickets.

`due_notices` is pure: tickets and what was already sent in, notices out. The
sweep records each notice with its outbox row in one transaction under a
unique key, so each is sent once even across restarts and overlapping runs,
and a sweep after an outage sends what fell due meanwhile, once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Mapping, Sequence

from bot import telegram_ui as ui
from bot.config import RoutingConfig, Settings, parse_duration_hours
from bot.deadlines import WorkingCalendar, subtract_working_time, working_time_between
from bot.store import Store, Ticket
from bot.triage import ACKNOWLEDGED, OPEN


@dataclass(frozen=True)
class Notice:
    """One message to send, and the tickets whose event log records it."""

    key: str
    chat_id: int
    kind: str  # event kind: "reminder", "nudge" or "escalated"
    ticket_ids: tuple[int, ...]
    text: str
    buttons: tuple[tuple[tuple[str, str], ...], ...] = ()
    detail: Mapping[str, object] | None = None


@dataclass(frozen=True)
class SweepPolicy:
    reminder_hours: tuple[float, ...]  # working hours before the deadline, largest first
    nudge_after_hours: float
    calendar: WorkingCalendar

    @classmethod
    def from_routing(cls, routing: RoutingConfig) -> "SweepPolicy":
        calendar = routing.calendar()
        day = calendar.day_length.total_seconds() / 3600
        hours = sorted((parse_duration_hours(r, day) for r in routing.reminders.before_deadline), reverse=True)
        return cls(tuple(hours), parse_duration_hours(routing.reminders.nudge_unacknowledged_after, day), calendar)


def due_notices(
    tickets: Iterable[Ticket],
    done: Mapping[int, set[str]],
    routing: RoutingConfig,
    policy: SweepPolicy,
    names: Mapping[int, str],
    now: datetime,
) -> list[Notice]:
    """What must be sent at `now`. `done` maps ticket id -> event markers already
    recorded ("reminder:8.0", "nudge", "escalated")."""
    notices: list[Notice] = []
    nudges: dict[tuple[str, str], list[Ticket]] = defaultdict(list)
    for ticket in tickets:
        if ticket.deadline is None or ticket.unit is None or ticket.status not in (OPEN, ACKNOWLEDGED):
            continue
        marks = done.get(ticket.id, set())
        if now >= ticket.deadline:
            if "escalated" not in marks:
                notices += _escalations(ticket, routing, names, now)
            continue
        notices += _reminders(ticket, marks, routing, policy, names, now)
        if ticket.status == OPEN and "nudge" not in marks and _waited(ticket, policy, now) >= policy.nudge_after_hours:
            nudges[(ticket.account, ticket.unit)].append(ticket)
    for (account, unit), waiting in sorted(nudges.items()):
        notices.append(_nudge(account, unit, waiting, routing, policy, now))
    return notices


def _waited(ticket: Ticket, policy: SweepPolicy, now: datetime) -> float:
    return working_time_between(ticket.received_at, now, calendar=policy.calendar).total_seconds() / 3600


def _reminders(ticket: Ticket, marks: set[str], routing: RoutingConfig, policy: SweepPolicy,
               names: Mapping[int, str], now: datetime) -> list[Notice]:
    """Only the nearest reminder that fell due is sent: after an outage the team
    needs the current one, not a stale '1 hari lagi' as well."""
    assert ticket.deadline is not None and ticket.unit is not None
    due = [h for h in policy.reminder_hours
           if now >= subtract_working_time(ticket.deadline, timedelta(hours=h), calendar=policy.calendar)]
    if not due or f"reminder:{min(due)}" in marks:
        return []
    hours = min(due)
    unit = routing.accounts[ticket.account].units[ticket.unit]
    who = names.get(ticket.acknowledged_by) if ticket.acknowledged_by else None
    left = _hours_text(hours, policy)
    rendered = ui.reminder_message(ticket, left, who, tz=routing.timezone, unit_name=unit.name,
                                   acknowledged_by_id=ticket.acknowledged_by)
    skipped = {f"reminder:{h}" for h in due}
    return [Notice(f"remind:{ticket.id}:{hours}", unit.chat_id, "reminder", (ticket.id,), rendered.text,
                   _buttons(rendered), {"markers": sorted(skipped), "before_hours": hours})]


def _escalations(ticket: Ticket, routing: RoutingConfig, names: Mapping[int, str], now: datetime) -> list[Notice]:
    account = routing.accounts[ticket.account]
    unit = account.units.get(ticket.unit or "")
    who = names.get(ticket.acknowledged_by) if ticket.acknowledged_by else None
    rendered = ui.escalation_message(ticket, account_name=account.name, unit_name=unit.name if unit else None,
                                     tz=routing.timezone, now=now, acknowledged_by_name=who, with_buttons=False)
    chats = dict.fromkeys((routing.supervisor.chat_id, routing.media_team.chat_id))
    return [Notice(f"escalate:{ticket.id}:{chat}", chat, "escalated", (ticket.id,), rendered.text,
                   detail={"markers": ["escalated"]}) for chat in chats]


def _nudge(account: str, unit_key: str, waiting: Sequence[Ticket], routing: RoutingConfig,
           policy: SweepPolicy, now: datetime) -> Notice:
    unit = routing.accounts[account].units[unit_key]
    rendered = ui.nudge_message(waiting, unit.name, routing.timezone,
                                waited_text=_hours_text(policy.nudge_after_hours, policy), now=now)
    ids = tuple(sorted(t.id for t in waiting))
    return Notice(f"nudge:{account}:{unit_key}:{ids[0]}:{ids[-1]}:{len(ids)}", unit.chat_id, "nudge", ids,
                  rendered.text, _buttons(rendered), {"markers": ["nudge"]})


def _hours_text(hours: float, policy: SweepPolicy) -> str:
    day = policy.calendar.day_length.total_seconds() / 3600
    if hours >= day and hours % day == 0:
        return f"{int(hours // day)} hari kerja"
    return f"{hours:g} jam kerja"


def _buttons(rendered: ui.Rendered) -> tuple[tuple[tuple[str, str], ...], ...]:
    return tuple(tuple((b.text, b.callback_data) for b in row) for row in rendered.buttons)


def sweep(settings: Settings, store: Store, *, now: datetime) -> list[Notice]:
    """`triage remind`: record and queue every notice due at `now`; returns the new ones."""
    routing = settings.routing
    tickets = store.active_tickets()
    done = store.notice_markers([t.id for t in tickets])
    ack_ids = {t.acknowledged_by for t in tickets if t.acknowledged_by}
    names = {i: store.person_name(i) or f"petugas {i}" for i in ack_ids if i is not None}
    notices = due_notices(tickets, done, routing, SweepPolicy.from_routing(routing), names, now)
    return [n for n in notices if store.record_notice(
        n.key, n.chat_id, n.kind, n.ticket_ids, {"text": n.text, "buttons": n.buttons}, n.detail or {}, now=now)]
