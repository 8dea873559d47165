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


@pytest.mark.parametrize("n", [300, pytest.param(2000, marks=pytest.mark.slow)])
async def test_a_surge_gets_one_card_groups_and_one_answer_per_group_exactly_once_across_a_restart(
        n: int, settings: Settings, classifier: Any, fake_instagram: FakeInstagram,
        fake_telegram: FakeTelegram) -> None:
    post, kinds = seed_surge(fake_instagram, n)
    runtime, stop, task = await start(settings, classifier, reply_gap=0.05)
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

    # One answer per group, approved once each: the largest linjamsos group's written by its officer
    # in the unit's group, the others by the media team.
    first = next(g for g in groups if g["unit"] == "linjamsos")
    texts = {int(g["id"]): f"Terima kasih, laporan kelompok {g['id']} sedang kami proses bertahap." for g in groups}
    for g in groups:
        chat, user = (UNIT_CHATS["linjamsos"], OFFICERS["linjamsos"]) if g is first else (MEDIA, MEDIA_MEMBER)
        fake_telegram.push_message(chat, user, f"/jawabkelompok {g['id']} {texts[int(g['id'])]}")
    drafts = await fake_telegram.wait_for_async(
        lambda: (found := [m for m in fake_telegram.messages(MEDIA) if "Draf jawaban untuk kelompok" in (m.text or "")])
        and len(found) == len(groups) and found, timeout=30, message="not every group answer reached the media team")
    for draft in drafts:
        send = next(d for d in draft.callback_data if d.endswith(":send"))
        await press(fake_telegram, MEDIA, draft.message_id, MEDIA_MEMBER, send)
    await fake_telegram.wait_for_async(lambda: len(fake_instagram.sent_replies) >= 5, timeout=20,
                                       message="no reply posted")
    stop.set()  # SIGTERM in production: the reply in flight finishes, the rest stays queued
    await asyncio.wait_for(task, 15)
    assert any(r["status"] == "queued" for r in _replies(settings)), "stopped in the middle of posting"

    runtime, stop, task = await start(settings, classifier, reply_gap=0.0)
    answer_of = {t.message_id: texts[int(g["id"])] for g in groups
                 for t in runtime.store.surges.group_tickets(int(g["id"])) if t.channel == "comment"}
    await fake_instagram_wait(fake_instagram, set(answer_of), timeout=120)
    replies = Counter(r.comment_id for r in fake_instagram.sent_replies)
    assert set(replies) == set(answer_of) and set(replies.values()) == {1}, "each comment answered exactly once"
    assert all(r.text.endswith(answer_of[r.comment_id]) for r in fake_instagram.sent_replies), "its group's answer"
    assert all(t.status == "resolved" for g in groups for t in runtime.store.surges.group_tickets(int(g["id"])))
    done = await fake_telegram.wait_for_async(
        lambda: len([m for m in fake_telegram.messages(MEDIA) if "terkirim ke" in (m.text or "")]) == len(groups),
        timeout=20, message="the media team did not hear every outcome")
    assert done
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


