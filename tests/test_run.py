"""`triage run` as a process: it polls, forwards, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

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


def _env(tmp_path: Path, instagram: FakeInstagram, telegram: FakeTelegram, **extra: str) -> dict[str, str]:
    env = dict(os.environ, TRIAGE_CONFIG=str(ROUTING_FILE), TRIAGE_DB=str(tmp_path / "t.db"),
               INSTAGRAM_GRAPH_URL=instagram.url, TRIAGE_CLASSIFIER="ngram", TELEGRAM_BOT_TOKEN=BOT_TOKEN,
               TELEGRAM_API_URL=telegram.base_url.removesuffix("/bot"),
               **{f"INSTAGRAM_TOKEN_{k.upper()}": v for k, v in TOKENS.items()})
    env.update(extra)
    return env


def _run_until_exit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_wrong_bot_token_is_one_plain_line_without_the_token(
        tmp_path: Path, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    done = _run_until_exit(_env(tmp_path, fake_instagram, fake_telegram, TELEGRAM_BOT_TOKEN="999999:WRONG-SECRET"))
    assert done.returncode == 1
    output = (done.stdout + done.stderr).strip()
    assert output.splitlines() == [
        "triage run: cannot start: Telegram refused the bot token: set TELEGRAM_BOT_TOKEN to the token "
        "@BotFather gave for this bot (send /token to @BotFather to see it again)"]
    assert "WRONG-SECRET" not in output


def test_telegram_unreachable_is_one_plain_line(
        tmp_path: Path, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = _run_until_exit(_env(tmp_path, fake_instagram, fake_telegram, TELEGRAM_API_URL=f"http://127.0.0.1:{port}"))
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"triage run: cannot start: cannot reach Telegram at http://127.0.0.1:{port}")
    assert "Traceback" not in lines[0] and BOT_TOKEN not in lines[0]


def test_a_started_bot_prints_a_summary_at_the_default_log_level(
        tmp_path: Path, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    out = tmp_path / "run.out"
    with open(out, "w", encoding="utf-8") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT,
                                env=_env(tmp_path, fake_instagram, fake_telegram), stdout=sink, stderr=sink)
        try:
            deadline = time.monotonic() + 60
            while "database:" not in out.read_text(encoding="utf-8") and time.monotonic() < deadline:
                assert proc.poll() is None, out.read_text(encoding="utf-8")
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = out.read_text(encoding="utf-8")
    assert "triage run: started as @" in text
    assert "accounts: kemensos (Kementerian Sosial, 7 units), kemendag (Kementerian Perdagangan, 7 units)" in text
    assert "Telegram groups: 16" in text and "classifier: ngram" in text
    assert "digest Mon-Fri at 07:30" in text and "poll Instagram every 5 min" in text
    assert str(tmp_path / "t.db") in text
    assert "INFO" not in text and BOT_TOKEN not in text


def test_verbose_is_accepted_after_the_command_too() -> None:
    from bot.cli import build_parser

    assert build_parser().parse_args(["run", "-v"]).verbose is True
    assert build_parser().parse_args(["-v", "run"]).verbose is True
    assert getattr(build_parser().parse_args(["run"]), "verbose", False) is False


def test_piping_into_head_prints_no_broken_pipe_traceback(tmp_path: Path) -> None:
    lines = "".join('{"id": %d, "account": "kemensos", "text": "pkh belum cair"}\n' % i for i in range(3000))
    (tmp_path / "in.jsonl").write_text(lines, encoding="utf-8")
    env = dict(os.environ, TRIAGE_CONFIG=str(ROUTING_FILE))
    with open(tmp_path / "in.jsonl", encoding="utf-8") as stdin, open(tmp_path / "err", "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "classify", "--backend", "ngram"], cwd=ROOT, env=env,
                                stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith('{"id": 0')
        proc.stdout.close()  # what `| head -1` does
        assert proc.wait(timeout=120) == 0
    assert "Traceback" not in (tmp_path / "err").read_text(encoding="utf-8")


def test_digest_prints_plain_text_and_html_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    mp = monkeypatch
    mp.setenv("TRIAGE_CONFIG", str(ROUTING_FILE))
    mp.setenv("TRIAGE_DB", str(tmp_path / "t.db"))
    assert main(["digest", "--now", "2026-12-03T07:30"]) == 0
    plain = capsys.readouterr().out
    assert "Ringkasan harian" in plain and "<b>" not in plain and "&amp;" not in plain
    assert main(["digest", "--now", "2026-12-03T07:30", "--html"]) == 0
    assert "<b>" in capsys.readouterr().out


def test_webhook_on_a_busy_port_is_one_plain_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = dict(os.environ, TRIAGE_CONFIG=str(ROUTING_FILE), TRIAGE_DB=str(tmp_path / "t.db"),
                   TRIAGE_CLASSIFIER="ngram", INSTAGRAM_APP_SECRET="secret-for-test",
                   INSTAGRAM_WEBHOOK_VERIFY_TOKEN="verify-for-test")
        done = subprocess.run([sys.executable, "-m", "bot", "webhook", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"triage webhook: cannot start: cannot listen on 127.0.0.1:{port}")
    assert "secret-for-test" not in done.stdout + done.stderr
