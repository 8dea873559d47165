"""Surges, pure: when a post surges, and the surge card, group view and group answer as text.

The rule in one sentence: a post surges when, within the last `window_minutes`, at
least `min_tickets` of its comments need an answer and that is at least `factor`
times the account's usual number per window over the past week; the surge closes
after `quiet_minutes` without a new ticket from the post. Thresholds live in
routing.yaml (`surges:`). Nothing here touches I/O: figures in, decisions and
Indonesian Telegram HTML out.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from bot.callbacks import Button, button
from bot.indonesian import Tz, format_duration_id, format_number, format_percent, format_wib, unit_label
from bot.pii import mask_pii
from bot.triage import ACKNOWLEDGED, ACTIVE_STATUSES, OPEN, RESOLVED, Ticket

BASELINE = timedelta(days=7)
MAX_CARD_GROUPS = 6  # groups listed on the card; the rest are counted
MAX_GROUP_LINES = 25  # tickets listed in a group view
LABEL_WORDS = {"complaint": "keluhan", "question": "pertanyaan", "negative": "negatif"}


@dataclass(frozen=True)
class SurgeRule:
    window: timedelta
    min_tickets: int
    factor: float
    quiet: timedelta

    @classmethod
    def from_config(cls, cfg: Any) -> "SurgeRule":
        return cls(timedelta(minutes=cfg.window_minutes), cfg.min_tickets, cfg.factor,
                   timedelta(minutes=cfg.quiet_minutes))

    def usual_per_window(self, tickets_past_week: int) -> float:
        return tickets_past_week * (self.window / BASELINE)

    def opens(self, in_window: int, tickets_past_week: int) -> bool:
        return in_window >= self.min_tickets and in_window >= self.factor * self.usual_per_window(tickets_past_week)

    def closes(self, last_ticket_at: datetime, now: datetime) -> bool:
        return now - last_ticket_at >= self.quiet


@dataclass(frozen=True)
class SurgeFigures:
    """What the card shows, counted from the surge's tickets."""

    total: int
    by_label: Mapping[str, int]
    by_unit: Mapping[str, int]
    negative_share: float | None
    resolved: int
    ungrouped: int
    first_answer_at: datetime | None


def figures(tickets: Sequence[Ticket]) -> SurgeFigures:
    live = [t for t in tickets if t.unit is not None]
    labels = Counter(label for t in live for label in t.labels if label in LABEL_WORDS)
    units = Counter(t.unit for t in live if t.unit)
    answered = [t.resolved_at for t in live if t.status == RESOLVED and t.resolved_at]
    return SurgeFigures(
        total=len(live), by_label=dict(labels), by_unit=dict(units.most_common()),
        negative_share=(labels["negative"] / len(live)) if live else None,
        resolved=sum(t.status == RESOLVED for t in live),
        ungrouped=sum(t.group_id is None and t.status in ACTIVE_STATUSES for t in live),
        first_answer_at=min(answered) if answered else None)


def summary(surge: Mapping[str, Any], fig: SurgeFigures, now: datetime) -> dict[str, Any]:
    """The closing figures: duration, peak rate, answered share, time to first answer."""
    opened = datetime.fromisoformat(surge["opened_at"])
    last = datetime.fromisoformat(surge["last_ticket_at"] or surge["opened_at"])
    return {
        "tickets": fig.total, "peak": int(surge.get("peak") or 0),
        "minutes": round((last - opened).total_seconds() / 60, 1),
        "answered_share": round(fig.resolved / fig.total, 4) if fig.total else None,
        "first_answer_minutes": (round((fig.first_answer_at - opened).total_seconds() / 60, 1)
                                 if fig.first_answer_at else None),
        "closed_at": now.isoformat(),
    }


# -- the card ------------------------------------------------------------------


