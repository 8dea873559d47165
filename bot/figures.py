"""The figures of the supervisor's digest and the monthly report, per unit and in total.

Pure: the store's aggregate rows in, frozen figures out (bot.digest reads the
rows and writes the text; bot.report the month).

Definitions, so that the numbers can be explained at the meeting:

- the period runs from the digest time of the previous working day to now
  (Monday's digest covers Friday 07:30 to Monday 07:30);
- "baru": tickets made in the period; "terbuka" and "diterima": tickets in that
  state now; "selesai": tickets resolved in the period; "lewat tenggat":
  tickets still open or acknowledged whose deadline has passed;
- "tepat waktu": of the tickets resolved in the period, the share resolved by
  their deadline;
- times to acknowledge and to resolve are working hours from the citizen's
  message to the button press, counted as bot.deadlines.working_time_between
  counts them (WorkingClock: the same figures, faster for many tickets);
- "pesan negatif": tickets labelled negative over all messages triaged in the
  period, compared with the seven days before the period.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from bot.deadlines import WorkingCalendar, WorkingClock, working_hours
from bot.indonesian import unit_label
from bot.topics import Topic
from bot.triage import ACKNOWLEDGED, OPEN

if TYPE_CHECKING:
    from bot.config import RoutingConfig

DIGEST_TOPICS = 5
OVERDUE_LISTED = 10
_MAX_LOOKBACK_DAYS = 366


@dataclass(frozen=True)
class Share:
    """`part` of `whole`; the value is None when there is nothing to divide."""

    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None


@dataclass(frozen=True)
class UnitFigures:
    """One unit's figures (or a total, with unit "")."""

    account: str
    unit: str
    new: int = 0
    open: int = 0
    acknowledged: int = 0
    resolved: int = 0
    overdue: int = 0
    resolved_on_time: int = 0
    median_ack_hours: float | None = None
    median_resolve_hours: float | None = None

    @property
    def on_time(self) -> Share:
        return Share(self.resolved_on_time, self.resolved)

    @property
    def active(self) -> int:
        return self.open + self.acknowledged

    @property
    def quiet(self) -> bool:
        """Nothing happened and nothing waits: left out of the text and the chart."""
        return not (self.new or self.active or self.resolved)


@dataclass(frozen=True)
class OverdueTicket:
    id: int
    account: str
    unit: str
    deadline: datetime
    late_hours: float  # working hours since the deadline


@dataclass(frozen=True)
class Digest:
    since: datetime  # local time
    until: datetime  # local time
    zone_label: str  # "WIB"
    hours_per_day: float
    units: tuple[UnitFigures, ...]  # every unit, in routing.yaml order
    accounts: tuple[UnitFigures, ...]  # one total per account
    total: UnitFigures
    topics: tuple[Topic, ...]
    negative: Share
    negative_before: Share  # the seven days before the period
    overdue: tuple[OverdueTicket, ...]  # oldest deadline first, at most OVERDUE_LISTED
    account_names: Mapping[str, str]
    unit_names: Mapping[tuple[str, str], str] = field(default_factory=dict)  # see unit_names()
    surges: tuple[tuple[str, str], ...] = ()  # (lead, text) of each surge in the period (bot.surges)

    def unit_name(self, account: str, unit: str) -> str:
        return unit_label(unit, self.unit_names.get((account, unit)))

    @property
    def busy_units(self) -> tuple[UnitFigures, ...]:
        return tuple(u for u in self.units if not u.quiet or u.overdue)


@dataclass
class _Tally:
    """Mutable counts of one unit while the rows are read; frozen into UnitFigures."""

    new: int = 0
    open: int = 0
    acknowledged: int = 0
    resolved: int = 0
    overdue: int = 0
    on_time: int = 0
    ack_hours: list[float] = field(default_factory=list)
    resolve_hours: list[float] = field(default_factory=list)

    def merge(self, other: "_Tally") -> None:
        self.new += other.new
        self.open += other.open
        self.acknowledged += other.acknowledged
        self.resolved += other.resolved
        self.overdue += other.overdue
        self.on_time += other.on_time
        self.ack_hours.extend(other.ack_hours)
        self.resolve_hours.extend(other.resolve_hours)

    def freeze(self, account: str, unit: str) -> UnitFigures:
        return UnitFigures(
            account=account, unit=unit, new=self.new, open=self.open, acknowledged=self.acknowledged,
            resolved=self.resolved, overdue=self.overdue, resolved_on_time=self.on_time,
            median_ack_hours=median(self.ack_hours), median_resolve_hours=median(self.resolve_hours),
        )


