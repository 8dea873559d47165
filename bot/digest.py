"""The supervisor's daily digest: figures from the store, a short Telegram text, one chart.

`build_digest` is the only function here that reads the store (a handful of
narrow aggregate queries); the rest is pure: the period, the per-unit figures,
the complaint topics and the Indonesian text. The topic and formatting helpers
are shared with the monthly report (bot.report).

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

import html
import re
import statistics
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from bot.config import RoutingConfig
from bot.deadlines import WorkingCalendar, working_time_between
from bot.store import Store
from bot.triage import ACKNOWLEDGED, OPEN

DIGEST_TOPICS = 5
OVERDUE_LISTED = 10
_MAX_LOOKBACK_DAYS = 366


# -- figures -----------------------------------------------------------------


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
class Topic:
    term: str
    count: int  # complaint texts that mention it
    kind: str  # "kata kunci" (a routing.yaml keyword) or "frasa" (a frequent word pair)


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


class WorkingClock:
    """Working hours between many pairs of moments, as bot.deadlines.working_time_between
    counts them (a property test holds the two equal), in constant time per pair.

    Each local day's working seconds are added up once into a running total, so
    that a moment's position on the working clock is one look-up; the working time
    between two moments is the difference of their positions. A month of 100,000
    tickets costs a fraction of a second instead of seconds.
    """

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar
        self._length = calendar.day_length.total_seconds()
        self._opens = calendar.opens.hour * 3600 + calendar.opens.minute * 60 + calendar.opens.second
        # day number (days since 1970-01-01, local) -> (working seconds before that day, is a working day)
        self._days: dict[int, tuple[float, bool]] = {}
        self._low = self._high = 0

    def hours(self, start: str | datetime | float, end: str | datetime) -> float:
        """Working hours from start to end (stored ISO text, aware datetimes, or a position
        from `position`); negative if end is earlier."""
        begin = start if isinstance(start, float) else self.position(start)
        return (self.position(end) - begin) / 3600

    def position(self, moment: str | datetime) -> float:
        """Working seconds from an arbitrary origin to `moment`."""
        when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        offset = when.astimezone(self.calendar.zone).utcoffset()
        if offset is None or when.tzinfo is None:
            raise ValueError(f"naive datetime {when.isoformat()}: pass a timezone-aware moment")
        day, seconds = divmod(when.timestamp() + offset.total_seconds(), 86400)
        before, working = self._day(int(day))
        return before + (min(max(seconds - self._opens, 0.0), self._length) if working else 0.0)

    def _day(self, day: int) -> tuple[float, bool]:
        known = self._days.get(day)
        if known is not None:
            return known
        if not self._days:
            self._days[day] = (0.0, self._is_working(day))
            self._low = self._high = day
        while day > self._high:
            before, working = self._days[self._high]
            self._high += 1
            self._days[self._high] = (before + (self._length if working else 0.0), self._is_working(self._high))
        while day < self._low:
            self._low -= 1
            working = self._is_working(self._low)
            self._days[self._low] = (self._days[self._low + 1][0] - (self._length if working else 0.0), working)
        return self._days[day]

    def _is_working(self, day: int) -> bool:
        return self.calendar.is_working_day(date.fromordinal(day + _EPOCH_ORDINAL))


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def working_hours(start: datetime, end: datetime, calendar: WorkingCalendar) -> float:
    """Working hours between two aware moments (bot.deadlines.working_time_between)."""
    return working_time_between(start, end, calendar=calendar).total_seconds() / 3600


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


def build_digest(store: Store, routing: RoutingConfig, now: datetime) -> Digest:
    """Read the figures for the digest due at `now` (an aware datetime)."""
    calendar = routing.calendar()
    since, until = digest_period(now, calendar, routing.digest.time)
    tallies = tally_units(
        statuses=store.unit_status_counts(),
        overdue=store.overdue_counts(until),
        new=store.new_ticket_counts(since, until),
        acknowledged=store.ticket_timings(since, until, by="acknowledged_at"),
        resolved=store.ticket_timings(since, until, by="resolved_at"),
        calendar=calendar,
    )
    units, accounts, total = freeze_units(routing, tallies)
    texts = [text for _, _, text in store.complaint_texts(since, until)]
    return Digest(
        since=since,
        until=until,
        zone_label=zone_label(calendar.tz),
        hours_per_day=calendar.day_length.total_seconds() / 3600,
        units=units,
        accounts=accounts,
        total=total,
        topics=top_topics(texts, routing_keywords(routing), limit=DIGEST_TOPICS),
        negative=_negative_share(store, since, until),
        negative_before=_negative_share(store, since - timedelta(days=7), since),
        overdue=overdue_tickets(store.overdue_ticket_rows(until, OVERDUE_LISTED), until, calendar),
        account_names={key: acc.name for key, acc in routing.accounts.items()},
    )


def _negative_share(store: Store, start: datetime, end: datetime) -> Share:
    triaged, negative = store.negative_counts(start, end)
    return Share(negative, triaged)


# -- complaint topics ---------------------------------------------------------
# Simple and explainable on purpose: the routing.yaml keywords a complaint
# mentions, and the word pairs that come back most often once the common
# Indonesian words are removed.

_LETTERS = re.compile(r"[^\W\d_]+")
_REPEATS = re.compile(r"([^\W\d_])\1{2,}")

# Function words, chat slang, greetings and forms of address: they say nothing about the topic.
STOP_WORDS = frozenset("""
ada adalah agar akan aku aja amin anda apa apakah atas atau bagaimana bagi bahwa baik banget bang bapak
belom bgt biar bila bisa bs buat bukan cuma dah dalam dan dari dgn dengan deh di dia dong dr engga enggak
ga gak gan gimana gitu gmn gw gue hal halo hallo hanya hari harus ia ialah ibu ini itu iya jadi jg juga
kah kak kakak kalau kalian kalo kami kan kapan karena kasih kayak ke kenapa kita klo knp kok krn kurang
lagi lah lebih lg lo lu mana mas masih mau mbak melalui memang mereka min mimin minta mohon mulai nah
namun nggak ngga ni nih nya oleh pada pagi pak para pd pun saja sama sampai sampe sangat saya sdh sedang
sejak selamat semua seperti setelah siang sih silakan sini situ sm sore sudah supaya sy tahun tanya tapi
telah tentang terima terhadap tersebut tetapi tidak tlg tolong tp tsb ttg tuh udah udh untuk utk wb wr
se ya yaa yah yang yg admin assalamualaikum the and to of is in it for you this that please thanks
""".split())


def words(text: str) -> list[str]:
    """Lower-case letter runs, fancy letters folded and stretched letters shortened ("lamaaa" -> "lama")."""
    folded = _REPEATS.sub(r"\1", unicodedata.normalize("NFKC", text).casefold())
    return _LETTERS.findall(folded)


Text = str | Sequence[str]  # a text, or its words() when the caller has split it already


def content_words(text: Text) -> list[str]:
    """The words that carry the topic: no stop words, no single letters."""
    return [w for w in (words(text) if isinstance(text, str) else text) if len(w) > 1 and w not in STOP_WORDS]


def routing_keywords(routing: RoutingConfig) -> list[str]:
    return [kw for acc in routing.accounts.values() for unit in acc.units.values() for kw in unit.keywords]


KeywordIndex = Mapping[str, Sequence[tuple[tuple[str, ...], str]]]


def keyword_index(keywords: Iterable[str]) -> KeywordIndex:
    """First word -> (word sequence, keyword shown). Spellings that differ only in spaces
    and hyphens ("e-warong", "e warong", "ewarong") are one keyword, shown as first written."""
    shown: dict[str, str] = {}
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for keyword in keywords:
        seq = tuple(words(keyword))
        if seq and all(seq != known for known, _ in index.get(seq[0], ())):
            index.setdefault(seq[0], []).append((seq, shown.setdefault("".join(seq), keyword)))
    return index


def keywords_in(seq: Sequence[str], index: KeywordIndex) -> dict[str, tuple[str, ...]]:
    """The keywords found in a text's words (shown -> words matched)."""
    found: dict[str, tuple[str, ...]] = {}
    for i, word in enumerate(seq):
        for keyword, shown in index.get(word, ()):
            if tuple(seq[i:i + len(keyword)]) == keyword:
                found[shown] = keyword
    # "pbi" inside "kis pbi" is the same mention: keep the longer keyword only.
    return {k: part for k, part in found.items()
            if not any(len(other) > len(part) and _contains(other, part) for other in found.values())}


