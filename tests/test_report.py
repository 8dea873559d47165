"""The monthly report: figures on a small hand-built month, the HTML and the PDF."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import RoutingConfig
from bot.report import ReportData, build_report, histogram, recurring_complaints, similar_clusters, write_report
from bot.store import Store
from tests.test_digest import add_message, wib

NOW = wib(1, 9, month=4)  # the report is made on 1 April 2025
SECTIONS = ("Ringkasan", "Volume pesan per hari", "Tiket per unit", "Kepatuhan tenggat per unit",
            "Sebaran waktu penyelesaian", "Topik keluhan teratas", "Keluhan berulang", "Spam per hari")



@pytest.fixture
def march(store: Store, routing: RoutingConfig) -> Store:
    """March 2025: three near-identical PKH complaints, a price question, a tone-only
    message, a ticket not yet due, spam, praise, and one message each side of the month."""
    def pkh(text: str, received: datetime, labels: Sequence[str] = ("complaint",),
            acknowledged: datetime | None = None, resolved: datetime | None = None) -> None:
        add_message(store, routing, account="kemensos", unit="linjamsos", labels=labels, text=text,
                    received=received, acknowledged=acknowledged, resolved=resolved)

    pkh("Bansos PKH tahap 1 belum cair sampai sekarang", wib(3, 9), resolved=wib(4, 9))  # 8 working hours: on time
    pkh("bansos pkh tahap 2 BELUM CAIR sampai sekarang!!", wib(3, 10), labels=["complaint", "negative"],
        acknowledged=wib(3, 11), resolved=wib(10, 10))  # 40 working hours: late
    pkh("min bansos pkh tahap belum cair sampai sekarang", wib(3, 11))  # still open, overdue
    add_message(store, routing, account="kemendag", unit="pdn", labels=["question"],
                text="harga minyak goreng di pasar berapa ya", received=wib(4, 10),
                acknowledged=wib(4, 11), resolved=wib(5, 10))  # 8 working hours
    add_message(store, routing, account="kemensos", unit="humas", labels=["negative"],
                text="kerja kalian lambat sekali", received=wib(5, 9))  # overdue
    add_message(store, routing, account="kemensos", unit="pfm", labels=["question"],
                text="BPNT april kapan cair?", received=wib(31, 10))  # due after Idul Fitri: not yet due
    add_message(store, routing, account="kemendag", labels=["spam"], text="slot gacor maxwin", received=wib(3, 20))
    add_message(store, routing, account="kemensos", labels=["spam"], text="depo 10rb wd 1jt", received=wib(8, 20))
    add_message(store, routing, account="kemensos", text="terima kasih bu menteri", received=wib(8, 9))
    add_message(store, routing, account="kemensos", unit="pfm", labels=["complaint"], text="bpnt februari",
                received=wib(28, 9, month=2))
    add_message(store, routing, account="kemensos", unit="pfm", labels=["complaint"], text="bpnt april",
                received=wib(1, 8, month=4), triaged=wib(1, 8, 30, month=4))
    return store


def test_month_figures(march: Store, routing: RoutingConfig) -> None:
    data = build_report(march, routing, "2025-03", now=NOW)
    s = data.summary
    assert (s.messages, s.tickets, s.spam) == (9, 6, 2)
    assert (s.compliance.part, s.compliance.whole) == (2, 5)  # the April-due ticket is left out
    assert (s.negative.part, s.negative.whole) == (2, 9)
    assert s.median_resolve_hours == pytest.approx(8.0)
    assert s.median_ack_hours == pytest.approx(1.0)
    assert data.period == "Maret 2025"
    assert len(data.days) == 31 and data.days[0].day == date(2025, 3, 1) and not data.days[0].working
    assert (data.days[2].messages, data.days[2].complaint, data.days[2].spam, data.days[2].negative) == (4, 3, 1, 1)
    units = {(u.account, u.unit): u for u in data.units}
    assert list(units) == [("kemensos", "linjamsos"), ("kemensos", "pfm"), ("kemensos", "humas"), ("kemendag", "pdn")]
    linjamsos = units["kemensos", "linjamsos"]
    assert (linjamsos.tickets, linjamsos.open, linjamsos.resolved, linjamsos.overdue_open) == (3, 1, 2, 1)
    assert (linjamsos.compliance.part, linjamsos.compliance.whole) == (1, 3)
    assert units["kemensos", "pfm"].compliance.value is None
    assert data.histogram.counts[4] == 2 and data.histogram.counts[20] == 1 and data.histogram.over == 0
    assert data.histogram.deadline_hours == 24
    assert (data.topics[0].term, data.topics[0].count) == ("pkh", 3)
    assert [(r.count, r.units) for r in data.recurring] == [(3, ("Ditjen Perlindungan dan Jaminan Sosial",))]


def test_month_must_be_yyyy_mm(store: Store, routing: RoutingConfig) -> None:
    for bad in ("2025-3", "2025-13", "Maret 2025", "2025-03-01"):
        with pytest.raises(ValueError, match="TTTT-BB"):
            build_report(store, routing, bad, now=NOW)


def _pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def _check_files(html_path: Path, pdf_path: Path, data: ReportData) -> str:
    html = html_path.read_text(encoding="utf-8")
    for heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in html
    assert html.count('src="data:image/png;base64,') == 6
    assert not re.search(r'(src|href)="(https?:)?//', html)  # self-contained: nothing fetched
    assert '<html lang="id">' in html
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF")
    assert _pdf_pages(pdf) == 8  # title page, six charts, recurring complaints
    return html


def test_write_report_html_and_pdf(march: Store, routing: RoutingConfig, tmp_path: Path) -> None:
    data = build_report(march, routing, "2025-03", now=NOW)
    html_path, pdf_path = write_report(data, tmp_path / "out")
    assert (html_path.name, pdf_path.name) == ("laporan-2025-03.html", "laporan-2025-03.pdf")
    html = _check_files(html_path, pdf_path, data)
    assert "40,0%" in html and "2 dari 5 tiket jatuh tempo" in html
    assert "“bansos pkh tahap 2 BELUM CAIR sampai sekarang!!”" in html or "“Bansos PKH tahap 1" in html
    assert "Ditjen Perlindungan dan Jaminan Sosial" in html


def test_empty_month_still_makes_both_files(store: Store, routing: RoutingConfig, tmp_path: Path) -> None:
    data = build_report(store, routing, "2025-07", now=NOW)
    html = _check_files(*write_report(data, tmp_path), data)
    assert "Tidak ada tiket bulan ini." in html
    assert "Tidak ada keluhan yang berulang bulan ini." in html


def test_recurring_complaints_group_similar_wording_only() -> None:
    items = [("kemensos", "pfm", "KKS saya terblokir tidak bisa ambil bantuan"),
             ("kemensos", "pfm", "kks saya terblokir, tidak bisa ambil bantuan!!"),
             ("kemensos", "pusdatin", "min kks terblokir ga bisa ambil bantuan"),
             ("kemensos", "linjamsos", "pkh belum cair"),
             ("kemensos", "linjamsos", "pkh tahap 3 belum juga cair padahal sudah lama")]
    found = recurring_complaints(items, min_count=3)
    assert [(r.count, r.text, r.units) for r in found] == [
        (3, "KKS saya terblokir tidak bisa ambil bantuan", ("PFM", "Pusdatin"))]  # keys, when no names are given


def test_histogram_bins_up_to_twice_the_deadline() -> None:
    h = histogram([0.0, 1.9, 2.0, 23.9, 47.9, 48.0, 100.0], 24.0)
    assert h.edges[0] == 0 and h.edges[-1] == 48 and len(h.counts) == 24
    assert (h.counts[0], h.counts[1], h.counts[11], h.counts[23], h.over) == (2, 1, 1, 1, 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.frozensets(st.sampled_from("abcdefgh"), min_size=1, max_size=6), max_size=25),
       st.sampled_from([0.5, 0.75, 0.8]))
def test_similar_clusters_match_comparing_every_pair(sets: list[frozenset[str]], threshold: float) -> None:
    parent = list(range(len(sets)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, a in enumerate(sets):
        for j in range(i):
            if len(a & sets[j]) >= threshold * len(a | sets[j]):
                parent[root(i)] = root(j)
    expected = {frozenset(i for i in range(len(sets)) if root(i) == r) for r in set(map(root, range(len(sets))))}
    assert {frozenset(c) for c in similar_clusters(sets, threshold)} == expected
