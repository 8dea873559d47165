"""The daily digest: figures on a small hand-built store, the Indonesian text, the chart."""

from __future__ import annotations

import re
import struct
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Iterator, Sequence
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import RoutingConfig, parse_routing
from bot.deadlines import WorkingCalendar, WorkingClock, deadline, working_time_between
from bot.digest import build_digest, render_digest_chart, render_digest_text
from bot.figures import digest_period
from bot.indonesian import format_number, format_percent
from bot.topics import top_topics
from bot.store import Store
from bot.triage import InboundMessage, TicketDecision

WIB = ZoneInfo("Asia/Jakarta")

ROUTING_YAML = """
timezone: Asia/Jakarta
media_team: {chat_id: -1001, members: [5001]}
supervisor: {chat_id: -1002, members: [6001]}
accounts:
  kemensos:
    name: Kementerian Sosial
    instagram_user_id: "1"
    token_env: TOKEN_KEMENSOS
    units:
      linjamsos: {name: Ditjen Perlindungan dan Jaminan Sosial, chat_id: -101, keywords: [pkh, pbi, kis pbi]}
      pfm: {name: Ditjen Penanganan Fakir Miskin, chat_id: -102, keywords: [bpnt, e-warong, ewarong]}
      humas: {name: Biro Hubungan Masyarakat, chat_id: -107}
  kemendag:
    name: Kementerian Perdagangan
    instagram_user_id: "2"
    token_env: TOKEN_KEMENDAG
    units:
      pdn: {name: Ditjen Perdagangan Dalam Negeri, chat_id: -201, keywords: [minyak goreng, harga beras]}
      humas: {name: Biro Hubungan Masyarakat, chat_id: -107}
"""


def wib(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=WIB)


@pytest.fixture
def routing() -> RoutingConfig:
    return parse_routing(ROUTING_YAML)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "triage.db")
    yield s
    s.close()


_counter = iter(range(1, 1_000_000))


def add_message(
    store: Store,
    routing: RoutingConfig,
    *,
    account: str,
    text: str,
    received: datetime,
    unit: str | None = None,
    labels: Sequence[str] = (),
    triaged: datetime | None = None,
    acknowledged: datetime | None = None,
    resolved: datetime | None = None,
) -> int | None:
    """One message through the Store's own path: saved, triaged (a ticket when it has a
    unit or is spam), then acknowledged and resolved with the buttons' changes."""
    message = InboundMessage(id=f"m{next(_counter)}", account=account, channel="comment", text=text,
                             created_at=received)
    triaged = triaged or received + timedelta(minutes=5)
    store.save_messages([message], now=triaged)
    decision = None
    if "spam" in labels:
        decision = TicketDecision(account=account, status="spam", unit=None, labels=("spam",), scores={},
                                  unit_source="none", lang="id", deadline=None)
    elif unit is not None:
        due = deadline(received, routing.deadline.working_days, calendar=routing.calendar())
        decision = TicketDecision(account=account, status="open", unit=unit, labels=tuple(labels), scores={},
                                  unit_source="rule", lang="id", deadline=due)
    ticket_id = store.record_triage(message.id, {"labels": list(labels)}, decision, now=triaged)
    if ticket_id is not None and acknowledged is not None:
        assert store.update_ticket(ticket_id, {"status": "acknowledged", "acknowledged_by": 7101,
                                               "acknowledged_at": acknowledged},
                                   actor="7101", kind="acknowledged", now=acknowledged, expect_status=("open",))
    if ticket_id is not None and resolved is not None:
        assert store.update_ticket(ticket_id, {"status": "resolved", "resolved_by": 7101, "resolved_at": resolved},
                                   actor="7101", kind="resolved", now=resolved,
                                   expect_status=("open", "acknowledged"))
    return ticket_id


# The digest of Tuesday 11 March 2025, 07:30 WIB covers Monday 10 March 07:30 onwards.
NOW = wib(11, 7, 30)


@pytest.fixture
def scenario(store: Store, routing: RoutingConfig) -> dict[str, int | None]:
    ids = {
        # In the period: answered in 1 and 2 working hours, one resolved after 4.
        "pkh1": add_message(store, routing, account="kemensos", unit="linjamsos", labels=["complaint"],
                            text="Min bansos PKH tahap 2 belum cair", received=wib(10, 9),
                            acknowledged=wib(10, 10), resolved=wib(10, 13)),
        "pkh2": add_message(store, routing, account="kemensos", unit="linjamsos",
                            labels=["complaint", "negative"], text="PKH saya belum cair juga min!!",
                            received=wib(10, 10), acknowledged=wib(10, 12)),
        "spam": add_message(store, routing, account="kemendag", labels=["spam"],
                            text="slot gacor maxwin link di bio", received=wib(10, 14)),
        "praise": add_message(store, routing, account="kemensos", text="terima kasih kemensos",
                              received=wib(10, 15)),
        # The week before: one still open past its deadline (Monday 09:00), one resolved late.
        "bpnt": add_message(store, routing, account="kemensos", unit="pfm", labels=["question"],
                            text="BPNT bulan ini kapan cair?", received=wib(5, 9)),
        "oil": add_message(store, routing, account="kemendag", unit="pdn", labels=["complaint", "negative"],
                           text="harga minyak goreng mahal sekali", received=wib(4, 10), resolved=wib(10, 11)),
    }
    return ids


