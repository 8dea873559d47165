"""Closing the loop: an answer drafted in a unit group, approved by the media team, posted on Instagram."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.config import Settings
from bot.runner import Runtime
from tests.fakes.instagram_server import FakeInstagram
from tests.fakes.telegram_server import FakeTelegram
from tests.test_telegram_workflow import (
    LINJAMSOS, MEDIA, MEDIA_MEMBER, OFFICER_LINJAMSOS, PDN, polled, press, ticket_in,
)

OFFICER_PDN = 8101


async def draft_message(fake: FakeTelegram, ticket_id: int) -> Any:
    return await fake.wait_for_async(
        lambda: next((m for m in fake.messages(MEDIA) if f"Draf jawaban tiket #{ticket_id}" in (m.text or "")), None),
        timeout=10, message="the draft never reached the media team")


async def reply(fake: FakeTelegram, chat: int, user: int, message_id: int, text: str) -> None:
    fake.push_message(chat, user, text, reply_to_message_id=message_id)
    await fake.wait_for_async(lambda: any(m.reply_to_message_id for m in fake.messages(chat)), timeout=10)


async def test_a_comment_answer_is_drafted_approved_and_posted(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tickets = await polled(bot, fake_instagram)
    tid = tickets["pkh"]
    message = await ticket_in(fake_telegram, LINJAMSOS, tid)
    toast = await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, f"t:{tid}:answer")
    assert "Balas" in toast
    answer = "Mohon maaf atas keterlambatannya, Bu. Data Ibu sudah kami teruskan ke pendamping PKH."
    await reply(fake_telegram, LINJAMSOS, OFFICER_LINJAMSOS, message.message_id, answer)
    draft = await draft_message(fake_telegram, tid)
    assert fake_instagram.sent_replies == []  # nothing goes out before the media team approves
    toast = await press(fake_telegram, MEDIA, draft.message_id, OFFICER_LINJAMSOS, draft.callback_data[0])
    assert toast.startswith("Maaf")  # an officer cannot publish in the ministry's name
    await press(fake_telegram, MEDIA, draft.message_id, MEDIA_MEMBER, draft.callback_data[0])
    await fake_telegram.wait_for_async(lambda: fake_instagram.sent_replies, timeout=10)
    await fake_telegram.wait_for_async(lambda: bot.store.ticket(tid).status == "resolved", timeout=10)  # type: ignore[union-attr]
    sent = fake_instagram.sent_replies[0]
    ticket = bot.store.ticket(tid)
    assert ticket is not None and sent.comment_id == ticket.message_id and sent.text == answer
    assert ticket.status == "resolved" and ticket.resolved_by == MEDIA_MEMBER and ticket.resolution_note == answer
    await fake_telegram.wait_for_async(
        lambda: "Terkirim" in (fake_telegram.message(MEDIA, draft.message_id).text or ""), timeout=10)


async def test_a_dm_answer_rejected_by_the_api_is_shown_and_retried(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tickets = await polled(bot, fake_instagram)
    tid = tickets["dm"]
    message = await ticket_in(fake_telegram, PDN, tid)
    await reply(fake_telegram, PDN, OFFICER_PDN, message.message_id, "Terima kasih, laporan Anda kami teruskan ke dinas.")
    draft = await draft_message(fake_telegram, tid)
    fake_instagram.inject_error("/messages", method="POST", code=100, http_status=400, times=1)
    await press(fake_telegram, MEDIA, draft.message_id, MEDIA_MEMBER, draft.callback_data[0])
    failed = await fake_telegram.wait_for_async(
        lambda: "Gagal dikirim" in (fake_telegram.message(MEDIA, draft.message_id).text or ""), timeout=10)
    assert failed and fake_instagram.sent_dms == []
    assert bot.store.ticket(tid).status != "resolved"  # type: ignore[union-attr]
    retry = fake_telegram.message(MEDIA, draft.message_id)
    assert retry.callback_data[0].endswith(":send")
    await press(fake_telegram, MEDIA, draft.message_id, MEDIA_MEMBER, retry.callback_data[0])
    await fake_telegram.wait_for_async(lambda: fake_instagram.sent_dms, timeout=10)
    assert fake_instagram.sent_dms[0].text.startswith("Terima kasih")
    await fake_telegram.wait_for_async(lambda: bot.store.ticket(tid).status == "resolved", timeout=10)  # type: ignore[union-attr]


async def test_a_closed_messaging_window_is_said_plainly(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tickets = await polled(bot, fake_instagram)
    tid = tickets["dm"]
    message = await ticket_in(fake_telegram, PDN, tid)
    await reply(fake_telegram, PDN, OFFICER_PDN, message.message_id, "Laporan Anda sudah kami terima.")
    draft = await draft_message(fake_telegram, tid)
    fake_instagram.advance(timedelta(days=3).total_seconds())
    await press(fake_telegram, MEDIA, draft.message_id, MEDIA_MEMBER, draft.callback_data[0])
    text = await fake_telegram.wait_for_async(
        lambda: (t := fake_telegram.message(MEDIA, draft.message_id).text or "") and "Gagal" in t and t, timeout=10)
    assert "jendela pesan Instagram sudah tertutup" in text


async def test_spam_is_hidden_and_can_be_shown_again(
        settings: Settings, bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    import dataclasses

    accounts = dict(settings.routing.accounts)
    accounts["kemensos"] = accounts["kemensos"].model_copy(update={"hide_spam": True})
    routing = settings.routing.model_copy(update={"accounts": accounts})
    bot.settings = dataclasses.replace(settings, routing=routing)
    tickets = await polled(bot, fake_instagram)
    tid = tickets["spam"]
    spam_id = bot.store.ticket(tid).message_id  # type: ignore[union-attr]
    notice = await fake_telegram.wait_for_async(
        lambda: next((m for m in fake_telegram.messages(MEDIA) if "Spam disembunyikan" in (m.text or "")), None),
        timeout=10)
    assert any(c.method == "POST" and spam_id in c.path for c in fake_instagram.calls)
    await press(fake_telegram, MEDIA, notice.message_id, MEDIA_MEMBER, f"a:{tid}:unhide")
    kinds = [e["kind"] for e in bot.store.ticket_events(tid)]
    assert kinds[-2:] == ["hidden", "unhidden"]
    assert "ditampilkan lagi" in (fake_telegram.message(MEDIA, notice.message_id).text or "")


async def correct(fake: FakeTelegram, message_id: int, tid: int, *picks: str) -> None:
    """Koreksi in the media team's group as a person does it: open the picker, press the
    buttons whose callbacks start with `picks`, one after another, then Simpan."""
    await press(fake, MEDIA, message_id, MEDIA_MEMBER, f"t:{tid}:fix")
    for prefix in (*picks, f"t:{tid}:fixok"):
        data = next(d for d in fake.message(MEDIA, message_id).callback_data if d.startswith(prefix))
        await press(fake, MEDIA, message_id, MEDIA_MEMBER, data)


async def test_a_comment_corrected_to_spam_is_hidden_and_shown_again_when_corrected_back(
        settings: Settings, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram, classifier: Any) -> None:
    import dataclasses

    from bot.runner import build_runtime, serve
    from tests.test_telegram_workflow import LIMITS

    accounts = dict(settings.routing.accounts)
    accounts["kemensos"] = accounts["kemensos"].model_copy(update={"hide_spam": True})
    hiding = dataclasses.replace(settings, routing=settings.routing.model_copy(update={"accounts": accounts}))
    runtime = build_runtime(hiding, classifier=classifier, limits=LIMITS)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(runtime, stop, poll=False))
    try:
        tid = (await polled(runtime, fake_instagram))["pkh"]
        comment_id = runtime.store.ticket(tid).message_id  # type: ignore[union-attr]
        mirror = await ticket_in(fake_telegram, MEDIA, tid)
        await correct(fake_telegram, mirror.message_id, tid, f"t:{tid}:fixl:spam:")
        await fake_telegram.wait_for_async(
            lambda: any(f"tiket #{tid}" in (m.text or "") and "Spam disembunyikan" in (m.text or "")
                        for m in fake_telegram.messages(MEDIA)), timeout=10)
        assert fake_instagram.comment_hidden(comment_id)

        await correct(fake_telegram, mirror.message_id, tid, f"t:{tid}:fixl:complaint:", f"t:{tid}:fixu:linjamsos:")
        await fake_telegram.wait_for_async(
            lambda: any(f"tiket #{tid} ditampilkan lagi" in (m.text or "") for m in fake_telegram.messages(MEDIA)),
            timeout=10)
        assert not fake_instagram.comment_hidden(comment_id)
        ticket = runtime.store.ticket(tid)
        assert ticket is not None and ticket.status == "open" and ticket.unit == "linjamsos"
        assert [e["actor"] for e in runtime.store.ticket_events(tid) if e["kind"] in ("hidden", "unhidden")] == [
            "system", "system"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_an_answer_to_a_ticket_closed_meanwhile_is_not_posted(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    """Kirim goes through the state machine: a ticket resolved after its draft was written
    is not answered on Instagram, and keeps who resolved it."""
    tid = (await polled(bot, fake_instagram))["pkh"]
    message = await ticket_in(fake_telegram, LINJAMSOS, tid)
    await reply(fake_telegram, LINJAMSOS, OFFICER_LINJAMSOS, message.message_id, "Sudah kami cek, Bu.")
    draft = await draft_message(fake_telegram, tid)
    await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, f"t:{tid}:done")
    await press(fake_telegram, MEDIA, draft.message_id, MEDIA_MEMBER, draft.callback_data[0])
    await fake_telegram.wait_for_async(
        lambda: any(f"Tiket #{tid} sudah selesai" in (m.text or "") for m in fake_telegram.messages(MEDIA)), timeout=10)
    assert fake_instagram.sent_replies == []
    ticket = bot.store.ticket(tid)
    assert ticket is not None and ticket.status == "resolved" and ticket.resolved_by == OFFICER_LINJAMSOS
    assert [e["kind"] for e in bot.store.ticket_events(tid)].count("answered") == 0


async def test_a_citizen_who_names_a_gambling_site_keeps_the_ticket_and_is_never_hidden(
        settings: Settings, bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    """Issue 12: with hide_spam on, only a plain promotion is hidden; a complaint that names a site
    (and so scores high for spam) becomes a ticket in its unit and stays visible on Instagram."""
    import dataclasses
    from datetime import datetime, timezone

    accounts = dict(settings.routing.accounts)
    accounts["kemensos"] = accounts["kemensos"].model_copy(update={"hide_spam": True})
    bot.settings = dataclasses.replace(settings, routing=settings.routing.model_copy(update={"accounts": accounts}))
    now = datetime.now(timezone.utc)
    post = fake_instagram.add_media("17841400000000001", caption="Waspada judi online", timestamp=now - timedelta(hours=1))
    report = fake_instagram.add_comment(
        post, "situs slot gacor88 maxwin masih bisa dibuka sampai sekarang, anak saya kecanduan, tolong diblokir pak",
        "ibu.rina", timestamp=now - timedelta(minutes=20))
    promo = fake_instagram.add_comment(post, "slot gacor maxwin hari ini, depo 10k langsung wd, link di bio 🔥",
                                       "gacor.id", timestamp=now - timedelta(minutes=10))
    await bot.poll_once()
    by_message = {t.message_id: t for t in bot.store.tickets()}
    assert by_message[report].status != "spam" and by_message[report].unit is not None
    await fake_telegram.wait_for_async(
        lambda: any("Spam disembunyikan" in (m.text or "") for m in fake_telegram.messages(MEDIA)), timeout=10)
    posts = [c for c in fake_instagram.calls if c.method == "POST"]
    assert any(promo in c.path for c in posts)  # the promotion was hidden
    assert not any(report in c.path for c in posts)  # the citizen's comment was not
