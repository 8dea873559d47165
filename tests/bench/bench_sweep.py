"""Benchmark: the reminder sweep over 10,000 open tickets, and deadline arithmetic.

Run: .venv/bin/python -m tests.bench.bench_sweep
Target (issue 5): one sweep of 10,000 open tickets under 200 ms.
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import load_settings
from bot.deadlines import deadline
from bot.reminders import sweep
from bot.store import Store
from bot.triage import OPEN, InboundMessage, TicketDecision
from tests.bench.machine import machine, peak_rss_mb
from tests.conftest import ROUTING_FILE

WIB = ZoneInfo("Asia/Jakarta")
UNITS = {"kemensos": ["linjamsos", "pfm", "rehsos", "dayasos", "pusdatin", "itjen", "humas"],
         "kemendag": ["pdn", "pktn", "daglu", "pen", "bappebti", "itjen", "humas"]}


def fill(store: Store, settings, count: int, start: datetime) -> float:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    calendar = settings.routing.calendar()
    began = time.perf_counter()
    with store.transaction():
        for i in range(count):
            account = rng.choice(list(UNITS))
            received = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 5))
            message = InboundMessage(id=f"m{i}", account=account, channel="comment", text=f"keluhan {i}",
                                     created_at=received)
            store.save_messages([message], now=received)
            due = deadline(received, 3, calendar=calendar)
            decision = TicketDecision(account, OPEN, rng.choice(UNITS[account]), ("complaint",), {}, "model", "id", due)
            store.record_triage(message.id, {}, decision, now=received)
    return time.perf_counter() - began


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({"TRIAGE_CONFIG": str(ROUTING_FILE), "TRIAGE_DB": str(Path(tmp) / "t.db")})
        store = Store(settings.db_path)
        start = datetime(2026, 11, 16, 8, 0, tzinfo=WIB)
        filled = fill(store, settings, 10_000, start)
        print(f"machine: {machine()}")
        print(f"10,000 open tickets made (deadlines computed and stored) in {filled:.1f} s")
        # The bot sweeps every minute: the first sweep after a start computes every
        # ticket's reminder moments; later ones reuse them and write only what fell due.
        for hours in (30, 54, 80):
            for minute in (0, 1, 2):
                now = start + timedelta(hours=hours, minutes=minute)
                began = time.perf_counter()
                notices = sweep(settings, store, now=now)
                seconds = time.perf_counter() - began
                print(f"sweep at {now:%a %d %b %H:%M} WIB: {seconds * 1000:4.0f} ms, "
                      f"{sum(len(n.ticket_ids) for n in notices):5d} ticket(s) in {len(notices)} new notice(s)")
        print("target: a sweep of 10,000 open tickets under 200 ms")
        began = time.perf_counter()
        for i in range(10_000):
            deadline(start + timedelta(minutes=263 * i), 3, calendar=settings.routing.calendar())
        print(f"10,000 deadlines computed in {(time.perf_counter() - began) * 1000:.0f} ms")
        print(f"peak RSS: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
