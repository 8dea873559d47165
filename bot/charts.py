"""Every chart of the digest and the monthly report, drawn with matplotlib's Agg and PDF backends.

No pyplot and no display: figures are plain `Figure` objects, so this runs on
a server without a screen and in tests. Fonts, number formats and labels are fixed
here (DejaVu Sans ships with matplotlib; month and day names come from
bot.digest), so the output does not depend on the system locale.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from bot.figures import Digest
from bot.indonesian import WEEKDAYS, format_clock, format_date, format_number, format_percent

if TYPE_CHECKING:
    from bot.report import DayCounts, Histogram, UnitMonth
    from bot.topics import Topic

# One palette for every chart, so a colour means the same thing everywhere.
COLORS = {
    "open": "#f28e2b", "acknowledged": "#4e79a7", "resolved": "#59a14f", "overdue": "#e15759",
    "total": "#3b3b3b", "complaint": "#e15759", "question": "#4e79a7", "negative": "#b07aa1",
    "spam": "#8c8c8c", "keyword": "#4e79a7", "phrase": "#76b7b2", "grid": "#dddddd", "weekend": "#f1f1f1",
}
_STYLE: dict[Any, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 11,
    "axes.formatter.use_locale": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titleweight": "bold",
    "axes.edgecolor": "#888888",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
}
A4_PORTRAIT = (8.27, 11.69)
_UNIT_LABELLED = frozenset({"units", "compliance", "topics"})
DIGEST_SIZE, DIGEST_DPI = (7.2, 9.0), 150  # 1080 x 1350 px: a phone screen, portrait


@contextmanager
def chart_style() -> Iterator[None]:
    """Fixed fonts and formats while figures are built and saved."""
    with matplotlib.rc_context(_STYLE):
        yield


@dataclass(frozen=True)
class ChartSpec:
    """One chart of the report: its heading, a sentence that explains it, how to draw it."""

    key: str
    heading: str
    caption: str
    draw: Callable[[Axes], None]
    height: float = 4.2  # inches at 10 inches wide (HTML); the PDF page gives it its own box


# -- the digest chart -------------------------------------------------------------


def digest_figure(digest: Digest) -> Figure:
    fig = Figure(figsize=DIGEST_SIZE, dpi=DIGEST_DPI)
    until, since = digest.until, digest.since
    fig.text(0.04, 0.975, f"Tiket per unit · {format_date(until.date())}", fontsize=21, fontweight="bold", va="top")
    fig.text(0.04, 0.928, f"{WEEKDAYS[until.weekday()]}, periode sejak {WEEKDAYS[since.weekday()]} "
             f"{format_date(since.date())} {format_clock(since)} {digest.zone_label}",
             fontsize=13, color="#555555", va="top")
    units = list(digest.busy_units)
    if not units:
        fig.text(0.5, 0.5, "Tidak ada tiket dalam periode ini", ha="center", fontsize=18, color="#555555")
        return fig
    ax = fig.add_axes((0.36, 0.06, 0.6, 0.79))
    series = (("Belum selesai", "open", [u.active for u in units]),
              ("Lewat tenggat", "overdue", [u.overdue for u in units]),
              ("Selesai (periode)", "resolved", [u.resolved for u in units]))
    _grouped_hbars(ax, [_wrap(digest.unit_name(u.account, u.unit), 22) for u in units], series)
    ax.legend(loc="lower left", bbox_to_anchor=(-0.55, 1.005), ncols=3, fontsize=12, frameon=False,
              handlelength=1.2, columnspacing=1.0)
    ax.tick_params(axis="y", labelsize=13)
    ax.tick_params(axis="x", labelsize=11)
    ax.set_xlabel("jumlah tiket", fontsize=12)
    return fig


def save_digest_chart(digest: Digest, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with chart_style():
        fig = digest_figure(digest)
        FigureCanvasAgg(fig).print_png(str(path), metadata={"Software": None})
    return path


def _grouped_hbars(ax: Axes, labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]]) -> None:
    """Bars side by side per label, top to bottom, each with its value at its end."""
    n = len(series)
    height = 0.8 / n
    top = max((max(values, default=0) for _, _, values in series), default=0) or 1
    for i, (name, color, values) in enumerate(series):
        ys = [row + (i - (n - 1) / 2) * height for row in range(len(labels))]
        bars = ax.barh(ys, values, height=height * 0.92, color=COLORS[color], label=name)
        for bar, value in zip(bars, values):
            if not value:  # a bar of nothing needs no "0" crowding its neighbours' labels
                continue
            ax.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, format_number(value),
                    va="center", fontsize=11, color="#333333")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.15)
    ax.grid(axis="x", color=COLORS["grid"])
    ax.set_axisbelow(True)


# -- the report charts ------------------------------------------------------------


def _day_axis(ax: Axes, days: Sequence["DayCounts"]) -> list[int]:
    """Day-of-month positions; days off shaded so weekend dips explain themselves."""
    xs = [d.day.day for d in days]
    for d in days:
        if not d.working:
            ax.axvspan(d.day.day - 0.5, d.day.day + 0.5, color=COLORS["weekend"], zorder=0, lw=0)
    ax.set_xlim(0.5, (max(xs) if xs else 1) + 0.5)
    ticks = [x for x in xs if x == 1 or x % 5 == 0]
    if xs and xs[-1] - ticks[-1] >= 3:
        ticks.append(xs[-1])
    ax.set_xticks(ticks)
    ax.set_xlabel("tanggal (abu-abu: hari libur)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", color=COLORS["grid"])
    ax.set_axisbelow(True)
    return xs


def draw_daily_volume(ax: Axes, days: Sequence["DayCounts"]) -> None:
    if not any(d.messages for d in days):
        _empty(ax, "Tidak ada pesan bulan ini")
        return
    xs = _day_axis(ax, days)
    lines = (("Semua pesan", "total", [d.messages for d in days]),
             ("Keluhan", "complaint", [d.complaint for d in days]),
             ("Pertanyaan", "question", [d.question for d in days]),
             ("Negatif", "negative", [d.negative for d in days]))
    for name, color, values in lines:
        ax.plot(xs, values, marker="o", markersize=3, lw=2 if color == "total" else 1.6,
                color=COLORS[color], label=name)
    ax.set_ylabel("pesan per hari")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", ncols=4, frameon=False, fontsize=9, bbox_to_anchor=(0, 1.12))


def draw_spam(ax: Axes, days: Sequence["DayCounts"]) -> None:
    if not any(d.spam for d in days):
        _empty(ax, "Tidak ada spam bulan ini")
        return
    xs = _day_axis(ax, days)
    ax.bar(xs, [d.spam for d in days], color=COLORS["spam"], width=0.75)
    ax.set_ylabel("pesan spam per hari")


def draw_unit_tickets(ax: Axes, units: Sequence["UnitMonth"]) -> None:
    """Stacked bars: the month's tickets per unit by their state today."""
    if not units:
        _empty(ax, "Tidak ada tiket bulan ini")
        return
    labels = [_wrap(u.name) for u in units]
    left = [0] * len(units)
    for name, color, values in (("Selesai", "resolved", [u.resolved for u in units]),
                                ("Diterima", "acknowledged", [u.acknowledged for u in units]),
                                ("Terbuka", "open", [u.open for u in units])):
        ax.barh(labels, values, left=left, color=COLORS[color], label=name, height=0.7)
        left = [a + b for a, b in zip(left, values)]
    top = max(left, default=0) or 1
    for y, total in enumerate(left):
        ax.text(total + top * 0.01, y, format_number(total), va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.12)
    ax.set_xlabel("tiket masuk bulan ini")
    ax.grid(axis="x", color=COLORS["grid"])
    ax.set_axisbelow(True)
    ax.legend(loc="lower right", frameon=False, fontsize=9)


