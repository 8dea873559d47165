"""Benchmark: API calls per incremental poll, and messages ingested per second.

Run: .venv/bin/python -m tests.bench.bench_poll
Targets (issue 2): at most 5 calls for 50 recent posts of which 3 got new
comments; at least 2,000 messages/s ingested from the fake server into the store.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot import jobs
from tests.bench.machine import machine, peak_rss_mb
from tests.conftest import settings_for
from tests.fakes.instagram_server import FakeInstagram

ACCOUNT_ID = "17841400000000001"


def seed(fake: FakeInstagram, posts: int, comments: int, now: datetime) -> list[str]:
    media = []
    for p in range(posts):
        mid = fake.add_media(ACCOUNT_ID, caption=f"post {p}", timestamp=now - timedelta(hours=p + 1))
        for c in range(comments):
            fake.add_comment(mid, f"PKH saya belum cair, komentar {p}-{c}", f"user{p}_{c}",
                             timestamp=now - timedelta(minutes=p * 60 + c % 59))
        media.append(mid)
    return media


async def calls_per_poll(tmp: Path) -> int:
    from bot.store import Store

    now = datetime.now(timezone.utc)
    with FakeInstagram() as fake:
        fake.add_account(ACCOUNT_ID, "kemensos", "tok-kemensos")
        fake.set_clock(now)
        media = seed(fake, posts=50, comments=4, now=now)
        settings = settings_for(tmp / "calls", fake, None)
        store = Store(settings.db_path)
        await jobs.poll_account(settings, store, "kemensos", now=now)  # backfill
        for mid in media[5:8]:
            fake.add_comment(mid, "komentar baru", "baru", timestamp=now)
        fake.reset_calls()
        report = await jobs.poll_account(settings, store, "kemensos", now=now + timedelta(minutes=5))
        assert report.new_messages == 3, report
        return len(fake.calls)


async def ingest_rate(tmp: Path, posts: int = 20, comments: int = 500) -> tuple[int, float]:
    from bot.store import Store

    now = datetime.now(timezone.utc)
    with FakeInstagram() as fake:
        fake.add_account(ACCOUNT_ID, "kemensos", "tok-kemensos")
        fake.set_clock(now)
        seed(fake, posts, comments, now - timedelta(hours=1))
        settings = settings_for(tmp / "rate", fake, None)
        store = Store(settings.db_path)
        start = time.perf_counter()
        report = await jobs.poll_account(settings, store, "kemensos", now=now)
        return report.new_messages, time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "calls").mkdir()
        (Path(tmp) / "rate").mkdir()
        calls = asyncio.run(calls_per_poll(Path(tmp)))
        count, seconds = asyncio.run(ingest_rate(Path(tmp)))
    print(f"machine: {machine()}")
    print(f"API calls for one poll, 50 recent posts of which 3 got new comments: {calls} (target <= 5)")
    print(f"ingested {count} messages in {seconds:.2f} s: {count / seconds:,.0f} messages/s (target >= 2,000)")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
