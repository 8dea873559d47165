"""The weekly Instagram token refresh, against the fake Graph server."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot import jobs, tokens
from bot.config import Settings
from bot.instagram import InstagramClient, RetryPolicy
from bot.store import Store
from tests.conftest import ROOT, TOKENS, settings_for
from tests.fakes.instagram_server import FakeInstagram

KEMENSOS = "17841400000000001"
START = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)


@pytest.fixture
def ig_settings(tmp_path: Path, fake_instagram: FakeInstagram) -> Settings:
    return settings_for(tmp_path, fake_instagram, None)


def quick_client(settings: Settings):  # type: ignore[no-untyped-def]
    """The real client with short backoff, so that a failing server costs milliseconds."""
    def make(account: str, token: str) -> InstagramClient:
        return InstagramClient(access_token=token, ig_user_id=settings.routing.accounts[account].instagram_user_id,
                               base_url=settings.instagram_graph_url, retry=RetryPolicy(base_delay=0.01, max_delay=0.02))
    return make


async def refresh(settings: Settings, store: Store, fake: FakeInstagram, now: datetime, **kwargs) -> dict[str, tokens.RefreshReport]:  # type: ignore[no-untyped-def]
    """The job at `now`, with Meta's clock (which judges a token's age) at the same moment."""
    fake.set_clock(now)
    reports = await tokens.refresh_tokens(settings, store, now=now, client_for=quick_client(settings), **kwargs)
    return {r.account: r for r in reports}


async def test_a_token_is_refreshed_after_a_day_then_weekly_and_polls_use_the_new_one(
        ig_settings: Settings, fake_instagram: FakeInstagram) -> None:
    fake_instagram.set_clock(START)
    store = Store(ig_settings.db_path)
    first = await refresh(ig_settings, store, fake_instagram, START)
    assert first["kemensos"].outcome == "not due"  # first seen now: it may be younger than Meta's 24 h
    assert fake_instagram.refreshes == []

    day_later = START + timedelta(hours=25)
    second = await refresh(ig_settings, store, fake_instagram, day_later)
    assert second["kemensos"].outcome == "refreshed" and second["kemendag"].outcome == "refreshed"
    assert second["kemensos"].expires_at == day_later + timedelta(seconds=5_183_944)
    refresh_call = [c for c in fake_instagram.calls if c.path == "/refresh_access_token"][0]
    assert refresh_call.method == "GET" and refresh_call.params["grant_type"] == "ig_refresh_token"

    new_token = tokens.current_token(ig_settings, store, "kemensos", day_later)
    assert new_token in fake_instagram.refreshes and new_token != TOKENS["kemensos"]
    fake_instagram.expire_token(TOKENS["kemensos"])  # the old token dies: only the new one can poll
    polled = await jobs.poll_account(ig_settings, store, "kemensos", now=day_later)
    assert polled.stopped is None and polled.error is None

    assert (await refresh(ig_settings, store, fake_instagram, day_later + timedelta(days=6)))["kemensos"].outcome == "not due"
    week = await refresh(ig_settings, store, fake_instagram, day_later + timedelta(days=7))
    assert week["kemensos"].outcome == "refreshed"
    newest = tokens.current_token(ig_settings, store, "kemensos", day_later + timedelta(days=7))
    assert newest in fake_instagram.refreshes and newest != new_token


async def test_a_new_token_in_the_environment_wins_over_a_refreshed_one(
        tmp_path: Path, ig_settings: Settings, fake_instagram: FakeInstagram) -> None:
    fake_instagram.set_clock(START)
    store = Store(ig_settings.db_path)
    await refresh(ig_settings, store, fake_instagram, START)
    await refresh(ig_settings, store, fake_instagram, START + timedelta(days=2), force=True)
    assert tokens.current_token(ig_settings, store, "kemensos", START) != TOKENS["kemensos"]

    fake_instagram.add_token(KEMENSOS, "tok-kemensos-relogin", issued_at=START + timedelta(days=3))
    relogin = dataclasses.replace(
        ig_settings, instagram_tokens={**ig_settings.instagram_tokens, "kemensos": "tok-kemensos-relogin"})
    at = START + timedelta(days=3)
    assert tokens.current_token(relogin, store, "kemensos", at) == "tok-kemensos-relogin"
    assert (await refresh(relogin, store, fake_instagram, at + timedelta(hours=1)))["kemensos"].outcome == "not due"
    assert (await refresh(relogin, store, fake_instagram, at + timedelta(hours=25)))["kemensos"].outcome == "refreshed"


async def test_a_failed_refresh_keeps_the_token_and_tells_the_media_team_once_a_day(
        ig_settings: Settings, fake_instagram: FakeInstagram) -> None:
    fake_instagram.set_clock(START)
    store = Store(ig_settings.db_path)
    await refresh(ig_settings, store, fake_instagram, START)
    fake_instagram.inject_error("/refresh_access_token", http_status=500, times=100)
    later = START + timedelta(days=2)
    failed = await refresh(ig_settings, store, fake_instagram, later)
    assert failed["kemensos"].outcome == "failed"
    assert tokens.current_token(ig_settings, store, "kemensos", later) == TOKENS["kemensos"]
    await refresh(ig_settings, store, fake_instagram, later + timedelta(hours=1))
    assert store.undelivered_alerts() == []  # one bad night: the token has weeks left, no message yet
    for day in (1, 2):  # failing a day later: one alert a day, however often it is retried
        await refresh(ig_settings, store, fake_instagram, later + timedelta(days=day))
        await refresh(ig_settings, store, fake_instagram, later + timedelta(days=day, hours=1))
    alerts = [a for a in store.undelivered_alerts() if a["account"] == "kemensos"]
    assert len(alerts) == 2
    assert "gagal diperbarui" in alerts[0]["text"] and "mencoba lagi besok" in alerts[0]["text"]
    assert TOKENS["kemensos"] not in alerts[0]["text"]

    fake_instagram.clear_errors()
    healed = await refresh(ig_settings, store, fake_instagram, later + timedelta(days=3))
    assert healed["kemensos"].outcome == "refreshed"
    assert store.token_record("kemensos", tokens.fingerprint(TOKENS["kemensos"]), later)["failed_at"] is None


async def test_a_revoked_token_asks_for_a_new_login_and_a_stopped_account_is_left_alone(
        ig_settings: Settings, fake_instagram: FakeInstagram) -> None:
    fake_instagram.set_clock(START)
    store = Store(ig_settings.db_path)
    fake_instagram.expire_token(TOKENS["kemensos"])
    failed = await refresh(ig_settings, store, fake_instagram, START, force=True)
    assert failed["kemensos"].outcome == "failed" and failed["kemendag"].outcome == "refreshed"
    (alert,) = store.undelivered_alerts()
    assert "INSTAGRAM_TOKEN_KEMENSOS" in alert["text"] and "login" in alert["text"]

    await jobs.poll_account(ig_settings, store, "kemensos", now=START)  # the poll stops the account
    fake_instagram.reset_calls()
    again = await refresh(ig_settings, store, fake_instagram, START + timedelta(days=2))
    assert again["kemensos"].outcome == "stopped"
    assert fake_instagram.calls == []  # kemensos is stopped, kemendag not due


def test_the_refresh_command_takes_now_and_reports_each_account(
        ig_settings: Settings, fake_instagram: FakeInstagram) -> None:
    env = {"PATH": "/usr/bin:/bin", "TRIAGE_CONFIG": str(ig_settings.config_path), "TRIAGE_DB": str(ig_settings.db_path),
           "INSTAGRAM_GRAPH_URL": fake_instagram.url, **{f"INSTAGRAM_TOKEN_{k.upper()}": v for k, v in TOKENS.items()}}
    run = [sys.executable, "-m", "bot", "refresh-tokens"]
    first = subprocess.run([*run, "--now", "2026-11-02T08:00"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "kemensos: not due" in first.stdout
    second = subprocess.run([*run, "--now", "2026-11-03T09:00+07:00"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "kemensos: refreshed, valid until 2027-01-02" in second.stdout
    bad = subprocess.run([*run, "--now", "kemarin"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--now 'kemarin' is not an ISO date-time" in bad.stderr
