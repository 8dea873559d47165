"""Indonesian names and formats: days, months, time zones, numbers, times, units.

Pure and locale-independent: every message, digest, chart and report uses these
functions, so one moment reads the same everywhere ("Kamis 27 Nov 14.05 WIB":
the Indonesian convention writes the time with a dot, numbers as "12.345,6").
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

WEEKDAYS = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
          "September", "Oktober", "November", "Desember")
MONTHS_SHORT = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")
ZONE_NAMES = {
    "Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA", "Asia/Ujung_Pandang": "WITA",
    "Asia/Jayapura": "WIT",
}
_OFFSET_NAMES = {7: "WIB", 8: "WITA", 9: "WIT"}

Tz = str | tzinfo


def zone(tz: Tz) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def zone_name(tz: Tz, moment: datetime | None = None) -> str:
    """WIB, WITA or WIT for Indonesia's zones; "UTC+8" style for any other."""
    where = zone(tz)
    key = getattr(where, "key", None)
    if key in ZONE_NAMES:
        return ZONE_NAMES[key]
    offset = where.utcoffset(moment or datetime(2000, 1, 1)) or timedelta(0)
    hours, minutes = divmod(int(offset.total_seconds()) // 60, 60)
    if key is None and minutes == 0 and hours in _OFFSET_NAMES:
        return _OFFSET_NAMES[hours]
    return f"UTC{'+' if offset >= timedelta(0) else '-'}{abs(hours)}" + (f":{minutes:02d}" if minutes else "")


def format_clock(moment: datetime) -> str:
    """"14.05": hours and minutes with a dot."""
    return f"{moment.hour:02d}.{moment.minute:02d}"


def format_wib(moment: datetime, tz: Tz = "Asia/Jakarta", *, year: bool = False) -> str:
    """'Kamis 27 Nov 14.05 WIB' in the given zone, without touching the system locale."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass a time-zone-aware moment")
    local = moment.astimezone(zone(tz))
    day = f"{WEEKDAYS[local.weekday()]} {local.day} {MONTHS_SHORT[local.month - 1]}"
    if year:
        day += f" {local.year}"
    return f"{day} {format_clock(local)} {zone_name(tz, local.replace(tzinfo=None))}"


def format_duration_id(span: timedelta) -> str:
    """'2 jam 5 menit', '1 hari 3 jam', '15 menit': the two largest units, sign ignored."""
    minutes = int(abs(span).total_seconds()) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} hari" + (f" {hours} jam" if hours else "")
    if hours:
        return f"{hours} jam" + (f" {mins} menit" if mins else "")
    return f"{mins} menit" if mins else "kurang dari 1 menit"


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


def format_month(year: int, month: int) -> str:
    return f"{MONTHS[month - 1]} {year}"


def format_late(hours: float, hours_per_day: float) -> str:
    """How long past its deadline, in working time: "1,5 hari kerja", "2,5 jam kerja"."""
    if hours >= hours_per_day:
        return f"{format_number(hours / hours_per_day, 1)} hari kerja"
    if hours < 1:  # the deadline passed after hours, or minutes ago: "0,0 jam" says nothing
        return "kurang dari 1 jam kerja"
    return f"{format_number(hours, 1)} jam kerja"


def unit_label(unit: str | None, name: str | None = None) -> str:
    """How a unit is named to people: its name from routing.yaml when known, else its key
    as Indonesians write it ("pfm" -> "PFM", "linjamsos" -> "Linjamsos"); "—" for none."""
    if name:
        return name
    if not unit:
        return "—"
    return unit.upper() if len(unit) <= 4 else unit.capitalize()
