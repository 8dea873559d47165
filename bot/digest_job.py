"""The scheduled digest and monthly report: build from the store, queue for Telegram once.

Each is queued under a key naming its day or month, so a restarted or
overlapping run never sends it twice; files are written next to the store.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.digest import build_digest, render_digest_chart, render_digest_text
from bot.report import build_report, write_report
from bot.store import Store


def output_dir(settings: Settings, kind: str) -> Path:
    folder = settings.db_path.resolve().parent / "triage-output" / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def send_digest(settings: Settings, store: Store, *, now: datetime) -> str:
    """The supervisor's digest for `now`'s day: a text and one chart, queued once per day.
    Skipped on non-working days (the scheduler runs it Monday to Friday; holidays are checked here)."""
    routing = settings.routing
    local = now.astimezone(ZoneInfo(routing.timezone))
    if not routing.calendar().is_working_day(local.date()):
        return f"{local.date()}: bukan hari kerja, ringkasan tidak dikirim"
    digest = build_digest(store, routing, now)
    text = render_digest_text(digest)
    chart = render_digest_chart(digest, output_dir(settings, "digest") / f"ringkasan-{local.date()}.png")
    chat = routing.supervisor.chat_id
    store.enqueue(f"digest:{local.date()}:text", chat, "text", now=now, payload={"text": text})
    store.enqueue(f"digest:{local.date()}:chart", chat, "photo", now=now,
                  payload={"path": str(chart), "filename": chart.name,
                           "caption": f"Ringkasan harian {local.date():%d-%m-%Y}"})
    return text


def previous_month(day: date) -> str:
    first = day.replace(day=1)
    return f"{(first - timedelta(days=1)):%Y-%m}"


def first_working_day(settings: Settings, day: date) -> date:
    calendar = settings.routing.calendar()
    current = day.replace(day=1)
    while not calendar.is_working_day(current):
        current += timedelta(days=1)
    return current


def send_monthly_report(settings: Settings, store: Store, *, now: datetime) -> str | None:
    """On the first working day of a month, the previous month's report (PDF) to the media team."""
    local = now.astimezone(ZoneInfo(settings.routing.timezone))
    if local.date() != first_working_day(settings, local.date()):
        return None
    month = previous_month(local.date())
    html_path, pdf_path = write_report(build_report(store, settings.routing, month, now=now),
                                       output_dir(settings, "report") / month)
    store.enqueue(f"report:{month}", settings.routing.media_team.chat_id, "document", now=now,
                  payload={"path": str(pdf_path), "filename": f"laporan-evaluasi-{month}.pdf",
                           "caption": f"Laporan evaluasi bulanan {month}: volume, kepatuhan batas waktu per unit, "
                                      "waktu jawab, topik dan spam."})
    return str(pdf_path)
