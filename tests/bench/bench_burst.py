"""Benchmark: a viral post — 2,000 comments found by one poll — delivered to one unit's group.

Run: .venv/bin/python -m tests.bench.bench_burst [--window SECONDS] [--comments N]
By default Telegram's real group limit applies (20 messages a minute), so the
run takes a few minutes; --window 6 squeezes the minute into 6 s to try it fast.
Prints the time from the poll that found them until every ticket is visible in
its group, messages sent per group per minute, 429s received, and peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.config import load_routing
from bot.delivery import Limits
from bot.runner import build_runtime, serve
from classifiers.pipeline import load_classifier
from tests.bench.machine import machine, peak_rss_mb
from tests.conftest import BOT_TOKEN, ROUTING_FILE, TOKENS, settings_for
from tests.fakes.instagram_server import FakeInstagram
from tests.fakes.telegram_server import FakeTelegram, FloodLimits, Window

LINJAMSOS, MEDIA = -1001000000101, -1001000000001
SHOWN = re.compile(r"^t:(\d+):(?:ack|open)$")


def shown(fake: FakeTelegram, chat: int) -> set[int]:
    return {int(m.group(1)) for msg in fake.messages(chat) for d in msg.callback_data if (m := SHOWN.match(d))}


async def run(window: float, comments: int, backend: str) -> None:
    routing = load_routing(ROUTING_FILE)
    now = datetime.now(timezone.utc)
    with FakeInstagram() as ig, FakeTelegram(BOT_TOKEN, flood=FloodLimits(group=Window(20, window))) as tg:
        for key, acc in routing.accounts.items():
            ig.add_account(acc.instagram_user_id, key, TOKENS[key])
        for chat in {routing.media_team.chat_id, routing.supervisor.chat_id,
                     *(u.chat_id for a in routing.accounts.values() for u in a.units.values())}:
            tg.add_chat(chat)
        ig.set_clock(now)
        post = ig.add_media("17841400000000001", caption="viral", timestamp=now - timedelta(hours=1))
        for i in range(comments):
            ig.add_comment(post, f"PKH saya belum cair min, tolong dicek ({i})", f"warga{i}",
                           timestamp=now - timedelta(seconds=i))
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_for(Path(tmp), ig, tg)
            runtime = build_runtime(settings, classifier=load_classifier(routing.account_rules(), backend=backend),
                                    limits=Limits(group_per_period=20, group_period=window))
            stop = asyncio.Event()
            task = asyncio.create_task(serve(runtime, stop, poll=False))
            start = time.perf_counter()
            made = await runtime.poll_once()
            triaged = time.perf_counter() - start
            while len(shown(tg, LINJAMSOS)) < len(made) or len(shown(tg, MEDIA)) < len(made):
                await asyncio.sleep(0.2)
            elapsed = time.perf_counter() - start
            stop.set()
            await task
            sent = len(tg.messages(LINJAMSOS))
            minutes = elapsed / window  # in Telegram minutes
            print(f"machine: {machine()}")
            print(f"{len(made)} tickets from one poll; classified and stored in {triaged:.1f} s ({backend} backend)")
            print(f"every ticket visible in the unit group and the media team's group after {elapsed:.1f} s "
                  f"(group window {window:g} s = one Telegram minute)")
            print(f"unit group: {sent} messages ({len(made) / max(sent, 1):.0f} tickets each), "
                  f"{sent / minutes:.1f} messages per group per minute (limit 20)")
            print(f"429 answers from Telegram: {tg.flood_errors()}")
            print(f"peak RSS: {peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--window", type=float, default=60.0, help="seconds in a Telegram minute (default 60)")
    parser.add_argument("--comments", type=int, default=2000)
    parser.add_argument("--backend", default="default", choices=["default", "ngram"])
    args = parser.parse_args()
    asyncio.run(run(args.window, args.comments, args.backend))


if __name__ == "__main__":
    main()