def draw_compliance(ax: Axes, units: Sequence["UnitMonth"]) -> None:
    """Share resolved within the deadline, per unit, coloured by how far from 100% it is."""
    if not units:
        _empty(ax, "Tidak ada tiket bulan ini")
        return
    labels = [_wrap(u.name) for u in units]
    shares = [u.compliance.value for u in units]
    colors = [COLORS["resolved"] if (s or 0) >= 0.9 else COLORS["open"] if (s or 0) >= 0.7 else COLORS["overdue"]
              for s in shares]
    ax.barh(labels, [100 * (s or 0) for s in shares], color=colors, height=0.7)
    for y, (u, s) in enumerate(zip(units, shares)):
        share = f"{format_number(u.compliance.part)}/{format_number(u.compliance.whole)}"
        text = f"{format_percent(s, 0)}  ({share})" if s is not None else "belum jatuh tempo"
        ax.text(min(100 * (s or 0), 100) + 1.5, y, text, va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 125)
    ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_xlabel("selesai dalam tenggat (hijau ≥ 90%, oranye ≥ 70%, merah < 70%)")
    ax.grid(axis="x", color=COLORS["grid"])
    ax.set_axisbelow(True)


def draw_histogram(ax: Axes, hist: "Histogram") -> None:
    if not (any(hist.counts) or hist.over):
        _empty(ax, "Belum ada tiket yang selesai bulan ini")
        return
    edges = list(hist.edges)
    widths = [b - a for a, b in zip(edges, edges[1:])]
    colors = [COLORS["resolved"] if b <= hist.deadline_hours else COLORS["overdue"] for b in edges[1:]]
    ax.bar(edges[:-1], hist.counts, width=widths, align="edge", color=colors, edgecolor="white", lw=0.6)
    ax.axvline(hist.deadline_hours, color="#333333", ls="--", lw=1.2)
    top = max(hist.counts, default=0) or 1
    ax.text(hist.deadline_hours, top * 1.02, f" tenggat: {format_number(hist.deadline_hours)} jam kerja",
            fontsize=9, va="bottom")
    if hist.over:
        ax.text(edges[-1], top * 0.9, f"{format_number(hist.over)} tiket\n> {format_number(edges[-1])} jam",
                ha="right", fontsize=9, color=COLORS["overdue"])
    ax.set_ylim(0, top * 1.15)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("jam kerja dari pesan masuk sampai selesai")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("tiket")
    ax.grid(axis="y", color=COLORS["grid"])
    ax.set_axisbelow(True)