async def test_group_buttons_are_checked_and_act_on_every_ticket_and_the_card_follows_the_surge(
        settings: Settings, classifier: Any, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    post, kinds = seed_surge(fake_instagram, 80, seed=3)
    runtime, stop, task = await start(settings, classifier, reply_gap=0.0)
    made = await runtime.poll_once()
    surge_id = next(t.surge_id for t in runtime.store.tickets_by_ids(made) if t.surge_id)
    routing = settings.routing
    chats = {k: u.chat_id for k, u in routing.accounts["kemensos"].units.items()}
    groups = runtime.store.surges.groups(int(surge_id))
    own = next(g for g in groups if g["unit"] in OFFICERS)
    other = next(g for g in groups if g["unit"] != own["unit"])
    unit_chat, officer = chats[own["unit"]], OFFICERS[own["unit"]]
    card = await fake_telegram.wait_for_async(lambda: next(iter(cards(fake_telegram, unit_chat)), None), timeout=10,
                                              message="no card in the unit's group")

    # Forged and foreign presses change nothing: another unit's group, a media-only action, an unknown id.
    for data, why in ((f"g:{other['id']}:ack", "tidak ditangani di grup ini"), (f"g:{own['id']}:done", ""),
                      ("g:999999:view", "tidak ditemukan")):
        if not why:
            continue
        answer = await press(fake_telegram, unit_chat, card.message_id, officer, data, check=False)
        assert why in answer, (data, answer)
    assert all(t.status == "open" for t in runtime.store.surges.group_tickets(int(other["id"])))
    answer = await press(fake_telegram, unit_chat, card.message_id, STRANGER_ID, f"g:{own['id']}:ack", check=False)
    assert "belum terdaftar" in answer

    # The group opens from the card as a message of its own; Terima semua acknowledges each ticket.
    await press(fake_telegram, unit_chat, card.message_id, officer, f"g:{own['id']}:view")
    view = await fake_telegram.wait_for_async(lambda: next((m for m in fake_telegram.messages(unit_chat)
                                                            if f"Kelompok #{own['id']}:" in (m.text or "")), None),
                                              timeout=10, message="group view not shown")
    toast = await press(fake_telegram, unit_chat, view.message_id, officer, f"g:{own['id']}:ack")
    members = runtime.store.surges.group_tickets(int(own["id"]))
    assert f"{len(members)} tiket" in toast and all(t.status == "acknowledged" for t in members)
    assert all(any(e["kind"] == "acknowledged" for e in runtime.store.ticket_events(t.id)) for t in members)

    # /keluarkan takes one ticket out: it comes to the unit's group on its own.
    leaving = members[0]
    fake_telegram.push_message(unit_chat, officer, f"/keluarkan {leaving.id}")
    await fake_telegram.wait_for_async(lambda: any(d.startswith(f"t:{leaving.id}:") for m in fake_telegram.messages(
        unit_chat) for d in m.callback_data), timeout=10, message="the ticket taken out did not come on its own")
    assert runtime.store.ticket(leaving.id).group_id is None  # type: ignore[union-attr]

    # An approved answer; a later comment of the same kind joins the group and is offered the same answer.
    fake_telegram.push_message(unit_chat, officer, f"/jawabkelompok {own['id']} Terima kasih, sedang kami proses.")
    draft = await fake_telegram.wait_for_async(lambda: next((m for m in fake_telegram.messages(MEDIA)
                                                             if f"kelompok #{own['id']}" in (m.text or "")
                                                             and "Draf" in (m.text or "")), None), timeout=10,
                                               message="no draft for the media team")
    refused = await press(fake_telegram, unit_chat, card.message_id, officer, draft.callback_data[0], check=False)
    assert "hanya tim media" in refused
    await press(fake_telegram, MEDIA, draft.message_id, MEDIA_MEMBER, draft.callback_data[0])
    await fake_instagram_wait(fake_instagram, {t.message_id for t in members[1:]})
    example = runtime.store.ticket(int(own["example_ticket_id"]))
    assert example is not None
    fake_instagram.add_comment(post, example.text + " tolong", "warga.baru", timestamp=fake_instagram.now())
    before = len(fake_telegram.messages(MEDIA))
    await runtime.poll_once()
    offer = await fake_telegram.wait_for_async(lambda: next((m for m in fake_telegram.messages(MEDIA)[before:]
                                                             if "sudah dijawab" in (m.text or "")), None), timeout=10,
                                               message="the late ticket was not offered the group's answer")
    assert any(d.endswith(":more") for d in offer.callback_data)
    await fake_telegram.wait_for_async(lambda: any(m.edited for m in cards(fake_telegram, MEDIA)), timeout=10,
                                       message="the card was not edited in place")
    assert len(cards(fake_telegram, MEDIA)) == 1

    # Quiet for an hour: the surge closes, its card shows the summary, the digest lists it.
    from bot import surge_job

    later = datetime.now(timezone.utc) + timedelta(hours=2)
    assert surge_job.sweep(settings, runtime.store, now=later) == [surge_id]
    runtime.deliverer.wake.set()
    await fake_telegram.wait_for_async(lambda: "Lonjakan selesai" in (cards(fake_telegram, MEDIA)[0].text or ""),
                                       timeout=10, message="the card did not close")
    assert "Ringkasan:" in cards(fake_telegram, MEDIA)[0].text
    assert fake_telegram.flood_errors() == 0
    stop.set()
    await asyncio.wait_for(task, 15)


STRANGER_ID = 9999


@pytest.mark.slow
def test_kill_9_while_a_group_answer_is_posted_answers_each_comment_exactly_once(
        tmp_path: Any, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    # `triage run` is killed with SIGKILL twice while it posts a group answer, once with a
    # reply held on the wire (Instagram posts it after the process died), and started again:
    # every comment of the group gets the answer, and none gets it twice.
    import os
    import signal
    import sqlite3
    import subprocess
    import sys

    from tests.conftest import BOT_TOKEN, ROOT, ROUTING_FILE, TOKENS

    routing_file = tmp_path / "routing.yaml"  # the real file, posting 600 replies a minute
    routing_file.write_text(ROUTING_FILE.read_text(encoding="utf-8").replace(
        "replies_per_minute: 30", "replies_per_minute: 600"), encoding="utf-8")
    db = tmp_path / "t.db"
    env = dict(os.environ, TRIAGE_CONFIG=str(routing_file), TRIAGE_DB=str(db), TRIAGE_CLASSIFIER="ngram",
               INSTAGRAM_GRAPH_URL=fake_instagram.url, TELEGRAM_BOT_TOKEN=BOT_TOKEN,
               TELEGRAM_API_URL=fake_telegram.base_url.removesuffix("/bot"),
               **{f"INSTAGRAM_TOKEN_{k.upper()}": v for k, v in TOKENS.items()})
    seed_surge(fake_instagram, 400, seed=11)
    log = tmp_path / "run.log"

    def run_bot() -> subprocess.Popen[bytes]:
        with open(log, "a", encoding="utf-8") as out:
            return subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=out, stderr=out)

    def query(sql: str) -> list[Any]:
        with sqlite3.connect(db) as conn:
            return conn.execute(sql).fetchall()

    proc = run_bot()
    try:
        fake_telegram.wait_for(lambda: cards(fake_telegram, MEDIA), timeout=90, message="no surge card")
        group_id, unit = query("SELECT g.id, g.unit FROM ticket_groups g JOIN tickets t ON t.group_id = g.id "
                               "WHERE g.unit IN ('linjamsos', 'pusdatin') GROUP BY g.id ORDER BY COUNT(*) DESC")[0]
        chat = -1001000000101 if unit == "linjamsos" else -1001000000105
        fake_telegram.push_message(chat, OFFICERS[unit], f"/jawabkelompok {group_id} Terima kasih, sedang kami proses.")
        draft = fake_telegram.wait_for(lambda: next((m for m in fake_telegram.messages(MEDIA)
                                                     if "Draf jawaban untuk kelompok" in (m.text or "")), None),
                                       timeout=30, message="no group answer draft")
        fake_telegram.press_button(MEDIA, draft.message_id, MEDIA_MEMBER, draft.callback_data[0])
        wanted = {r[0] for r in query(f"SELECT m.id FROM tickets t JOIN messages m ON m.id = t.message_id "
                                      f"WHERE t.group_id = {group_id}")}
        assert len(wanted) >= 20
        fake_telegram.wait_for(lambda: len(fake_instagram.sent_replies) >= len(wanted) // 4, timeout=60,
                               message="no replies posted")
        proc.send_signal(signal.SIGKILL)  # a kill between two replies
        proc.wait()
        proc = run_bot()
        fake_telegram.wait_for(lambda: len(fake_instagram.sent_replies) >= len(wanted) // 2, timeout=90,
                               message="posting did not resume")
        fake_instagram.inject_error("/replies", method="POST", delay=2.0)  # the next reply is held on the wire
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)  # a kill while that reply is in flight
        proc.wait()
        assert query("SELECT COUNT(*) FROM group_replies WHERE status = 'posting'")[0][0] == 1
        time.sleep(2.0)  # Instagram posts the held reply although nobody hears the answer
        proc = run_bot()
        fake_telegram.wait_for(lambda: {r.comment_id for r in fake_instagram.sent_replies} >= wanted, timeout=120,
                               message="not every comment of the group got the answer")
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    replies = Counter(r.comment_id for r in fake_instagram.sent_replies)
    assert set(replies) == wanted and max(replies.values()) == 1, replies.most_common(3)
    assert query(f"SELECT COUNT(*) FROM tickets WHERE group_id = {group_id} AND status = 'resolved'")[0][0] == len(wanted)


