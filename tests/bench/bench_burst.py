"""Benchmark: a viral post — 2,000 comments found by one poll — handled as a surge.

Run: .venv/bin/python -m tests.bench.bench_burst [--window SECONDS] [--comments N] [--backend B]
By default Telegram's real group limit applies (20 messages a minute); --window 6
squeezes the minute into 6 s to try it fast. Group answers are posted at routing.yaml's
pace (`surges.replies_per_minute`), squeezed by the same factor.

Prints: time from the poll until the surge card is visible in the unit's and the media
team's groups, messages sent per group, time until every ticket is reachable (stored,
counted on the card, in a group or listed by /antrian), grouping quality against the
seeded kinds, 429s, and the time to post one answer under every comment of the groups
(measured, and as it would take at the real pace), with the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sklearn.metrics import adjusted_rand_score

from bot.config import load_routing
from bot.delivery import Limits
from bot.runner import build_runtime, serve
from classifiers.pipeline import load_classifier
from tests.bench.machine import machine, peak_rss_mb
from tests.conftest import BOT_TOKEN, ROUTING_FILE, TOKENS, settings_for
from tests.fakes.instagram_server import FakeInstagram
from tests.fakes.telegram_server import FakeTelegram, FloodLimits, Window
from tests.surge_texts import surge_comments

MEDIA = -1001000000001
MEDIA_MEMBER = 5001


def is_card(text: str | None) -> bool:
    return bool(text) and "Lonjakan" in (text or "").split("\n")[0]


async def run(window: float, comments: int, backend: str) -> None:
    routing = load_routing(ROUTING_FILE)
    now = datetime.now(timezone.utc)
    squeeze = window / 60.0
    with FakeInstagram() as ig, FakeTelegram(BOT_TOKEN, flood=FloodLimits(group=Window(20, window))) as tg:
        for key, acc in routing.accounts.items():
            ig.add_account(acc.instagram_user_id, key, TOKENS[key])
        for chat in {routing.media_team.chat_id, routing.supervisor.chat_id,
                     *(u.chat_id for a in routing.accounts.values() for u in a.units.values())}:
            tg.add_chat(chat)
        for user in routing.media_team.members:
            tg.add_user(user)
        ig.set_clock(now)
        post = ig.add_media("17841400000000001", caption="Penyaluran bansos tahap 4", timestamp=now - timedelta(hours=1))
        kinds = {}
        for i, (text, kind) in enumerate(surge_comments(comments, seed=7)):
            cid = ig.add_comment(post, text, f"warga{i}", timestamp=now - timedelta(seconds=(comments - i) * 300 / comments))
            kinds[cid] = kind
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_for(Path(tmp), ig, tg)
            gap = 60.0 / routing.surges.replies_per_minute * squeeze
            runtime = build_runtime(settings, classifier=load_classifier(routing.account_rules(), backend=backend),
                                    limits=Limits(group_per_period=20, group_period=window), reply_gap=gap)
            stop = asyncio.Event()
            task = asyncio.create_task(serve(runtime, stop, poll=False))
            await asyncio.sleep(0.3)
            start = time.perf_counter()
            made = await runtime.poll_once()
            reachable = time.perf_counter() - start
            tickets = [t for t in runtime.store.tickets_by_ids(made) if t.unit]
            chats = {MEDIA} | {routing.accounts[t.account].units[t.unit].chat_id for t in tickets if t.unit}
            while not all(any(is_card(m.text) for m in tg.messages(c)) for c in chats):
                await asyncio.sleep(0.05)
            card_seen = time.perf_counter() - start
            surge_id = tickets[0].surge_id
            groups = runtime.store.surges.groups(int(surge_id)) if surge_id else []
            kept = [t for t in runtime.store.tickets_by_ids([t.id for t in tickets]) if kinds[t.message_id] != "noise"]
            truth = [kinds[t.message_id] for t in kept]
            labels = [t.group_id or -t.id for t in kept]  # an ungrouped ticket is a group of its own
            by_group = defaultdict(list)
            for t, k in zip(kept, truth):
                if t.group_id:
                    by_group[t.group_id].append(k)
            grouped = sum(len(v) for v in by_group.values())
            purity = sum(Counter(v).most_common(1)[0][1] for v in by_group.values()) / max(grouped, 1)

            before_answers = {chat: len(tg.messages(chat)) for chat in chats}
            # One answer per group, approved at once; time until every comment of every group has it.
            services = runtime.services
            from bot.service import Actor
            from bot.workflow import ChatScope, MEDIA as MEDIA_ROLE, person

            actor = Actor(person(routing, MEDIA_MEMBER), ChatScope(MEDIA, MEDIA_ROLE), "Tim media")
            posting = time.perf_counter()
            wanted = 0
            for g in groups:
                group = services.groups.load(actor, int(g["id"]), "g_answer")
                answer = services.groups.draft(actor, group, "Terima kasih, laporan Anda kami tindak lanjuti.", 30)
                services.groups.approve(actor, answer)
                wanted += int(g["active"])
            services.replier.wake.set()
            while len(ig.sent_replies) < wanted:
                await asyncio.sleep(0.2)
            posted = time.perf_counter() - posting
            stop.set()
            await task
            print(f"machine: {machine()}")
            print(f"{comments} comments on one post -> {len(tickets)} tickets ({backend} backend), "
                  f"{len(groups)} groups; group window {window:g} s = one Telegram minute")
            print(f"surge card visible in all {len(chats)} groups {card_seen:.1f} s after the poll started")
            print(f"every ticket reachable (stored, counted on the card, grouped or in /antrian) after {reachable:.1f} s")
            for chat in sorted(chats):
                print(f"  chat {chat}: {before_answers[chat]} message(s) until the answers, "
                      f"{len(tg.messages(chat))} in all (a draft and an outcome per group answer)")
            print(f"grouping: {grouped} of {len(kept)} complaint tickets grouped, purity {purity:.3f}, "
                  f"ARI (ungrouped as singletons) {adjusted_rand_score(truth, labels):.3f}")
            print(f"429 answers from Telegram: {tg.flood_errors()}")
            print(f"{wanted} replies posted on Instagram in {posted:.1f} s at {gap:.3f} s apart "
                  f"(= {posted / squeeze / 60:.1f} min at {routing.surges.replies_per_minute} replies a minute)")
            print(f"peak RSS: {peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--window", type=float, default=60.0, help="seconds in a Telegram minute (default 60)")
    parser.add_argument("--comments", type=int, default=2000)
    parser.add_argument("--backend", default="default", choices=["default", "ngram", "transformer"])
    args = parser.parse_args()
    asyncio.run(run(args.window, args.comments, args.backend))


if __name__ == "__main__":
    main()