def draw_topics(ax: Axes, topics: Sequence["Topic"]) -> None:
    if not topics:
        _empty(ax, "Tidak ada keluhan bulan ini")
        return
    labels = [t.term for t in topics]
    colors = [COLORS["keyword"] if t.kind == "kata kunci" else COLORS["phrase"] for t in topics]
    bars = ax.barh(labels, [t.count for t in topics], color=colors, height=0.7)
    top = max(t.count for t in topics)
    for bar, t in zip(bars, topics):
        ax.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, format_number(t.count),
                va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.12)
    ax.set_xlabel("jumlah keluhan yang menyebutnya")
    ax.grid(axis="x", color=COLORS["grid"])
    ax.set_axisbelow(True)
    ax.legend(handles=[Patch(color=COLORS["keyword"], label="kata kunci routing.yaml"),
                       Patch(color=COLORS["phrase"], label="frasa yang sering muncul")],
              loc="lower right", frameon=False, fontsize=9)


def _wrap(label: str, width: int = 26) -> str:
    """A unit's name on at most two lines beside its bars."""
    lines = textwrap.wrap(label, width)
    return "\n".join(lines[:1] + [" ".join(lines[1:])]) if len(lines) > 1 else label


def _empty(ax: Axes, text: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="#666666", transform=ax.transAxes)


# -- output ----------------------------------------------------------------------


def png_bytes(spec: ChartSpec, width: float = 10.0, dpi: int = 110) -> bytes:
    with chart_style():
        fig = Figure(figsize=(width, spec.height), dpi=dpi, layout="constrained")
        spec.draw(fig.add_subplot())
        buffer = io.BytesIO()
        FigureCanvasAgg(fig).print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def png_data_uri(spec: ChartSpec) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(spec)).decode("ascii")


