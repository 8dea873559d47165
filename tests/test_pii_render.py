"""Personal data stays masked wherever the bot shows a citizen's words (issue 13,
items 4 and 5): the draft answer and the spam notice in the media team's group, a
note kept with a resolved ticket, the monthly report's recurring complaints, and
/cari, which must not find digits its user may not see.

The Telegram tests drive the real bot against the fake Instagram and Telegram
servers, as tests/test_telegram_workflow.py does.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.answers import spam_hidden_view
from bot.config import RoutingConfig, Settings
from bot.report import build_report, recurring_items, write_report
from bot.runner import Runtime
from bot.store import Store
from tests.fakes.instagram_server import FakeInstagram
from tests.fakes.telegram_server import FakeTelegram
from tests.test_answers import draft_message, reply
from tests.test_digest import add_message, wib
from tests.test_telegram_ui import make_ticket
from tests.test_telegram_workflow import (
    LINJAMSOS, MEDIA, MEDIA_MEMBER, NIK, OFFICER_LINJAMSOS, OFFICER_PDN, polled, press, ticket_in,
)

PHONE = "081234567890"
NOTE_NIK = "3201014105900002"


def digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


# -- item 4: every place that quotes a citizen's words ---------------------------------


async def test_the_draft_answer_quotes_the_citizens_message_masked(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tid = (await polled(bot, fake_instagram))["pkh"]
    message = await ticket_in(fake_telegram, LINJAMSOS, tid)
    await reply(fake_telegram, LINJAMSOS, OFFICER_LINJAMSOS, message.message_id, "Data Ibu sudah kami teruskan.")
    draft = await draft_message(fake_telegram, tid)
    assert "Pesan warga" in draft.text
    assert NIK not in digits(draft.text)
    assert "3276********0001" in draft.text


async def test_the_spam_hidden_notice_quotes_the_comment_masked(
        settings: Settings, bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    accounts = dict(settings.routing.accounts)
    accounts["kemensos"] = accounts["kemensos"].model_copy(update={"hide_spam": True})
    bot.settings = dataclasses.replace(settings, routing=settings.routing.model_copy(update={"accounts": accounts}))
    now = datetime.now(timezone.utc)
    post = fake_instagram.add_media("17841400000000001", caption="Info bansos", timestamp=now - timedelta(hours=4))
    fake_instagram.add_comment(post, f"slot gacor maxwin depo 10k langsung wd, chat admin wa {PHONE} 🔥",
                               "gacor.wa", timestamp=now - timedelta(hours=2))
    await polled(bot, fake_instagram)
    notice = await fake_telegram.wait_for_async(
        lambda: next((m for m in fake_telegram.messages(MEDIA)
                      if "Spam disembunyikan" in (m.text or "") and "gacor.wa" in (m.text or "")), None),
        timeout=10, message="no notice for the hidden spam")
    assert PHONE[1:] not in digits(notice.text)
    assert "0812*****890" in notice.text


def test_the_spam_notice_masks_before_it_cuts() -> None:
    """Cut first and a NIK across the cut loses digits, stops being a NIK and shows its first ten."""
    text = "x" * 131 + " NIK 3201014105900002 slot gacor"
    for hidden in (True, False):
        view = spam_hidden_view(make_ticket(text=text, status="spam"), hidden)
        assert "3201014105" not in view.text


async def test_a_note_with_a_nik_is_shown_masked_after_selesai(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tid = (await polled(bot, fake_instagram))["html"]
    message = await ticket_in(fake_telegram, LINJAMSOS, tid)
    await reply(fake_telegram, LINJAMSOS, OFFICER_LINJAMSOS, message.message_id,
                f"catatan: sudah dicek di DTKS, NIK ibu {NOTE_NIK} terdaftar, tahap 4 cair minggu depan")
    await fake_telegram.wait_for_async(
        lambda: bot.store.ticket(tid).resolution_note, timeout=10)  # type: ignore[union-attr]
    await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, f"t:{tid}:done")
    resolved = await ticket_in(fake_telegram, LINJAMSOS, tid, "Selesai oleh")
    assert "catatan" in resolved.text
    assert NOTE_NIK not in digits(resolved.text)
    assert "3201********0002" in resolved.text
    fake_telegram.push_message(LINJAMSOS, OFFICER_LINJAMSOS, f"/tiket {tid}")
    detail = await fake_telegram.wait_for_async(
        lambda: next((m for m in fake_telegram.messages(LINJAMSOS) if "Riwayat" in (m.text or "")), None), timeout=10)
    assert NOTE_NIK not in digits(detail.text)


def test_the_reports_recurring_complaints_are_masked(store: Store, routing: RoutingConfig, tmp_path: Path) -> None:
    people = [("3276010101010001", "081234567890"), ("3276010101010002", "081298765432"),
              ("3276010101010003", "085712345678")]
    for day, (nik, phone) in enumerate(people, start=3):
        add_message(store, routing, account="kemensos", unit="linjamsos", labels=["complaint"],
                    text=f"bansos PKH tahap 1 belum cair sampai sekarang NIK {nik} hp {phone}", received=wib(day, 9))
    data = build_report(store, routing, "2025-03", now=datetime(2025, 4, 1, 2, 0, tzinfo=timezone.utc))
    assert [r.count for r in data.recurring] == [3]
    shown = " ".join(text for _, text in recurring_items(data))  # what both the HTML and the PDF list
    html_path, _ = write_report(data, tmp_path)
    html = html_path.read_text(encoding="utf-8")
    for nik, phone in people:
        assert nik not in digits(shown) and phone[1:] not in digits(shown)
        assert nik not in html and phone not in html
    assert "3276********000" in shown


# -- item 5: /cari finds only what its user may see ------------------------------------


async def search(fake: FakeTelegram, chat: int, user: int, query: str) -> str:
    before = len(fake.messages(chat))
    fake.push_message(chat, user, f"/cari {query}")
    answer = await fake.wait_for_async(
        lambda: next((m for m in fake.messages(chat)[before:] if "🔎" in (m.text or "")), None), timeout=10,
        message=f"/cari {query} was not answered")
    return answer.text or ""


async def test_search_cannot_find_the_digits_a_user_may_not_reveal(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tid = (await polled(bot, fake_instagram))["pkh"]
    await ticket_in(fake_telegram, LINJAMSOS, tid)
    # An officer of another unit in the PKH unit's group may see the ticket, not its NIK.
    toast = await press(fake_telegram, LINJAMSOS, (await ticket_in(fake_telegram, LINJAMSOS, tid)).message_id,
                        OFFICER_PDN, f"t:{tid}:reveal")
    assert toast.startswith("Maaf")
    for query in (NIK[:8], NIK[4:12], NIK):
        assert "Tidak ada tiket" in await search(fake_telegram, LINJAMSOS, OFFICER_PDN, query)
    assert f"#{tid}" in await search(fake_telegram, LINJAMSOS, OFFICER_PDN, "NIK 3276")  # as the mask shows it
    assert f"#{tid}" in await search(fake_telegram, LINJAMSOS, OFFICER_PDN, "belum cair")
    # Those who may reveal it find it by the number, and still see it masked.
    found = await search(fake_telegram, LINJAMSOS, OFFICER_LINJAMSOS, NIK[4:12])
    assert f"#{tid}" in found and NIK not in digits(found)
    found = await search(fake_telegram, MEDIA, MEDIA_MEMBER, NIK)
    assert f"#{tid}" in found and NIK not in digits(found)
    assert [e for e in bot.store.ticket_events(tid) if e["kind"] == "revealed"] == []