UnitKey = tuple[str, str]
# Store.ticket_timings: account, unit, status, received_at, deadline, acknowledged_at, resolved_at (UTC ISO text)
TimingRow = tuple[str, str, str, str, str | None, str | None, str | None]


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def unit_names(routing: RoutingConfig) -> dict[UnitKey, str]:
    """Each unit's name for people, from routing.yaml; a name two accounts share (Inspektorat
    Jenderal, Biro Hubungan Masyarakat) gets its account's key: "Inspektorat Jenderal (Kemensos)"."""
    names = {(a, u): unit.name for a, acc in routing.accounts.items() for u, unit in acc.units.items()}
    shared = Counter(names.values())
    return {(a, u): f"{name} ({a.capitalize()})" if shared[name] > 1 else name for (a, u), name in names.items()}


def digest_period(now: datetime, calendar: WorkingCalendar, at: time) -> tuple[datetime, datetime]:
    """From the digest time `at` on the working day before today to `now`, in local time."""
    local = now.astimezone(calendar.zone)
    day = local.date() - timedelta(days=1)
    for _ in range(_MAX_LOOKBACK_DAYS):
        if calendar.is_working_day(day):
            break
        day -= timedelta(days=1)
    return datetime.combine(day, at, tzinfo=calendar.zone), local


def tally_units(
    *,
    statuses: Iterable[tuple[str, str, str, int]],
    overdue: Iterable[tuple[str, str, int]],
    new: Iterable[tuple[str, str, int]],
    acknowledged: Iterable[TimingRow],
    resolved: Iterable[TimingRow],
    calendar: WorkingCalendar,
) -> dict[UnitKey, _Tally]:
    """The per-unit tallies from the store's rows (see Store.unit_status_counts and friends)."""
    tallies: dict[UnitKey, _Tally] = {}
    clock = WorkingClock(calendar)

    def at(account: str, unit: str) -> _Tally:
        return tallies.setdefault((account, unit), _Tally())

    for account, unit, status, count in statuses:
        if status == OPEN:
            at(account, unit).open += count
        elif status == ACKNOWLEDGED:
            at(account, unit).acknowledged += count
    for account, unit, count in overdue:
        at(account, unit).overdue += count
    for account, unit, count in new:
        at(account, unit).new += count
    for account, unit, _, received, _, acked, _ in acknowledged:
        if acked is not None:
            at(account, unit).ack_hours.append(clock.hours(received, acked))
    for account, unit, _, received, due, _, done in resolved:
        if done is None:
            continue
        tally = at(account, unit)
        tally.resolved += 1
        tally.on_time += due is None or done <= due  # both stored as UTC ISO text
        tally.resolve_hours.append(clock.hours(received, done))
    return tallies


def unit_order(routing: RoutingConfig, keys: Iterable[UnitKey]) -> list[UnitKey]:
    """routing.yaml's order, then any unit the store knows that the file no longer has."""
    known = [(a, u) for a, acc in routing.accounts.items() for u in acc.units]
    return known + sorted(set(keys) - set(known))


def freeze_units(
    routing: RoutingConfig, tallies: Mapping[UnitKey, _Tally]
) -> tuple[tuple[UnitFigures, ...], tuple[UnitFigures, ...], UnitFigures]:
    """(per unit, per account, total), every unit listed even when it has nothing."""
    units: list[UnitFigures] = []
    per_account: dict[str, _Tally] = {a: _Tally() for a in routing.accounts}
    total = _Tally()
    for account, unit in unit_order(routing, tallies):
        tally = tallies.get((account, unit), _Tally())
        units.append(tally.freeze(account, unit))
        per_account.setdefault(account, _Tally()).merge(tally)
        total.merge(tally)
    accounts = tuple(t.freeze(a, "") for a, t in per_account.items())
    return tuple(units), accounts, total.freeze("", "")


def overdue_tickets(rows: Iterable[Mapping[str, object]], now: datetime, calendar: WorkingCalendar) -> tuple[OverdueTicket, ...]:
    out = []
    for row in rows:
        due = datetime.fromisoformat(str(row["deadline"])).astimezone(calendar.zone)
        out.append(OverdueTicket(int(str(row["id"])), str(row["account"]), str(row["unit"]), due,
                                 working_hours(due, now, calendar)))
    return tuple(out)