def test_period_runs_from_the_previous_working_days_digest(routing: RoutingConfig) -> None:
    cal = routing.calendar()
    assert digest_period(NOW, cal, time(7, 30)) == (wib(10, 7, 30), NOW)
    monday = wib(10, 7, 30)
    assert digest_period(monday, cal, time(7, 30))[0] == wib(7, 7, 30)  # Friday
    closed = WorkingCalendar(extra_holidays=frozenset({date(2025, 3, 10)}))
    assert digest_period(NOW, closed, time(7, 30))[0] == wib(7, 7, 30)  # Monday off: back to Friday


def test_digest_figures(store: Store, routing: RoutingConfig, scenario: dict[str, int | None]) -> None:
    digest = build_digest(store, routing, NOW)
    units = {(u.account, u.unit): u for u in digest.units}
    linjamsos = units["kemensos", "linjamsos"]
    assert (linjamsos.new, linjamsos.open, linjamsos.acknowledged, linjamsos.resolved, linjamsos.overdue) == (2, 0, 1, 1, 0)
    assert linjamsos.on_time.value == 1.0
    assert linjamsos.median_ack_hours == pytest.approx(1.5)
    assert linjamsos.median_resolve_hours == pytest.approx(4.0)
    pfm = units["kemensos", "pfm"]
    assert (pfm.new, pfm.open, pfm.overdue, pfm.resolved) == (0, 1, 1, 0)
    pdn = units["kemendag", "pdn"]
    # Resolved Monday 11:00; due Friday 10:00: Tue 6 + Wed 8 + Thu 8 + Fri 8 + Mon 3 working hours.
    assert (pdn.resolved, pdn.resolved_on_time, pdn.median_resolve_hours) == (1, 0, pytest.approx(33.0))
    assert units["kemensos", "humas"].quiet
    total = digest.total
    assert (total.new, total.open, total.acknowledged, total.resolved, total.overdue) == (2, 1, 1, 2, 1)
    assert total.on_time.value == 0.5
    assert total.median_resolve_hours == pytest.approx(18.5)
    assert [a.account for a in digest.accounts] == ["kemensos", "kemendag"]
    # Negative: 1 of the 4 messages triaged in the period; 1 of 2 the week before.
    assert (digest.negative.part, digest.negative.whole) == (1, 4)
    assert (digest.negative_before.part, digest.negative_before.whole) == (1, 2)
    assert [(t.id, t.unit) for t in digest.overdue] == [(scenario["bpnt"], "pfm")]
    assert digest.overdue[0].late_hours == pytest.approx(7.0)  # Monday 09:00 to 16:00
    assert [(t.term, t.count, t.kind) for t in digest.topics] == [("pkh", 2, "kata kunci"), ("belum cair", 2, "frasa")]


def test_digest_text_is_short_indonesian_telegram_html(
    store: Store, routing: RoutingConfig, scenario: dict[str, int | None]
) -> None:
    text = render_digest_text(build_digest(store, routing, NOW))
    assert text.startswith("<b>📋 Ringkasan harian tiket</b>\nSelasa, 11 Maret 2025, 07.30 WIB")
    assert "Periode: Senin 10/3 07.30 – Selasa 11/3 07.30" in text
    assert "<b>Kementerian Sosial</b>" in text and "<b>Kementerian Perdagangan</b>" in text
    assert "• <b>Ditjen Perlindungan dan Jaminan Sosial</b>: 2 baru · 0 terbuka · 1 diterima · 1 selesai" in text
    assert "tepat waktu 100% (1/1) · median diterima 1,5 jam · selesai 4,0 jam" in text
    assert "⚠️ <b>1 lewat tenggat</b>" in text
    assert "<b>Topik keluhan</b>: pkh (2), belum cair (2)" in text
    assert "<b>Pesan negatif</b>: 25,0% (1 dari 4 pesan)\n7 hari sebelumnya: 50,0% ▼ turun 25,0 poin" in text
    assert f"#{scenario['bpnt']} Ditjen Penanganan Fakir Miskin · lewat 7,0 jam kerja" in text
    assert "humas" not in text  # nothing happened there: left out
    assert len(text) < 4096  # one Telegram message
    assert set(re.findall(r"</?(\w+)", text)) <= {"b", "i"}


def test_empty_store_digest_reads_well(store: Store, routing: RoutingConfig) -> None:
    text = render_digest_text(build_digest(store, routing, NOW))
    assert "<b>Total</b>: 0 baru · 0 terbuka · 0 diterima · 0 selesai" in text
    assert "belum ada keluhan dalam periode ini" in text
    assert "Tidak ada tiket yang lewat tenggat" in text
    assert "Pesan negatif</b>: – (0 dari 0 pesan)" in text


