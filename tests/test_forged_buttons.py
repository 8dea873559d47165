"""Forged buttons, end to end: callback data can be anything (Telegram's docs say so).

Whoever presses and wherever they press, a button whose data names a ticket the
chat does not handle, or that the person may not touch, changes nothing, shows
nothing and posts nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.runner import Runtime
from tests.fakes.instagram_server import FakeInstagram
from tests.fakes.telegram_server import FakeTelegram
from tests.test_telegram_workflow import (
    LINJAMSOS, MEDIA, OFFICER_LINJAMSOS, OFFICER_PDN, OFFICER_PUSDATIN, PDN, PUSDATIN, STRANGER,
    polled, press, ticket_in,
)

CHATS = (LINJAMSOS, PUSDATIN, MEDIA, PDN)
SECRET = "belum cair"  # words of the PKH ticket, which belongs to kemensos' linjamsos unit


def ticket_actions(tid: int) -> list[str]:
    """Every ticket button, aimed at ticket `tid`."""
    return [f"t:{tid}:{action}" for action in (
        "ack", "move", "move:pusdatin", "done", "fix", "fixl:c:q.linjamsos", "fixu:pusdatin:c", "fixok:s.",
        "cancel", "reveal", "hide", "open", "answer")]


def snapshot(fake: FakeTelegram) -> dict[int, list[tuple[Any, ...]]]:
    return {chat: [(m.message_id, m.text, tuple(m.callback_data)) for m in fake.messages(chat)] for chat in CHATS}


async def bot_message_in(fake: FakeTelegram, chat: int, user: int) -> Any:
    """A message of the bot's own in `chat` (its answer to /antrian) to press forged buttons on."""
    fake.push_message(chat, user, "/antrian")
    return await fake.wait_for_async(
        lambda: next((m for m in fake.messages(chat) if "Antrian" in (m.text or "")), None),
        timeout=10, message=f"no /antrian answer in chat {chat}")


async def test_forged_buttons_reveal_change_and_post_nothing(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tickets = await polled(bot, fake_instagram)
    pkh = tickets["pkh"]
    own = await ticket_in(fake_telegram, LINJAMSOS, pkh)
    mirror = await ticket_in(fake_telegram, MEDIA, pkh)
    other_ministry = await ticket_in(fake_telegram, PDN, tickets["dm"])
    other_unit = await bot_message_in(fake_telegram, PUSDATIN, OFFICER_PUSDATIN)
    # a draft answer for the PKH ticket, waiting in the media team's group
    fake_telegram.push_message(LINJAMSOS, OFFICER_LINJAMSOS, "Baik, kami cek datanya.", reply_to_message_id=own.message_id)
    draft = await fake_telegram.wait_for_async(
        lambda: next((m for m in fake_telegram.messages(MEDIA) if f"Draf jawaban tiket #{pkh}" in (m.text or "")), None),
        timeout=10, message="the draft never reached the media team")
    draft_id = int(draft.callback_data[0].split(":")[1])
    await asyncio.sleep(0.5)  # the officer's "draf diteruskan" answer
    forged = ticket_actions(pkh) + [f"a:{pkh}:hide", f"a:{pkh}:unhide", f"a:{draft_id}:send", f"a:{draft_id}:edit"]
    presses = [
        # the other ministry's group, by its own officer
        *[(PDN, other_ministry.message_id, OFFICER_PDN, data) for data in forged],
        # another unit's group of the same ministry, by its own officer
        *[(PUSDATIN, other_unit.message_id, OFFICER_PUSDATIN, data) for data in forged],
        # the ticket's own group and the media team's, by someone routing.yaml does not know
        *[(LINJAMSOS, own.message_id, STRANGER, data) for data in forged],
        *[(MEDIA, mirror.message_id, STRANGER, data) for data in forged],
        *[(MEDIA, draft.message_id, STRANGER, data) for data in (f"a:{draft_id}:send", f"a:{draft_id}:edit")],
    ]
    before, events = snapshot(fake_telegram), len(bot.store.ticket_events(pkh))
    for chat, message_id, user, data in presses:
        toast = await press(fake_telegram, chat, message_id, user, data, check=False)
        assert toast.startswith(("Maaf", "Tiket ini tidak ditangani")), (chat, user, data, toast)
    await asyncio.sleep(1.5)  # anything queued by a press would be delivered by now
    assert snapshot(fake_telegram) == before
    for chat in (PDN, PUSDATIN):
        assert all(SECRET not in (m.text or "") for m in fake_telegram.messages(chat))
    ticket = bot.store.ticket(pkh)
    assert ticket is not None and ticket.status == "open" and ticket.unit == "linjamsos"
    assert len(bot.store.ticket_events(pkh)) == events
    assert fake_instagram.sent_replies == [] and bot.store.draft(draft_id)["status"] == "pending"  # type: ignore[index]
    assert fake_telegram.server_errors == []


async def test_open_under_a_list_posts_the_ticket_and_keeps_the_list(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    pkh = (await polled(bot, fake_instagram))["pkh"]
    await ticket_in(fake_telegram, LINJAMSOS, pkh)
    queue = await bot_message_in(fake_telegram, LINJAMSOS, OFFICER_LINJAMSOS)
    before = len([m for m in fake_telegram.messages(LINJAMSOS) if f"#{pkh}" in (m.text or "").split("\n")[0]])
    await press(fake_telegram, LINJAMSOS, queue.message_id, OFFICER_LINJAMSOS, f"t:{pkh}:open")
    await fake_telegram.wait_for_async(
        lambda: len([m for m in fake_telegram.messages(LINJAMSOS) if f"#{pkh}" in (m.text or "").split("\n")[0]]) > before,
        timeout=10, message="Buka did not post the ticket")
    assert fake_telegram.message(LINJAMSOS, queue.message_id).text == queue.text