def card(surge: Mapping[str, Any], fig: SurgeFigures, groups: Sequence[Mapping[str, Any]], *,
         account_name: str, unit_names: Mapping[str, str], examples: Mapping[int, str], tz: Tz,
         window_minutes: int) -> tuple[str, list[list[Button]]]:
    """The surge card (HTML) and its buttons, one per listed group."""
    closed = surge.get("closed_at") is not None
    head = "✅ <b>Lonjakan selesai</b>" if closed else "🌊 <b>Lonjakan komentar</b>"
    lines = [f"{head} #{surge['id']} · {_esc(account_name)}", _post_line(surge)]
    opened = datetime.fromisoformat(surge["opened_at"])
    lines.append(f"Sejak {format_wib(opened, tz)} · <b>{format_number(fig.total)}</b> pesan perlu jawaban "
                 f"(puncak {format_number(int(surge.get('peak') or 0))} per {window_minutes} menit)")
    labels = " · ".join(f"{word} {format_number(fig.by_label.get(label, 0))}" for label, word in LABEL_WORDS.items()
                        if label != "negative")
    lines.append(f"Label: {labels} · porsi negatif {format_percent(fig.negative_share)}")
    units = " · ".join(f"{_esc(unit_label(u, unit_names.get(u)))} {format_number(n)}" for u, n in fig.by_unit.items())
    lines.append(f"Unit: {units or '—'}")
    if closed and surge.get("summary"):
        lines += ["", _summary_line(surge["summary"])]
    buttons: list[list[Button]] = []
    if groups:
        lines += ["", "<b>Kelompok keluhan serupa</b>"]
        for g in groups[:MAX_CARD_GROUPS]:
            example = _esc(_short(examples.get(g["id"], ""), 90))
            lines.append(f"• <b>#{g['id']} {_esc(g['title'] or '')}</b>: {format_number(g['size'])} tiket "
                         f"({_esc(unit_label(g['unit'], unit_names.get(g['unit'] or '')))}), "
                         f"{format_number(g['active'])} belum selesai\n   <i>mis. “{example}”</i>")
            buttons.append([button(f"Kelompok #{g['id']} ({g['size']})", g["id"], "g_view")])
        if len(groups) > MAX_CARD_GROUPS:
            rest = sum(int(g["size"]) for g in groups[MAX_CARD_GROUPS:])
            lines.append(f"… dan {len(groups) - MAX_CARD_GROUPS} kelompok lain ({format_number(rest)} tiket)")
    if fig.ungrouped:
        lines.append(f"Belum berkelompok: {format_number(fig.ungrouped)} tiket (lihat /antrian)")
    if not closed:
        lines += ["", "Selama lonjakan, tiket dari unggahan ini tidak dikirim satu per satu. "
                      "Buka kelompok untuk menerima, mengalihkan, menyelesaikan atau menjawabnya sekaligus; "
                      "/kelompok ID menampilkan tiketnya."]
    return "\n".join(lines)[:4000], buttons


def _post_line(surge: Mapping[str, Any]) -> str:
    caption = _esc(_short(surge.get("caption") or "", 80)) or "(tanpa keterangan)"
    link = surge.get("permalink")
    if link:
        return f'Unggahan: <a href="{html.escape(link, quote=True)}">{caption}</a>'
    return f"Unggahan: {caption} (id {_esc(surge['media_id'])})"


def _summary_line(s: Mapping[str, Any]) -> str:
    first = s.get("first_answer_minutes")
    return (f"Ringkasan: {format_number(s.get('tickets') or 0)} tiket dalam "
            f"{format_duration_id(timedelta(minutes=s.get('minutes') or 0))}, puncak "
            f"{format_number(s.get('peak') or 0)} per jendela, terjawab {format_percent(s.get('answered_share'))}, "
            f"jawaban pertama {format_duration_id(timedelta(minutes=first)) + ' setelah mulai' if first is not None else 'belum ada'}.")


