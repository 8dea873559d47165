"""Commands and notices end to end: what each group is told, and that it is told once, readably."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from bot.jobs import deliver_alerts
from bot.runner import Runtime
from tests.fakes.instagram_server import FakeInstagram
from tests.fakes.telegram_server import FakeTelegram
from tests.test_telegram_workflow import (
    LINJAMSOS, MEDIA, MEDIA_MEMBER, OFFICER_LINJAMSOS, polled, press, ticket_in,
)

GACOR = "slot gacor maxwin hari ini, depo 10k langsung wd, link di bio 🔥"


async def answer_to(fake: FakeTelegram, chat: int, user: int, command: str, contains: str):  # type: ignore[no-untyped-def]
    before = {m.message_id for m in fake.messages(chat)}
    fake.push_message(chat, user, command)
    return await fake.wait_for_async(
        lambda: next((m for m in fake.messages(chat) if m.message_id not in before and contains in (m.text or "")), None),
        timeout=10, message=f"no answer to {command!r} in chat {chat}")


async def test_spam_in_a_unit_group_lists_only_that_ministry(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    fake_instagram.add_dm("judi.bot", GACOR, account="17841400000000002",
                          timestamp=datetime.now(timezone.utc) - timedelta(minutes=5))
    await polled(bot, fake_instagram)
    spam = {t.account: t.id for t in bot.store.tickets(status="spam")}
    assert set(spam) == {"kemensos", "kemendag"}
    listed = await answer_to(fake_telegram, LINJAMSOS, MEDIA_MEMBER, "/spam", "spam")
    assert f"#{spam['kemensos']}" in listed.text and f"#{spam['kemendag']}" not in listed.text
    assert f"t:{spam['kemendag']}:open" not in listed.callback_data
    everything = await answer_to(fake_telegram, MEDIA, MEDIA_MEMBER, "/spam", "spam")
    assert all(f"#{i}" in everything.text for i in spam.values())


async def test_search_header_is_escaped_once(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    await polled(bot, fake_instagram)
    found = await answer_to(fake_telegram, LINJAMSOS, OFFICER_LINJAMSOS, "/cari <b>PKH</b> tahap", "“")
    assert "Hasil pencarian “<b>PKH</b> tahap”" in found.text
    assert not re.search(r"&(amp|quot|lt|gt);", found.text)


async def test_the_bot_error_alert_is_escaped_once(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    fake_telegram.inject_error("sendMessage", 400, 'Bad Request: can\'t parse "x" & <y>', chat_id=LINJAMSOS)
    fake_telegram.push_message(LINJAMSOS, OFFICER_LINJAMSOS, "/antrian")
    await fake_telegram.wait_for_async(lambda: bot.store.undelivered_alerts(), timeout=10)
    deliver_alerts(bot.settings, bot.store, now=datetime.now(timezone.utc))
    bot.deliverer.wake.set()
    alert = await fake_telegram.wait_for_async(
        lambda: next((m for m in fake_telegram.messages(MEDIA) if "Gangguan pada bot" in (m.text or "")), None),
        timeout=10, message="the media team was not told about the error")
    assert "t parse \"x\" & <y>" in alert.text
    assert not re.search(r"&(amp|quot|lt|gt|#x27);", alert.text)


async def test_terima_whose_edit_failed_still_says_it_was_acknowledged(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tid = (await polled(bot, fake_instagram))["pkh"]
    message = await ticket_in(fake_telegram, LINJAMSOS, tid)
    fake_telegram.inject_error("editMessageText", 400, "Bad Request: message can't be edited", chat_id=LINJAMSOS)
    toast = await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, f"t:{tid}:ack")
    assert "gangguan" not in toast and "terima" in toast.lower()
    ticket = bot.store.ticket(tid)
    assert ticket is not None and ticket.status == "acknowledged"
    # the catch-up edit from the outbox shows it
    await ticket_in(fake_telegram, LINJAMSOS, tid, "Diterima oleh")
