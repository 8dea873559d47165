"""Shared fixtures: the fake Instagram and Telegram servers, and settings pointing at them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

os.environ.setdefault("PTB_TIMEDELTA", "true")
# A test that asks for the default backend gets it timed in its own process, not a start on
# `ngram` with a timing process running beside the tests (tests/test_speed_probe.py tests that).
os.environ.setdefault("TRIAGE_SPEED_PROBE", "now")

from bot.config import Settings, load_routing, load_settings  # noqa: E402
from tests.fakes.instagram_server import FakeInstagram  # noqa: E402
from tests.fakes.telegram_server import FakeTelegram, FloodLimits, Window  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ROUTING_FILE = ROOT / "routing.yaml"
TOKENS = {"kemensos": "tok-kemensos", "kemendag": "tok-kemendag"}
BOT_TOKEN = "123456:TEST-TOKEN"
# Telegram's per-group limit of 20 messages a minute, squeezed into 2 seconds so
# that tests of flood behaviour run fast; the bot is given the same window.
GROUP_WINDOW = Window(20, 2.0)


@pytest.fixture
def fake_instagram() -> Iterator[FakeInstagram]:
    config = load_routing(ROUTING_FILE)
    with FakeInstagram() as fake:
        for key, account in config.accounts.items():
            fake.add_account(account.instagram_user_id, key, TOKENS[key])
        yield fake


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    config = load_routing(ROUTING_FILE)
    fake = FakeTelegram(BOT_TOKEN, flood=FloodLimits(group=GROUP_WINDOW))
    with fake:
        people: set[int] = set(config.media_team.members) | set(config.supervisor.members)
        for account in config.accounts.values():
            for unit in account.units.values():
                people |= set(unit.officers)
        for user_id in sorted(people):
            fake.add_user(user_id, f"Petugas{user_id}", f"petugas{user_id}")
        fake.add_user(9999, "Orang Asing", "asing")
        chats = {config.media_team.chat_id: "Tim Media", config.supervisor.chat_id: "Pimpinan"}
        for key, account in config.accounts.items():
            for unit_key, unit in account.units.items():
                chats.setdefault(unit.chat_id, f"{key} {unit_key}")
        for chat_id, title in chats.items():
            fake.add_chat(chat_id, title=title)
        fake.add_chat(-1009999999999, title="Grup tak dikenal")
        yield fake


def settings_for(tmp_path: Path, instagram: FakeInstagram | None, telegram: FakeTelegram | None) -> Settings:
    env = {"TRIAGE_CONFIG": str(ROUTING_FILE), "TRIAGE_DB": str(tmp_path / "triage.db")}
    if instagram is not None:
        env["INSTAGRAM_GRAPH_URL"] = instagram.url
        env.update({f"INSTAGRAM_TOKEN_{k.upper()}": v for k, v in TOKENS.items()})
    if telegram is not None:
        env["TELEGRAM_BOT_TOKEN"] = BOT_TOKEN
        env["TELEGRAM_API_URL"] = telegram.base_url.removesuffix("/bot")
    return load_settings(env)


@pytest.fixture
def settings(tmp_path: Path, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> Settings:
    return settings_for(tmp_path, fake_instagram, fake_telegram)


# Fixtures that live beside the tests that introduced them, shared with every test module
# (imported here, not in each module, so that a test's argument never shadows an import).
from tests.test_digest import routing, store  # noqa: E402, F401
from tests.test_telegram_workflow import bot, classifier  # noqa: E402, F401
from tests.test_classifier_spam_signal import small  # noqa: E402, F401