def account_surge_text(account_name: str, recent: int, usual: float, window_minutes: int) -> str:
    """Plain text: an account surges across many posts (no post surges on its own)."""
    times = f"{format_number(recent / usual, 1)} kali" if usual >= 0.05 else "jauh di atas"
    return (f"Lonjakan tiket di akun {account_name}: {format_number(recent)} tiket dalam {window_minutes} menit "
            f"terakhir, {times} jumlah biasanya ({format_number(usual, 1)} per {window_minutes} menit), tersebar "
            "di beberapa unggahan. Tiket tetap dikirim ke grup unit masing-masing.")


# -- surges in the digest and the monthly report -------------------------------------


def surge_item(surge: Mapping[str, Any], tickets: int, account_name: str, tz: Tz) -> tuple[str, str]:
    """(lead, text) plain text: when and where, then its figures (the summary once closed)."""
    opened = datetime.fromisoformat(surge["opened_at"])
    lead = f"Lonjakan #{surge['id']} · {account_name} · {format_wib(opened, tz)}"
    caption = _short(surge.get("caption") or "", 60)
    post = f"unggahan “{caption}”" if caption else f"unggahan {surge['media_id']}"
    s = surge.get("summary")
    if not s:
        return lead, f"{post}: {format_number(tickets)} tiket, masih berlangsung"
    first = s.get("first_answer_minutes")
    return lead, (f"{post}: {format_number(s.get('tickets') or 0)} tiket dalam "
                  f"{format_duration_id(timedelta(minutes=s.get('minutes') or 0))}, puncak "
                  f"{format_number(s.get('peak') or 0)} per jendela, terjawab {format_percent(s.get('answered_share'))}, "
                  "jawaban pertama " + (format_duration_id(timedelta(minutes=first)) if first is not None else "belum ada"))


# -- a group ---------------------------------------------------------------------


def group_view(group: Mapping[str, Any], tickets: Sequence[Ticket], answers: Sequence[Mapping[str, Any]],
               reply_counts: Mapping[int, Mapping[str, int]], *, unit_name: str | None, tz: Tz,
               now: datetime) -> tuple[str, list[list[Button]]]:
    """`/kelompok ID` and the group button: counts, the tickets listed, the answer's state."""
    states = Counter(t.status for t in tickets)
    active = [t for t in tickets if t.status in ACTIVE_STATUSES]
    deadlines = [t.deadline for t in active if t.deadline]
    lines = [f"👥 <b>Kelompok #{group['id']}: {_esc(group.get('title') or '')}</b>",
             f"Lonjakan #{group['surge_id']} · unit {_esc(unit_label(group.get('unit'), unit_name))}",
             f"{format_number(len(tickets))} tiket: {states[OPEN]} baru, {states[ACKNOWLEDGED]} ditangani, "
             f"{states[RESOLVED]} selesai"]
    if deadlines:
        lines.append(f"Batas terdekat: {format_wib(min(deadlines), tz)}")
    for answer in answers:
        lines.append(_answer_state(answer, reply_counts.get(answer["id"], {})))
    lines.append("")
    for t in tickets[:MAX_GROUP_LINES]:
        mark = {OPEN: "🆕", ACKNOWLEDGED: "🟡", RESOLVED: "✅"}.get(t.status, "·")
        lines.append(f"{mark} #{t.id} {_esc(_short(mask_pii(t.text), 70))}")
    if len(tickets) > MAX_GROUP_LINES:
        lines.append(f"… dan {format_number(len(tickets) - MAX_GROUP_LINES)} tiket lainnya "
                     f"(/tiket ID untuk rinciannya; /keluarkan ID mengeluarkan satu tiket dari kelompok).")
    buttons: list[list[Button]] = []
    if active:
        g = int(group["id"])
        buttons = [[button(f"Terima semua ({states[OPEN]})", g, "g_ack"), button("Alihkan", g, "g_move")],
                   [button(f"Selesai semua ({len(active)})", g, "g_done"), button("Jawab sekaligus", g, "g_answer")]]
    return "\n".join(lines)[:4000], buttons