@dataclass(frozen=True)
class PdfContent:
    """What the PDF shows: a title page with the summary, one chart per page, then a list."""

    title: str
    subtitle: str
    summary: Sequence[tuple[str, str, str]]  # (what, figure, how it was counted)
    charts: Sequence[ChartSpec]
    list_heading: str
    list_items: Sequence[tuple[str, str]]  # (bold lead, text)
    footer: str


def write_pdf(content: PdfContent, path: Path) -> Path:
    """A4 pages without a browser: PdfPages, one Figure per page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with chart_style(), PdfPages(path, metadata={"Title": content.title, "Creator": "ministry-triage"}) as pdf:
        pdf.savefig(_title_page(content))
        for number, spec in enumerate(content.charts, start=2):
            pdf.savefig(_chart_page(spec, content.footer, number))
        pdf.savefig(_list_page(content, len(content.charts) + 2))
    return path


def _page(heading: str, footer: str, number: int) -> Figure:
    fig = Figure(figsize=A4_PORTRAIT)
    fig.text(0.08, 0.93, heading, fontsize=18, fontweight="bold", va="top")
    fig.text(0.08, 0.03, footer, fontsize=8, color="#777777")
    fig.text(0.92, 0.03, f"hlm. {number}", fontsize=8, color="#777777", ha="right")
    return fig


def _title_page(content: PdfContent) -> Figure:
    fig = _page(content.title, content.footer, 1)
    fig.text(0.08, 0.885, content.subtitle, fontsize=13, color="#444444", va="top")
    fig.text(0.08, 0.82, "Ringkasan", fontsize=14, fontweight="bold", va="top")
    y = 0.77
    for label, value, detail in content.summary:
        fig.text(0.08, y, label, fontsize=11.5, va="center")
        fig.text(0.44, y, value, fontsize=13, fontweight="bold", va="center")
        fig.text(0.62, y, textwrap.fill(detail, 38), fontsize=9.5, color="#666666", va="center")
        fig.add_artist(Line2D([0.08, 0.92], [y - 0.024, y - 0.024], color="#dddddd", lw=0.8))
        y -= 0.048
    contents = [f"{n}. {spec.heading}" for n, spec in enumerate(content.charts, start=2)]
    contents.append(f"{len(content.charts) + 2}. {content.list_heading}")
    fig.text(0.08, y - 0.04, "Isi (nomor halaman)", fontsize=12, fontweight="bold", va="top")
    fig.text(0.08, y - 0.07, "\n".join(contents), fontsize=11, va="top", linespacing=1.7)
    return fig


def _chart_page(spec: ChartSpec, footer: str, number: int) -> Figure:
    fig = _page(spec.heading, footer, number)
    fig.text(0.08, 0.885, textwrap.fill(spec.caption, 90), fontsize=10, color="#444444", va="top")
    height = min(0.72, 0.12 + 0.08 * spec.height)
    left = 0.30 if spec.key in _UNIT_LABELLED else 0.12  # room for a unit's name on two lines
    spec.draw(fig.add_axes((left, 0.80 - height, 0.90 - left, height)))
    return fig


def _list_page(content: PdfContent, number: int) -> Figure:
    fig = _page(content.list_heading, content.footer, number)
    if not content.list_items:
        fig.text(0.08, 0.85, "Tidak ada keluhan yang berulang bulan ini.", fontsize=11, va="top")
        return fig
    y = 0.87
    for lead, text in content.list_items:
        body = textwrap.wrap(text, 95)[:3]
        fig.text(0.08, y, lead, fontsize=10, fontweight="bold", va="top")
        fig.text(0.08, y - 0.02, "\n".join(body), fontsize=9.5, va="top", linespacing=1.4, color="#333333")
        y -= 0.035 + 0.017 * len(body)
        if y < 0.08:
            break
    return fig
