"""/id tells a person their Telegram user id and a group its chat id, for routing.yaml.

It answers in any chat, also one routing.yaml does not name yet (that is the point:
the ids are not known before it), and as a command it reaches the bot with privacy
mode on."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest

from bot.config import Settings
from bot.runner import Runtime, build_runtime, serve
from classifiers.pipeline import load_classifier
from tests.conftest import ROUTING_FILE
from tests.fakes.telegram_server import FakeTelegram

NEW_GROUP, LINJAMSOS, NEW_OFFICER = -1002222333444, -1001000000101, 424242


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[Runtime]:
    from bot.config import load_routing

    runtime = build_runtime(settings, classifier=load_classifier(load_routing(ROUTING_FILE).account_rules(),
                                                                 backend="ngram"))
    stop = asyncio.Event()
    task = asyncio.create_task(serve(runtime, stop, poll=False))
    await asyncio.sleep(0.3)
    yield runtime
    stop.set()
    await asyncio.wait_for(task, 10)


async def _answer(fake: FakeTelegram, chat: int) -> str:
    message = await fake.wait_for_async(lambda: next(iter(fake.messages(chat)), None), timeout=10,
                                        message=f"no answer to /id in chat {chat}")
    assert message is not None
    return str(message.text)


async def test_id_in_a_group_not_yet_in_routing_gives_the_group_and_the_person(
        bot: Runtime, fake_telegram: FakeTelegram) -> None:
    fake_telegram.add_chat(NEW_GROUP, title="Unit baru")
    fake_telegram.add_user(NEW_OFFICER, "Budi", "budi_itjen")
    fake_telegram.push_message(NEW_GROUP, NEW_OFFICER, f"/id@{fake_telegram.bot_user['username']}")
    text = await _answer(fake_telegram, NEW_GROUP)
    assert f"ID grup ini: {NEW_GROUP}" in text
    assert f"ID Telegram Budi: {NEW_OFFICER}" in text
    assert "routing.yaml" in text


async def test_id_in_a_private_chat_gives_the_user_id(bot: Runtime, fake_telegram: FakeTelegram) -> None:
    fake_telegram.add_user(NEW_OFFICER, "Budi", "budi_itjen")
    fake_telegram.push_message(NEW_OFFICER, NEW_OFFICER, "/id")
    text = await _answer(fake_telegram, NEW_OFFICER)
    assert f"ID Telegram Budi: {NEW_OFFICER}" in text and "grup" not in text.split("\n")[0].lower()


async def test_id_in_a_known_group_answers_and_nothing_else_runs(bot: Runtime, fake_telegram: FakeTelegram) -> None:
    fake_telegram.push_message(LINJAMSOS, 7101, "/id")
    text = await _answer(fake_telegram, LINJAMSOS)
    assert f"ID grup ini: {LINJAMSOS}" in text and "7101" in text
    await asyncio.sleep(0.5)
    assert len(fake_telegram.messages(LINJAMSOS)) == 1
