"""The reminder sweep: reminders before the deadline, nudges, escalation of overdue tickets.

`due_notices` is pure: tickets and what was already sent in, notices out. The
sweep records each notice with its outbox row in one transaction under a
unique key, so each is sent once even across restarts and overlapping runs,
and a sweep after an outage sends what fell due meanwhile, once.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping, Protocol, Sequence

from bot import telegram_ui as ui
from bot.callbacks import Button, to_payload
from bot.config import RoutingConfig, Settings, parse_duration_hours
from bot.deadlines import WorkingCalendar, add_working_time, subtract_working_time
from bot.store import Store
from bot.triage import ACKNOWLEDGED, OPEN, Ticket


@dataclass(frozen=True)
class Notice:
    """One message to send, and the tickets whose event log records it."""

    key: str
    chat_id: int
    kind: str  # event kind: "reminder", "nudge" or "escalated"
    ticket_ids: tuple[int, ...]
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
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


class Timing(Protocol):
    """What the sweep needs to know of a ticket (a Ticket, or a light row from the store)."""

    @property
    def id(self) -> int: ...
    @property
    def account(self) -> str: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def deadline(self) -> datetime | None: ...
    @property
    def received_at(self) -> datetime: ...


@dataclass
class Plan:
    """Which tickets get which notice: decided on light rows, rendered afterwards."""

    reminders: dict[tuple[str, str, float], list[int]] = field(default_factory=lambda: defaultdict(list))
    overdue: list[int] = field(default_factory=list)
    nudges: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))

    def ticket_ids(self) -> set[int]:
        ids = set(self.overdue)
        for group in (*self.reminders.values(), *self.nudges.values()):
            ids.update(group)
        return ids


def plan_notices(tickets: Iterable[Timing], done: Mapping[int, set[str]], policy: SweepPolicy, now: datetime) -> Plan:
    """What falls due at `now`. `done` maps ticket id -> markers already recorded
    ("reminder:8.0", "nudge", "escalated")."""
    plan = Plan()
    for ticket in tickets:
        if ticket.deadline is None or ticket.unit is None or ticket.status not in (OPEN, ACKNOWLEDGED):
            continue
        marks = done.get(ticket.id, set())
        if now >= ticket.deadline:
            if "escalated" not in marks:
                plan.overdue.append(ticket.id)
            continue
        hours = _reminder_due(ticket.deadline, marks, policy, now)
        if hours is not None:
            plan.reminders[(ticket.account, ticket.unit, hours)].append(ticket.id)
        if ticket.status == OPEN and "nudge" not in marks and \
                now >= _moment(ticket.received_at, policy.nudge_after_hours, policy.calendar):
            plan.nudges[(ticket.account, ticket.unit)].append(ticket.id)
    return plan


def due_notices(
    tickets: Sequence[Ticket],
    done: Mapping[int, set[str]],
    routing: RoutingConfig,
    policy: SweepPolicy,
    names: Mapping[int, str],
    now: datetime,
    groups: Mapping[int, str] | None = None,
) -> list[Notice]:
    """The notices due at `now`, rendered. Tickets falling due together go out as
    one list per group, so a busy unit is not flooded; the tickets of a group of similar
    tickets (a surge; `groups`: id -> title) are one item in it, with their count."""
    plan = plan_notices(tickets, done, policy, now)
    by_id = {t.id: t for t in tickets}
    notices = [_reminder(key, [by_id[i] for i in ids], routing, policy, names, now, groups)
               for key, ids in sorted(plan.reminders.items())]
    if plan.overdue:
        notices += _escalations([by_id[i] for i in plan.overdue], routing, names, now, groups)
    notices += [_nudge(account, unit, [by_id[i] for i in ids], routing, policy, now, groups)
                for (account, unit), ids in sorted(plan.nudges.items())]
    return notices


@functools.lru_cache(maxsize=200_000)
def _moment(start: datetime, hours: float, calendar: WorkingCalendar) -> datetime:
    """`hours` of working time after `start` (before it, when negative). Cached: the
    sweep runs every minute over the same tickets."""
    if hours >= 0:
        return add_working_time(start, timedelta(hours=hours), calendar=calendar)
    return subtract_working_time(start, timedelta(hours=-hours), calendar=calendar)


def _reminder_due(deadline: datetime, marks: set[str], policy: SweepPolicy, now: datetime) -> float | None:
    """The nearest reminder that fell due and was not sent: after an outage the team
    needs the current one, not a stale '1 hari lagi' as well."""
    due = [h for h in policy.reminder_hours if now >= _moment(deadline, -h, policy.calendar)]
    if not due or f"reminder:{min(due)}" in marks:
        return None
    return min(due)


def _key(prefix: str, ids: Sequence[int]) -> str:
    digest = hashlib.sha1(",".join(map(str, ids)).encode()).hexdigest()[:12]
    return f"{prefix}:{ids[0]}:{len(ids)}:{digest}"


def _reminder(key: tuple[str, str, float], due: Sequence[Ticket], routing: RoutingConfig, policy: SweepPolicy,
              names: Mapping[int, str], now: datetime, groups: Mapping[int, str] | None = None) -> Notice:
    account, unit_key, hours = key
    unit = routing.accounts[account].units[unit_key]
    left = _hours_text(hours, policy)
    ids = tuple(sorted(t.id for t in due))
    if len(due) == 1 and due[0].group_id is None:
        ticket = due[0]
        who = names.get(ticket.acknowledged_by) if ticket.acknowledged_by else None
        rendered = ui.reminder_message(ticket, left, who, tz=routing.timezone, unit_name=unit.name,
                                       acknowledged_by_id=ticket.acknowledged_by)
    else:
        rendered = ui.queue_message(due, routing.timezone, f"⏰ Pengingat: batas jawab {left} lagi — {unit.name}",
                                    now=now, people=names, groups=groups)
    skipped = sorted(f"reminder:{h}" for h in policy.reminder_hours if h >= hours)
    return Notice(_key(f"remind:{unit.chat_id}:{hours:g}", ids), unit.chat_id, "reminder", ids, rendered.text,
                  _buttons(rendered), {"markers": skipped, "before_hours": hours})


def _escalations(overdue: Sequence[Ticket], routing: RoutingConfig, names: Mapping[int, str],
                 now: datetime, groups: Mapping[int, str] | None = None) -> list[Notice]:
    """Overdue tickets to the supervisor and the media team: one message each, or one list."""
    ids = tuple(sorted(t.id for t in overdue))
    if len(overdue) == 1 and overdue[0].group_id is None:
        ticket = overdue[0]
        account = routing.accounts[ticket.account]
        unit = account.units.get(ticket.unit or "")
        who = names.get(ticket.acknowledged_by) if ticket.acknowledged_by else None
        rendered = ui.escalation_message(ticket, account_name=account.name, unit_name=unit.name if unit else None,
                                         tz=routing.timezone, now=now, acknowledged_by_name=who, with_buttons=False)
    else:
        rendered = ui.queue_message(overdue, routing.timezone, "⚠️ Eskalasi: tiket lewat batas waktu",
                                    now=now, people=names, show_unit=True, groups=groups)
    chats = dict.fromkeys((routing.supervisor.chat_id, routing.media_team.chat_id))
    return [Notice(_key(f"escalate:{chat}", ids), chat, "escalated", ids, rendered.text, _buttons(rendered),
                   {"markers": ["escalated"]}) for chat in chats]


def _nudge(account: str, unit_key: str, waiting: Sequence[Ticket], routing: RoutingConfig,
           policy: SweepPolicy, now: datetime, groups: Mapping[int, str] | None = None) -> Notice:
    unit = routing.accounts[account].units[unit_key]
    rendered = ui.nudge_message(waiting, unit.name, routing.timezone,
                                waited_text=_hours_text(policy.nudge_after_hours, policy), now=now, groups=groups)
    ids = tuple(sorted(t.id for t in waiting))
    return Notice(_key(f"nudge:{unit.chat_id}", ids), unit.chat_id, "nudge", ids,
                  rendered.text, _buttons(rendered), {"markers": ["nudge"]})


def _hours_text(hours: float, policy: SweepPolicy) -> str:
    day = policy.calendar.day_length.total_seconds() / 3600
    if hours >= day and hours % day == 0:
        return f"{int(hours // day)} hari kerja"
    return f"{hours:g} jam kerja"


def _buttons(rendered: ui.Rendered) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(row) for row in rendered.buttons)


def sweep(settings: Settings, store: Store, *, now: datetime) -> list[Notice]:
    """`triage remind`: record and queue every notice due at `now`; returns the new ones.
    Decides on light rows of every active ticket; loads in full only the tickets it names."""
    routing = settings.routing
    policy = SweepPolicy.from_routing(routing)
    timings = store.active_timings()
    plan = plan_notices(timings, store.notice_markers([t.id for t in timings]), policy, now)
    ids = plan.ticket_ids()
    if not ids:
        return []
    tickets = [t for t in store.tickets_by_ids(sorted(ids))]
    done = store.notice_markers([t.id for t in tickets])
    ack_ids = {t.acknowledged_by for t in tickets if t.acknowledged_by}
    names = {i: store.person_name(i) or f"petugas {i}" for i in ack_ids if i is not None}
    groups = {g: (store.surges.group(g) or {}).get("title") or "" for g in {t.group_id for t in tickets if t.group_id}}
    notices = due_notices(tickets, done, routing, policy, names, now, groups)
    return [n for n in notices if store.record_notice(
        n.key, n.chat_id, n.kind, n.ticket_ids, {"text": n.text, "buttons": to_payload(n.buttons)}, n.detail or {}, now=now)]
