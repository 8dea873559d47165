"""The monthly report for the media team's evaluation meeting: one HTML file and one PDF.

`build_report` reads a month from the store (aggregate queries and one narrow
row per ticket) into `ReportData`; `write_report` turns it into a
self-contained HTML file (charts embedded as PNG) and a PDF made with
matplotlib alone, so a server without a browser can produce both.

A month's tickets are the ones whose message was written in that month (local
time). Deadline compliance counts the tickets that fell due: resolved ones, and
open or acknowledged ones whose deadline has passed at the time of the report;
tickets closed by a correction ("no answer needed") are left out.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import RoutingConfig
from bot.digest import surge_items
from bot.deadlines import WorkingCalendar, WorkingClock
from bot.figures import Share, TimingRow, median, unit_names, unit_order
from bot.indonesian import (
    format_clock,
    format_date,
    format_day,
    format_hours,
    format_month,
    format_number,
    format_percent,
    unit_label,
    zone_name,
)
from bot.pii import mask_pii
from bot.store import Store
from bot.topics import Topic, content_words, routing_keywords, top_topics, words
from bot.triage import ACKNOWLEDGED, ACTIVE_STATUSES, OPEN, RESOLVED, iso

if TYPE_CHECKING:
    from bot.charts import ChartSpec  # matplotlib is imported only when files are written

REPORT_TOPICS = 15
RECURRING_LISTED = 10
RECURRING_MIN_COUNT = 3
SIMILARITY = 0.75  # Jaccard similarity of the content words for two complaints to count as one
HISTOGRAM_BIN_HOURS = 2.0
TEMPLATES = Path(__file__).parent / "templates"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class DayCounts:
    day: date
    working: bool
    messages: int = 0
    triaged: int = 0
    complaint: int = 0
    question: int = 0
    negative: int = 0
    spam: int = 0


@dataclass(frozen=True)
class UnitMonth:
    account: str
    unit: str
    name: str
    tickets: int
    open: int
    acknowledged: int
    resolved: int
    compliance: Share  # resolved on time, of the tickets that fell due
    overdue_open: int
    median_ack_hours: float | None
    median_resolve_hours: float | None


@dataclass(frozen=True)
class Histogram:
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    over: int  # beyond the last edge
    deadline_hours: float


@dataclass(frozen=True)
class Recurring:
    text: str  # the most frequent wording, personal data masked
    count: int
    units: tuple[str, ...]  # unit names, most frequent first


@dataclass(frozen=True)
class Summary:
    messages: int
    tickets: int
    spam: int
    compliance: Share
    median_resolve_hours: float | None
    median_ack_hours: float | None
    negative: Share


@dataclass(frozen=True)
class ReportData:
    month: str  # "2025-03"
    title: str
    period: str  # "Maret 2025"
    generated_at: datetime  # local
    zone_label: str
    working_days: int
    summary: Summary
    days: tuple[DayCounts, ...]
    units: tuple[UnitMonth, ...]  # units with tickets this month, routing.yaml order
    histogram: Histogram
    topics: tuple[Topic, ...]
    recurring: tuple[Recurring, ...]
    account_names: Mapping[str, str]
    surges: tuple[tuple[str, str], ...] = ()  # (lead, text) of each surge of the month (bot.surges)


# -- reading the month ----------------------------------------------------------


def month_bounds(month: str, calendar: WorkingCalendar) -> tuple[datetime, datetime]:
    """Local midnight of the month's first day and of the next month's."""
    match = _MONTH.match(month)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"bulan '{month}' tidak dikenali: tulis dalam bentuk TTTT-BB, misalnya 2025-03")
    year, mon = int(match.group(1)), int(match.group(2))
    start = datetime(year, mon, 1, tzinfo=calendar.zone)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=calendar.zone)
    return start, end


def build_report(store: Store, routing: RoutingConfig, month: str, *, now: datetime | None = None) -> ReportData:
    """Read the figures of `month` ("YYYY-MM"); `now` (default: the clock) decides what is overdue."""
    calendar = routing.calendar()
    now = (now or datetime.now(timezone.utc)).astimezone(calendar.zone)
    start, end = month_bounds(month, calendar)
    offset = start.utcoffset() or timedelta(0)  # Indonesian zones keep one offset all year
    days = daily_counts(store.daily_label_counts(start, end, int(offset.total_seconds())),
                        start.date(), end.date(), calendar)
    tallies = tally_month(store.ticket_timings(start, end, by="received_at"), now, calendar)
    units = unit_months(routing, tallies)
    complaints = store.complaint_texts(start, end, by="received_at")
    split = [words(text) for _, _, text in complaints]  # once, for the topics and the repeats
    deadline_hours = routing.deadline.working_days * calendar.day_length.total_seconds() / 3600
    return ReportData(
        month=month,
        title="Laporan Bulanan Triase Pesan Instagram",
        period=format_month(start.year, start.month),
        generated_at=now,
        zone_label=zone_name(calendar.tz),
        working_days=routing.deadline.working_days,
        summary=summarise(days, tallies.values()),
        days=days,
        units=units,
        histogram=histogram([h for t in tallies.values() for h in t.resolve_hours], deadline_hours),
        topics=top_topics(split, routing_keywords(routing), limit=REPORT_TOPICS),
        recurring=recurring_complaints(complaints, split=split, names=unit_names(routing)),
        account_names={key: acc.name for key, acc in routing.accounts.items()},
        surges=surge_items(store, routing, start, end),
    )


def daily_counts(rows: Iterable[Mapping[str, object]], first: date, stop: date,
                 calendar: WorkingCalendar) -> tuple[DayCounts, ...]:
    """One entry per day of [first, stop), zeros where the store had nothing."""
    by_day = {str(row["day"]): row for row in rows}
    out = []
    day = first
    while day < stop:
        row = by_day.get(day.isoformat(), {})
        out.append(DayCounts(day, calendar.is_working_day(day),
                             **{k: int(str(row.get(k) or 0)) for k in
                                ("messages", "triaged", "complaint", "question", "negative", "spam")}))
        day += timedelta(days=1)
    return tuple(out)


@dataclass
class _UnitTally:
    tickets: int = 0
    open: int = 0
    acknowledged: int = 0
    resolved: int = 0
    due: int = 0
    on_time: int = 0
    overdue_open: int = 0
    ack_hours: list[float] = field(default_factory=list)
    resolve_hours: list[float] = field(default_factory=list)


def tally_month(rows: Iterable[TimingRow], now: datetime,
                calendar: WorkingCalendar) -> dict[tuple[str, str], _UnitTally]:
    """Per-unit counts and times from Store.ticket_timings rows."""
    stamp = iso(now)
    clock = WorkingClock(calendar)
    tallies: dict[tuple[str, str], _UnitTally] = {}
    for account, unit, status, received, due, acked, done in rows:
        t = tallies.setdefault((account, unit), _UnitTally())
        t.tickets += 1
        t.open += status == OPEN
        t.acknowledged += status == ACKNOWLEDGED
        t.resolved += status == RESOLVED
        came = clock.position(received)
        if acked is not None:
            t.ack_hours.append(clock.hours(came, acked))
        if done is not None:
            t.due += 1
            t.on_time += due is None or done <= due  # both stored as UTC ISO text
            t.resolve_hours.append(clock.hours(came, done))
        elif status in ACTIVE_STATUSES and due is not None and due < stamp:
            t.due += 1
            t.overdue_open += 1
    return tallies


def unit_months(routing: RoutingConfig, tallies: Mapping[tuple[str, str], _UnitTally]) -> tuple[UnitMonth, ...]:
    out = []
    names = unit_names(routing)
    for account, unit in unit_order(routing, tallies):
        t = tallies.get((account, unit))
        if t is None or not t.tickets:
            continue
        name = unit_label(unit, names.get((account, unit)))
        out.append(UnitMonth(account, unit, name, t.tickets, t.open, t.acknowledged, t.resolved,
                             Share(t.on_time, t.due), t.overdue_open, median(t.ack_hours), median(t.resolve_hours)))
    return tuple(out)


def summarise(days: Sequence[DayCounts], tallies: Iterable[_UnitTally]) -> Summary:
    units = list(tallies)
    return Summary(
        messages=sum(d.messages for d in days),
        tickets=sum(t.tickets for t in units),
        spam=sum(d.spam for d in days),
        compliance=Share(sum(t.on_time for t in units), sum(t.due for t in units)),
        median_resolve_hours=median([h for t in units for h in t.resolve_hours]),
        median_ack_hours=median([h for t in units for h in t.ack_hours]),
        negative=Share(sum(d.negative for d in days), sum(d.triaged for d in days)),
    )


def histogram(hours: Sequence[float], deadline_hours: float, bin_hours: float = HISTOGRAM_BIN_HOURS) -> Histogram:
    """Bins of `bin_hours` up to twice the deadline; the rest counted as `over`."""
    bins = max(1, math.ceil(2 * deadline_hours / bin_hours))
    counts = [0] * bins
    over = 0
    for h in hours:
        i = int(max(h, 0.0) // bin_hours)
        if i < bins:
            counts[i] += 1
        else:
            over += 1
    return Histogram(tuple(i * bin_hours for i in range(bins + 1)), tuple(counts), over, deadline_hours)


# -- recurring complaints ----------------------------------------------------------
# Two complaints are "the same" when their content words (bot.topics.content_words:
# no common words, no numbers) overlap by at least SIMILARITY (Jaccard). Exact
# matches are grouped first; near ones are found with prefix filtering, so the
# month's complaints are compared without comparing every pair.


def recurring_complaints(items: Sequence[tuple[str, str | None, str]], *, min_count: int = RECURRING_MIN_COUNT,
                         limit: int = RECURRING_LISTED, similarity: float = SIMILARITY,
                         split: Sequence[Sequence[str]] | None = None,
                         names: Mapping[tuple[str, str], str] | None = None) -> tuple[Recurring, ...]:
    """The complaints written most often, in similar words, from (account, unit, text) items
    (and their words(), when the caller has them); units named by `names` (figures.unit_names)."""
    groups: dict[frozenset[str], list[int]] = {}
    for i, (_, _, text) in enumerate(items):
        signature = frozenset(content_words(split[i] if split is not None else text))
        if len(signature) >= 3:  # "tolong min" says nothing that could recur
            groups.setdefault(signature, []).append(i)
    signatures = list(groups)
    found = []
    for cluster in similar_clusters(signatures, similarity):
        members = [i for s in cluster for i in groups[signatures[s]]]
        if len(members) >= min_count:
            texts = Counter(" ".join(items[i][2].split()) for i in members)
            units = Counter(unit_label(items[i][1], (names or {}).get((items[i][0], items[i][1] or ""))) for i in members)
            found.append(Recurring(_shorten(mask_pii(texts.most_common(1)[0][0])), len(members),
                                   tuple(u for u, _ in units.most_common(3))))
    found.sort(key=lambda r: (-r.count, r.text))
    return tuple(found[:limit])


def similar_clusters(signatures: Sequence[frozenset[str]], threshold: float) -> list[list[int]]:
    """Groups of indices whose sets are linked by Jaccard similarity >= threshold."""
    freq = Counter(w for s in signatures for w in s)
    parent = list(range(len(signatures)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    index: dict[str, list[int]] = {}
    for i, s in enumerate(signatures):
        rare_first = sorted(s, key=lambda w: (freq[w], w))
        prefix = len(s) - math.ceil(threshold * len(s)) + 1
        candidates = {j for w in rare_first[:prefix] for j in index.get(w, ())}
        for w in rare_first[:prefix]:
            index.setdefault(w, []).append(i)
        for j in candidates:
            if len(s & signatures[j]) >= threshold * len(s | signatures[j]):
                parent[root(j)] = root(i)
    clusters: dict[int, list[int]] = {}
    for i in range(len(signatures)):
        clusters.setdefault(root(i), []).append(i)
    return list(clusters.values())


def _shorten(text: str, limit: int = 220) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


# -- writing the files ----------------------------------------------------------------


def summary_rows(data: ReportData) -> list[tuple[str, str, str]]:
    """(what, figure, how it was counted) for the summary table."""
    s = data.summary
    n = format_number
    return [
        ("Pesan masuk", n(s.messages), "komentar dan DM"),
        ("Tiket untuk unit", n(s.tickets), "tanpa spam"),
        ("Selesai dalam tenggat", format_percent(s.compliance.value),
         f"{n(s.compliance.part)} dari {n(s.compliance.whole)} tiket jatuh tempo"),
        ("Median waktu sampai selesai", format_hours(s.median_resolve_hours), "jam kerja sejak pesan masuk"),
        ("Median waktu sampai diterima", format_hours(s.median_ack_hours), "jam kerja sejak pesan masuk"),
        ("Pesan spam", n(s.spam), format_percent(s.spam / s.messages if s.messages else None) + " dari pesan masuk"),
        ("Pesan negatif", format_percent(s.negative.value),
         f"{n(s.negative.part)} dari {n(s.negative.whole)} pesan ditriase"),
    ]


def report_charts(data: ReportData) -> list["ChartSpec"]:
    """The report's charts in order; the HTML and the PDF show the same ones."""
    from bot import charts

    n_units = max(len(data.units), 1)
    deadline = f"{data.working_days} hari kerja"
    return [
        charts.ChartSpec("volume", "Volume pesan per hari",
                         "Semua pesan yang masuk per hari, dan berapa di antaranya keluhan, pertanyaan atau "
                         "bernada negatif (satu pesan bisa punya beberapa label).",
                         lambda ax: charts.draw_daily_volume(ax, data.days)),
        charts.ChartSpec("units", "Tiket per unit",
                         "Tiket bulan ini per unit, menurut statusnya saat laporan dibuat.",
                         lambda ax: charts.draw_unit_tickets(ax, data.units), 1.2 + 0.38 * n_units),
        charts.ChartSpec("compliance", "Kepatuhan tenggat per unit",
                         f"Bagian tiket yang selesai dalam tenggat ({deadline}), dari tiket yang sudah jatuh "
                         "tempo: yang sudah selesai, dan yang masih terbuka padahal tenggatnya lewat.",
                         lambda ax: charts.draw_compliance(ax, data.units), 1.2 + 0.38 * n_units),
        charts.ChartSpec("histogram", "Sebaran waktu penyelesaian",
                         "Berapa jam kerja dari pesan masuk sampai tiket diselesaikan; batang merah "
                         "melewati tenggat.",
                         lambda ax: charts.draw_histogram(ax, data.histogram)),
        charts.ChartSpec("topics", "Topik keluhan teratas",
                         "Kata kunci routing.yaml dan pasangan kata yang paling sering disebut dalam keluhan "
                         "(setelah kata umum dibuang), dihitung sekali per keluhan.",
                         lambda ax: charts.draw_topics(ax, data.topics), 1.2 + 0.34 * max(len(data.topics), 1)),
        charts.ChartSpec("spam", "Spam per hari",
                         "Pesan yang ditandai spam (judi online, giveaway palsu, investasi bodong) per hari.",
                         lambda ax: charts.draw_spam(ax, data.days), 3.4),
    ]