def _contains(seq: tuple[str, ...], part: tuple[str, ...]) -> bool:
    return any(seq[i:i + len(part)] == part for i in range(len(seq) - len(part) + 1))


def top_topics(texts: Iterable[Text], keywords: Iterable[str], *, limit: int = 10, min_pair: int = 2) -> tuple[Topic, ...]:
    """The keywords and word pairs mentioned by the most texts (each counted once per text)."""
    index = keyword_index(keywords)
    keyword_hits: Counter[str] = Counter()
    pair_hits: Counter[str] = Counter()
    for text in texts:
        seq = words(text) if isinstance(text, str) else text
        found = keywords_in(seq, index)
        keyword_hits.update(found.keys())  # a mapping would add its values
        # A pair that repeats a keyword's word adds nothing to the keyword itself.
        taken = {w for part in found.values() for w in part}
        content = content_words(seq)
        pair_hits.update({f"{a} {b}" for a, b in zip(content, content[1:]) if a != b and not {a, b} & taken})
    topics = [Topic(k, n, "kata kunci") for k, n in keyword_hits.items()]
    topics += [Topic(p, n, "frasa") for p, n in pair_hits.items() if n >= min_pair]
    topics.sort(key=lambda t: (-t.count, t.kind != "kata kunci", t.term))
    return tuple(topics[:limit])


