"""`triage run` as a process: it polls, forwards, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.store import Store
from tests.conftest import BOT_TOKEN, ROOT, ROUTING_FILE, TOKENS
from tests.fakes.instagram_server import FakeInstagram
from tests.fakes.telegram_server import FakeTelegram

LINJAMSOS, MEDIA = -1001000000101, -1001000000001


def test_run_polls_forwards_and_stops_cleanly_on_sigterm(
        tmp_path: Path, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    now = datetime.now(timezone.utc)
    post = fake_instagram.add_media("17841400000000001", caption="PKH", timestamp=now - timedelta(hours=1))
    for i in range(30):
        fake_instagram.add_comment(post, f"min PKH saya belum cair ({i}), tolong dicek", f"warga{i}",
                                   timestamp=now - timedelta(minutes=i))
    env = dict(os.environ, TRIAGE_CONFIG=str(ROUTING_FILE), TRIAGE_DB=str(tmp_path / "t.db"),
               INSTAGRAM_GRAPH_URL=fake_instagram.url, TRIAGE_CLASSIFIER="ngram", TELEGRAM_BOT_TOKEN=BOT_TOKEN,
               TELEGRAM_API_URL=fake_telegram.base_url.removesuffix("/bot"),
               **{f"INSTAGRAM_TOKEN_{k.upper()}": v for k, v in TOKENS.items()})
    log = tmp_path / "run.log"
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 60
            while not fake_telegram.messages(LINJAMSOS) and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text(encoding="utf-8")
                time.sleep(0.1)
            assert fake_telegram.messages(LINJAMSOS), "nothing reached the unit's group"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0, log.read_text(encoding="utf-8")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    store = Store(tmp_path / "t.db")
    assert len(store.tickets()) == 30
    # every message Telegram shows is recorded as sent: nothing is left half-sent
    sent_ids = {r[0] for r in store.db.execute(
        "SELECT telegram_message_id FROM outbox WHERE sent_at IS NOT NULL AND chat_id = ?", [LINJAMSOS]).fetchall()}
    assert {m.message_id for m in fake_telegram.messages(LINJAMSOS)} == sent_ids