def recurring_items(data: ReportData) -> list[tuple[str, str]]:
    return [(f"{format_number(r.count)}× · {', '.join(r.units)}", f"“{r.text}”") for r in data.recurring]


def footer(data: ReportData) -> str:
    made = data.generated_at
    return (f"{data.title} · {data.period} · dibuat {format_day(made.date())} "
            f"{format_clock(made)} {data.zone_label}")


def render_html(data: ReportData) -> str:
    import jinja2

    from bot import charts

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2").render(
        data=data,
        summary=summary_rows(data),
        charts={spec.key: (spec, charts.png_data_uri(spec)) for spec in report_charts(data)},
        recurring=recurring_items(data),
        footer=footer(data),
        fmt_number=format_number, fmt_percent=format_percent, fmt_hours=format_hours,
        fmt_date=format_date,
    )


def write_report(data: ReportData, out_dir: str | Path) -> tuple[Path, Path]:
    """laporan-YYYY-MM.html and laporan-YYYY-MM.pdf in out_dir."""
    from bot import charts

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path = out / f"laporan-{data.month}.html"
    html_path.write_text(render_html(data), encoding="utf-8")
    content = charts.PdfContent(
        title=data.title, subtitle=f"{data.period} · {', '.join(data.account_names.values())}",
        summary=summary_rows(data), charts=report_charts(data),
        list_heading="Lonjakan komentar dan keluhan berulang" if data.surges else "Keluhan berulang",
        list_items=[*data.surges, *recurring_items(data)], footer=footer(data))
    return html_path, charts.write_pdf(content, out / f"laporan-{data.month}.pdf")
