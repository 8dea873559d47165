"""End to end: a viral post. Comments flood one post on the fake Instagram; the real bot polls,
opens a surge, groups the complaints, shows one card per group chat (edited in place), and
one approved answer per group reaches every comment of that group exactly once, across a
restart in the middle of posting. A Telegram minute is squeezed to GROUP_WINDOW (2 s).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot.config import Settings
from bot.runner import Runtime, build_runtime, serve
from tests.conftest import GROUP_WINDOW
from tests.fakes.instagram_server import FakeInstagram
from tests.fakes.telegram_server import FakeTelegram
from tests.surge_texts import surge_comments
from tests.test_telegram_workflow import LIMITS, MEDIA, MEDIA_MEMBER, press

KEMENSOS = "17841400000000001"
OFFICERS = {"linjamsos": 7101, "pusdatin": 7501}


def seed_surge(fake: FakeInstagram, n: int, *, seed: int = 0) -> tuple[str, dict[str, str]]:
    """n comments written over the last minutes on one post; returns the post and comment -> kind."""
    now = datetime.now(timezone.utc)
    fake.set_clock(now)
    post = fake.add_media(KEMENSOS, caption="Penyaluran bansos tahap 4 dimulai hari ini", timestamp=now - timedelta(hours=2))
    kinds = {}
    for i, (text, kind) in enumerate(surge_comments(n, seed=seed)):
        comment = fake.add_comment(post, text, f"warga{i}", timestamp=now - timedelta(seconds=(n - i) * 300 / n))
        kinds[comment] = kind
    return post, kinds


def cards(fake: FakeTelegram, chat: int) -> list[Any]:
    return [m for m in fake.messages(chat) if m.text and "Lonjakan" in m.text.split("\n")[0]]


async def start(settings: Settings, classifier: Any, *, reply_gap: float) -> tuple[Runtime, asyncio.Event, asyncio.Task[None]]:
    runtime = build_runtime(settings, classifier=classifier, limits=LIMITS, reply_gap=reply_gap)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(runtime, stop, poll=False))
    await asyncio.sleep(0.3)
    return runtime, stop, task


def purity(labels: dict[int, int | None], truth: dict[int, str]) -> tuple[float, int]:
    """Share of grouped tickets whose group's majority kind is their own, and how many were grouped."""
    by_group: dict[int, list[str]] = defaultdict(list)
    for ticket, group in labels.items():
        if group is not None:
            by_group[group].append(truth[ticket])
    grouped = sum(len(v) for v in by_group.values())
    agree = sum(Counter(v).most_common(1)[0][1] for v in by_group.values())
    return (agree / grouped if grouped else 0.0), grouped