def _answer_state(answer: Mapping[str, Any], counts: Mapping[str, int]) -> str:
    if answer["status"] == "pending":
        return f"✍️ Jawaban #{answer['id']} menunggu persetujuan tim media."
    sent, failed = counts.get("sent", 0), counts.get("failed", 0)
    waiting = counts.get("queued", 0) + counts.get("posting", 0)
    text = f"📤 Jawaban #{answer['id']}: terkirim {format_number(sent)}"
    if waiting:
        text += f", menunggu {format_number(waiting)}"
    if failed:
        text += f", gagal {format_number(failed)}"
    return text


def group_unit_picker(group: Mapping[str, Any], units: Sequence[tuple[str, str]]) -> tuple[str, list[list[Button]]]:
    rows = [[button(name[:40], int(group["id"]), "g_move", key)] for key, name in units if key != group.get("unit")]
    return (f"Alihkan seluruh kelompok #{group['id']} ({_esc(group.get('title') or '')}) ke unit:", rows)


def group_answer_view(answer: Mapping[str, Any], group: Mapping[str, Any], size: int, author: str,
                      counts: Mapping[str, int], approver: str | None, per_minute: int) -> tuple[str, list[list[Button]]]:
    """The group answer as the media team sees it: Kirim posts it under every comment of the group."""
    lines = [f"✍️ <b>Draf jawaban untuk kelompok #{group['id']}</b> ({_esc(group.get('title') or '')}, "
             f"{format_number(size)} tiket) dari {_esc(author)}",
             f"<blockquote>{_esc(answer['text'])}</blockquote>"]
    a = int(answer["id"])
    if answer["status"] == "pending":
        minutes = max(1, -(-size // per_minute))
        lines.append(f"Tekan Kirim untuk membalas setiap komentar kelompok ini (±{per_minute} per menit, sekitar "
                     f"{minutes} menit); balas pesan ini dengan teks pengganti untuk mengubahnya.")
        return "\n".join(lines), [[button(f"Kirim ke {size} komentar", a, "ga_send")]]
    lines.append(f"Disetujui oleh {_esc(approver or 'tim media')}. " + _answer_state(answer, counts))
    if counts.get("failed"):
        return "\n".join(lines), [[button(f"Coba lagi yang gagal ({counts['failed']})", a, "ga_retry")]]
    return "\n".join(lines), []


def late_arrivals_view(answer: Mapping[str, Any], group: Mapping[str, Any], count: int) -> tuple[str, list[list[Button]]]:
    text = (f"🔁 {format_number(count)} tiket baru masuk ke kelompok #{group['id']} "
            f"({_esc(group.get('title') or '')}) yang sudah dijawab:\n<blockquote>{_esc(_short(answer['text'], 300))}"
            "</blockquote>Kirim jawaban yang sama kepada mereka?")
    return text, [[button(f"Kirim jawaban yang sama ({count})", int(answer["id"]), "ga_more")]]


def answer_done_view(answer: Mapping[str, Any], group: Mapping[str, Any], counts: Mapping[str, int],
                     failures: Sequence[Mapping[str, Any]]) -> tuple[str, list[list[Button]]]:
    sent, failed = counts.get("sent", 0), counts.get("failed", 0)
    lines = [f"📬 Jawaban kelompok #{group['id']} ({_esc(group.get('title') or '')}) terkirim ke "
             f"{format_number(sent)} komentar" + (f"; {format_number(failed)} gagal:" if failed else ".")]
    for f in failures[:10]:
        lines.append(f"• tiket #{f['ticket_id']}: {_esc(_short(f.get('error') or '', 120))}")
    if failed > 10:
        lines.append(f"… dan {failed - 10} lainnya")
    buttons = [[button(f"Coba lagi yang gagal ({failed})", int(answer["id"]), "ga_retry")]] if failed else []
    return "\n".join(lines), buttons


def _short(text: str, width: int) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1].rstrip() + "…"


def _esc(text: str) -> str:
    return html.escape(text, quote=False)
