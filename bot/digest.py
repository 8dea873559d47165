"""The supervisor's daily digest: figures from the store, a short Telegram text, one chart.

`build_digest` reads the store (a handful of narrow aggregate queries) into the
figures of bot.figures; the rest renders them in Indonesian (bot.indonesian).
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from pathlib import Path
from typing import Sequence

from bot.config import RoutingConfig
from bot.figures import (
    DIGEST_TOPICS,
    OVERDUE_LISTED,
    Digest,
    Share,
    UnitFigures,
    digest_period,
    freeze_units,
    overdue_tickets,
    tally_units,
    unit_names,
)
from bot.indonesian import (
    WEEKDAYS,
    format_clock,
    format_day,
    format_hours,
    format_late,
    format_number,
    format_percent,
    zone_name,
)
from bot.store import Store
from bot.surges import surge_item
from bot.topics import Topic, routing_keywords, top_topics


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
        zone_label=zone_name(calendar.tz),
        hours_per_day=calendar.day_length.total_seconds() / 3600,
        units=units,
        accounts=accounts,
        total=total,
        topics=top_topics(texts, routing_keywords(routing), limit=DIGEST_TOPICS),
        negative=_negative_share(store, since, until),
        negative_before=_negative_share(store, since - timedelta(days=7), since),
        overdue=overdue_tickets(store.overdue_ticket_rows(until, OVERDUE_LISTED), until, calendar),
        account_names={key: acc.name for key, acc in routing.accounts.items()},
        unit_names=unit_names(routing),
        surges=surge_items(store, routing, since, until),
    )


def surge_items(store: Store, routing: RoutingConfig, start: datetime, end: datetime) -> tuple[tuple[str, str], ...]:
    """The surges open at any time in [start, end), as (lead, text) lines."""
    names = {key: acc.name for key, acc in routing.accounts.items()}
    return tuple(surge_item(row, count, names.get(row["account"], row["account"]), routing.timezone)
                 for row, count in store.surges.surges_with_counts(start, end))


def _negative_share(store: Store, start: datetime, end: datetime) -> Share:
    triaged, negative = store.negative_counts(start, end)
    return Share(negative, triaged)


# -- the Telegram text ----------------------------------------------------------


def render_digest_text(digest: Digest) -> str:
    """The digest as a short Telegram message (parse_mode HTML), in Indonesian."""
    parts = [_header(digest), _totals(digest.total, digest)]
    for account in digest.accounts:
        lines = [_unit_line(u, digest) for u in digest.busy_units if u.account == account.account]
        if lines:
            name = html.escape(digest.account_names.get(account.account, account.account))
            parts.append(f"<b>{name}</b>\n" + "\n".join(lines))
    parts += [_surges(digest), _topics(digest.topics), _negative(digest), _overdue(digest)]
    return "\n\n".join(p for p in parts if p)


def _surges(d: Digest) -> str:
    if not d.surges:
        return ""
    lines = [f"• <b>{html.escape(lead)}</b>: {html.escape(text)}" for lead, text in d.surges[:5]]
    return "<b>🌊 Lonjakan komentar</b>\n" + "\n".join(lines)


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
    return f"• <b>{html.escape(d.unit_name(u.account, u.unit))}</b>: {_counts(u)}" + (f"\n   {timing}" if timing else "")


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
        lines.append(f"#{t.id} {html.escape(d.unit_name(t.account, t.unit))} · lewat "
                     f"{format_late(t.late_hours, d.hours_per_day)}")
    if d.total.overdue > len(d.overdue):
        lines.append(f"… dan {format_number(d.total.overdue - len(d.overdue))} tiket lainnya")
    return "\n".join(lines)


# -- the chart -----------------------------------------------------------------


def render_digest_chart(digest: Digest, path: str | Path) -> Path:
    """One portrait PNG (1080x1350) of the open, overdue and resolved tickets per unit."""
    from bot import charts  # matplotlib only when a chart is drawn

    return charts.save_digest_chart(digest, Path(path))