@pytest.mark.parametrize("n", [300])
async def test_a_surge_gets_one_card_groups_and_one_answer_per_group_exactly_once_across_a_restart(
        n: int, settings: Settings, classifier: Any, fake_instagram: FakeInstagram,
        fake_telegram: FakeTelegram) -> None:
    post, kinds = seed_surge(fake_instagram, n)
    runtime, stop, task = await start(settings, classifier, reply_gap=0.0)
    started = time.perf_counter()
    made = await runtime.poll_once()
    surge_ids = {t.surge_id for t in runtime.store.tickets_by_ids(made)}
    assert len(surge_ids) == 1 and None not in surge_ids, "every ticket of the post joined one surge"
    units = {t.unit for t in runtime.store.tickets_by_ids(made) if t.unit}
    UNIT_CHATS = {k: u.chat_id for k, u in settings.routing.accounts["kemensos"].units.items()}

    # One card in the media team's group and in each unit's group, within a (squeezed) minute.
    await fake_telegram.wait_for_async(lambda: cards(fake_telegram, MEDIA) and all(
        cards(fake_telegram, UNIT_CHATS[u]) for u in units), timeout=GROUP_WINDOW.period * 5,
        message="surge card not shown in every group")
    assert time.perf_counter() - started < 60
    card = cards(fake_telegram, MEDIA)[0]
    assert "Kementerian Sosial" in card.text and "Penyaluran bansos" in card.text and "Kelompok" in card.text

    # The groups match the seeded kinds.
    tickets = runtime.store.surges.tickets(next(iter(surge_ids)))
    truth = {t.id: kinds[t.message_id] for t in tickets if t.unit}
    grouping = {t.id: t.group_id for t in tickets if t.unit and kinds[t.message_id] != "noise"}
    share, grouped = purity(grouping, truth)
    assert share >= 0.8 and grouped >= 0.8 * len(grouping), (share, grouped, len(grouping))
    groups = runtime.store.surges.groups(next(iter(surge_ids)))
    top_kinds = {Counter(truth[t.id] for t in runtime.store.surges.group_tickets(int(g["id"]))).most_common(1)[0][0]
                 for g in groups[:6]}
    assert {"cair", "data", "pungli"} <= top_kinds

    # Few messages per group for the whole surge, and Telegram never had to say 429.
    for chat in [MEDIA, *(UNIT_CHATS[u] for u in units)]:
        assert len(fake_telegram.messages(chat)) <= 3, chat
    assert fake_telegram.flood_errors() == 0

    # An officer answers the largest linjamsos group at once; the media team approves it once.
    group = next(g for g in groups if g["unit"] == "linjamsos")
    fake_telegram.push_message(UNIT_CHATS["linjamsos"], OFFICERS["linjamsos"],
                               f"/jawabkelompok {group['id']} Mohon maaf atas keterlambatannya, pencairan tahap 4 "
                               "sedang berproses bertahap. Silakan cek cekbansos.kemensos.go.id.")
    draft = await fake_telegram.wait_for_async(lambda: next((m for m in fake_telegram.messages(MEDIA)
                                                             if "Draf jawaban untuk kelompok" in (m.text or "")), None),
                                               timeout=10, message="group answer not shown to the media team")
    send = next(d for d in draft.callback_data if d.endswith(":send"))
    # The first reply is held on the wire for 1.5 s: the bot is stopped while it is in flight.
    fake_instagram.inject_error("/replies", method="POST", delay=1.5)
    await press(fake_telegram, MEDIA, draft.message_id, MEDIA_MEMBER, send)
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(task, 15)
    posting = [r for r in _replies(settings) if r["status"] == "posting"]
    assert posting, "the restart must come while a reply is in flight"
    await asyncio.sleep(1.5)  # the held reply lands on Instagram after the bot stopped listening

    runtime, stop, task = await start(settings, classifier, reply_gap=0.0)
    members = runtime.store.surges.group_tickets(int(group["id"]))
    wanted = {t.message_id for t in members if t.channel == "comment"}
    await fake_instagram_wait(fake_instagram, wanted)
    replies = Counter(r.comment_id for r in fake_instagram.sent_replies)
    assert set(replies) == wanted and set(replies.values()) == {1}, "each comment of the group answered exactly once"
    assert all(t.status == "resolved" for t in runtime.store.surges.group_tickets(int(group["id"])))
    done = await fake_telegram.wait_for_async(lambda: next((m for m in fake_telegram.messages(MEDIA)
                                                            if "terkirim ke" in (m.text or "")), None), timeout=10,
                                              message="the media team did not hear the outcome")
    assert f"{len(wanted)} komentar" in done.text
    stop.set()
    await asyncio.wait_for(task, 15)


async def fake_instagram_wait(fake: FakeInstagram, wanted: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if {r.comment_id for r in fake.sent_replies} >= wanted:
            await asyncio.sleep(0.5)  # any duplicate would come now
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(wanted - {r.comment_id for r in fake.sent_replies})} comments never got the answer")


def _replies(settings: Settings) -> list[dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(settings.db_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM group_replies")]