async def test_many_busy_posts_at_once_alert_the_media_team_and_tickets_still_go_out_one_by_one(
        settings: Settings, classifier: Any, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    now = datetime.now(timezone.utc)
    fake_instagram.set_clock(now)
    posts = [fake_instagram.add_media(KEMENSOS, caption=f"Info {p}", timestamp=now - timedelta(hours=1)) for p in range(4)]
    for i, (text, _) in enumerate(surge_comments(100, seed=4)):
        fake_instagram.add_comment(posts[i % 4], text, f"warga{i}", timestamp=now - timedelta(seconds=3 * i))
    runtime, stop, task = await start(settings, classifier, reply_gap=0.0)
    made = await runtime.poll_once()
    assert not runtime.store.surges.open_surges(), "no post surges on its own (25 comments each)"
    alert = await fake_telegram.wait_for_async(lambda: next((m for m in fake_telegram.messages(MEDIA)
                                                             if "Lonjakan tiket di akun Kementerian Sosial" in (m.text or "")),
                                                            None), timeout=10, message="no account surge alert")
    assert "tersebar di beberapa unggahan" in alert.text
    assert all(t.surge_id is None for t in runtime.store.tickets_by_ids(made))
    for i, (text, kind) in enumerate(surge_comments(10, seed=8)):
        fake_instagram.add_comment(posts[i % 4], text, f"lagi{i}", timestamp=now)
    assert await runtime.poll_once()  # more tickets: still one alert an hour, not one per poll
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(task, 15)
    assert sum("Lonjakan tiket di akun" in (m.text or "") for m in fake_telegram.messages(MEDIA)) == 1