# -- Indonesian formatting (locale-independent) --------------------------------

MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
          "September", "Oktober", "November", "Desember")
WEEKDAYS = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
_ZONE_LABELS = {"Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}


def zone_label(tz: str) -> str:
    return _ZONE_LABELS.get(tz, tz)


def format_number(value: float, decimals: int = 0) -> str:
    """12345.6 -> "12.345,6": Indonesian separators, whatever the system locale."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def format_percent(share: float | None, decimals: int = 1) -> str:
    return "–" if share is None else format_number(100 * share, decimals) + "%"


def format_hours(hours: float | None) -> str:
    return "–" if hours is None else format_number(hours, 1) + " jam"


def format_date(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def format_day(day: date) -> str:
    return f"{WEEKDAYS[day.weekday()]}, {format_date(day)}"


def format_clock(moment: datetime) -> str:
    return f"{moment.hour:02d}.{moment.minute:02d}"


def format_month(year: int, month: int) -> str:
    return f"{MONTHS[month - 1]} {year}"


def format_late(hours: float, hours_per_day: float) -> str:
    if hours >= hours_per_day:
        return f"{format_number(hours / hours_per_day, 1)} hari kerja"
    return f"{format_number(hours, 1)} jam kerja"


def unit_label(account: str, unit: str) -> str:
    """"kemensos · linjamsos": unit keys repeat across accounts (humas, itjen)."""
    return f"{account} · {unit}"


# -- the Telegram text ----------------------------------------------------------


def render_digest_text(digest: Digest) -> str:
    """The digest as a short Telegram message (parse_mode HTML), in Indonesian."""
    parts = [_header(digest), _totals(digest.total, digest)]
    for account in digest.accounts:
        lines = [_unit_line(u, digest) for u in digest.busy_units if u.account == account.account]
        if lines:
            name = html.escape(digest.account_names.get(account.account, account.account))
            parts.append(f"<b>{name}</b>\n" + "\n".join(lines))
    parts += [_topics(digest.topics), _negative(digest), _overdue(digest)]
    return "\n\n".join(p for p in parts if p)


def _header(d: Digest) -> str:
    since, until = d.since, d.until
    return (f"<b>📋 Ringkasan harian tiket</b>\n{format_day(until.date())}, {format_clock(until)} {d.zone_label}\n"
            f"Periode: {WEEKDAYS[since.weekday()]} {since.day}/{since.month} {format_clock(since)} – "
            f"{WEEKDAYS[until.weekday()]} {until.day}/{until.month} {format_clock(until)}")


def _counts(u: UnitFigures) -> str:
    n = format_number
    late = f" · ⚠️ <b>{n(u.overdue)} lewat tenggat</b>" if u.overdue else ""
    return f"{n(u.new)} baru · {n(u.open)} terbuka · {n(u.acknowledged)} diterima · {n(u.resolved)} selesai{late}"


def _timing(u: UnitFigures) -> str:
    bits = []
    if u.resolved:
        bits.append(f"tepat waktu {format_percent(u.on_time.value, 0)} ({u.resolved_on_time}/{u.resolved})")
    if u.median_ack_hours is not None:
        bits.append(f"median diterima {format_hours(u.median_ack_hours)}")
    if u.median_resolve_hours is not None:
        bits.append(f"{'' if u.median_ack_hours is not None else 'median '}selesai {format_hours(u.median_resolve_hours)}")
    return " · ".join(bits)


def _totals(total: UnitFigures, d: Digest) -> str:
    timing = _timing(total)
    note = f"\n{timing}\n<i>(jam kerja sejak pesan masuk)</i>" if timing else ""
    return f"<b>Total</b>: {_counts(total)}{note}"


def _unit_line(u: UnitFigures, d: Digest) -> str:
    timing = _timing(u)
    return f"• <b>{html.escape(u.unit)}</b>: {_counts(u)}" + (f"\n   {timing}" if timing else "")


def _topics(topics: Sequence[Topic]) -> str:
    if not topics:
        return "<b>Topik keluhan</b>: belum ada keluhan dalam periode ini."
    listed = ", ".join(f"{html.escape(t.term)} ({t.count})" for t in topics)
    return f"<b>Topik keluhan</b>: {listed}"


def _negative(d: Digest) -> str:
    now, before = d.negative.value, d.negative_before.value
    text = (f"<b>Pesan negatif</b>: {format_percent(now)} ({format_number(d.negative.part)} dari "
            f"{format_number(d.negative.whole)} pesan)"
            f"\n7 hari sebelumnya: {format_percent(before)}")
    if now is not None and before is not None:
        points = 100 * (now - before)
        trend = "naik" if points > 0.05 else "turun" if points < -0.05 else "tetap"
        arrow = {"naik": "▲", "turun": "▼", "tetap": "="}[trend]
        text += f" {arrow} {trend}" + (f" {format_number(abs(points), 1)} poin" if trend != "tetap" else "")
    return text


def _overdue(d: Digest) -> str:
    if not d.total.overdue:
        return "✅ Tidak ada tiket yang lewat tenggat."
    lines = [f"<b>⚠️ Lewat tenggat: {format_number(d.total.overdue)} tiket</b>"]
    for t in d.overdue:
        lines.append(f"#{t.id} {html.escape(unit_label(t.account, t.unit))} · lewat "
                     f"{format_late(t.late_hours, d.hours_per_day)}")
    if d.total.overdue > len(d.overdue):
        lines.append(f"… dan {format_number(d.total.overdue - len(d.overdue))} tiket lainnya")
    return "\n".join(lines)


# -- the chart -----------------------------------------------------------------


def render_digest_chart(digest: Digest, path: str | Path) -> Path:
    """One portrait PNG (1080x1350) of the open, overdue and resolved tickets per unit."""
    from bot import charts  # matplotlib only when a chart is drawn

    return charts.save_digest_chart(digest, Path(path))
