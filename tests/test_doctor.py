"""`triage doctor` against the fake Telegram and Instagram servers: every check, and each failure."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot import doctor
from bot.cli import main
from bot.config import Settings, load_settings
from tests.conftest import BOT_TOKEN, ROUTING_FILE, TOKENS
from tests.fakes.instagram_server import FakeInstagram
from tests.fakes.telegram_server import FakeTelegram

MEDIA, SUPERVISOR, PFM, LINJAMSOS = -1001000000001, -1001000000002, -1001000000102, -1001000000101


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, instagram: FakeInstagram, telegram: FakeTelegram, **extra: str) -> dict[str, str]:
    env = {"TRIAGE_CONFIG": str(ROUTING_FILE), "TRIAGE_DB": str(tmp_path / "t.db"),
           "INSTAGRAM_GRAPH_URL": instagram.url, "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
           "TELEGRAM_API_URL": telegram.base_url.removesuffix("/bot"),
           **{f"INSTAGRAM_TOKEN_{k.upper()}": v for k, v in TOKENS.items()}}
    env.update(extra)
    return {k: v for k, v in env.items() if v}


def _doctor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str],
            *args: str) -> tuple[int, list[str]]:
    for name in ("TELEGRAM_BOT_TOKEN", "INSTAGRAM_TOKEN_KEMENSOS", "INSTAGRAM_TOKEN_KEMENDAG", "INSTAGRAM_APP_SECRET",
                 "INSTAGRAM_WEBHOOK_VERIFY_TOKEN", "TRIAGE_WEBHOOK_URL", "TRIAGE_LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["doctor", *args])
    captured = capsys.readouterr()
    assert "failed:" not in captured.err, captured.err
    return code, captured.out.splitlines()


def _line(lines: list[str], *parts: str) -> str:
    found = [line for line in lines if all(p in line for p in parts)]
    assert found, f"no line with {parts} in:\n" + "\n".join(lines)
    return found[0]


@pytest.fixture(autouse=True)
def everyone_in_their_group(fake_telegram: FakeTelegram) -> None:
    """The people of routing.yaml have joined their groups, as they would before going live."""
    settings = load_settings({"TRIAGE_CONFIG": str(ROUTING_FILE)})
    for chat_id, people in doctor._people(settings).items():
        for person in people:
            fake_telegram.set_member(chat_id, person)


@pytest.fixture
def with_a_post(fake_instagram: FakeInstagram) -> FakeInstagram:
    now = datetime.now(timezone.utc)
    for ig_id in ("17841400000000001", "17841400000000002"):
        post = fake_instagram.add_media(ig_id, caption="Info", timestamp=now - timedelta(hours=1))
        fake_instagram.add_comment(post, "kapan cair?", "warga", timestamp=now - timedelta(minutes=5))
    return fake_instagram


def test_a_ready_setup_passes_every_check(tmp_path: Path, with_a_post: FakeInstagram, fake_telegram: FakeTelegram,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _doctor(monkeypatch, capsys, _env(tmp_path, with_a_post, fake_telegram))
    assert code == 0, "\n".join(lines)
    assert lines[0].startswith("OK   Telegram: the token works, the bot is @")
    assert "privacy mode on" in lines[0]
    assert len([line for line in lines if line.startswith("OK   Telegram group")]) == 16
    assert "may send messages, photos and documents" in _line(lines, "media_team")
    for account in ("kemensos", "kemendag"):
        for scope in (doctor.SCOPE_BASIC, doctor.SCOPE_COMMENTS, doctor.SCOPE_MESSAGES):
            assert _line(lines, f"Instagram {account}", scope).startswith("OK")
    assert _line(lines, "Webhooks").startswith("OK   Webhooks: not configured")
    assert lines[-1] == f"{len(lines) - 1} check(s): all passed"
    assert BOT_TOKEN not in "\n".join(lines)


def test_in_indonesian(tmp_path: Path, with_a_post: FakeInstagram, fake_telegram: FakeTelegram,
                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _doctor(monkeypatch, capsys, _env(tmp_path, with_a_post, fake_telegram), "--lang", "id")
    assert code == 0
    assert lines[0].startswith("OK   Telegram: token berfungsi")
    assert lines[-1].endswith("pemeriksaan: semua lolos")


def test_a_refused_bot_token(tmp_path: Path, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram,
                             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _doctor(monkeypatch, capsys, _env(tmp_path, fake_instagram, fake_telegram,
                                                    TELEGRAM_BOT_TOKEN="999:WRONG-TOKEN"))
    assert code == 1
    assert lines[0].startswith("FAIL Telegram: the token is refused")
    assert "not checked, the token does not work" in _line(lines, "kemensos.pfm")
    assert "WRONG-TOKEN" not in "\n".join(lines)


def test_telegram_unreachable_and_no_token(tmp_path: Path, fake_instagram: FakeInstagram,
                                           fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    code, lines = _doctor(monkeypatch, capsys, _env(tmp_path, fake_instagram, fake_telegram,
                                                    TELEGRAM_API_URL=f"http://127.0.0.1:{port}"))
    assert code == 1 and lines[0].startswith(f"FAIL Telegram: cannot reach http://127.0.0.1:{port}")
    code, lines = _doctor(monkeypatch, capsys, _env(tmp_path, fake_instagram, fake_telegram, TELEGRAM_BOT_TOKEN=""))
    assert code == 1 and lines[0].startswith("FAIL Telegram: TELEGRAM_BOT_TOKEN is not set")


def test_each_group_problem_is_named(tmp_path: Path, with_a_post: FakeInstagram, fake_telegram: FakeTelegram,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING_FILE.read_text(encoding="utf-8").replace(
        "chat_id: -1001000000104", "chat_id: -1001000000999"), encoding="utf-8")  # dayasos: a wrong id
    fake_telegram.kick_bot(PFM, notify=False)
    fake_telegram.set_bot_status(SUPERVISOR, "restricted")
    fake_telegram.migrate_chat(-1001000000105, -1001000000555)
    code, lines = _doctor(monkeypatch, capsys, _env(tmp_path, with_a_post, fake_telegram, TRIAGE_CONFIG=str(routing)))
    assert code == 1
    assert "the bot may not see it (Forbidden: bot was kicked" in _line(lines, "kemensos.pfm")
    assert "may not send messages, photos, documents" in _line(lines, "supervisor")
    assert "not found; add the bot to the group, then send /id@" in _line(lines, "kemensos.dayasos")
    assert "became a supergroup with id -1001000000555" in _line(lines, "kemensos.pusdatin")
    assert _line(lines, "kemensos.linjamsos").startswith("OK")
    assert lines[-1] == f"{len(lines) - 1} check(s): 4 failed, 0 warning(s)"


def test_people_not_in_their_group_are_a_warning(tmp_path: Path, with_a_post: FakeInstagram,
                                                fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    fake_telegram.set_member(LINJAMSOS, 7102, "left")
    code, lines = _doctor(monkeypatch, capsys, _env(tmp_path, with_a_post, fake_telegram), "--lang", "id")
    assert code == 0  # a warning: the bot works, officer 7102 just sees nothing yet
    warning = _line(lines, "kemensos.linjamsos", "7102")
    assert warning.startswith("AWAS Grup Telegram kemensos.linjamsos") and "bukan anggota grup" in warning
    assert lines[-1].endswith("0 gagal, 1 peringatan")


def test_each_instagram_problem_is_named(tmp_path: Path, with_a_post: FakeInstagram, fake_telegram: FakeTelegram,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with_a_post.inject_error("/conversations", code=10, message="Application does not have permission for this action")
    with_a_post.inject_error("/comments", code=10, message="Application does not have permission for this action")
    code, lines = _doctor(monkeypatch, capsys, _env(tmp_path, with_a_post, fake_telegram,
                                                    INSTAGRAM_TOKEN_KEMENDAG=TOKENS["kemensos"]))
    assert code == 1
    assert _line(lines, "kemensos", doctor.SCOPE_BASIC).startswith("OK")
    assert "permission instagram_business_manage_comments is missing" in _line(lines, "kemensos", doctor.SCOPE_COMMENTS)
    assert "permission instagram_business_manage_messages is missing" in _line(lines, "kemensos", doctor.SCOPE_MESSAGES)
    assert "the token is for user id 17841400000000001" in _line(lines, "Instagram kemendag")

    with_a_post.expire_token(TOKENS["kemensos"])
    code, lines = _doctor(monkeypatch, capsys, _env(tmp_path, with_a_post, fake_telegram,
                                                    INSTAGRAM_TOKEN_KEMENDAG=""))
    assert "the token is refused (Error validating access token" in _line(lines, "Instagram kemensos")
    assert "INSTAGRAM_TOKEN_KEMENDAG is not set" in _line(lines, "Instagram kemendag")

    port = _free_port()
    code, lines = _doctor(monkeypatch, capsys, _env(tmp_path, with_a_post, fake_telegram,
                                                    INSTAGRAM_GRAPH_URL=f"http://127.0.0.1:{port}/v23.0"))
    assert code == 1 and f"cannot reach http://127.0.0.1:{port}/v23.0" in _line(lines, "Instagram kemensos")


def _webhook_settings(tmp_path: Path, secret: str, verify: str) -> Settings:
    return load_settings({"TRIAGE_CONFIG": str(ROUTING_FILE), "TRIAGE_DB": str(tmp_path / "w.db"),
                          "INSTAGRAM_APP_SECRET": secret, "INSTAGRAM_WEBHOOK_VERIFY_TOKEN": verify})


async def test_webhook_endpoint_checks(tmp_path: Path) -> None:
    from bot.store import Store
    from bot.webhooks import start_webhook_server, webhook_app

    served = _webhook_settings(tmp_path, "app-secret-1", "verify-1")
    store = Store(served.db_path)
    runner = await start_webhook_server(webhook_app(served, store, None), "127.0.0.1", 0)
    url = "http://{}:{}/webhooks/instagram".format(*runner.addresses[0][:2])
    try:
        good = await doctor.check_webhooks(served, url)
        assert [c.key for c in good] == ["wh_verify_ok", "wh_post_ok"]
        assert store.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0  # nothing stored
        wrong = await doctor.check_webhooks(_webhook_settings(tmp_path, "other-secret", "other-verify"), url)
        assert [(c.level, c.key) for c in wrong] == [(doctor.FAIL, "wh_verify_bad"), (doctor.FAIL, "wh_post_bad")]
        assert "HTTP 403" in wrong[0].line("en") and "HTTP 403" in wrong[1].line("en")
        no_url = await doctor.check_webhooks(served, None)
        assert [c.key for c in no_url] == ["wh_no_url"]
    finally:
        await runner.cleanup()
        store.close()
    gone = await doctor.check_webhooks(served, url)
    assert [c.key for c in gone] == ["wh_unreachable"]
    assert gone[0].line("id").startswith("GAGAL Webhook: ")
