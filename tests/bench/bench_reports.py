"""Benchmark: the daily digest and the monthly report on a store of 100,000 tickets.

A script, not a test:

    .venv/bin/python tests/bench/bench_reports.py [--tickets 100000] [--months 4] [--keep DIR]

It fills a temporary store through the Store's own methods (messages, triage,
acknowledge, resolve; batched in outer transactions), then prints the machine,
the time to build the digest, the time to build and write the last month's
report, and the peak RSS. Targets: digest < 1 s, report < 10 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot.config import RoutingConfig, load_routing  # noqa: E402
from bot.deadlines import WorkingCalendar, add_working_time, deadline  # noqa: E402
from bot.digest import build_digest, render_digest_chart, render_digest_text  # noqa: E402
from bot.report import build_report, write_report  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.triage import InboundMessage, TicketDecision  # noqa: E402

WIB = ZoneInfo("Asia/Jakarta")
NOW = datetime(2025, 6, 2, 7, 30, tzinfo=WIB)  # a Monday: the digest covers Friday to Monday
MONTH = "2025-05"

# Message openings and endings written for this benchmark; the keyword decides the unit.
TOPICS = {
    ("kemensos", "linjamsos"): ["bansos pkh tahap 2 belum cair", "pkh saya dihentikan tanpa alasan",
                                 "korban banjir belum dapat bantuan", "kis pbi saya tidak aktif"],
    ("kemensos", "pfm"): ["bpnt bulan ini belum masuk", "kartu kks saya terblokir",
                          "agen bpnt minta uang tambahan", "e-warong tutup terus"],
    ("kemensos", "rehsos"): ["bantuan disabilitas untuk anak saya", "lansia di kampung kami terlantar",
                             "atensi belum sampai ke yatim piatu"],
    ("kemensos", "dayasos"): ["kube kami tidak pernah dibina", "usulan gelar pahlawan nasional"],
    ("kemensos", "pusdatin"): ["nik tidak ditemukan di cek bansos", "data dtks saya salah",
                               "aplikasi cek bansos error terus"],
    ("kemensos", "itjen"): ["pendamping pkh minta potongan bansos", "ada pungli di kelurahan"],
    ("kemensos", "humas"): ["kenapa admin tidak pernah membalas", "tolong perbaiki pelayanan"],
    ("kemendag", "pdn"): ["harga minyak goreng naik terus", "harga beras di pasar tradisional mahal",
                          "minyakita langka di warung", "harga cabai tembus seratus ribu"],
    ("kemendag", "pktn"): ["barang tidak sesuai pesanan toko online", "timbangan pedagang curang",
                           "garansi tidak diakui penjual"],
    ("kemendag", "daglu"): ["izin ekspor kopi lama sekali", "kuota impor bawang bocor"],
    ("kemendag", "pen"): ["pelatihan ekspor untuk umkm kapan dibuka", "pameran dagang di luar negeri"],
    ("kemendag", "bappebti"): ["robot trading bodong bawa kabur uang", "aset kripto ilegal masih jalan"],
    ("kemendag", "itjen"): ["oknum minta suap untuk izin"],
    ("kemendag", "humas"): ["kementerian ini kerjanya apa", "tolong balas dm saya"],
}
WEIGHTS = {"linjamsos": 9, "pfm": 6, "pusdatin": 5, "rehsos": 2, "dayasos": 1, "itjen": 1, "humas": 4,
           "pdn": 8, "pktn": 4, "daglu": 1, "pen": 1, "bappebti": 2}
OPENINGS = ["min", "mohon info", "tolong dong", "pak menteri", "kak admin", "", "assalamualaikum min"]
ENDINGS = ["udah 3 bulan", "sampai sekarang", "gimana ini", "tolong dibantu", "kecewa banget", "", "??", "mohon dicek"]
PRAISE = ["terima kasih kemensos 🙏", "mantap pak", "semangat terus min", "👍👍", "informasinya bermanfaat"]
SPAM = ["slot gacor maxwin link di bio", "depo 10rb wd berapapun", "follow balik ya kak", "jual followers murah"]


@dataclass(frozen=True)
class Plan:
    message: InboundMessage
    decision: TicketDecision | None
    triaged_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


def plan_messages(n_tickets: int, months: int, routing: RoutingConfig, rng: random.Random) -> list[Plan]:
    calendar = routing.calendar()
    start = datetime(NOW.year, NOW.month, 1, tzinfo=WIB)
    for _ in range(months):
        start = (start - timedelta(days=1)).replace(day=1)
    span = (NOW - start).total_seconds()
    units = list(TOPICS)
    weights = [WEIGHTS[u] for _, u in units]
    plans: list[Plan] = []
    made = 0
    while made < n_tickets:
        created = start + timedelta(seconds=rng.random() * span)
        if rng.random() < 0.4:  # citizens write mostly in the day
            created = created.replace(hour=rng.randint(7, 21))
        kind = rng.random()
        account = rng.choice(("kemensos", "kemendag"))
        if kind < 0.18:
            plans.append(_plan(len(plans), account, rng.choice(SPAM), created, _spam(account), calendar, rng))
            made += 1
        elif kind < 0.30:
            plans.append(_plan(len(plans), account, rng.choice(PRAISE), created, None, calendar, rng))
        else:
            acc, unit = rng.choices(units, weights)[0]
            text = " ".join(p for p in (rng.choice(OPENINGS), rng.choice(TOPICS[(acc, unit)]),
                                        rng.choice(ENDINGS)) if p)
            labels = tuple(sorted(rng.sample(["complaint", "question", "negative"], rng.choice((1, 1, 2)))))
            if unit == "humas":
                labels = ("negative",)
            decision = TicketDecision(account=acc, status="open", unit=unit, labels=labels, scores={},
                                      unit_source="rule", lang="id", deadline=deadline(created, 3, calendar=calendar))
            plans.append(_plan(len(plans), acc, text, created, decision, calendar, rng))
            made += 1
    plans.sort(key=lambda p: p.triaged_at)
    return plans


def _spam(account: str) -> TicketDecision:
    return TicketDecision(account=account, status="spam", unit=None, labels=("spam",), scores={},
                          unit_source="none", lang="id", deadline=None)


def _plan(i: int, account: str, text: str, created: datetime, decision: TicketDecision | None,
          calendar: WorkingCalendar, rng: random.Random) -> Plan:
    message = InboundMessage(id=f"bench-{i}", account=account, channel=rng.choice(("comment", "dm")),
                             text=text, created_at=created, author_username=f"warga{i % 5000}")
    triaged = created + timedelta(minutes=rng.randint(1, 20))
    acked = resolved = None
    if decision is not None and decision.status == "open" and rng.random() < 0.96:
        acked = add_working_time(created, timedelta(hours=rng.expovariate(1 / 3)), calendar=calendar)
        if rng.random() < 0.95:
            resolved = add_working_time(acked, timedelta(hours=rng.lognormvariate(2.3, 0.8)), calendar=calendar)
    acked = acked if acked and acked < NOW else None
    resolved = resolved if resolved and resolved < NOW else None
    return Plan(message, decision, triaged, acked, resolved)


def fill(store: Store, plans: list[Plan], batch: int = 5000) -> None:
    """Through the Store's methods, in outer transactions of `batch` messages."""
    for first in range(0, len(plans), batch):
        chunk = plans[first:first + batch]
        store.save_messages([p.message for p in chunk], now=chunk[-1].triaged_at)
        with store.transaction():
            for p in chunk:
                ticket_id = store.record_triage(p.message.id, {}, p.decision, now=p.triaged_at)
                if ticket_id is None:
                    continue
                if p.acknowledged_at:
                    store.update_ticket(ticket_id, {"status": "acknowledged", "acknowledged_by": 7101,
                                                    "acknowledged_at": p.acknowledged_at},
                                        actor="7101", kind="acknowledged", now=p.acknowledged_at)
                if p.resolved_at:
                    store.update_ticket(ticket_id, {"status": "resolved", "resolved_by": 7101,
                                                    "resolved_at": p.resolved_at},
                                        actor="7101", kind="resolved", now=p.resolved_at)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}, {platform.system()}"


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=4, help="months of history before the report month's end")
    parser.add_argument("--keep", help="write the store and the outputs here instead of a temporary folder")
    args = parser.parse_args()
    routing = load_routing(ROOT / "routing.yaml")
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-reports-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    plans = plan_messages(args.tickets, args.months, routing, random.Random(7))
    store = Store(folder / "bench.db")
    fill(store, plans)
    print(f"store: {len(plans):,} messages, {args.tickets:,} tickets over {args.months} month(s), "
          f"filled in {time.perf_counter() - t0:.1f} s ({folder / 'bench.db'})")

    t0 = time.perf_counter()
    digest = build_digest(store, routing, NOW)
    built = time.perf_counter() - t0
    text = render_digest_text(digest)
    render_digest_chart(digest, folder / "digest.png")
    total = time.perf_counter() - t0
    print(f"digest: built in {built:.3f} s (target < 1 s); with text ({len(text)} chars) and chart {total:.3f} s; "
          f"{digest.total.new:,} new, {digest.total.overdue:,} overdue")

    t0 = time.perf_counter()
    data = build_report(store, routing, MONTH, now=NOW)
    built = time.perf_counter() - t0
    html_path, pdf_path = write_report(data, folder)
    total = time.perf_counter() - t0
    print(f"report {MONTH}: built in {built:.2f} s, built and written in {total:.2f} s (target < 10 s); "
          f"{data.summary.tickets:,} tickets; {html_path.stat().st_size // 1024} KiB HTML, "
          f"{pdf_path.stat().st_size // 1024} KiB PDF")
    print(f"peak RSS: {peak_rss_mb():.0f} MiB")
    store.close()


if __name__ == "__main__":
    main()
