"""The poll job against the fake Instagram server, with the real store and classifier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot import jobs
from bot.config import Settings, load_routing
from bot.store import Store
from classifiers.pipeline import load_classifier
from tests.conftest import ROOT, ROUTING_FILE, TOKENS, settings_for
from tests.fakes.instagram_server import FakeInstagram

KEMENSOS = "17841400000000001"


@pytest.fixture(scope="module")
def classifier():  # type: ignore[no-untyped-def]
    return load_classifier(load_routing(ROUTING_FILE).account_rules(), backend="ngram")


@pytest.fixture
def ig_settings(tmp_path: Path, fake_instagram: FakeInstagram) -> Settings:
    return settings_for(tmp_path, fake_instagram, None)


def seed_posts(fake: FakeInstagram, posts: int, comments: int, now: datetime) -> list[str]:
    media = []
    for p in range(posts):
        mid = fake.add_media(KEMENSOS, caption=f"Kegiatan {p}", timestamp=now - timedelta(hours=p + 1))
        for c in range(comments):
            fake.add_comment(mid, f"min bansos PKH saya belum cair ({p}-{c}), mohon dicek", f"warga{p}_{c}",
                             timestamp=now - timedelta(minutes=p * 60 + c))
        media.append(mid)
    return media


async def poll_and_triage(settings: Settings, store: Store, classifier, now: datetime) -> list[int]:  # type: ignore[no-untyped-def]
    report = await jobs.poll_account(settings, store, "kemensos", now=now)
    assert report.error is None and report.stopped is None
    return await jobs.triage_pending(settings, store, classifier, now=now,
                                     destinations=jobs.ticket_destinations(settings))


async def test_backfill_then_incremental_polls_make_each_ticket_once(
        ig_settings: Settings, fake_instagram: FakeInstagram, classifier) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(timezone.utc)
    fake_instagram.set_clock(now)
    media = seed_posts(fake_instagram, posts=3, comments=30, now=now)  # 30 > one page of 25
    old = fake_instagram.add_media(KEMENSOS, caption="lama", timestamp=now - timedelta(days=30))
    fake_instagram.add_comment(old, "komentar lama sekali", "warga.lama", timestamp=now - timedelta(days=20))
    store = Store(ig_settings.db_path)
    first = await poll_and_triage(ig_settings, store, classifier, now)
    assert len(first) == 90  # the comment outside the 7-day backfill window is left alone
    assert store.known_message_ids(["warga.lama"]) == set()

    parent = fake_instagram.add_comment(media[1], "PKH tahap 4 kapan cair min?", "baru1", timestamp=now)
    fake_instagram.add_comment(media[1], "sama min, PKH saya juga belum cair", "baru2", parent_id=parent, timestamp=now)
    fake_instagram.add_dm("pengirim.dm", "Selamat siang, NIK saya tidak ditemukan di cek bansos. Mohon bantuannya",
                          account=KEMENSOS, timestamp=now)
    fake_instagram.reset_calls()
    second = await poll_and_triage(ig_settings, store, classifier, now + timedelta(minutes=5))
    assert len(second) == 3
    assert len(fake_instagram.calls) <= 5
    # an overlapping poll and a poll from lost state find nothing new
    assert await poll_and_triage(ig_settings, store, classifier, now + timedelta(minutes=6)) == []
    store.db.execute("DELETE FROM poll_state")
    assert await poll_and_triage(ig_settings, store, classifier, now + timedelta(minutes=7)) == []
    count = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT message_id) FROM tickets").fetchone()
    assert count[0] == count[1] == 93


async def test_expired_token_stops_that_account_and_raises_an_alert(
        ig_settings: Settings, fake_instagram: FakeInstagram) -> None:
    fake_instagram.expire_token(TOKENS["kemensos"])
    store = Store(ig_settings.db_path)
    now = datetime.now(timezone.utc)
    report = await jobs.poll_account(ig_settings, store, "kemensos", now=now)
    assert report.stopped
    fake_instagram.reset_calls()
    again = await jobs.poll_account(ig_settings, store, "kemensos", now=now)
    assert again.stopped and fake_instagram.calls == []  # no more calls with a dead token
    alerts = store.undelivered_alerts()
    assert len(alerts) == 1 and "INSTAGRAM_TOKEN_KEMENSOS" in alerts[0]["text"]
    ok = await jobs.poll_account(ig_settings, store, "kemendag", now=now)
    assert ok.stopped is None and ok.error is None  # the other account goes on


async def test_an_unreadable_comment_is_named_to_the_media_team_not_dropped_unseen(
        ig_settings: Settings, fake_instagram: FakeInstagram) -> None:
    now = datetime.now(timezone.utc)
    fake_instagram.set_clock(now)
    seed_posts(fake_instagram, posts=1, comments=3, now=now)
    fake_instagram.inject_error("/comments", malformed_item="unreachable_timestamp")
    store = Store(ig_settings.db_path)
    report = await jobs.poll_account(ig_settings, store, "kemensos", now=now)
    assert report.skipped == 1 and report.new_messages == 2
    [alert] = store.undelivered_alerts()
    assert alert["kind"] == "instagram_unreadable" and "1 item dari Instagram akun kemensos" in alert["text"]
    assert "komentar 178" in alert["text"]  # the id to look up
    fake_instagram.inject_error("/comments", malformed_item="bad_timestamp")
    fake_instagram.add_comment(fake_instagram.add_media(KEMENSOS, caption="baru", timestamp=now), "halo", "warga.baru",
                               timestamp=now)
    again = await jobs.poll_account(ig_settings, store, "kemensos", now=now + timedelta(minutes=5))
    assert again.skipped == 1
    assert len(store.undelivered_alerts()) == 1  # not again within hours: one alert, not one per poll


async def test_throttling_is_answered_by_backing_off(ig_settings: Settings, fake_instagram: FakeInstagram) -> None:
    now = datetime.now(timezone.utc)
    fake_instagram.set_clock(now)
    seed_posts(fake_instagram, posts=1, comments=3, now=now)
    fake_instagram.inject_error("/media", code=4, times=1)
    store = Store(ig_settings.db_path)
    from bot.instagram import InstagramClient, RetryPolicy

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    client = InstagramClient(access_token=TOKENS["kemensos"], ig_user_id=KEMENSOS, base_url=fake_instagram.url,
                             retry=RetryPolicy(base_delay=0.5), sleep=sleep)
    async with client:
        report = await jobs.poll_account(ig_settings, store, "kemensos", now=now, client=client)
    assert report.new_messages == 3 and slept and slept[0] > 0


async def test_malformed_items_are_skipped_without_losing_the_page(
        ig_settings: Settings, fake_instagram: FakeInstagram) -> None:
    now = datetime.now(timezone.utc)
    fake_instagram.set_clock(now)
    seed_posts(fake_instagram, posts=1, comments=5, now=now)
    fake_instagram.inject_error("/comments", malformed_item="missing_id", times=1)
    store = Store(ig_settings.db_path)
    report = await jobs.poll_account(ig_settings, store, "kemensos", now=now)
    assert report.skipped >= 1 and report.new_messages >= 4


def test_a_poll_killed_midway_loses_nothing_and_duplicates_nothing(tmp_path: Path, fake_instagram: FakeInstagram) -> None:
    now = datetime.now(timezone.utc)
    seed_posts(fake_instagram, posts=6, comments=10, now=now)
    fake_instagram.inject_error("/comments", delay=30.0, times=1)  # the poll hangs here...
    env = dict(os.environ, TRIAGE_CONFIG=str(ROUTING_FILE), TRIAGE_DB=str(tmp_path / "t.db"),
               INSTAGRAM_GRAPH_URL=fake_instagram.url, TRIAGE_CLASSIFIER="ngram",
               **{f"INSTAGRAM_TOKEN_{k.upper()}": v for k, v in TOKENS.items()})
    cmd = [sys.executable, "-m", "bot", "poll", "--account", "kemensos"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not any("/comments" in c.path for c in fake_instagram.calls) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()  # ...and is killed there, like a machine losing power
    proc.wait()
    fake_instagram.clear_errors()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "0 new message(s)" in again.stdout
    store = Store(tmp_path / "t.db")
    assert store.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 60
    rows = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT message_id) FROM tickets").fetchone()
    assert rows[0] == rows[1] == 60
    listed = subprocess.run([sys.executable, "-m", "bot", "tickets", "--json"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert len([json.loads(line) for line in listed.stdout.splitlines()]) == 60


async def test_an_instagram_outage_is_reported_once_an_hour(ig_settings: Settings, fake_instagram: FakeInstagram) -> None:
    from bot.instagram import InstagramClient, RetryPolicy

    async def no_wait(seconds: float) -> None:
        return None

    store = Store(ig_settings.db_path)
    now = datetime.now(timezone.utc)
    fake_instagram.inject_error("/media", http_status=500, times=100)
    for minutes in (0, 5, 10, 65):
        client = InstagramClient(access_token=TOKENS["kemensos"], ig_user_id=KEMENSOS, base_url=fake_instagram.url,
                                 retry=RetryPolicy(max_attempts=2, base_delay=0.01), sleep=no_wait)
        async with client:
            report = await jobs.poll_account(ig_settings, store, "kemensos", now=now + timedelta(minutes=minutes),
                                             client=client)
        assert report.error
    alerts = store.undelivered_alerts()
    assert len(alerts) == 2 and "Gagal mengambil pesan akun kemensos" in alerts[0]["text"]


async def test_the_full_poll_finds_what_an_unchanged_count_hid(
        ig_settings: Settings, fake_instagram: FakeInstagram, classifier) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(timezone.utc)
    fake_instagram.set_clock(now)
    media = seed_posts(fake_instagram, posts=1, comments=3, now=now)
    store = Store(ig_settings.db_path)
    await poll_and_triage(ig_settings, store, classifier, now)
    fake_instagram.delete_comment(sorted(_ids(store))[0])
    hidden = fake_instagram.add_comment(media[0], "PKH saya juga belum cair min", "warga.baru", timestamp=now)
    report = await jobs.poll_account(ig_settings, store, "kemensos", now=now + timedelta(minutes=5))
    assert report.new_messages == 0  # the count did not change: the quick poll cannot see it
    report = await jobs.poll_account(ig_settings, store, "kemensos", now=now + timedelta(minutes=6), full=True)
    assert report.new_messages == 1 and store.known_message_ids([hidden]) == {hidden}


def _ids(store: Store) -> list[str]:
    return [row[0] for row in store.db.execute("SELECT id FROM messages").fetchall()]


async def test_a_comment_with_half_an_emoji_does_not_stop_the_account(
        ig_settings: Settings, fake_instagram: FakeInstagram, classifier) -> None:  # type: ignore[no-untyped-def]
    # "\ud83d" is valid JSON (the fake serves it escaped, as Meta does) but no valid UTF-8:
    # it used to make every poll of the account fail, losing the good comments on its page.
    now = datetime.now(timezone.utc)
    fake_instagram.set_clock(now)
    post = fake_instagram.add_media(KEMENSOS, caption="PKH", timestamp=now - timedelta(hours=1))
    good = [fake_instagram.add_comment(post, f"min PKH saya belum cair ({i}), tolong dicek", f"warga{i}",
                                       timestamp=now - timedelta(minutes=i)) for i in range(3)]
    half = fake_instagram.add_comment(post, "bansos saya belum cair \ud83d", "warga.\udc4d",
                                      timestamp=now - timedelta(minutes=5))
    store = Store(ig_settings.db_path)
    made = await poll_and_triage(ig_settings, store, classifier, now)
    assert store.known_message_ids([*good, half]) == {*good, half}
    stored = store.message(half)
    assert stored is not None and stored.text == "bansos saya belum cair \ufffd"
    assert stored.author_username == "warga.\ufffd"
    assert len(made) == 4
    # the next poll goes on as usual
    fake_instagram.add_comment(post, "PKH tahap 4 kapan cair min?", "baru", timestamp=now)
    assert len(await poll_and_triage(ig_settings, store, classifier, now + timedelta(minutes=5))) == 1