def test_digest_chart_is_a_portrait_png(
    store: Store, routing: RoutingConfig, scenario: dict[str, int | None], tmp_path: Path
) -> None:
    path = render_digest_chart(build_digest(store, routing, NOW), tmp_path / "out" / "digest.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1080, 1350)
    assert len(data) > 20_000


def test_topics_count_keyword_spellings_once_and_prefer_the_longer_keyword() -> None:
    texts = ["agen e-warong tutup", "ewarong tutup terus", "E WARONG tutup", "kis pbi saya mati", "pbi dicabut"]
    topics = top_topics(texts, ["e-warong", "ewarong", "e warong", "pbi", "kis pbi"], limit=10)
    assert [(t.term, t.count) for t in topics if t.kind == "kata kunci"] == [("e-warong", 3), ("kis pbi", 1), ("pbi", 1)]
    assert ("warong tutup", 2) not in [(t.term, t.count) for t in topics]  # pairs never repeat a keyword's word
    assert [t.term for t in topics if t.kind == "frasa"] == []  # "tutup terus" once: below the threshold


def test_topics_drop_stop_words_and_stretched_letters() -> None:
    texts = ["min kok bansos belum cairrr ya", "bansos belum cair juga min", "BANSOS   belum  cair!!!"]
    topics = top_topics(texts, [], limit=3)
    assert [(t.term, t.count) for t in topics] == [("bansos belum", 3), ("belum cair", 3)]


def test_topics_skip_letter_boilerplate() -> None:
    """Complaints written as letters: the salutation, the titles and the closing name no topic."""
    texts = [
        "Kepada Yth. Bapak Direktur Jenderal Penanganan Fakir Miskin, kartu KKS saya terblokir. Apabila "
        "diperlukan informasi mengenai data saya, mohon hubungi saya. Atas perhatiannya diucapkan terima kasih.",
        "Kepada yth Ibu Menteri Sosial Republik Indonesia. Dengan hormat, kartu KKS saya terblokir sejak Maret. "
        "Apabila diperlukan informasi mengenai nomor kartu saya akan kirim. Wassalamualaikum.",
        "Yth. Direktur Jenderal, kks terblokir lagi. Sehubungan dengan hal tersebut, apabila diperlukan "
        "informasi mengenai kartu kami siap. Hormat kami.",
    ]
    terms = [t.term for t in top_topics(texts, [], limit=10)]
    assert "kks terblokir" in terms and "kartu kks" in terms
    boilerplate = {"kepada", "yth", "apabila", "diperlukan", "informasi", "mengenai", "direktur", "jenderal",
                   "hormat", "menteri", "republik", "indonesia", "perhatiannya"}
    assert [t for t in terms if set(t.split()) & boilerplate] == []


def test_late_by_less_than_an_hour_does_not_read_zero() -> None:
    from bot.indonesian import format_late

    assert format_late(0.0, 8) == "kurang dari 1 jam kerja"
    assert format_late(0.4, 8) == "kurang dari 1 jam kerja"
    assert format_late(1.0, 8) == "1,0 jam kerja"


def test_digest_chart_has_no_zero_labels(store: Store, routing: RoutingConfig, scenario: dict[str, int | None]) -> None:
    from bot import charts

    digest = build_digest(store, routing, NOW)
    with charts.chart_style():
        fig = charts.digest_figure(digest)
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert labels and "0" not in labels
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "Ditjen Perlindungan\ndan Jaminan Sosial" in ticks and not any("·" in t for t in ticks)


def test_indonesian_number_formats() -> None:
    assert format_number(12345.67, 1) == "12.345,7"
    assert format_number(1234567) == "1.234.567"
    assert format_percent(0.8534) == "85,3%"
    assert format_percent(None) == "–"


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2024, 12, 1), max_value=datetime(2026, 2, 1), timezones=st.just(WIB)),
    span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)),
    opens=st.sampled_from([time(7, 0), time(8, 0), time(8, 30)]),
    closes=st.sampled_from([time(15, 30), time(16, 0), time(17, 0)]),
    backwards=st.booleans(),
)
def test_working_clock_equals_working_time_between(
    start: datetime, span: timedelta, opens: time, closes: time, backwards: bool
) -> None:
    cal = WorkingCalendar(opens=opens, closes=closes, extra_holidays=frozenset({date(2025, 3, 12)}),
                          extra_workdays=frozenset({date(2025, 3, 15)}))
    end = start + span
    a, b = (end, start) if backwards else (start, end)
    expected = working_time_between(a, b, calendar=cal).total_seconds() / 3600
    clock = WorkingClock(cal)
    clock.hours(datetime(2025, 6, 1, tzinfo=WIB), datetime(2025, 6, 2, tzinfo=WIB))  # a table already built elsewhere
    assert clock.hours(a.astimezone(timezone.utc).isoformat(), b) == pytest.approx(expected, abs=1e-9)
