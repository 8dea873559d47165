"""One set of Indonesian names and formats for every message, digest, chart and report."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot import telegram_ui as ui
from bot.indonesian import format_clock, format_late, format_wib, unit_label, zone_name

MOMENT = datetime(2025, 11, 27, 7, 5, tzinfo=timezone.utc)  # Kamis 27 Nov 14.05 WIB


def test_times_read_the_same_in_ticket_messages_and_the_digest() -> None:
    local = MOMENT.astimezone(timezone(timedelta(hours=7)))
    assert format_clock(local) == "14.05"
    assert format_wib(MOMENT) == "Kamis 27 Nov 14.05 WIB"
    assert ui.format_wib is format_wib  # the ticket messages use the same function


def test_every_indonesian_zone_is_named() -> None:
    assert [zone_name(z) for z in ("Asia/Jakarta", "Asia/Pontianak", "Asia/Makassar", "Asia/Ujung_Pandang",
                                   "Asia/Jayapura")] == ["WIB", "WIB", "WITA", "WITA", "WIT"]
    assert format_wib(MOMENT, "Asia/Ujung_Pandang") == "Kamis 27 Nov 15.05 WITA"


def test_one_unit_label() -> None:
    assert unit_label("pfm", "Ditjen Penanganan Fakir Miskin") == "Ditjen Penanganan Fakir Miskin"
    assert (unit_label("pfm"), unit_label("linjamsos"), unit_label(None)) == ("PFM", "Linjamsos", "—")


def test_late_by_working_time() -> None:
    assert format_late(2.5, 8) == "2,5 jam kerja"
    assert format_late(12, 8) == "1,5 hari kerja"
