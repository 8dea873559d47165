"""Reminders, nudges and escalation driven with --now, delivered to the fake Telegram server."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import deliver_outbox
from bot.cli import main
from bot.config import Settings
from bot.deadlines import deadline
from bot.reminders import sweep
from bot.store import Store
from bot.triage import OPEN, InboundMessage, TicketDecision
from tests.conftest import settings_for
from tests.fakes.telegram_server import FakeTelegram

WIB = ZoneInfo("Asia/Jakarta")
LINJAMSOS, MEDIA, SUPERVISOR = -1001000000101, -1001000000001, -1001000000002


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WIB)


@pytest.fixture
def tg_settings(tmp_path: Path, fake_telegram: FakeTelegram) -> Settings:
    return settings_for(tmp_path, None, fake_telegram)


def make_ticket(settings: Settings, received: datetime, mid: str = "c1") -> int:
    store = Store(settings.db_path)
    store.save_messages([InboundMessage(id=mid, account="kemensos", channel="comment", text="PKH belum cair",
                                        created_at=received, author_username="ibu.sari")], now=received)
    due = deadline(received, 3, calendar=settings.routing.calendar())
    decision = TicketDecision("kemensos", OPEN, "linjamsos", ("complaint",), {"complaint": 0.9}, "rule", "id", due)
    ticket_id = store.record_triage(mid, {}, decision, now=received)
    assert ticket_id is not None
    store.close()
    return ticket_id


def kinds(settings: Settings, now: str) -> list[str]:
    """One sweep with a fresh store, as a restarted process would run it."""
    store = Store(settings.db_path)
    try:
        return [n.kind for n in sweep(settings, store, now=at(now))]
    finally:
        store.close()


def test_reminders_nudge_and_escalation_each_once_across_restarts(tg_settings: Settings) -> None:
    tid = make_ticket(tg_settings, at("2026-11-23T10:00"))  # Monday; due Thursday 10:00 WIB
    assert kinds(tg_settings, "2026-11-23T13:59") == []
    assert kinds(tg_settings, "2026-11-23T14:00") == ["nudge"]  # 4 working hours without Terima
    assert kinds(tg_settings, "2026-11-23T14:01") == []
    assert kinds(tg_settings, "2026-11-25T09:59") == []
    assert kinds(tg_settings, "2026-11-25T10:00") == ["reminder"]  # one working day before
    assert kinds(tg_settings, "2026-11-25T10:00") == []  # overlapping run
    assert kinds(tg_settings, "2026-11-26T08:00") == ["reminder"]  # two working hours before
    assert kinds(tg_settings, "2026-11-26T09:59") == []
    assert kinds(tg_settings, "2026-11-26T10:00") == ["escalated", "escalated"]  # supervisor and media team
    assert kinds(tg_settings, "2026-11-26T11:00") == []
    store = Store(tg_settings.db_path)
    events = [e["kind"] for e in store.ticket_events(tid)]
    assert events == ["created", "nudge", "reminder", "reminder", "escalated", "escalated"]


def test_an_hour_long_outage_sends_what_fell_due_once(tg_settings: Settings) -> None:
    make_ticket(tg_settings, at("2026-11-23T10:00"))
    assert kinds(tg_settings, "2026-11-23T14:00") == ["nudge"]
    # the bot is down from Wednesday 09:30 to 10:30: the 10:00 reminder is sent at 10:30, once
    assert kinds(tg_settings, "2026-11-25T09:30") == []
    assert kinds(tg_settings, "2026-11-25T10:30") == ["reminder"]
    assert kinds(tg_settings, "2026-11-25T10:31") == []
    # down from Thursday 07:00 to 11:00: both the last reminder and the deadline passed; escalate only
    assert kinds(tg_settings, "2026-11-26T11:00") == ["escalated", "escalated"]


def test_resolved_tickets_get_nothing_and_weekends_do_not_count(tg_settings: Settings) -> None:
    make_ticket(tg_settings, at("2026-11-27T15:00"), "fri")  # Friday 15:00: due Wednesday 15:00
    store = Store(tg_settings.db_path)
    ticket = store.tickets()[0]
    assert ticket.deadline == at("2026-12-02T15:00")
    assert kinds(tg_settings, "2026-11-30T10:59") == []  # Friday 1h + Monday 08-10:59 < 4 working hours
    assert kinds(tg_settings, "2026-11-30T11:00") == ["nudge"]
    store.update_ticket(ticket.id, {"status": "resolved", "resolved_by": 7101, "resolved_at": at("2026-11-30T12:00")},
                        actor="7101", kind="resolved", now=at("2026-11-30T12:00"))
    assert kinds(tg_settings, "2026-12-03T10:00") == []


async def test_notices_reach_the_right_chats_naming_the_officer(tg_settings: Settings, fake_telegram: FakeTelegram) -> None:
    tid = make_ticket(tg_settings, at("2026-11-23T10:00"))
    store = Store(tg_settings.db_path)
    store.remember_person(7101, "Budi Santoso", "budi", at("2026-11-23T10:30"))
    store.update_ticket(tid, {"status": "acknowledged", "acknowledged_by": 7101, "acknowledged_at": at("2026-11-23T10:30")},
                        actor="7101", kind="acknowledged", now=at("2026-11-23T10:30"))
    sweep(tg_settings, store, now=at("2026-11-25T10:00"))
    await deliver_outbox(tg_settings, store, now=at("2026-11-25T10:00"))
    reminder = [m for m in fake_telegram.messages(LINJAMSOS) if "Pengingat" in (m.text or "")]
    assert len(reminder) == 1 and "Budi Santoso" in (reminder[0].text or "") and f"#{tid}" in (reminder[0].text or "")
    sweep(tg_settings, store, now=at("2026-11-26T10:00"))
    await deliver_outbox(tg_settings, store, now=at("2026-11-26T10:00"))
    for chat in (SUPERVISOR, MEDIA):
        texts = [m.text or "" for m in fake_telegram.messages(chat)]
        assert sum("Eskalasi" in t and f"#{tid}" in t for t in texts) == 1
    await deliver_outbox(tg_settings, store, now=at("2026-11-26T10:05"))  # nothing is sent twice
    assert sum("Eskalasi" in (m.text or "") for m in fake_telegram.messages(SUPERVISOR)) == 1


def test_remind_command(tg_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    make_ticket(tg_settings, at("2026-11-23T10:00"))
    monkeypatch.setenv("TRIAGE_CONFIG", str(tg_settings.config_path))
    monkeypatch.setenv("TRIAGE_DB", str(tg_settings.db_path))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", tg_settings.telegram_token or "")
    monkeypatch.setenv("TELEGRAM_API_URL", tg_settings.telegram_api_url)
    assert main(["remind", "--now", "2026-11-26T10:00", "--send"]) == 0
    out = capsys.readouterr().out
    assert "escalated" in out and "sent 2 message(s)" in out


async def test_tickets_falling_due_together_go_out_as_one_list(tg_settings: Settings, fake_telegram: FakeTelegram) -> None:
    ids = [make_ticket(tg_settings, at("2026-11-23T10:00"), f"c{i}") for i in range(3)]
    store = Store(tg_settings.db_path)
    notices = sweep(tg_settings, store, now=at("2026-11-26T10:30"))
    assert sorted((n.kind, n.chat_id) for n in notices) == sorted([("escalated", MEDIA), ("escalated", SUPERVISOR)])
    await deliver_outbox(tg_settings, store, now=at("2026-11-26T10:30"))
    listed = fake_telegram.messages(SUPERVISOR)
    assert len(listed) == 1 and all(f"#{i}" in (listed[0].text or "") for i in ids)
    assert "LEWAT BATAS" in (listed[0].text or "")


def test_digest_and_monthly_report_are_sent_once(tg_settings: Settings, fake_telegram: FakeTelegram,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    make_ticket(tg_settings, at("2026-11-23T10:00"))
    monkeypatch.setenv("TRIAGE_CONFIG", str(tg_settings.config_path))
    monkeypatch.setenv("TRIAGE_DB", str(tg_settings.db_path))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", tg_settings.telegram_token or "")
    monkeypatch.setenv("TELEGRAM_API_URL", tg_settings.telegram_api_url)
    assert main(["digest", "--now", "2026-11-24T07:30", "--send"]) == 0
    assert main(["digest", "--now", "2026-11-24T07:31", "--send"]) == 0  # a second run sends nothing new
    sent = fake_telegram.messages(SUPERVISOR)
    assert [m.kind for m in sent] == ["text", "photo"]
    assert "Ringkasan harian" in (sent[0].text or "") and "Ditjen Perlindungan dan Jaminan Sosial" in (sent[0].text or "")
    assert sent[1].file is not None and len(sent[1].file.content) > 10_000

    from bot.digest_job import send_monthly_report

    store = Store(tg_settings.db_path)
    assert send_monthly_report(tg_settings, store, now=at("2026-12-02T07:30")) is None  # not the first working day
    path = send_monthly_report(tg_settings, store, now=at("2026-12-01T07:30"))
    assert path is not None and path.endswith(".pdf")
    import asyncio

    asyncio.run(deliver_outbox(tg_settings, store, now=at("2026-12-01T07:31")))
    docs = [m for m in fake_telegram.messages(MEDIA) if m.kind == "document"]
    assert len(docs) == 1 and docs[0].file is not None and docs[0].file.content.startswith(b"%PDF")
    assert "2026-11" in (docs[0].file.filename or "")
